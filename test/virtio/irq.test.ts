/**
 * Interrupts on the virtio model (DeviceOptions.interrupts, NicDevice.waitForRx): MSI-X vectors
 * programmed and read back, the model raising a receive queue's vector when it uses buffers
 * unless the driver suppressed it (split: VIRTQ_AVAIL_F_NO_INTERRUPT; packed: driver event
 * suppression), waitForRx arming, re-checking, sleeping and disarming — on split and packed rings,
 * modern and legacy interfaces.
 */
import { afterEach, describe, expect, it } from "vitest";
import { DeviceClosedError, NotSupportedError } from "../../src/errors.ts";
import { freeBuffers } from "../../src/mem/mempool.ts";
import { copyFrame } from "../../src/mem/packet.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { bytesEqual, frame, openRig, type Rig } from "./helpers.ts";

const NO_VECTOR = 0xffff;
const variants = [
  { name: "modern, split ring", legacy: false, packed: false },
  { name: "legacy, split ring", legacy: true, packed: false },
  { name: "modern, packed ring", legacy: false, packed: true },
] as const;

const rigs: Rig[] = [];
function open(legacy: boolean, packed: boolean, device: Parameters<typeof openRig>[1] = {}, model: Parameters<typeof openRig>[0] = {}): Rig {
  const rig = openRig(
    { legacy, packed, ...model },
    { interrupts: true, rxRingSize: 64, txRingSize: 64, checked: true, ring: packed ? "packed" : "split", ...(legacy ? { transport: "legacy", unsafeNoIommu: true } : {}), ...device },
    undefined,
  );
  rigs.push(rig);
  return rig;
}
afterEach(() => {
  for (const r of rigs.splice(0)) {
    r.dev.close();
    r.model.pci.close();
  }
});

const fill = (): number => 0.5;
const ms = (): number => performance.now();
const later = (delay: number, f: () => void): void => void setTimeout(f, delay);

/** Takes every waiting frame; returns copies. */
function drain(rig: Rig, queue = 0): Uint8Array[] {
  const bufs = new Int32Array(64);
  const got: Uint8Array[] = [];
  for (let n = rig.dev.rxBatch(queue, bufs, 64); n > 0; n = rig.dev.rxBatch(queue, bufs, 64)) {
    for (let i = 0; i < n; i++) got.push(copyFrame(bufs[i]!));
    freeBuffers(bufs, 0, n);
  }
  return got;
}

describe.each(variants)("virtio interrupts ($name)", ({ legacy, packed }) => {
  it("programs msix_config 0 and the receive queue's vector 1 (read back), transmit NO_VECTOR, and says so in offloads", () => {
    const { model, dev } = open(legacy, packed);
    expect(model.configVector).toBe(0);
    expect(model.queueInterrupts(0).vector).toBe(1);
    expect(model.queueInterrupts(1).vector).toBe(NO_VECTOR);
    expect(model.pci.msix!.enabled).toBe(2);
    expect(dev.offloads.interrupts).toBe(true);
    // the legacy configuration moved by 4 bytes with MSI-X on: the MAC still reads right
    expect(Array.from(dev.macAddress())).toEqual(Array.from(model.mac));
    expect(model.violations).toEqual([]);
  });

  it("waitForRx sleeps until a frame arrives, wakes on the queue's interrupt, and the frame is there", async () => {
    const rig = open(legacy, packed);
    const f = frame(1, 80, fill);
    const t0 = ms();
    later(40, () => expect(rig.model.inject(f)).toBe(true));
    expect(await rig.dev.waitForRx(0, 10_000)).toBe(true);
    expect(ms() - t0).toBeGreaterThanOrEqual(30);
    expect(ms() - t0).toBeLessThan(5000);
    expect(rig.model.queueInterrupts(0).sent).toBe(1);
    expect(rig.model.pci.interruptCounts[1]).toBe(1);
    const got = drain(rig);
    expect(got).toHaveLength(1);
    expect(bytesEqual(got[0]!, f)).toBe(true);
    expect(rig.model.violations).toEqual([]);
  });

  it("disarms on waking: frames while the application polls raise no interrupt", async () => {
    const rig = open(legacy, packed);
    later(10, () => rig.model.inject(frame(1, 80, fill)));
    expect(await rig.dev.waitForRx(0, 10_000)).toBe(true);
    for (let i = 2; i < 20; i++) rig.model.inject(frame(i, 80, fill));
    expect(drain(rig)).toHaveLength(19);
    expect(rig.model.queueInterrupts(0).sent).toBe(1);
  });

  it("a frame used between the last rxBatch and the arm resolves at once: the re-check after arming (no lost wake-up)", async () => {
    const rig = open(legacy, packed);
    expect(drain(rig)).toHaveLength(0);
    // The device uses a buffer while the queue is still disarmed: no notification, and none
    // comes later (the model, like qemu, decides when it publishes). Only the re-check sees it.
    rig.model.inject(frame(7, 80, fill));
    expect(rig.model.queueInterrupts(0).sent).toBe(0);
    const t0 = ms();
    expect(await rig.dev.waitForRx(0, 3000)).toBe(true);
    expect(ms() - t0).toBeLessThan(1000);
    expect(drain(rig)).toHaveLength(1);
    expect(rig.model.queueInterrupts(0).sent).toBe(0);
  });

  it("times out with false, and a frame after the timeout raises nothing (disarmed again)", async () => {
    const rig = open(legacy, packed);
    const t0 = ms();
    expect(await rig.dev.waitForRx(0, 60)).toBe(false);
    expect(ms() - t0).toBeGreaterThanOrEqual(55);
    rig.model.inject(frame(1, 80, fill));
    expect(rig.model.queueInterrupts(0).sent).toBe(0);
    expect(await rig.dev.waitForRx(0, 1000)).toBe(true); // the re-check finds it
  });

  it("keeps Node's event loop running while it waits", async () => {
    const rig = open(legacy, packed);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      expect(await rig.dev.waitForRx(0, 200)).toBe(false);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(10);
  });

  it("close() ends a parked wait (false), disables MSI-X, and later waits throw DeviceClosedError", async () => {
    const rig = open(legacy, packed);
    const p = rig.dev.waitForRx(0, 30_000);
    const t0 = ms();
    later(20, () => rig.dev.close());
    expect(await p).toBe(false);
    expect(ms() - t0).toBeLessThan(5000);
    expect(rig.model.pci.msix!.enabled).toBe(0);
    await expect(rig.dev.waitForRx(0, 10)).rejects.toThrow(DeviceClosedError);
  });
});

describe("virtio interrupts: setup and errors", () => {
  it("without interrupts: no MSI-X, every vector NO_VECTOR, waitForRx says to open with interrupts: true", async () => {
    const rig = openRig({}, { rxRingSize: 64, txRingSize: 64 });
    rigs.push(rig);
    expect(rig.model.pci.msix!.enabled).toBe(0);
    expect(rig.model.configVector).toBe(NO_VECTOR);
    expect(rig.model.queueInterrupts(0).vector).toBe(NO_VECTOR);
    expect(rig.dev.offloads.interrupts).toBe(false);
    await expect(rig.dev.waitForRx(0, 10)).rejects.toThrow(NotSupportedError);
    await expect(rig.dev.waitForRx(0, 10)).rejects.toThrow(/sim:\w+: waitForRx\(\) needs interrupts: open the device with interrupts: true/);
  });

  it.each([
    ["modern", false],
    ["legacy", true],
  ] as const)("a vector that reads back NO_VECTOR (%s) fails the open with a NotSupportedError naming the device", (_name, legacy) => {
    const dma = new SimDma("sim DMA");
    const model = new VirtioNetModel({ dma, legacy, address: "sim:refuses" });
    model.faults.refuseVectors = true;
    const options = { interrupts: true, linkTimeoutMs: 0, ...(legacy ? { transport: "legacy" as const, unsafeNoIommu: true } : {}) };
    expect(() => createVirtioDevice(model.pci, dma, options)).toThrow(NotSupportedError);
    expect(() => createVirtioDevice(model.pci, dma, options)).toThrow(/^sim:refuses: the device refused MSI-X vector 0 .*reads back NO_VECTOR/);
    // The failed open gave everything back: MSI-X off again, the device reset.
    expect(model.pci.msix!.enabled).toBe(0);
    expect(model.status).toBe(0);
    model.faults.refuseVectors = false;
    const dev = createVirtioDevice(model.pci, dma, options);
    expect(model.queueInterrupts(0).vector).toBe(1);
    dev.close();
  });

  it("more receive queues than the device has vectors for: NotSupportedError that says how many are needed", () => {
    const dma = new SimDma("sim DMA");
    const model = new VirtioNetModel({ dma, address: "sim:fewvec", queuePairs: 2, msixVectors: 2 });
    expect(() => createVirtioDevice(model.pci, dma, { interrupts: true, rxQueues: 2, txQueues: 2, linkTimeoutMs: 0 })).toThrow(
      /^sim:fewvec: interrupts: true needs 3 MSI-X vectors \(one per receive queue plus one\), the device has 2/,
    );
  });

  it("with two queue pairs each receive queue has its own vector, and a frame wakes only its queue's wait", async () => {
    const rig = openRig({ queuePairs: 2 }, { interrupts: true, rxQueues: 2, txQueues: 2, rxRingSize: 64, txRingSize: 64 });
    rigs.push(rig);
    expect([0, 2].map((q) => rig.model.queueInterrupts(q).vector)).toEqual([1, 2]);
    expect([1, 3].map((q) => rig.model.queueInterrupts(q).vector)).toEqual([NO_VECTOR, NO_VECTOR]);
    const w0 = rig.dev.waitForRx(0, 400);
    const w1 = rig.dev.waitForRx(1, 10_000);
    later(20, () => rig.model.inject(frame(1, 80, fill), 1));
    expect(await w1).toBe(true);
    expect(await w0).toBe(false);
    expect(drain(rig, 1)).toHaveLength(1);
    expect(drain(rig, 0)).toHaveLength(0);
  });

});
