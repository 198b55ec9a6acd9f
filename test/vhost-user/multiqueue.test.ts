/**
 * Multiqueue over vhost-user (vhost-user: "Multiple queue support"): N = 2 and 4 queue pairs on
 * the model backend started with --queues N (random frames through every pair and back,
 * byte-exact, in order per queue, every ring's slots reused and its 16-bit indices wrapped;
 * injected flows steered each to one queue); the refusals (more pairs than GET_QUEUE_NUM, no
 * VHOST_USER_PROTOCOL_F_MQ);
 * and the requests in order against a scripted backend: a vring set-up and SET_VRING_ENABLE per
 * ring, VIRTIO_NET_F_MQ without VIRTIO_NET_F_CTRL_VQ in SET_FEATURES.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { newStats, type NicDevice } from "../../src/device.ts";
import { NotSupportedError } from "../../src/errors.ts";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { VhostUserRequest as R } from "../../src/drivers/virtio/vhost-user/protocol.ts";
import { sharedMemoryState } from "../../src/drivers/virtio/vhost-user/shared-memory.ts";
import type { VirtioNetDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { bufDataOffset, bufLength, bufPool, poolBytes } from "../../src/mem/buffer-table.ts";
import { freeBuffer, Mempool } from "../../src/mem/mempool.ts";
import { copyFrame, writeFrame } from "../../src/mem/packet.ts";
import { sleepMs } from "../../src/pci/regs.ts";
import { startModelBackend, type ModelBackend } from "../../src/sim/vhost-user/backend-process.ts";
import { prng, randInt, randomBytes } from "../helpers/prng.ts";
import { hugepagesMissing, SMALL, thrown } from "./helpers.ts";
import { ScriptedBackend, socketPath } from "./scripted-backend.ts";

const noHugepages = hugepagesMissing(8);
if (noHugepages) console.warn(`test/vhost-user/multiqueue: skipped: ${noHugepages}`);

const VERSION_1 = 1n << 32n;
const PROTOCOL_FEATURES = 1n << 30n;
const MQ_FEATURE = 1n << 22n;
const CTRL_VQ = 1n << 17n;
const REPLY_ACK = 1n << 3n;
const PROTOCOL_MQ = 1n;

const running: ModelBackend[] = [];
const scripted: ScriptedBackend[] = [];
const devices: NicDevice[] = [];
async function modelBackend(queuePairs: number, packed = false, mode: "loopback" | "sink" = "loopback"): Promise<ModelBackend> {
  const b = startModelBackend({ socket: socketPath(), mode, queueSize: 256, queuePairs, packed });
  running.push(b);
  await b.ready;
  return b;
}
function open(socket: string, pairs: number, ring: "split" | "packed" = "split"): VirtioNetDevice {
  const dev = createVhostUserDevice(socket, { ...SMALL, rxQueues: pairs, txQueues: pairs, ring }) as VirtioNetDevice;
  devices.push(dev);
  return dev;
}
afterEach(async () => {
  for (const d of devices.splice(0)) d.close();
  for (const b of running.splice(0)) {
    await b.stop();
    fs.rmSync(path.dirname(b.socket), { recursive: true, force: true });
  }
  for (const b of scripted.splice(0)) await b.stop();
  expect(sharedMemoryState()).toEqual({ users: 0, regions: 0 });
});

/** Random frames for queue pair `pair`: bytes 0 and 1 name the pair and bytes 2-4 the sequence number. */
function pairFrames(seed: number, pair: number, count: number, maxLength = 1514): Uint8Array[] {
  const rand = prng(seed * 101 + pair);
  return Array.from({ length: count }, (_, seq) => {
    const f = randomBytes(rand, randInt(rand, 60, maxLength));
    f.set([0x02, pair, seq >> 16, (seq >> 8) & 0xff, seq & 0xff]);
    return f;
  });
}

/**
 * Sends frames[q] on transmit queue q and receives on receive queue q, all pairs in turn, at
 * most `window` frames in flight per pair; counts per pair what came back and how much of it
 * differed from what was sent at that position (length or bytes).
 */
function loopAllPairs(dev: NicDevice, pool: Mempool, frames: readonly Uint8Array[][], window = 48, timeoutMs = 20_000): { received: number[]; bad: number[] } {
  const pairs = frames.length;
  const sent = new Array<number>(pairs).fill(0);
  const received = new Array<number>(pairs).fill(0);
  const bad = new Array<number>(pairs).fill(0);
  const tx = new Int32Array(16);
  const rx = new Int32Array(32);
  const total = frames.reduce((n, f) => n + f.length, 0);
  const deadline = performance.now() + timeoutMs;
  while (received.reduce((a, b) => a + b, 0) < total && performance.now() < deadline) {
    let moved = 0;
    for (let q = 0; q < pairs; q++) {
      const mine = frames[q]!;
      const want = Math.min(tx.length, mine.length - sent[q]!, window - (sent[q]! - received[q]!));
      if (want > 0) {
        const got = pool.allocBatch(tx, want);
        for (let i = 0; i < got; i++) writeFrame(tx[i]!, mine[sent[q]! + i]!);
        const accepted = dev.txBatch(q, tx, got);
        pool.freeBatch(tx, got - accepted, accepted);
        sent[q]! += accepted;
        moved += accepted;
      }
      const n = dev.rxBatch(q, rx, rx.length);
      for (let i = 0; i < n; i++) {
        const buf = rx[i]!;
        const expected = mine[received[q]! + i];
        const bytes = poolBytes[bufPool[buf]!]!;
        const at = bufDataOffset[buf]!;
        if (expected === undefined || bufLength[buf] !== expected.length) bad[q]!++;
        else {
          for (let k = 0; k < expected.length; k++) {
            if (bytes[at + k] !== expected[k]) {
              bad[q]!++;
              break;
            }
          }
        }
        freeBuffer(buf);
      }
      received[q]! += n;
      moved += n;
    }
    if (moved === 0) sleepMs(1);
  }
  return { received, bad };
}

/** An IPv4/UDP frame of flow `flow` (its source port), `seq` in bytes 44-45. */
function udpFrame(flow: number, seq: number): Uint8Array {
  const f = new Uint8Array(96);
  f.set([0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00], 0);
  f[14] = 0x45; // IPv4, IHL 5
  f[23] = 17; // UDP
  f.set([10, 0, 0, 1, 10, 1, 0, 1], 26); // source, destination address
  f[34] = 0x40 | (flow >> 8);
  f[35] = flow & 0xff; // source port
  f[36] = 0x12;
  f[37] = 0x34; // destination port
  f[42] = flow >> 8;
  f[43] = flow & 0xff;
  f[44] = seq >> 8;
  f[45] = seq & 0xff;
  return f;
}

describe.skipIf(noHugepages !== null).each([
  { pairs: 2, ring: "split" as const },
  { pairs: 2, ring: "packed" as const },
  { pairs: 4, ring: "split" as const },
])("$pairs queue pairs over vhost-user on the model backend (--queues $pairs), $ring rings", ({ pairs, ring }) => {
  const packed = ring === "packed";

  it("random frames through every queue pair and back on the same pair: byte-exact, in order per queue, every ring's 64 slots reused", async () => {
    const b = await modelBackend(pairs, packed);
    const dev = open(b.socket, pairs, ring);
    expect([dev.rxQueues, dev.txQueues, dev.maxQueuePairs, dev.ring]).toEqual([pairs, pairs, pairs, ring]);
    // VIRTIO_NET_F_MQ negotiated, VIRTIO_NET_F_CTRL_VQ not (the front-end plays the control queue).
    expect(dev.features & MQ_FEATURE).toBe(MQ_FEATURE);
    expect(dev.features & CTRL_VQ).toBe(0n);
    const perPair = 2000;
    const frames = Array.from({ length: pairs }, (_, q) => pairFrames(11, q, perPair));
    const pool = new Mempool(dev.dma, { count: 256, name: "tx pool" });
    const { received, bad } = loopAllPairs(dev, pool, frames);
    const s = await b.stats();
    // A front-end that forgot SET_VRING_ENABLE for a ring: its kicks and discarded frames are violations.
    expect(s.violations).toEqual([]);
    expect({ received, bad }).toEqual({ received: new Array(pairs).fill(perPair), bad: new Array(pairs).fill(0) });
    expect(s.session!.queuePairs).toBe(pairs);
    const rings = s.session!.rings;
    expect(rings.map((r) => [r.index, r.state, r.num])).toEqual(Array.from({ length: 2 * pairs }, (_, i) => [i, "enabled", 64]));
    // 2000 entries through each 64-entry ring: 31 laps (packed: position in bits 0-14, the wrap counter in bit 15).
    const usedIdx = packed ? (perPair % 64) | ((1 ^ (Math.floor(perPair / 64) & 1)) << 15) : perPair;
    expect(rings.map((r) => r.usedIdx)).toEqual(new Array(2 * pairs).fill(usedIdx));
    expect(s.device.txQueueFrames).toEqual(new Array(pairs).fill(perPair));
    expect(s.device.rxQueueFrames).toEqual(new Array(pairs).fill(perPair));
    const st = newStats();
    dev.readStats(st);
    expect([st.txPackets, st.rxPackets, st.rxMissed, st.rxErrors, st.txErrors]).toEqual([pairs * perPair, pairs * perPair, 0, 0, 0]);
  });

  it("66000 frames through each pair: every ring's free-running 16-bit indices (packed: the wrap counters) wrap, order and bytes kept", async () => {
    const b = await modelBackend(pairs, packed);
    const dev = open(b.socket, pairs, ring);
    const perPair = 66_000;
    const frames = Array.from({ length: pairs }, (_, q) => pairFrames(12, q, perPair, 200));
    const pool = new Mempool(dev.dma, { count: 256, name: "tx pool" });
    const { received, bad } = loopAllPairs(dev, pool, frames, 48, 40_000);
    const s = await b.stats();
    expect(s.violations).toEqual([]);
    expect({ received, bad }).toEqual({ received: new Array(pairs).fill(perPair), bad: new Array(pairs).fill(0) });
    const usedIdx = packed ? (perPair % 64) | ((1 ^ (Math.floor(perPair / 64) & 1)) << 15) : perPair & 0xffff;
    expect(s.session!.rings.map((r) => r.usedIdx)).toEqual(new Array(2 * pairs).fill(usedIdx));
  }, 60_000);

  it("injected frames are steered by flow: each of 64 flows on one receive queue, in order, and every queue gets some", async () => {
    const b = await modelBackend(pairs, packed, "sink");
    const dev = open(b.socket, pairs, ring);
    const flows = 64;
    const perFlow = 6;
    for (let seq = 0; seq < perFlow; seq++) for (let flow = 0; flow < flows; flow++) await b.inject(udpFrame(flow, seq));
    const queueOf = new Map<number, Set<number>>();
    const nextSeq = new Map<number, number>();
    const perQueue = new Array<number>(pairs).fill(0);
    let outOfOrder = 0;
    let got = 0;
    const bufs = new Int32Array(32);
    const deadline = performance.now() + 10_000;
    while (got < flows * perFlow && performance.now() < deadline) {
      let n = 0;
      for (let q = 0; q < pairs; q++) {
        const k = dev.rxBatch(q, bufs, bufs.length);
        for (let i = 0; i < k; i++) {
          const f = copyFrame(bufs[i]!);
          freeBuffer(bufs[i]!);
          const flow = (f[42]! << 8) | f[43]!;
          const seq = (f[44]! << 8) | f[45]!;
          if (!queueOf.has(flow)) queueOf.set(flow, new Set());
          queueOf.get(flow)!.add(q);
          if (seq !== (nextSeq.get(flow) ?? 0)) outOfOrder++;
          nextSeq.set(flow, seq + 1);
          perQueue[q]!++;
        }
        n += k;
      }
      got += n;
      if (n === 0) sleepMs(1);
    }
    expect(got).toBe(flows * perFlow);
    expect(outOfOrder).toBe(0);
    expect([...queueOf.values()].every((qs) => qs.size === 1)).toBe(true);
    expect(perQueue.every((n) => n > 0)).toBe(true);
    expect((await b.stats()).violations).toEqual([]);
  });
});

describe.skipIf(noHugepages !== null)("multiqueue refusals over vhost-user", () => {
  it("more queue pairs than GET_QUEUE_NUM answers is a NotSupportedError naming the device and the maximum; nothing stays open", async () => {
    const b = await modelBackend(2);
    const e = thrown(() => open(b.socket, 4));
    expect(e).toBeInstanceOf(NotSupportedError);
    expect(e.message).toContain(`vhost-user:${b.socket}: rxQueues and txQueues 4, but the backend has at most 2 queue pair(s) (VHOST_USER_GET_QUEUE_NUM)`);
    expect(e.message).toMatch(/--queues 4/);
    // A backend with one pair (the default) refuses 2; then 2 of 2 work on the same socket.
    const one = await modelBackend(1);
    expect(thrown(() => open(one.socket, 2)).message).toMatch(/at most 1 queue pair\(s\)/);
    const dev = open(b.socket, 2);
    expect(dev.rxQueues).toBe(2);
    expect((await b.stats()).violations).toEqual([]);
  });

  it("a backend without VHOST_USER_PROTOCOL_F_MQ: rxQueues 2 is a NotSupportedError, and GET_QUEUE_NUM is never sent", async () => {
    const b = await ScriptedBackend.start({ protocolFeatures: REPLY_ACK, queueNum: 4 });
    scripted.push(b);
    const e = thrown(() => open(b.path, 2));
    expect(e).toBeInstanceOf(NotSupportedError);
    expect(e.message).toMatch(/rxQueues and txQueues 2, but the backend does not offer VHOST_USER_PROTOCOL_F_MQ .*one queue pair/);
    expect(await b.sawClose()).toBe(true);
    await b.settle();
    expect(b.requests().map((r) => r.request)).toEqual([R.SET_OWNER, R.GET_FEATURES, R.GET_PROTOCOL_FEATURES, R.SET_PROTOCOL_FEATURES]);
  });

  it("a backend with GET_QUEUE_NUM 4 but no VIRTIO_NET_F_MQ: a NotSupportedError before any ring is set up", async () => {
    const b = await ScriptedBackend.start({ features: VERSION_1 | PROTOCOL_FEATURES, queueNum: 4 });
    scripted.push(b);
    expect(thrown(() => open(b.path, 2)).message).toMatch(/has 4 queue pairs \(GET_QUEUE_NUM\) but does not offer VIRTIO_NET_F_MQ/);
    await b.sawClose();
    await b.settle();
    expect(b.requests().some((r) => r.request === R.SET_VRING_NUM)).toBe(false);
  });
});

describe.skipIf(noHugepages !== null)("multiqueue handshake with a scripted backend", () => {
  it("GET_QUEUE_NUM, SET_FEATURES with MQ and without CTRL_VQ, then a full vring set-up and SET_VRING_ENABLE 1 for each of the 4 rings; GET_VRING_BASE for each at close", async () => {
    const b = await ScriptedBackend.start({ features: VERSION_1 | PROTOCOL_FEATURES | MQ_FEATURE | CTRL_VQ, protocolFeatures: REPLY_ACK | PROTOCOL_MQ, queueNum: 8 });
    scripted.push(b);
    const dev = open(b.path, 2);
    expect(dev.maxQueuePairs).toBe(8);
    dev.close();
    expect(await b.sawClose()).toBe(true);
    await b.settle();
    const log = b.requests();
    const perRing = [R.SET_VRING_NUM, R.SET_VRING_BASE, R.SET_VRING_ADDR, R.SET_VRING_KICK, R.SET_VRING_CALL, R.SET_VRING_ENABLE];
    expect(log.map((r) => r.request)).toEqual([
      R.SET_OWNER,
      R.GET_FEATURES,
      R.GET_PROTOCOL_FEATURES,
      R.SET_PROTOCOL_FEATURES,
      R.GET_QUEUE_NUM,
      R.SET_FEATURES,
      R.SET_MEM_TABLE,
      ...[0, 1, 2, 3].flatMap(() => perRing),
      ...[0, 1, 2, 3].map(() => R.GET_VRING_BASE),
    ]);
    expect(log[5]!.payload.readBigUInt64LE(0)).toBe(VERSION_1 | PROTOCOL_FEATURES | MQ_FEATURE);
    const rings = log.slice(7, 7 + 24);
    for (let q = 0; q < 4; q++) {
      const [num, base, , kick, call, enable] = rings.slice(6 * q, 6 * q + 6);
      expect([num!.payload.readUInt32LE(0), num!.payload.readUInt32LE(4)]).toEqual([q, 64]);
      expect(base!.payload.readUInt32LE(0)).toBe(q);
      expect(kick!.payload.readBigUInt64LE(0)).toBe(BigInt(q));
      expect(call!.payload.readBigUInt64LE(0)).toBe(BigInt(q | 0x100));
      expect([enable!.payload.readUInt32LE(0), enable!.payload.readUInt32LE(4)]).toEqual([q, 1]);
    }
    expect(log.slice(-4).map((r) => r.payload.readUInt32LE(0))).toEqual([0, 1, 2, 3]);
  });
});
