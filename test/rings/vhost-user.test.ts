/**
 * NicDevice.ringState on vhost-user: the virtio-net driver on the project's model backend (a child
 * process that maps the driver's memory), split and packed rings. Frames sent come back
 * (loopback): they are done in the RX ring until rxBatch takes them, byte-exact afterwards.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { NicDevice } from "../../src/device.ts";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { freeBuffer, Mempool } from "../../src/mem/mempool.ts";
import { copyFrame, writeFrame } from "../../src/mem/packet.ts";
import { sleepMs } from "../../src/pci/regs.ts";
import type { RingState } from "../../src/ring-state.ts";
import { startModelBackend, type ModelBackend } from "../../src/sim/vhost-user/backend-process.ts";
import { hugepagesMissing, SMALL } from "../vhost-user/helpers.ts";
import { socketPath } from "../vhost-user/scripted-backend.ts";

const noHugepages = hugepagesMissing(4);
if (noHugepages) console.warn(`test/rings/vhost-user: skipped: ${noHugepages}`);

let backend: ModelBackend | null = null;
let dev: NicDevice | null = null;
afterEach(async () => {
  dev?.close();
  dev = null;
  if (backend !== null) {
    await backend.stop();
    fs.rmSync(path.dirname(backend.socket), { recursive: true, force: true });
    backend = null;
  }
});

/** Polls ringState until `ok` holds (the backend works in its own process), up to 5 s. */
function waitForState(d: NicDevice, kind: "rx" | "tx", ok: (s: RingState) => boolean): RingState {
  const deadline = performance.now() + 5000;
  for (;;) {
    const state = d.ringState(kind, 0);
    if (ok(state) || performance.now() > deadline) return state;
    sleepMs(1);
  }
}

describe.skipIf(noHugepages !== null).each(["split", "packed"] as const)("ringState on vhost-user, %s ring", (ring) => {
  it("RX all the device's after init; looped-back frames done until rxBatch, then re-posted, byte-exact", async () => {
    backend = startModelBackend({ socket: socketPath(), mode: "loopback", queueSize: 256, packed: ring === "packed" });
    await backend.ready;
    const d = (dev = createVhostUserDevice(backend.socket, { ...SMALL, ring }));
    expect(d.ringState("rx", 0)).toMatchObject({ layout: `virtio-${ring}`, size: 64, device: 64, done: 0, driver: 0 });
    expect(d.ringState("tx", 0)).toMatchObject({ size: 64, device: 0, done: 0, driver: 64 });

    const pool = new Mempool(d.dma, { count: 16, name: "ring test TX pool" });
    const frames = Array.from({ length: 5 }, (_, k) => Uint8Array.from({ length: 60 + k }, (_, i) => (i * 7 + k) & 0xff));
    const bufs = new Int32Array(32);
    expect(pool.allocBatch(bufs, 5)).toBe(5);
    frames.forEach((f, k) => writeFrame(bufs[k]!, f));
    expect(d.txBatch(0, bufs, 5)).toBe(5);

    const rx = waitForState(d, "rx", (s) => s.done === 5);
    expect(rx).toMatchObject({ next: 0, head: 5, device: 59, done: 5, driver: 0 });
    expect(waitForState(d, "tx", (s) => s.device === 0)).toMatchObject({ device: 0, done: 5, driver: 59 });

    const n = d.rxBatch(0, bufs, 32);
    expect(n).toBe(5);
    const got = Array.from(bufs.subarray(0, n), (b) => copyFrame(b));
    for (const b of bufs.subarray(0, n)) freeBuffer(b);
    expect(got).toEqual(frames);
    expect(d.ringState("rx", 0)).toMatchObject({ next: 5, device: 64, done: 0 });
  });
});
