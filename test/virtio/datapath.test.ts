import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { BufferOwnershipError, DeviceProtocolError } from "../../src/errors.ts";
import { bufDataOffset, bufLength } from "../../src/mem/buffer-table.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { frameOf, setFrameLength, writeFrame } from "../../src/mem/packet.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { createVirtioDevice, VirtioNetDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { prng, randInt, randomBytes } from "../helpers/prng.ts";
import { bytesEqual, freeAll, openRig } from "./helpers.ts";

const transports = [
  { name: "modern", legacy: false },
  { name: "legacy", legacy: true },
] as const;

/** Random frames as views into one random buffer (cheap to make, all different). */
function frameSource(seed: number): (length: number) => Uint8Array {
  const rand = prng(seed);
  const noise = randomBytes(rand, 1 << 16);
  return (length) => {
    const at = randInt(rand, 0, noise.length - length);
    return noise.subarray(at, at + length);
  };
}

/** Enough frames for the 16-bit ring indices to wrap around. */
const WRAP = 66_000;

describe.each(transports)("virtio data path ($name transport)", ({ legacy }) => {
  it("receives random frames byte-exact across ring and 16-bit index wrap-arounds", () => {
    // Legacy queues keep the device's size: 64 buffers circulate through 256 slots there.
    const { model, dev } = openRig({ legacy, queueSize: legacy ? 256 : 64 }, { rxRingSize: 64, checked: true });
    const rand = prng(1);
    const source = frameSource(2);
    const expected: Uint8Array[] = [];
    const bufs = new Int32Array(40);
    let received = 0;
    while (received < WRAP) {
      const burst = randInt(rand, 1, 64);
      for (let i = 0; i < burst; i++) {
        const f = source(randInt(rand, 14, 1514));
        if (!model.inject(f)) expect.fail(`the device found no buffer for frame ${received + expected.length}`);
        expected.push(f);
      }
      while (expected.length > 0) {
        const n = dev.rxBatch(0, bufs, randInt(rand, 1, 40));
        expect(n).toBeGreaterThan(0);
        for (let i = 0; i < n; i++) {
          const want = expected.shift()!;
          if (!bytesEqual(frameOf(bufs[i]!), want)) expect.fail(`frame ${received + i} differs`);
        }
        freeAll(bufs, n);
        received += n;
      }
    }
    const stats = newStats();
    dev.readStats(stats);
    expect(stats.rxPackets).toBe(received);
    expect(stats.rxBytes).toBe(model.counters.rxBytes);
    expect(stats.rxErrors + stats.rxMissed).toBe(0);
    expect(model.violations).toEqual([]);
  });

  it("transmits random frames byte-exact across ring and 16-bit index wrap-arounds, reclaiming every buffer", () => {
    const { model, dev, dma } = openRig({ legacy, queueSize: 32 }, { txRingSize: 32 });
    const pool = new Mempool(dma, { count: 256, checked: true });
    const rand = prng(3);
    const source = frameSource(4);
    const sent: Uint8Array[] = [];
    let wire = 0;
    model.onTransmit = (f) => {
      if (!bytesEqual(f, sent[wire]!)) expect.fail(`frame ${wire} differs on the wire`);
      wire++;
    };
    const bufs = new Int32Array(48);
    while (sent.length < WRAP) {
      const n = pool.allocBatch(bufs, randInt(rand, 1, 48));
      for (let i = 0; i < n; i++) {
        const f = source(randInt(rand, 1, 1514));
        writeFrame(bufs[i]!, f);
        sent.push(f); // the model sends synchronously, inside txBatch
      }
      // A batch larger than the free descriptors is taken in prefixes; resubmit the rest.
      let done = 0;
      while (done < n) done += dev.txBatch(0, bufs.subarray(done, n), n - done);
    }
    expect(wire).toBe(sent.length);
    // Every buffer came back to the pool, except those sent since the last reclaim.
    expect(pool.available).toBeGreaterThanOrEqual(pool.count - 32);
    expect(() => dev.txBatch(0, new Int32Array(0), 1)).toThrow(RangeError);
    expect(model.counters.txBadHeader).toBe(0);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats.txPackets).toBe(sent.length);
    expect(stats.txBytes).toBe(model.counters.txBytes);
    expect(model.violations).toEqual([]);
  });

  it("keeps a full receive ring: the device drops what it cannot place and counts it", () => {
    const { model, dev } = openRig({ legacy }, { rxRingSize: 32 });
    for (let i = 0; i < 32; i++) expect(model.inject(new Uint8Array(60).fill(i))).toBe(true);
    for (let i = 0; i < 5; i++) expect(model.inject(new Uint8Array(60))).toBe(false);
    expect(model.counters.rxDropped).toBe(5);
    const bufs = new Int32Array(64);
    expect(dev.rxBatch(0, bufs, 64)).toBe(32);
    expect(frameOf(bufs[31]!)[0]).toBe(31);
    freeAll(bufs, 32);
    expect(model.rxBuffersAvailable).toBe(32);
    expect(model.inject(new Uint8Array(60))).toBe(true);
  });

  it("drops and counts frames while the mempool is empty, keeps the ring full, and recovers", () => {
    const { model, dev } = openRig({ legacy }, { rxRingSize: 32, mempoolSize: 40, checked: true });
    const held = new Int32Array(32);
    for (let i = 0; i < 8; i++) model.inject(new Uint8Array(60).fill(i));
    expect(dev.rxBatch(0, held, 32)).toBe(8); // the 8 spare buffers are now with the user
    for (let i = 0; i < 5; i++) model.inject(new Uint8Array(60).fill(0xee));
    const bufs = new Int32Array(32);
    expect(dev.rxBatch(0, bufs, 32)).toBe(0);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats.rxMissed).toBe(5);
    expect(model.rxBuffersAvailable).toBe(32);
    freeAll(held, 8);
    model.inject(new Uint8Array(60).fill(0x42));
    expect(dev.rxBatch(0, bufs, 32)).toBe(1);
    expect(frameOf(bufs[0]!)[59]).toBe(0x42);
  });

  it("counts a used length beyond the buffer as an error and never hands that buffer out", () => {
    const { model, dev } = openRig({ legacy }, { rxRingSize: 16 });
    model.faults.badUsedLength = true;
    for (let i = 0; i < 3; i++) model.inject(new Uint8Array(100));
    const bufs = new Int32Array(32);
    expect(dev.rxBatch(0, bufs, 32)).toBe(0);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats.rxErrors).toBe(3);
    expect(model.rxBuffersAvailable).toBe(16); // the buffers went straight back to the device
    model.faults.badUsedLength = false;
    model.inject(new Uint8Array(60).fill(7));
    expect(dev.rxBatch(0, bufs, 32)).toBe(1);
    expect(frameOf(bufs[0]!)).toEqual(new Uint8Array(60).fill(7));
  });

  it("hands out the frames before a used id beyond the ring, counts it, and then stops with a DeviceProtocolError", () => {
    const { model, dev } = openRig({ legacy }, { rxRingSize: 16 });
    model.inject(new Uint8Array(60).fill(1));
    model.faults.badUsedId = true;
    model.inject(new Uint8Array(60).fill(2));
    model.faults.badUsedId = false;
    model.inject(new Uint8Array(60).fill(3));
    const bufs = new Int32Array(32);
    expect(dev.rxBatch(0, bufs, 32)).toBe(1);
    expect(frameOf(bufs[0]!)[0]).toBe(1);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats.rxErrors).toBe(1);
    expect(() => dev.rxBatch(0, bufs, 32)).toThrow(DeviceProtocolError);
    expect(() => dev.rxBatch(0, bufs, 32)).toThrow(/used entry at used\.idx 1 names descriptor \d+, beyond the 16 .*close the device/);
    dev.close();
  });

  it("drops frames shorter than an Ethernet header (runts) and counts them in rxErrors", () => {
    const { model, dev } = openRig({ legacy }, { rxRingSize: 16 });
    for (const length of [1, 13, 14, 60]) model.inject(new Uint8Array(length).fill(length));
    const bufs = new Int32Array(32);
    expect(dev.rxBatch(0, bufs, 32)).toBe(2);
    expect(Array.from(bufs.subarray(0, 2), (b) => bufLength[b])).toEqual([14, 60]);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats).toMatchObject({ rxPackets: 2, rxErrors: 2 });
    expect(model.rxBuffersAvailable).toBe(16); // the ring stays full: the runts' buffers went straight back
  });

  it("accepts frames up to the buffer's capacity; the device refuses larger ones", () => {
    // Without MRG_RXBUF: a frame that does not fit one buffer is the device's to drop.
    const features = BigInt.asUintN(64, (1n << 32n) | (1n << 5n) | (1n << 16n) | (legacy ? 1n << 27n : 0n));
    const { model, dev } = openRig({ legacy, features });
    const bufs = new Int32Array(32);
    expect(model.inject(new Uint8Array(1984).fill(1))).toBe(true);
    expect(model.inject(new Uint8Array(1985))).toBe(false);
    expect(model.counters.rxOversize).toBe(1);
    expect(dev.rxBatch(0, bufs, 32)).toBe(1);
    expect(bufLength[bufs[0]!]).toBe(1984);
  });

  it("with MRG_RXBUF the device spreads a frame larger than a buffer over two; the driver drops it as longer than maxFrameSize's buffers", () => {
    const { model, dev } = openRig({ legacy });
    const bufs = new Int32Array(32);
    expect(model.inject(new Uint8Array(1984).fill(1))).toBe(true);
    expect(model.inject(new Uint8Array(1985))).toBe(true);
    expect(model.counters.rxMerged).toBe(1);
    expect(dev.rxBatch(0, bufs, 32)).toBe(1);
    expect(bufLength[bufs[0]!]).toBe(1984);
    const s = newStats();
    dev.readStats(s);
    expect(s.rxErrors).toBe(1);
    // Both of the long frame's buffers were given back to the device.
    expect(model.rxBuffersAvailable).toBe(dev.ringCapacity[0]);
  });

  it("fills the transmit ring while the device stalls, accepts a prefix, and recovers", () => {
    const { model, dev, dma } = openRig({ legacy }, { txRingSize: 16 });
    const pool = new Mempool(dma, { count: 64 });
    const bufs = new Int32Array(40);
    expect(pool.allocBatch(bufs, 40)).toBe(40);
    for (const b of bufs) setFrameLength(b, 60);
    model.faults.stall = true;
    expect(dev.txBatch(0, bufs, 40)).toBe(16);
    expect(dev.txBatch(0, bufs.subarray(16), 24)).toBe(0);
    expect(model.counters.txFrames).toBe(0);
    model.faults.stall = false;
    model.poll();
    expect(model.counters.txFrames).toBe(16);
    expect(dev.txBatch(0, bufs.subarray(16), 24)).toBe(16);
    expect(pool.available).toBe(64 - 40 + 16);
  });

  it("sends one notification per transmit batch", () => {
    const { model, dev, dma } = openRig({ legacy });
    const pool = new Mempool(dma, { count: 64 });
    const bufs = new Int32Array(20);
    pool.allocBatch(bufs, 20);
    for (const b of bufs) setFrameLength(b, 64);
    const before = model.notifications[1]!;
    expect(dev.txBatch(0, bufs, 20)).toBe(20);
    expect(model.notifications[1]! - before).toBe(1);
    expect(dev.notifications[1]).toBe(1);
    expect(model.counters.txFrames).toBe(20);
  });

  it("sends no notification while the device sets VIRTQ_USED_F_NO_NOTIFY", () => {
    const { model, dev, dma } = openRig({ legacy });
    model.suppressNotifications = true;
    const pool = new Mempool(dma, { count: 64 });
    const bufs = new Int32Array(10);
    pool.allocBatch(bufs, 10);
    for (const b of bufs) setFrameLength(b, 64);
    const before = [...model.notifications];
    expect(dev.txBatch(0, bufs, 10)).toBe(10);
    model.inject(new Uint8Array(60));
    expect(dev.rxBatch(0, new Int32Array(32), 32)).toBe(1);
    expect(model.notifications).toEqual(before);
    expect(model.counters.txFrames).toBe(0);
    model.poll(); // the device finds the frames without being told
    expect(model.counters.txFrames).toBe(10);
  });

  it("zeroes the net header in front of every frame it sends, whatever the headroom held", () => {
    const { model, dev, dma } = openRig({ legacy });
    const pool = new Mempool(dma, { count: 8 });
    const bufs = new Int32Array(8);
    pool.allocBatch(bufs, 8);
    for (const b of bufs) {
      pool.bytes.fill(0xff, bufDataOffset[b]! - 64, bufDataOffset[b]!);
      setFrameLength(b, 60);
    }
    dev.txBatch(0, bufs, 8);
    // Received buffers carry the device's header (num_buffers = 1 on modern devices): forward them.
    for (let i = 0; i < 4; i++) model.inject(new Uint8Array(60));
    const rx = new Int32Array(32);
    const n = dev.rxBatch(0, rx, 32);
    dev.txBatch(0, rx, n);
    expect(model.counters.txFrames).toBe(12);
    expect(model.counters.txBadHeader).toBe(0);
  });

  it("takes a buffer of impossible length back to its pool and counts it, sending the others", () => {
    const { model, dev, dma } = openRig({ legacy });
    const pool = new Mempool(dma, { count: 8 });
    const bufs = new Int32Array(5);
    pool.allocBatch(bufs, 5);
    // Lengths set in the table directly: setFrameLength() would refuse 5000.
    const lengths = [60, 60, 5000, 0, 70];
    for (let i = 0; i < 5; i++) bufLength[bufs[i]!] = lengths[i]!;
    expect(dev.txBatch(0, bufs, 5)).toBe(5);
    expect(model.counters.txFrames).toBe(3);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats).toMatchObject({ txPackets: 3, txErrors: 2 });
    // 3 free from the start, the 2 refused ones back already; the 3 sent are still in flight.
    expect(pool.available).toBe(5);
  });
});

describe("virtio data path", () => {
  it("forwards frames between two devices wired back-to-back (modern to legacy and back)", () => {
    const dma = new SimDma();
    const a = new VirtioNetModel({ dma, address: "sim:a" });
    const b = new VirtioNetModel({ dma, address: "sim:b", legacy: true });
    a.connect(b);
    const devA = createVirtioDevice(a.pci, dma, { linkTimeoutMs: 0, rxRingSize: 128, txRingSize: 64 });
    const devB = createVirtioDevice(b.pci, dma, { linkTimeoutMs: 0, rxRingSize: 128, txRingSize: 64 });
    const pool = new Mempool(dma, { count: 512, checked: true });
    const rand = prng(5);
    const source = frameSource(6);
    const tx = new Int32Array(32);
    const rx = new Int32Array(64);
    let echoed = 0;
    for (let round = 0; round < 500; round++) {
      const n = pool.allocBatch(tx, randInt(rand, 1, 32));
      const frames: Uint8Array[] = [];
      for (let i = 0; i < n; i++) {
        const f = source(randInt(rand, 60, 1514));
        writeFrame(tx[i]!, f);
        frames.push(f);
      }
      expect(devA.txBatch(0, tx, n)).toBe(n);
      // B echoes everything back; A checks it came back unchanged.
      const got = devB.rxBatch(0, rx, 64);
      expect(got).toBe(n);
      expect(devB.txBatch(0, rx, got)).toBe(got);
      const back = devA.rxBatch(0, rx, 64);
      expect(back).toBe(n);
      for (let i = 0; i < back; i++) {
        if (!bytesEqual(frameOf(rx[i]!), frames[i]!)) expect.fail(`round ${round}: frame ${i} came back changed`);
      }
      freeAll(rx, back);
      echoed += back;
    }
    expect(echoed).toBeGreaterThan(5000);
    expect([...a.violations, ...b.violations]).toEqual([]);
  });

  it("finds each queue's doorbell from queue_notify_off and any notify_off_multiplier", () => {
    for (const notifyOffMultiplier of [0, 2, 4, 1024]) {
      const { model, dev, dma } = openRig({ notifyOffMultiplier });
      const pool = new Mempool(dma, { count: 8 });
      const bufs = new Int32Array(4);
      pool.allocBatch(bufs, 4);
      for (const b of bufs) setFrameLength(b, 60);
      expect(dev.txBatch(0, bufs, 4)).toBe(4);
      expect(model.counters.txFrames).toBe(4);
      expect(model.notifications[2]).toBe(1); // the promiscuous-mode command at init
      expect(model.violations).toEqual([]);
    }
  });

  it("stops with a DeviceProtocolError when the device runs used.idx past the ring", () => {
    const { model, dev, dma } = openRig({}, { rxRingSize: 16 });
    // Find the receive queue's used ring through the common configuration, as the device knows it.
    const bar = model.pci.bar(4);
    bar.write16(0x16, 0);
    const used = bar.read32(0x30) + bar.read32(0x34) * 2 ** 32;
    const idx = dma.resolve(used, 4);
    new Uint16Array(idx.buffer, idx.byteOffset, 2)[1] = 1000;
    expect(() => dev.rxBatch(0, new Int32Array(32), 32)).toThrow(DeviceProtocolError);
    expect(() => dev.rxBatch(0, new Int32Array(32), 32)).toThrow(/used\.idx to 1000 .* close the device and open it again/);
  });

  it("refuses bad batches and counts with TypeError or RangeError, and bad buffers before sending any", () => {
    const { model, dev, dma } = openRig();
    const bufs = new Int32Array(4);
    expect(() => dev.rxBatch(0, [] as unknown as Int32Array, 0)).toThrow(TypeError);
    expect(() => dev.rxBatch(0, new Uint32Array(4) as unknown as Int32Array, 4)).toThrow(/needs an Int32Array/);
    expect(() => dev.rxBatch(0, bufs, NaN)).toThrow(TypeError);
    expect(() => dev.txBatch(0, bufs, 2.5)).toThrow(TypeError);
    expect(() => dev.rxBatch(0, bufs, 5)).toThrow(RangeError);
    expect(() => dev.txBatch(0, bufs, -1)).toThrow(RangeError);
    const pool = new Mempool(dma, { count: 8, checked: true });
    pool.allocBatch(bufs, 4);
    for (const b of bufs) setFrameLength(b, 60);
    const held = bufs[2]!;
    bufs[2] = 999_999; // no buffer
    expect(() => dev.txBatch(0, bufs, 4)).toThrow(/bufs\[2\] = 999999 is not a packet buffer/);
    bufs[2] = held;
    pool.free(held); // free in a checked pool: not the caller's to send
    expect(() => dev.txBatch(0, bufs, 4)).toThrow(BufferOwnershipError);
    expect(model.counters.txFrames).toBe(0);
    expect(pool.available).toBe(5);
    expect(dev.txFree).toBe(dev.ringCapacity[1]);
  });

  it("returns a VirtioNetDevice that reports the ring capacities it uses", () => {
    const { dev } = openRig({}, { rxRingSize: 64, txRingSize: 32 });
    expect(dev).toBeInstanceOf(VirtioNetDevice);
    expect(dev.ringCapacity).toEqual([64, 32]);
    expect(dev.txFree).toBe(32);
  });
});
