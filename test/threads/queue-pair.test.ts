/**
 * A queue pair driven by a real worker thread (NicDevice.shareQueuePair + attachQueuePair), on
 * every driver variant of the contract suite: the model stays in this thread and sees the
 * worker's doorbells as posted writes (deliverPostedWrites), as a device sees a CPU's.
 */
import type { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { newStats, type NicDevice } from "../../src/device.ts";
import { DeviceProtocolError, QueueSharedError } from "../../src/errors.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { account } from "../contract/accounting.ts";
import { allowViolations, openSimPort } from "../ixgbe/helpers.ts";
import { openRig as openVirtioRig } from "../virtio/helpers.ts";
import { deliverPostedWrites } from "../../src/sim/sim-mmio.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";
import { VARIANTS, stats, type Rig } from "../contract/rigs.ts";

const ECHO = new URL("./workers/pair-echo.ts", import.meta.url);

interface EchoResult {
  received: number;
  sent: number;
  error?: { name: string; message: string };
}

function echoWorker(rig: Rig): { worker: Worker; control: Int32Array; result: Promise<EchoResult> } {
  const control = new Int32Array(new SharedArrayBuffer(8));
  const pair = rig.dev.shareQueuePair(0);
  const worker = startTsWorker(ECHO, { workerData: { pair, control } });
  const result = new Promise<EchoResult>((resolve, reject) => {
    let message: EchoResult | undefined;
    worker.on("message", (m: EchoResult) => (message = m));
    worker.on("error", reject);
    worker.on("exit", (code) => (message !== undefined ? resolve(message) : reject(new Error(`echo worker exited with ${code}`))));
  });
  return { worker, control, result };
}

function randomFrame(seed: number): Uint8Array {
  const length = 60 + ((seed * 7919) % 1400);
  const frame = new Uint8Array(length);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    frame[i] = x >>> 24;
  }
  frame.set([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2]); // unicast addresses: every filter passes them
  return frame;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

/** Runs the model side until `done()` or `ms` pass: posted doorbells, the model's own work, the event loop. */
async function runModel(rig: Rig, done: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) {
    deliverPostedWrites();
    rig.step();
    await tick();
  }
}

describe.each(VARIANTS)("a queue pair in a worker thread: $name", (variant) => {
  it("echoes random frames byte-exact and in order across ring wrap-arounds, then gives every buffer back", async () => {
    const rig = variant.open({ ringSize: 64, checked: true });
    const { control, result } = echoWorker(rig);
    // This thread no longer drives the pair, and cannot close the device under the worker.
    expect(() => rig.dev.rxBatch(0, new Int32Array(1), 1)).toThrow(QueueSharedError);
    expect(() => rig.dev.txBatch(0, new Int32Array(1), 0)).toThrow(QueueSharedError);
    expect(() => rig.dev.close()).toThrow(QueueSharedError);
    const total = 1000; // 15 laps of a 64-descriptor ring
    const frames = Array.from({ length: total }, (_, i) => randomFrame(i + 1));
    let offered = 0;
    await runModel(rig, () => {
      // Offer frames while the receive ring has room; the worker's posted RDT/notify frees more.
      while (offered < total && offered - rig.transmitted().length < rig.rxHolds && rig.deliver(frames[offered]!)) offered++;
      return rig.transmitted().length >= total;
    }, 60_000);
    Atomics.store(control, 0, 1);
    const echoed = await result;
    expect(echoed.error).toBeUndefined();
    await runModel(rig, () => true, 0);
    const out = rig.transmitted();
    expect(out.length).toBe(total);
    for (let i = 0; i < total; i++) {
      if (out[i]!.length !== frames[i]!.length || !out[i]!.every((b, j) => b === frames[i]![j])) {
        throw new Error(`frame ${i} came back different (${out[i]!.length} bytes, sent ${frames[i]!.length})`);
      }
    }
    expect(echoed).toMatchObject({ received: total, sent: total });
    const s = stats(rig.dev);
    expect(s.rxPackets).toBe(total);
    expect(s.txPackets).toBe(total);
    expect(rig.dev.reclaimQueuePair(0)).toBe(true);
    expect(rig.dev.reclaimQueuePair(0)).toBe(false);
    // The pair works in this thread again.
    expect(rig.dev.rxBatch(0, new Int32Array(4), 4)).toBe(0);
    rig.dev.close();
    account(rig.dma, []);
    expect(rig.violations()).toEqual([]);
  }, 90_000);
});

describe("a queue pair in a worker thread, when the device breaks", () => {
  async function brokenWhileShared(dev: NicDevice, dma: SimDma, breakIt: () => void, step: () => void): Promise<void> {
    const rig = { dev, step, deliver: () => false, transmitted: () => [] } as unknown as Rig;
    const { result, control } = echoWorker(rig);
    await runModel(rig, () => Atomics.load(control, 1) === 1, 30_000); // the worker is in its loop
    breakIt();
    // The owning thread notices; the worker's next call throws instead of driving dead rings.
    expect(() => dev.readStats(newStats())).toThrow(DeviceProtocolError);
    const echoed = await result;
    expect(echoed.error?.name).toBe("DeviceProtocolError");
    expect(echoed.error?.message).toMatch(/found it broken/);
    expect(dev.reclaimQueuePair(0)).toBe(true);
    dev.close();
    account(dma, []);
  }

  it("ixgbe: a reset behind the driver's back, noticed by readStats, stops the worker", async () => {
    const { model, dev, dma } = openSimPort({ checked: true, rxRingSize: 64, txRingSize: 64, mempoolSize: 256 });
    allowViolations(model); // the reset itself is the fault
    await brokenWhileShared(dev, dma, () => model.pci.reset(), () => {
      deliverPostedWrites();
    });
  }, 30_000);

  it("virtio: DEVICE_NEEDS_RESET, noticed by readStats, stops the worker", async () => {
    const { model, dev, dma } = openVirtioRig({}, { checked: true });
    await brokenWhileShared(dev, dma, () => model.breakDevice("test: an internal error"), () => {
      deliverPostedWrites();
      model.step?.();
    });
  }, 30_000);
});

describe("a pool in a worker thread", () => {
  it("a buffer of a pool the worker has not attached cannot be freed there (it would vanish); attached, it goes home", async () => {
    const dma = new SimDma("foreign-free test");
    const pool = new Mempool(dma, { count: 8, name: "main-thread pool", checked: true });
    const buf = pool.alloc();
    const worker = startTsWorker(new URL("./workers/free-foreign.ts", import.meta.url), { workerData: { buf, pool: pool.share() } });
    const result = await new Promise<{ foreign: string; attached: string }>((resolve, reject) => {
      worker.on("message", resolve);
      worker.on("error", reject);
    });
    expect(result.foreign).toMatch(/^BufferOwnershipError: buffer \d+ belongs to mempool \d+, which is not attached in this thread/);
    expect(result.attached).toBe("available 8");
    expect(pool.available).toBe(8);
    pool.close();
    dma.close();
  });
});
