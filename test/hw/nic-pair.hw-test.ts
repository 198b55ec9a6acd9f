/**
 * The NicDevice contract on two real ports cabled to each other (IXY_HW_PORTS="a,b", set by
 * test/hw/run.ts). The cases are those of test/contract/nic-contract.test.ts that a real wire
 * allows: the models' suite can also hold transmission, pull the cable and read the rings, which
 * hardware cannot. What it checks: frames byte-exact and in order both ways in several batch
 * sizes, exact counters (what B received plus what B counted as missed is what A sent), the
 * overflow of an unpolled receive ring, the 17-byte minimum, address filtering without
 * promiscuous mode, argument checks, and that close() gives every buffer back.
 *
 * IXY_HW_PORTS=sim runs the same cases on two 82599 models wired to each other (test/hw/
 * sim-pair.test.ts does, in `npm test`), so that the suite itself is known to work.
 *
 * Test frames carry EtherType 0x88B5 (IEEE local experimental) and are addressed to the other
 * port, so that anything else on the wire (a switch's LLDP, say) is told apart and ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newStats, type DeviceStats, type NicDevice } from "../../src/device.ts";
import { BufferOwnershipError, DeviceClosedError } from "../../src/errors.ts";
import { freeBuffer, Mempool } from "../../src/mem/mempool.ts";
import { copyFrame, writeFrame } from "../../src/mem/packet.ts";
import { openDevice } from "../../src/open-device.ts";
import { sleepMs } from "../../src/pci/regs.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { prng, randInt } from "../helpers/prng.ts";

const SIM = process.env.IXY_HW_PORTS === "sim";
const PORTS = SIM ? ["sim:hw-a", "sim:hw-b"] : (process.env.IXY_HW_PORTS ?? "").split(",").filter((p) => p !== "");
const ETHERTYPE = 0x88b5;
const RING = 512;
/** How long frames may take across the cable and through the other port's ring. */
const WIRE_MS = 200;

/** Frames sent before the other side polls: well within a 512-descriptor ring. */
const CHUNK = 256;

/** Opens both ports: through openDevice, or (SIM) on two wired models. */
function openPair(): [NicDevice, NicDevice] {
  const options = { rxRingSize: RING, txRingSize: RING, checked: true, linkTimeoutMs: 15_000 };
  if (!SIM) return [openDevice(PORTS[0]!, options), openDevice(PORTS[1]!, options)];
  const [da, db] = [new SimDma("hw-test A"), new SimDma("hw-test B")];
  const ma = new Ixgbe82599Model({ dma: da, address: PORTS[0] });
  const mb = new Ixgbe82599Model({ dma: db, address: PORTS[1] });
  ma.connect(mb);
  return [createIxgbeDevice(ma.pci, da, options), createIxgbeDevice(mb.pci, db, options)];
}

if (PORTS.length !== 2) {
  console.log("test/hw: skipped, IXY_HW_PORTS is not two ports: run `npm run test:hw -- <pci-a> <pci-b>`");
}

function stats(dev: NicDevice): DeviceStats {
  const s = newStats();
  dev.readStats(s);
  return s;
}

describe.skipIf(PORTS.length !== 2)(`NicDevice contract on real ports ${PORTS.join(" <-> ")}`, () => {
  let a: NicDevice;
  let b: NicDevice;
  let poolA: Mempool;
  let poolB: Mempool;
  let seq = 0;

  beforeAll(() => {
    [a, b] = openPair();
    poolA = new Mempool(a.dma, { count: 4096, checked: true, name: "hw test TX pool A" });
    poolB = new Mempool(b.dma, { count: 4096, checked: true, name: "hw test TX pool B" });
    // Both links up (openDevice waited for each); give the partner's side a moment too.
    const deadline = performance.now() + 15_000;
    while ((a.linkSpeed() === 0 || b.linkSpeed() === 0) && performance.now() < deadline) sleepMs(10);
  });

  afterAll(() => {
    for (const dev of [a, b]) dev?.close();
    // Through openDevice() both ports share one DMA allocator, closed with the last device, and
    // its pools with it (the close() case checks poolA while port B still holds the memory).
    for (const pool of [poolA, poolB]) {
      if (pool === undefined || pool.dead) continue;
      expect(pool.available, `${pool.name} after close()`).toBe(pool.count);
      pool.close();
    }
  });

  /** `count` frames from `from` to `to`, 60 .. 1514 bytes unless told, sequence number at 14. */
  function frames(from: NicDevice, to: NicDevice, count: number, min = 60, max = 1514, dst = to.macAddress()): Uint8Array[] {
    const rand = prng(1000 + seq);
    const src = from.macAddress();
    return Array.from({ length: count }, () => {
      const f = new Uint8Array(randInt(rand, min, max));
      for (let i = 0; i < f.length; i++) f[i] = (rand() * 256) | 0;
      f.set(dst, 0);
      f.set(src, 6);
      f[12] = ETHERTYPE >>> 8;
      f[13] = ETHERTYPE & 0xff;
      new DataView(f.buffer).setUint32(14, seq++);
      return f;
    });
  }

  /** Sends every frame from `dev`, `batch` at a time, retrying while the ring is full. */
  function send(dev: NicDevice, pool: Mempool, list: readonly Uint8Array[], batch: number): void {
    const bufs = new Int32Array(batch);
    for (let i = 0; i < list.length;) {
      const n = Math.min(batch, list.length - i);
      expect(pool.allocBatch(bufs, n)).toBe(n);
      for (let k = 0; k < n; k++) writeFrame(bufs[k]!, list[i + k]!);
      let done = 0;
      for (let tries = 0; done < n; tries++) {
        if (tries > 10_000) throw new Error(`txBatch took ${done} of ${n} frames and then no more`);
        done += dev.txBatch(0, done === 0 ? bufs : bufs.subarray(done), n - done);
      }
      i += n;
    }
  }

  /** Receives test frames on `dev` until `count` arrived or the wire went quiet for WIRE_MS. */
  function receive(dev: NicDevice, count: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    const bufs = new Int32Array(64);
    let quietSince = performance.now();
    while (out.length < count && performance.now() - quietSince < WIRE_MS) {
      const n = dev.rxBatch(0, bufs, bufs.length);
      if (n > 0) quietSince = performance.now();
      for (let i = 0; i < n; i++) {
        const f = copyFrame(bufs[i]!);
        freeBuffer(bufs[i]!);
        if (f.length >= 18 && ((f[12]! << 8) | f[13]!) === ETHERTYPE) out.push(f);
      }
    }
    return out;
  }

  /** Sends `list` from `from` to `to` in chunks the receiver's ring holds, receiving after each. */
  function transfer(from: NicDevice, pool: Mempool, to: NicDevice, list: readonly Uint8Array[], batch: number): Uint8Array[] {
    const got: Uint8Array[] = [];
    for (let i = 0; i < list.length; i += CHUNK) {
      const chunk = list.slice(i, i + CHUNK);
      send(from, pool, chunk, batch);
      got.push(...receive(to, chunk.length));
    }
    return got;
  }

  /** Drops whatever test traffic is still on the way, so that each case starts clean. */
  function drain(): void {
    receive(a, Number.POSITIVE_INFINITY);
    receive(b, Number.POSITIVE_INFINITY);
  }

  function expectSame(actual: readonly Uint8Array[], expected: readonly Uint8Array[]): void {
    expect(actual.length, "frames received").toBe(expected.length);
    for (let i = 0; i < expected.length; i++) {
      if (!Buffer.from(actual[i]!).equals(Buffer.from(expected[i]!))) {
        throw new Error(`frame ${i} differs: ${actual[i]!.length} bytes received, ${expected[i]!.length} sent`);
      }
    }
  }

  it("reports its MAC address as a fresh copy and the same link speed on both ports", () => {
    const mac = a.macAddress();
    expect(mac.length).toBe(6);
    mac.fill(0);
    expect(a.macAddress()).not.toEqual(mac);
    expect(a.linkSpeed()).toBeGreaterThan(0);
    expect(a.linkSpeed()).toBe(b.linkSpeed());
  });

  it.each([1, 7, 32, 256])("carries random frames A -> B and B -> A byte-exact and in order, in batches of %i", (batch) => {
    drain();
    const sentA = stats(a);
    const recvB = stats(b);
    const ab = frames(a, b, 2000);
    expectSame(transfer(a, poolA, b, ab, batch), ab);
    const ba = frames(b, a, 2000);
    expectSame(transfer(b, poolB, a, ba, batch), ba);
    const bytes = ab.reduce((n, f) => n + f.length, 0);
    expect(stats(a).txPackets - sentA.txPackets).toBe(ab.length);
    expect(stats(a).txBytes - sentA.txBytes).toBe(bytes);
    expect(stats(b).rxPackets - recvB.rxPackets).toBeGreaterThanOrEqual(ab.length);
    expect(stats(b).rxMissed - recvB.rxMissed).toBe(0);
  });

  it("counts what an unpolled receive ring could not take: received + missed = sent", () => {
    drain();
    const before = stats(b);
    const burst = frames(a, b, 3 * RING, 60, 60);
    send(a, poolA, burst, 64); // B does not poll meanwhile
    sleepMs(WIRE_MS);
    const got = receive(b, burst.length);
    const after = stats(b);
    expect(got.length, "a full ring's worth at least").toBeGreaterThanOrEqual(RING - 1);
    expect(got.length + (after.rxMissed - before.rxMissed), "received + missed").toBe(burst.length);
    // What came through was sent, byte-exact and in order (the sequence number is at byte 14).
    const first = new DataView(burst[0]!.buffer).getUint32(14);
    let last = -1;
    for (const f of got) {
      const n = new DataView(f.buffer, f.byteOffset).getUint32(14) - first;
      expect(n).toBeGreaterThan(last);
      expectSame([f], [burst[n]!]);
      last = n;
    }
  });

  // The 82599's rule (Linux pads to 17 for olinfo PAYLEN); virtio-net has no such minimum.
  it("refuses frames under 17 bytes, counts them in txErrors and sends the rest (ixgbe)", (ctx) => {
    if (a.driver !== "ixgbe") ctx.skip();
    drain();
    const before = stats(a);
    const good = frames(a, b, 4);
    const bufs = new Int32Array(6);
    expect(poolA.allocBatch(bufs, 6)).toBe(6);
    for (let i = 0; i < 4; i++) writeFrame(bufs[i]!, good[i]!);
    writeFrame(bufs[4]!, good[0]!.subarray(0, 16));
    writeFrame(bufs[5]!, good[0]!.subarray(0, 1));
    expect(a.txBatch(0, Int32Array.of(bufs[0]!, bufs[4]!, bufs[1]!, bufs[5]!, bufs[2]!, bufs[3]!), 6)).toBe(6);
    expectSame(receive(b, 4), good);
    expect(stats(a).txErrors - before.txErrors).toBe(2);
  });

  it("filters by destination address once setPromisc(false), and takes everything again with setPromisc(true)", () => {
    drain();
    b.setPromisc(false);
    try {
      const mine = frames(a, b, 20);
      const other = frames(a, b, 20, 60, 1514, Uint8Array.of(0x02, 0x00, 0x5e, 0x10, 0x20, 0x30));
      send(a, poolA, [...other, ...mine], 8);
      expectSame(receive(b, 40), mine);
    } finally {
      b.setPromisc(true);
    }
    const other = frames(a, b, 20, 60, 1514, Uint8Array.of(0x02, 0x00, 0x5e, 0x10, 0x20, 0x31));
    send(a, poolA, other, 8);
    expectSame(receive(b, 20), other);
  });

  it("checks its arguments before touching a ring or a pool", () => {
    const bufs = new Int32Array(4);
    expect(() => a.rxBatch(99, bufs, 4)).toThrow(RangeError);
    expect(() => a.rxBatch(0, bufs, 5)).toThrow(RangeError);
    expect(() => a.txBatch(0, bufs, Number.NaN)).toThrow(TypeError);
    expect(() => a.txBatch(0, [1, 2] as unknown as Int32Array, 2)).toThrow(TypeError);
    expect(() => a.txBatch(0, Int32Array.of(-5), 1)).toThrow(RangeError);
    const free = poolA.alloc();
    freeBuffer(free);
    expect(() => a.txBatch(0, Int32Array.of(free), 1)).toThrow(BufferOwnershipError);
  });

  it("close() returns the buffers of both rings, then refuses calls but still reports stats (runs last)", () => {
    drain();
    // Frames waiting in B's ring, frames on their way out of A.
    send(a, poolA, frames(a, b, 100), 32);
    sleepMs(WIRE_MS);
    const before = stats(b);
    // A first: B keeps the shared DMA memory (openDevice) that poolA lives in, so poolA can
    // still be counted after A has given back what its TX ring held.
    a.close();
    expect(poolA.available).toBe(poolA.count);
    b.close();
    expect(() => b.rxBatch(0, new Int32Array(1), 1)).toThrow(DeviceClosedError);
    expect(() => a.linkSpeed()).toThrow(DeviceClosedError);
    expect(stats(b).rxPackets).toBeGreaterThanOrEqual(before.rxPackets);
  });
});
