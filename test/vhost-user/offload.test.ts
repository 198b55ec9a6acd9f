/**
 * virtio-net offloads over vhost-user, against the project's model backend in a child process
 * (src/sim/vhost-user: the virtio model's net-offloads.ts on the driver's shared memory), split
 * and packed rings: checksum requests and TSO super-frames go out through the net header and come
 * back (loopback) completed or segmented, byte-exact against software, with DATA_VALID; with the
 * offloads turned off the same bytes come back, done by the driver in software.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { NicDevice } from "../../src/device.ts";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { sharedMemoryState } from "../../src/drivers/virtio/vhost-user/shared-memory.ts";
import { freeBuffer as freeOne, Mempool } from "../../src/mem/mempool.ts";
import { requestChecksum, requestTso, rxChecksumOf } from "../../src/mem/offload.ts";
import { copyFrame, writeFrame } from "../../src/mem/packet.ts";
import { sleepMs } from "../../src/pci/regs.ts";
import { segmentTcp } from "../../src/net/tcp-segment.ts";
import { startModelBackend, type ModelBackend } from "../../src/sim/vhost-user/backend-process.ts";
import { buildFrame, type FrameSpec } from "../helpers/frames.ts";
import { prng, randInt } from "../helpers/prng.ts";
import { hugepagesMissing, SMALL } from "./helpers.ts";
import { socketPath } from "./scripted-backend.ts";

const noHugepages = hugepagesMissing(8);
if (noHugepages) console.warn(`test/vhost-user/offload: skipped: ${noHugepages}`);

const running: ModelBackend[] = [];
const devices: NicDevice[] = [];
afterEach(async () => {
  for (const d of devices.splice(0)) d.close();
  for (const b of running.splice(0)) {
    await b.stop();
    fs.rmSync(path.dirname(b.socket), { recursive: true, force: true });
  }
  expect(sharedMemoryState()).toEqual({ users: 0, regions: 0 });
});

/** Sends each frame after `prepare(buf, i)`, retrying while the ring is full. */
function sendAll(dev: NicDevice, pool: Mempool, frames: readonly Uint8Array[], prepare: (buf: number, i: number) => void): void {
  const one = new Int32Array(1);
  frames.forEach((f, i) => {
    for (let tries = 0; ; tries++) {
      if (pool.allocBatch(one, 1) === 1) {
        writeFrame(one[0]!, f);
        prepare(one[0]!, i);
        if (dev.txBatch(0, one, 1) === 1) break;
        pool.freeBatch(one, 1);
      }
      if (tries > 5000) throw new Error("the transmit ring stayed full");
      sleepMs(1);
    }
  });
}

/** Receives `count` frames (copies) and each one's L4 checksum verdict. */
function receive(dev: NicDevice, count: number, timeoutMs = 10000): { frames: Uint8Array[]; l4: string[] } {
  const frames: Uint8Array[] = [];
  const l4: string[] = [];
  const bufs = new Int32Array(32);
  const deadline = performance.now() + timeoutMs;
  while (frames.length < count && performance.now() < deadline) {
    const n = dev.rxBatch(0, bufs, 32);
    for (let i = 0; i < n; i++) {
      frames.push(copyFrame(bufs[i]!));
      l4.push(rxChecksumOf(bufs[i]!).l4);
      freeOne(bufs[i]!);
    }
    if (n === 0) sleepMs(1);
  }
  return { frames, l4 };
}

function randomSpec(rand: () => number): FrameSpec {
  const tcp = rand() < 0.5;
  return { proto: tcp ? "tcp" : "udp", ipv6: rand() < 0.5, vlan: rand() < 0.2, tcpOptions: tcp && rand() < 0.3 ? 12 : 0, payload: randInt(rand, 0, 1400) };
}

describe.skipIf(noHugepages !== null).each([{ ring: "split" as const }, { ring: "packed" as const }])("virtio offloads over vhost-user (model backend, $ring ring)", ({ ring }) => {
  async function rig(offloads?: { txChecksum?: boolean; tso?: boolean }): Promise<{ b: ModelBackend; dev: NicDevice }> {
    const b = startModelBackend({ socket: socketPath(), mode: "loopback", queueSize: 256, packed: ring === "packed" });
    running.push(b);
    await b.ready;
    const dev = createVhostUserDevice(b.socket, { ...SMALL, ring, memoryBytes: 4 * SMALL.memoryBytes!, ...(offloads ? { offloads } : {}) });
    devices.push(dev);
    return { b, dev };
  }

  for (const txChecksum of [true, false]) {
    it(`checksum requests come back completed, byte-exact, with DATA_VALID (txChecksum ${txChecksum})`, async () => {
      const { b, dev } = await rig({ txChecksum });
      expect(dev.offloads).toMatchObject({ txChecksum, rxChecksum: true, mergeableRx: true });
      const pool = new Mempool(dev.dma, { count: 256 });
      const rand = prng(txChecksum ? 71 : 72);
      const expected = Array.from({ length: 200 }, () => buildFrame(randomSpec(rand), rand).bytes);
      sendAll(dev, pool, expected, (buf) => requestChecksum(buf));
      const got = receive(dev, expected.length);
      expect(got.frames).toEqual(expected);
      expect(got.l4.every((v) => v === "good")).toBe(true);
      const stats = await b.stats();
      expect(stats.device.txChecksummed).toBe(txChecksum ? expected.length : 0);
      expect(stats.violations).toEqual([]);
    });
  }

  it("TSO super-frames come back as the segments software TSO makes", async () => {
    const { b, dev } = await rig();
    expect(dev.offloads.tso).toBe(true);
    const pool = new Mempool(dev.dma, { count: 8, entrySize: 65536 });
    const rand = prng(81);
    const cases = [
      { spec: { proto: "tcp", payload: 4000 } as FrameSpec, mss: 1460 },
      { spec: { proto: "tcp", ipv6: true, payload: 20000 } as FrameSpec, mss: 1440 },
      { spec: { proto: "tcp", payload: 60000, tcpOptions: 12 } as FrameSpec, mss: 1448 },
    ];
    const built = cases.map((c) => buildFrame(c.spec, rand));
    const expected = built.flatMap((f, i) => segmentTcp(f.bytes, f.l2, f.l3, f.l4, cases[i]!.mss, cases[i]!.spec.ipv6 ?? false));
    sendAll(dev, pool, built.map((f) => f.bytes), (buf, i) => requestTso(buf, cases[i]!.mss));
    const got = receive(dev, expected.length);
    expect(got.frames.length).toBe(expected.length);
    for (let i = 0; i < expected.length; i++) expect(got.frames[i], `segment ${i}`).toEqual(expected[i]);
    expect((await b.stats()).device.txGso).toBe(cases.length);
  });
});
