/**
 * Issue 11, the driver items beyond the used ring: control queue timeouts and exact completions,
 * promiscuous mode refused at init, ORDER_PLATFORM, FAILED without a refused FEATURES_OK, reset
 * before bus mastering, mempoolSize against the ring, x86-64 only, close() with a stuck reset;
 * and the model's fault modes for the configuration generation and slow or stuck resets.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { DeviceProtocolError, DeviceTimeoutError, NotSupportedError } from "../../src/errors.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { writeFrame } from "../../src/mem/packet.ts";
import { PCI_COMMAND, PCI_COMMAND_MASTER } from "../../src/pci/pci-function.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel, type VirtioNetFaults, type VirtioNetModelOptions } from "../../src/sim/virtio/virtio-model.ts";
import { openRig } from "./helpers.ts";

const ORDER_PLATFORM = 1n << 36n;
const FEATURES_OK = 8;
const FAILED = 0x80;

/** A model with `faults` set before the driver opens it. */
function modelWith(faults: VirtioNetFaults, options: Omit<VirtioNetModelOptions, "dma"> = {}) {
  const dma = new SimDma("faults DMA");
  const model = new VirtioNetModel({ dma, ...options });
  Object.assign(model.faults, faults);
  const open = () => createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0 });
  return { dma, model, open };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe.each([false, true])("virtio control queue faults (legacy transport: %s)", (legacy) => {
  it("marks the control queue broken after a timeout: the stalled command is never overwritten", () => {
    const { model, dev } = openRig({ legacy });
    model.faults.ctrlNeverCompletes = true;
    const start = performance.now();
    expect(() => dev.setPromisc(false)).toThrow(DeviceTimeoutError);
    expect(performance.now() - start).toBeGreaterThanOrEqual(900);
    model.faults.ctrlNeverCompletes = false;
    // The device may still get to the stalled command: it must find its own bytes there.
    expect(() => dev.setPromisc(true)).toThrow(/control queue is broken .*no answer on the control queue/);
    model.poll();
    expect(model.ctrlLog.map((c) => c.data)).toEqual([[1], [0]]);
    expect(model.promisc).toBe(false);
    dev.close();
  });

  it("requires exactly one used entry per command", () => {
    const { model, dev } = openRig({ legacy });
    model.faults.repeatUsedId = true;
    expect(() => dev.setPromisc(false)).toThrow(/moved used\.idx by 2 entries for one command/);
    model.faults.repeatUsedId = false;
    expect(() => dev.setPromisc(true)).toThrow(/control queue is broken/);
    dev.close();
  });

  it("opens with a warning when the device refuses promiscuous mode at init; setPromisc() stays strict", () => {
    const warn = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    const { model, open } = modelWith({ rejectCtrl: true }, { legacy });
    const dev = open();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/refused promiscuous mode at init .*VIRTIO_NET_ERR.*may filter frames/);
    expect(warn.mock.calls[0]![1]).toMatchObject({ type: "IxyWarning", code: "IXY_VIRTIO_PROMISC_REFUSED" });
    expect(() => dev.setPromisc(true)).toThrow(DeviceProtocolError);
    model.faults.rejectCtrl = false;
    dev.setPromisc(true);
    expect(model.promisc).toBe(true);
    dev.close();
  });
});

describe("virtio initialization against a strict device", () => {
  it("accepts VIRTIO_F_ORDER_PLATFORM when offered (a device that requires it opens)", () => {
    const { model, open } = modelWith({}, { orderPlatform: true });
    const dev = open();
    expect(model.driverFeatures & ORDER_PLATFORM).toBe(ORDER_PLATFORM);
    expect(model.violations).toEqual([]);
    dev.close();
  });

  it("does not accept VIRTIO_F_ORDER_PLATFORM when it is not offered", () => {
    const { model, open } = modelWith({});
    open().close();
    expect(model.driverFeatures & ORDER_PLATFORM).toBe(0n);
  });

  it("resets the device before it enables bus mastering (a device left running by an earlier driver)", () => {
    const dma = new SimDma("bus master DMA");
    const model = new VirtioNetModel({ dma });
    createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0 }); // never closed: its process died
    // VFIO releases the function: bus mastering off; the device still runs the old rings.
    model.pci.config.write16(PCI_COMMAND, model.pci.config.read16(PCI_COMMAND) & ~PCI_COMMAND_MASTER);
    const dev = createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0 });
    expect(model.violations).toEqual([]);
    dev.close();
  });

  it("leaves the refused FEATURES_OK out of the FAILED it writes, so that FAILED sticks", () => {
    const { model, open } = modelWith({ refuseFeatures: true });
    expect(open).toThrow(/FEATURES_OK did not stick/);
    const failed = model.statusHistory.filter((s) => (s & FAILED) !== 0);
    expect(failed.length).toBe(1);
    expect(failed[0]! & FEATURES_OK).toBe(0);
  });

  it("refuses a mempoolSize no larger than the receive ring, saying why", () => {
    for (const mempoolSize of [64, 32]) {
      expect(() => openRig({}, { rxRingSize: 64, mempoolSize })).toThrow(RangeError);
      expect(() => openRig({}, { rxRingSize: 64, mempoolSize })).toThrow(/must be larger than the receive ring \(64 buffers\).*no frame at all/);
    }
    openRig({}, { rxRingSize: 64, mempoolSize: 65 }).dev.close();
  });

  it("refuses to run on a CPU that is not x86-64, before touching the device", () => {
    const arch = Object.getOwnPropertyDescriptor(process, "arch")!;
    Object.defineProperty(process, "arch", { value: "arm64", configurable: true });
    try {
      const { model, open } = modelWith({});
      expect(open).toThrow(NotSupportedError);
      expect(open).toThrow(/x86-64 only \(this CPU is arm64\)/);
      expect(model.statusLog).toEqual([]);
    } finally {
      Object.defineProperty(process, "arch", arch);
    }
  });

  it("reads the MAC address again while the configuration generation changes, and gives up on one that never settles", () => {
    const mac = Uint8Array.of(0x52, 0x54, 0, 1, 2, 3);
    const settling = modelWith({ configGenerationChurn: 9 }, { mac });
    const dev = settling.open();
    expect(dev.macAddress()).toEqual(mac);
    dev.close();
    const churning = modelWith({ configGenerationChurn: Infinity }, { mac });
    expect(churning.open).toThrow(/configuration kept changing while the MAC address was read/);
  });

  it("waits for a slow reset, and reports a stuck one with a DeviceTimeoutError", () => {
    const slow = modelWith({});
    const dev = slow.open();
    const resets = slow.model.resets;
    slow.model.faults.resetReads = 5;
    dev.close();
    expect(slow.model.resets).toBe(resets + 1);
    expect(slow.model.status).toBe(0);
    expect(slow.model.violations).toEqual([]);

    // A device left running by a driver that died, whose reset never completes.
    const stuck = modelWith({});
    stuck.open();
    stuck.model.faults.resetReads = Infinity;
    expect(stuck.open).toThrow(DeviceTimeoutError);
    expect(stuck.model.status & 4).toBe(4); // still DRIVER_OK: it never reset
  });
});

describe("virtio close()", () => {
  it("returns the transmit ring's buffers of another pool, in flight and sent but not reclaimed, after the reset", () => {
    const { model, dev, dma } = openRig({}, { txRingSize: 64 });
    // Another port's pool, as when forwarding from an ixgbe port.
    const other = new Mempool(dma, { count: 128, checked: true, name: "another port's pool" });
    const bufs = new Int32Array(50);
    expect(other.allocBatch(bufs, 50)).toBe(50);
    for (const b of bufs) writeFrame(b, new Uint8Array(60).fill(5));
    expect(dev.txBatch(0, bufs.subarray(0, 40), 40)).toBe(40); // sent, not reclaimed
    model.faults.stall = true;
    expect(dev.txBatch(0, bufs.subarray(40), 10)).toBe(10); // in flight
    expect(model.counters.txFrames).toBe(40);
    dev.close();
    expect(other.available).toBe(128);
    other.close();
  });

  it("keeps the buffers with a device whose reset does not complete, and says so", () => {
    const { model, dev, dma } = openRig({}, { txRingSize: 16 });
    const pool = new Mempool(dma, { count: 16, checked: true });
    const bufs = new Int32Array(4);
    pool.allocBatch(bufs, 4);
    for (const b of bufs) writeFrame(b, new Uint8Array(60));
    model.faults.stall = true;
    expect(dev.txBatch(0, bufs, 4)).toBe(4);
    model.faults.resetReads = Infinity;
    expect(() => dev.close()).toThrow(/the buffers in its rings stay with the device/);
    expect(pool.available).toBe(12);
    // The soak found it: with no way to try again, those buffers (and the ring's) were out for good.
    expect(() => dev.close()).toThrow(/close\(\) again retries the reset/); // still stuck
    expect(pool.available).toBe(12);
    model.faults.resetReads = 0; // the device answers again (after a function-level reset, say)
    dev.close();
    expect(pool.available).toBe(16);
    pool.close();
    dev.close(); // done: a no-op now
  });
});
