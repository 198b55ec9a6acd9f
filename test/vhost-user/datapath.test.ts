/**
 * The virtio-net driver on the project's vhost-user model backend (src/sim/vhost-user), which
 * runs in a child process and maps the driver's shared memory: random frames byte-exact in both
 * directions, 70000 frames through 64-entry rings (every slot reused, the 16-bit ring indices
 * wrap), two devices sharing one memory with a region added while both are open, and a backend
 * killed mid-run.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { newStats, type NicDevice } from "../../src/device.ts";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { VhostUserDisconnectedError } from "../../src/drivers/virtio/vhost-user/errors.ts";
import { sharedMemoryState } from "../../src/drivers/virtio/vhost-user/shared-memory.ts";
import { bufDataOffset, bufLength, bufPool, poolBytes } from "../../src/mem/buffer-table.ts";
import { freeBuffer as freeOne, Mempool } from "../../src/mem/mempool.ts";
import { copyFrame, writeFrame } from "../../src/mem/packet.ts";
import { sleepMs } from "../../src/pci/regs.ts";
import { startModelBackend, type ModelBackend } from "../../src/sim/vhost-user/backend-process.ts";
import { prng, randInt, randomBytes } from "../helpers/prng.ts";
import { hugepagesMissing, openFds, SMALL, thrown } from "./helpers.ts";
import { socketPath } from "./scripted-backend.ts";

const noHugepages = hugepagesMissing(8);
if (noHugepages) console.warn(`test/vhost-user/datapath: skipped: ${noHugepages}`);

const running: ModelBackend[] = [];
async function modelBackend(mode: "loopback" | "sink", packed: boolean): Promise<ModelBackend> {
  const b = startModelBackend({ socket: socketPath(), mode, queueSize: 256, packed });
  running.push(b);
  await b.ready;
  return b;
}
const devices: NicDevice[] = [];
function open(b: ModelBackend, options: typeof SMALL & { ring?: "packed" | "split" } = SMALL): NicDevice {
  const dev = createVhostUserDevice(b.socket, options);
  devices.push(dev);
  return dev;
}
afterEach(async () => {
  for (const d of devices.splice(0)) d.close();
  for (const b of running.splice(0)) {
    await b.stop();
    fs.rmSync(path.dirname(b.socket), { recursive: true, force: true });
  }
  expect(sharedMemoryState()).toEqual({ users: 0, regions: 0 });
});

/** Sends every frame (retrying while the ring is full), with buffers from `pool`. */
function sendAll(dev: NicDevice, pool: Mempool, frames: readonly Uint8Array[]): void {
  const one = new Int32Array(1);
  for (const f of frames) {
    for (let tries = 0; ; tries++) {
      if (pool.allocBatch(one, 1) === 1) {
        writeFrame(one[0]!, f);
        if (dev.txBatch(0, one, 1) === 1) break;
        pool.freeBatch(one, 1);
      }
      if (tries > 5000) throw new Error("the transmit ring stayed full");
      sleepMs(1);
    }
  }
}

/** Receives `count` frames (copies), polling for up to `timeoutMs`. */
function receive(dev: NicDevice, count: number, timeoutMs = 5000): Uint8Array[] {
  const got: Uint8Array[] = [];
  const bufs = new Int32Array(32);
  const deadline = performance.now() + timeoutMs;
  while (got.length < count && performance.now() < deadline) {
    const n = dev.rxBatch(0, bufs, 32);
    for (let i = 0; i < n; i++) got.push(copyFrame(bufs[i]!));
    for (let i = 0; i < n; i++) freeOne(bufs[i]!);
    if (n === 0) sleepMs(1);
  }
  return got;
}

function randomFrames(seed: number, count: number): Uint8Array[] {
  const rand = prng(seed);
  return Array.from({ length: count }, () => randomBytes(rand, randInt(rand, 60, 1514)));
}

// Split rings, and packed rings (the backend offers VIRTIO_F_RING_PACKED, the driver takes it with ring 'packed').
describe.skipIf(noHugepages !== null).each([{ ring: "split" }, { ring: "packed" }])("the virtio-net driver on the vhost-user model backend, $ring ring", ({ ring }) => {
  const packed = ring === "packed";
  const backend = (mode: "loopback" | "sink"): Promise<ModelBackend> => modelBackend(mode, packed);
  const openRing = (b: ModelBackend): NicDevice => {
    const dev = open(b, { ...SMALL, ring: packed ? "packed" : "split" });
    expect((dev as unknown as { ring: string }).ring).toBe(ring);
    return dev;
  };
  it("sends random frames byte-exact to the backend (sink)", async () => {
    const b = await backend("sink");
    const dev = openRing(b);
    const pool = new Mempool(dev.dma, { count: 256, name: "tx pool" });
    const frames = randomFrames(1, 300);
    sendAll(dev, pool, frames);
    const stats = await b.waitFor((s) => s.transmitted >= frames.length);
    expect(stats.transmitted).toBe(frames.length);
    expect(await b.transmitted()).toEqual(frames);
    expect(stats.violations).toEqual([]);
  });

  it("receives random frames byte-exact from the backend (inject)", async () => {
    const b = await backend("sink");
    const dev = openRing(b);
    const frames = randomFrames(2, 100);
    for (const f of frames) await b.inject(f);
    expect(receive(dev, frames.length)).toEqual(frames);
    const s = newStats();
    dev.readStats(s);
    expect([s.rxPackets, s.rxBytes, s.rxErrors, s.rxMissed]).toEqual([100, frames.reduce((n, f) => n + f.length, 0), 0, 0]);
    expect((await b.stats()).violations).toEqual([]);
  });

  it("70000 frames through 64-entry rings and back (loopback): in order, byte-exact, the 16-bit indices wrap", async () => {
    const b = await backend("loopback");
    const dev = openRing(b);
    const pool = new Mempool(dev.dma, { count: 256, name: "tx pool" });
    const total = 70_000;
    const frameOf = (seq: number, out: Uint8Array) => {
      for (let i = 0; i < out.length; i++) out[i] = (seq * 7 + i) & 0xff;
      out[0] = seq >>> 16;
      out[1] = (seq >>> 8) & 0xff;
      out[2] = seq & 0xff;
    };
    const scratch = new Uint8Array(1514);
    const tx = new Int32Array(32);
    const rx = new Int32Array(32);
    let sent = 0;
    let received = 0;
    let bad = 0;
    const deadline = performance.now() + 25_000;
    while (received < total && performance.now() < deadline) {
      // At most two receive rings' worth in flight: the backend's backlog must never overflow.
      if (sent < total && sent - received < 128) {
        const got = pool.allocBatch(tx, Math.min(32, total - sent));
        for (let i = 0; i < got; i++) {
          const seq = sent + i;
          const f = scratch.subarray(0, 60 + (seq % 200));
          frameOf(seq, f);
          writeFrame(tx[i]!, f);
        }
        const accepted = dev.txBatch(0, tx, got);
        pool.freeBatch(tx, got - accepted, accepted);
        sent += accepted;
      }
      const n = dev.rxBatch(0, rx, 32);
      for (let i = 0; i < n; i++) {
        const buf = rx[i]!;
        const seq = received + i;
        const bytes = poolBytes[bufPool[buf]!]!;
        const at = bufDataOffset[buf]!;
        const length = 60 + (seq % 200);
        if (bufLength[buf] !== length) bad++;
        else {
          frameOf(seq, scratch.subarray(0, length));
          for (let k = 0; k < length; k++) if (bytes[at + k] !== scratch[k]) { bad++; break; }
        }
        freeOne(buf);
      }
      received += n;
    }
    expect({ sent, received, bad }).toEqual({ sent: total, received: total, bad: 0 });
    const stats = await b.stats();
    expect(stats.violations).toEqual([]);
    const [rxRing, txRing] = stats.session!.rings;
    // 70000 entries went through each 64-entry ring: its free-running 16-bit indices wrapped
    // (packed: position in bits 0-14, the used wrap counter, flipped 1093 times, in bit 15).
    const usedIdx = packed ? (total % 64) | ((1 ^ (Math.floor(total / 64) & 1)) << 15) : total & 0xffff;
    expect([rxRing!.num, rxRing!.usedIdx, txRing!.num, txRing!.usedIdx]).toEqual([64, usedIdx, 64, usedIdx]);
    // No call eventfds were given ("no fd"): the driver polls.
    expect([rxRing!.callFd, txRing!.callFd, txRing!.kickFd]).toEqual([false, false, true]);
    const s = newStats();
    dev.readStats(s);
    expect([s.txPackets, s.rxPackets, s.rxMissed, s.rxErrors, s.txErrors]).toEqual([total, total, 0, 0, 0]);
  });

  it("two devices share one memory: a region added while both are open is announced to both, and buffers from it go out on either", async () => {
    const a = await backend("sink");
    const b = await backend("sink");
    const devA = openRing(a);
    const devB = openRing(b);
    expect(devB.dma).toBe(devA.dma);
    expect(sharedMemoryState()).toEqual({ users: 2, regions: 1 });
    // 1024 x 2 KiB does not fit what is left of the first 2 MiB region: a second one is made,
    // and both backends get a new memory table before the pool exists.
    const pool = new Mempool(devA.dma, { count: 1024, name: "app pool" });
    expect(sharedMemoryState().regions).toBe(2);
    for (const backend of [a, b]) expect((await backend.stats()).session!.memoryRegions.length).toBe(2);
    const frames = randomFrames(3, 64);
    sendAll(devA, pool, frames.slice(0, 32));
    sendAll(devB, pool, frames.slice(32));
    expect((await a.waitFor((s) => s.transmitted >= 32)).violations).toEqual([]);
    expect((await b.waitFor((s) => s.transmitted >= 32)).violations).toEqual([]);
    expect(await a.transmitted()).toEqual(frames.slice(0, 32));
    expect(await b.transmitted()).toEqual(frames.slice(32));
    // A frame received on one port, sent on the other, with no copy.
    const f = randomBytes(prng(4), 200);
    await a.inject(f);
    const bufs = new Int32Array(1);
    const deadline = performance.now() + 5000;
    while (devA.rxBatch(0, bufs, 1) === 0 && performance.now() < deadline) sleepMs(1);
    expect(devB.txBatch(0, bufs, 1)).toBe(1);
    await b.waitFor((s) => s.transmitted >= 33);
    expect((await b.transmitted()).at(-1)).toEqual(f);
  });

  it("a backend killed mid-run: readStats or a long-empty RX ring notices it without a control call", async () => {
    const b = startModelBackend({ socket: socketPath(), mode: "loopback" });
    running.push(b);
    await b.ready;
    const dev = createVhostUserDevice(b.socket, SMALL);
    b.kill("SIGKILL");
    await b.exited;
    const bufs = new Int32Array(8);
    expect(thrown(() => {
      for (let i = 0; i < 1 << 20; i++) dev.rxBatch(0, bufs, 8);
    })).toBeInstanceOf(VhostUserDisconnectedError);
    dev.close();
  });

  it("a backend killed mid-run: the next control call is a VhostUserDisconnectedError, close() returns, nothing leaks", async () => {
    // The tests before may still be closing fds of theirs (a killed backend's pipes): count once
    // the count holds still, so that one of theirs closing later does not look like ours missing.
    const fds = await settledFds();
    const b = startModelBackend({ socket: socketPath(), mode: "loopback", packed });
    running.push(b); // for the clean-up only: it is dead by then
    await b.ready;
    const dev = createVhostUserDevice(b.socket, { ...SMALL, ring: packed ? "packed" : "split" });
    expect((dev as unknown as { ring: string }).ring).toBe(ring);
    const pool = new Mempool(dev.dma, { count: 256, name: "tx pool" });
    sendAll(dev, pool, randomFrames(5, 50));
    expect(receive(dev, 50).length).toBe(50);
    b.kill("SIGKILL");
    await b.exited;
    expect(thrown(() => dev.linkSpeed())).toBeInstanceOf(VhostUserDisconnectedError);
    // The data path hears of it too, instead of returning 0 forever (issue 11, item 3).
    expect(thrown(() => dev.readStats(newStats()))).toBeInstanceOf(VhostUserDisconnectedError);
    expect(thrown(() => dev.rxBatch(0, new Int32Array(4), 4))).toBeInstanceOf(VhostUserDisconnectedError);
    const t0 = performance.now();
    dev.close();
    expect(performance.now() - t0).toBeLessThan(500);
    // Nothing of ours is left open (a leak is more fds than before; fewer can only be another
    // test's closing late, seen once in CI as 24 against 25). Counted once the count holds still:
    // Node closes the killed backend's stdio pipes asynchronously (Node 26 in CI: 25 against 24
    // read at once); a leaked socket, memfd or eventfd of the driver never closes on its own.
    expect(await settledFds()).toBeLessThanOrEqual(fds);
  });
});

/** The number of open fds once two readings 20 ms apart agree (at most 1 s). */
async function settledFds(): Promise<number> {
  let last = openFds();
  for (let i = 0; i < 50; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const now = openFds();
    if (now === last) return now;
    last = now;
  }
  return last;
}
