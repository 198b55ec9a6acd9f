/**
 * Interrupts over vhost-user with the model backend (a child process): the receive ring gets a
 * call eventfd (SET_VRING_CALL with an fd), the transmit ring none; the backend writes the call
 * fd when it used receive buffers and the driver did not suppress it; waitForRx wakes on it, and
 * a frame used before the arm is found by the re-check.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { NicDevice } from "../../src/device.ts";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { sharedMemoryState } from "../../src/drivers/virtio/vhost-user/shared-memory.ts";
import { freeBuffers } from "../../src/mem/mempool.ts";
import { startModelBackend, type ModelBackend } from "../../src/sim/vhost-user/backend-process.ts";
import { hugepagesMissing, SMALL } from "./helpers.ts";
import { socketPath } from "./scripted-backend.ts";

const noHugepages = hugepagesMissing(4);
if (noHugepages) console.warn(`test/vhost-user/irq: skipped: ${noHugepages}`);

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

async function rig(packed: boolean): Promise<{ b: ModelBackend; dev: NicDevice }> {
  const b = startModelBackend({ socket: socketPath(), mode: "sink", queueSize: 256, packed });
  running.push(b);
  await b.ready;
  const dev = createVhostUserDevice(b.socket, { ...SMALL, interrupts: true, ring: packed ? "packed" : "split" });
  devices.push(dev);
  return { b, dev };
}

function testFrame(seq: number): Uint8Array {
  const f = new Uint8Array(80).fill(0xab);
  new DataView(f.buffer).setUint32(0, seq);
  return f;
}

function drain(dev: NicDevice): number {
  const bufs = new Int32Array(64);
  let total = 0;
  for (let n = dev.rxBatch(0, bufs, 64); n > 0; n = dev.rxBatch(0, bufs, 64)) {
    total += n;
    freeBuffers(bufs, 0, n);
  }
  return total;
}

describe.skipIf(noHugepages !== null).each([
  { name: "split ring", packed: false },
  { name: "packed ring", packed: true },
])("vhost-user interrupts ($name)", ({ packed }) => {
  it("gives the receive ring a call eventfd and the transmit ring none", async () => {
    const { b, dev } = await rig(packed);
    const stats = await b.waitFor((s) => s.session !== null && s.session.rings.length >= 2);
    expect(stats.session!.rings[0]!.callFd).toBe(true);
    expect(stats.session!.rings[1]!.callFd).toBe(false);
    expect(dev.offloads.interrupts).toBe(true);
  });

  it("waitForRx wakes on the backend's call when a frame arrives; none while disarmed", async () => {
    const { b, dev } = await rig(packed);
    const t0 = performance.now();
    const waiting = dev.waitForRx!(0, 15_000);
    setTimeout(() => void b.inject(testFrame(1)), 50);
    expect(await waiting).toBe(true);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(40);
    expect(drain(dev)).toBe(1);
    const calls = (await b.stats()).session!.rings[0]!.calls;
    expect(calls).toBe(1);
    // Disarmed now: frames the application polls for raise no call.
    for (let i = 2; i <= 5; i++) await b.inject(testFrame(i));
    await b.waitFor((s) => s.delivered >= 5);
    await new Promise((r) => setTimeout(r, 30)); // the backend's next ring pass, where it would call
    expect((await b.stats()).session!.rings[0]!.calls).toBe(1);
    expect(drain(dev)).toBe(4);
    expect(b.events.filter((e) => e.event === "violation")).toEqual([]);
  });

  it("a frame used before the arm is found by the re-check (the backend sent no call for it)", async () => {
    const { b, dev } = await rig(packed);
    expect(drain(dev)).toBe(0);
    await b.inject(testFrame(1));
    await b.waitFor((s) => s.delivered >= 1);
    await new Promise((r) => setTimeout(r, 30));
    expect((await b.stats()).session!.rings[0]!.calls).toBe(0);
    const t0 = performance.now();
    expect(await dev.waitForRx!(0, 5000)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(drain(dev)).toBe(1);
  });

  it("times out, and close() ends a parked wait", async () => {
    const { dev } = await rig(packed);
    expect(await dev.waitForRx!(0, 50)).toBe(false);
    const p = dev.waitForRx!(0, 30_000);
    setTimeout(() => dev.close(), 20);
    expect(await p).toBe(false);
  });
});
