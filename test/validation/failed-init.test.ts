/**
 * Issue 12.5: a failed init gives back what it took. The driver marks the allocator before its
 * first allocation and, when init fails (a link that never comes up, refused features, memory
 * running out half-way), resets the device, closes its receive pools and releases every ring
 * and pool allocated since the mark (DmaAllocator.releaseSince). Checked through the models:
 * the allocator's bytes, allocations and pools are what they were before the attempt, and the
 * next attempt on the same allocator succeeds.
 */
import { describe, expect, it } from "vitest";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { DeviceProtocolError, DeviceTimeoutError, DmaError } from "../../src/errors.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { poolsOn } from "../contract/accounting.ts";

function snapshot(dma: SimDma) {
  return { bytes: dma.allocatedBytes, allocations: dma.allocations, pools: poolsOn(dma).map((p) => p.name) };
}

/** A pool made before the device, so that the mark is not simply "nothing". */
function withEarlierPool(dma: SimDma): Mempool {
  return new Mempool(dma, { count: 64, name: "the application's pool" });
}

describe("a failed init gives back its rings and pools", () => {
  it("ixgbe: a link that never comes up", () => {
    const dma = new SimDma("ixgbe link DMA");
    withEarlierPool(dma);
    const model = new Ixgbe82599Model({ dma, linkUp: false });
    const before = snapshot(dma);
    expect(() => createIxgbeDevice(model.pci, dma, { rxQueues: 2, txQueues: 2, linkTimeoutMs: 30, checked: true })).toThrow(DeviceTimeoutError);
    expect(snapshot(dma)).toEqual(before);
    model.setLink(true);
    const dev = createIxgbeDevice(model.pci, dma, { linkTimeoutMs: 1000 });
    expect(dev.linkSpeed()).toBeGreaterThan(0);
    dev.close();
  });

  it("ixgbe: memory running out half-way (the second TX ring)", () => {
    const probe = new SimDma("probe");
    const m = new Ixgbe82599Model({ dma: probe });
    createIxgbeDevice(m.pci, probe, { rxQueues: 1, txQueues: 1, mempoolSize: 1024, linkTimeoutMs: 1000 }).close();
    const oneQueuePair = probe.allocatedBytes;
    // Room for the pool, both RX queues... but not for everything of the second queue pair.
    const dma = new SimDma("ixgbe small DMA", { limitBytes: 64 * 2048 + oneQueuePair + oneQueuePair / 2 });
    withEarlierPool(dma);
    const model = new Ixgbe82599Model({ dma });
    const before = snapshot(dma);
    expect(() => createIxgbeDevice(model.pci, dma, { rxQueues: 2, txQueues: 2, mempoolSize: 1024, linkTimeoutMs: 1000 })).toThrow(DmaError);
    expect(snapshot(dma)).toEqual(before);
    const dev = createIxgbeDevice(model.pci, dma, { rxQueues: 1, txQueues: 1, mempoolSize: 1024, linkTimeoutMs: 1000 });
    dev.close();
  });

  for (const legacy of [false, true]) {
    const kind = legacy ? "virtio legacy" : "virtio modern";
    it(`${kind}: a link that never comes up`, () => {
      const dma = new SimDma(`${kind} link DMA`);
      withEarlierPool(dma);
      const model = new VirtioNetModel({ dma, legacy, link: false });
      const before = snapshot(dma);
      expect(() => createVirtioDevice(model.pci, dma, { linkTimeoutMs: 30, checked: true })).toThrow(DeviceTimeoutError);
      expect(snapshot(dma)).toEqual(before);
      model.setLink(true);
      const dev = createVirtioDevice(model.pci, dma, { linkTimeoutMs: 1000 });
      expect(dev.linkSpeed()).toBeGreaterThan(0);
      dev.close();
    });

    it(`${kind}: memory running out for the rings, after the receive pool`, () => {
      const dma = new SimDma(`${kind} small DMA`, { limitBytes: 64 * 2048 + 4096 * 2048 + 1000 });
      withEarlierPool(dma);
      const model = new VirtioNetModel({ dma, legacy });
      const before = snapshot(dma);
      expect(() => createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0, mempoolSize: 4096 })).toThrow(DmaError);
      expect(snapshot(dma)).toEqual(before);
      const dev = createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0, mempoolSize: 512, rxRingSize: 256, txRingSize: 256 });
      dev.close();
    });
  }

  it("virtio modern: refused features (nothing allocated yet, nothing kept)", () => {
    const dma = new SimDma("virtio refused DMA");
    withEarlierPool(dma);
    const model = new VirtioNetModel({ dma });
    model.faults.refuseFeatures = true;
    const before = snapshot(dma);
    expect(() => createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0 })).toThrow(DeviceProtocolError);
    expect(snapshot(dma)).toEqual(before);
  });
});
