import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { DeviceClosedError, DeviceProtocolError, DeviceTimeoutError, DmaError, NotSupportedError } from "../../src/errors.ts";
import { bufPool, poolTop } from "../../src/mem/buffer-table.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { setFrameLength } from "../../src/mem/packet.ts";
import { PCI_CAP_ID_MSIX, pciCapabilities } from "../../src/pci/pci-function.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { openRig, withAddressing } from "./helpers.ts";

const ACK = 1;
const DRIVER = 2;
const DRIVER_OK = 4;
const FEATURES_OK = 8;
const FAILED = 0x80;
const bit = (n: number) => 1n << BigInt(n);
const MAC = bit(5);
const STATUS = bit(16);
const CTRL_VQ = bit(17);
const CTRL_RX = bit(18);
const ANY_LAYOUT = bit(27);
const VERSION_1 = bit(32);
const ACCESS_PLATFORM = bit(33);
/** CSUM, GUEST_CSUM, HOST_TSO4, HOST_TSO6, MRG_RXBUF: the offloads the model offers and the driver takes (docs/offloads-virtio.md). */
const OFFLOADS = bit(0) | bit(1) | bit(11) | bit(12) | bit(15);

describe("virtio device initialization", () => {
  it("walks a modern device through reset, ACKNOWLEDGE, DRIVER, FEATURES_OK and DRIVER_OK (§3.1.1)", () => {
    const { model, dev } = openRig();
    expect(model.statusLog).toEqual([0, ACK, ACK | DRIVER, ACK | DRIVER | FEATURES_OK, ACK | DRIVER | FEATURES_OK | DRIVER_OK]);
    expect(model.violations).toEqual([]);
    expect(dev.transport).toBe("modern");
    expect(dev.headerLength).toBe(12);
  });

  it("walks a legacy device through reset, ACKNOWLEDGE, DRIVER and DRIVER_OK, without FEATURES_OK (§3.1.2)", () => {
    const { model, dev } = openRig({ legacy: true });
    expect(model.statusLog).toEqual([0, ACK, ACK | DRIVER, ACK | DRIVER | DRIVER_OK]);
    expect(model.legacyMode).toBe(true);
    expect(model.violations).toEqual([]);
    expect(dev.transport).toBe("legacy");
    // §5.1.6: the legacy header with MRG_RXBUF's num_buffers (10 bytes without it: offload-negotiation.test.ts).
    expect(dev.headerLength).toBe(12);
  });

  it("accepts exactly the features it implements and none of the others the device offers", () => {
    const modern = openRig();
    expect(modern.model.offeredFeatures & bit(7)).not.toBe(0n); // GUEST_TSO4 is on offer ...
    expect(modern.model.driverFeatures).toBe(VERSION_1 | ACCESS_PLATFORM | MAC | STATUS | CTRL_VQ | CTRL_RX | OFFLOADS); // ... and declined
    expect(modern.dev.features).toBe(modern.model.driverFeatures);
    const legacy = openRig({ legacy: true });
    expect(legacy.model.driverFeatures).toBe(ANY_LAYOUT | MAC | STATUS | CTRL_VQ | CTRL_RX | OFFLOADS);
  });

  it("accepts VIRTIO_F_ACCESS_PLATFORM whenever the device offers it", () => {
    const { model } = openRig({ accessPlatform: true }, {}, undefined);
    expect(model.driverFeatures & ACCESS_PLATFORM).toBe(ACCESS_PLATFORM);
    const without = openRig({ accessPlatform: false });
    expect(without.model.driverFeatures & ACCESS_PLATFORM).toBe(0n);
  });

  it("refuses a modern device without ACCESS_PLATFORM behind the IOMMU, naming iommu_platform=on, and leaves it reset", () => {
    const dma = new SimDma();
    const model = new VirtioNetModel({ dma, accessPlatform: false });
    const open = () => createVirtioDevice(model.pci, withAddressing(dma, "iommu"), { linkTimeoutMs: 0 });
    expect(open).toThrow(DmaError);
    expect(open).toThrow(/bypass the IOMMU.*iommu_platform=on/);
    expect(model.statusLog.slice(-2)).toEqual([ACK | DRIVER | FAILED, 0]);
    expect(model.status).toBe(0);
  });

  it("drives a modern device without ACCESS_PLATFORM on physical addresses", () => {
    const dma = new SimDma();
    const model = new VirtioNetModel({ dma, accessPlatform: false });
    createVirtioDevice(model.pci, withAddressing(dma, "physical"), { linkTimeoutMs: 0 });
    expect(model.status).toBe(ACK | DRIVER | FEATURES_OK | DRIVER_OK);
  });

  it("refuses the legacy transport with an IOMMU allocator before touching the device, and says what to use", () => {
    const dma = new SimDma();
    const model = new VirtioNetModel({ dma, legacy: true });
    const open = () => createVirtioDevice(model.pci, withAddressing(dma, "iommu"), { linkTimeoutMs: 0 });
    expect(open).toThrow(DmaError);
    expect(open).toThrow(/needs physical addresses.*physical-address DMA allocator/);
    expect(model.statusLog).toEqual([]);
  });

  it("reports a device that refuses the feature set with a clear error and leaves it failed and reset", () => {
    const dma = new SimDma();
    const model = new VirtioNetModel({ dma });
    model.faults.refuseFeatures = true;
    const open = () => createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0 });
    expect(open).toThrow(DeviceProtocolError);
    expect(open).toThrow(/refused the features .*VIRTIO_F_VERSION_1.*FEATURES_OK did not stick/);
    // §3.1.1: FAILED without the refused FEATURES_OK (qemu drops a write that sets it again),
    // so that FAILED sticks before the reset.
    expect(model.statusLog.slice(-2)).toEqual([ACK | DRIVER | FAILED, 0]);
    expect(model.statusHistory.slice(-2)).toEqual([ACK | DRIVER | FAILED, 0]);
    expect(model.status).toBe(0);
  });

  it("reports a modern interface without VIRTIO_F_VERSION_1 as not supported and points to the legacy transport", () => {
    const dma = new SimDma();
    const model = new VirtioNetModel({ dma, features: MAC | STATUS });
    expect(() => createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0 })).toThrow(NotSupportedError);
    expect(() => createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0 })).toThrow(/VIRTIO_F_VERSION_1.*transport 'legacy'/);
  });

  it("refuses a legacy device that does not offer VIRTIO_F_ANY_LAYOUT", () => {
    const dma = new SimDma();
    const model = new VirtioNetModel({ dma, legacy: true, features: VERSION_1 | MAC });
    expect(() => createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0 })).toThrow(/VIRTIO_F_ANY_LAYOUT/);
  });

  it("drives a transitional device through its modern interface when asked to", () => {
    const { model, dev } = openRig({ legacy: true }, { transport: "modern" });
    expect(dev.transport).toBe("modern");
    expect(model.legacyMode).toBe(false);
    expect(model.statusLog).toEqual([0, ACK, ACK | DRIVER, ACK | DRIVER | FEATURES_OK, ACK | DRIVER | FEATURES_OK | DRIVER_OK]);
    expect(model.driverFeatures).toBe(VERSION_1 | MAC | STATUS | CTRL_VQ | CTRL_RX | OFFLOADS);
    expect(model.violations).toEqual([]);
  });

  it("refuses the legacy transport for a modern-only device", () => {
    const dma = new SimDma();
    const model = new VirtioNetModel({ dma });
    expect(() => createVirtioDevice(model.pci, dma, { transport: "legacy" })).toThrow(/not an I\/O-port BAR.*transport 'modern'/);
  });

  it("takes queue sizes from the device, capped by rxRingSize and txRingSize", () => {
    const full = openRig({ queueSize: 512 });
    expect([full.model.queueSize(0), full.model.queueSize(1)]).toEqual([512, 512]);
    expect(full.dev.ringCapacity).toEqual([512, 512]);
    const capped = openRig({ queueSize: 512 }, { rxRingSize: 64, txRingSize: 128 });
    expect([capped.model.queueSize(0), capped.model.queueSize(1)]).toEqual([64, 128]);
    expect(capped.model.rxBuffersAvailable).toBe(64);
    const larger = openRig({ queueSize: 128 }, { rxRingSize: 1024 });
    expect(larger.model.queueSize(0)).toBe(128);
  });

  it("keeps a legacy queue at the device's size and makes only as many buffers available as asked", () => {
    const { model, dev } = openRig({ legacy: true, queueSize: 256 }, { rxRingSize: 32, txRingSize: 16 });
    expect([model.queueSize(0), model.queueSize(1)]).toEqual([256, 256]);
    expect(model.rxBuffersAvailable).toBe(32);
    expect(dev.ringCapacity).toEqual([32, 16]);
  });

  it("rejects options it cannot honour with errors that say why", () => {
    expect(() => openRig({}, { rxQueues: 2 })).toThrow(NotSupportedError);
    expect(() => openRig({}, { txQueues: 4 })).toThrow(/multiqueue/);
    expect(() => openRig({}, { rxQueues: 0 })).toThrow(RangeError);
    expect(() => openRig({}, { rxRingSize: 100 })).toThrow(RangeError);
    expect(() => openRig({}, { txRingSize: 65536 })).toThrow(RangeError);
    expect(() => openRig({}, { rxRingSize: 256, mempoolSize: 100 })).toThrow(/mempoolSize 100 must be larger than the receive ring \(256 buffers\)/);
    expect(() => openRig({}, { transport: "pio" as never })).toThrow(TypeError);
    expect(() => openRig({}, { linkTimeoutMs: -1 })).toThrow(RangeError);
  });

  it("refuses PCI functions that are not virtio-net", () => {
    const dma = new SimDma();
    const model = new VirtioNetModel({ dma });
    const pci = Object.create(model.pci, { deviceId: { value: 0x1001 } });
    expect(() => createVirtioDevice(pci, dma)).toThrow(/1af4:1001 is not a virtio-net device/);
  });

  it("reads the MAC address from the device configuration", () => {
    const mac = Uint8Array.of(0x52, 0x54, 0, 0xab, 0xcd, 0xef);
    expect(openRig({ mac }).dev.macAddress()).toEqual(mac);
    expect(openRig({ mac, legacy: true }).dev.macAddress()).toEqual(mac);
  });

  it("finds a legacy device's configuration at 0x18 while MSI-X is enabled", () => {
    const dma = new SimDma();
    const mac = Uint8Array.of(2, 4, 6, 8, 10, 12);
    const model = new VirtioNetModel({ dma, legacy: true, mac });
    const msix = [...pciCapabilities(model.pci.config)].find(([id]) => id === PCI_CAP_ID_MSIX)![1];
    model.pci.config.poke16(msix + 2, model.pci.config.peek16(msix + 2) | 0x8000);
    const dev = createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0 });
    expect(dev.macAddress()).toEqual(mac);
  });

  it("makes up a locally administered MAC address when the device has none", () => {
    const { dev } = openRig({ features: VERSION_1 | STATUS });
    const mac = dev.macAddress();
    expect(mac[0]! & 0x03).toBe(0x02);
  });

  it("reports the link from the device configuration's status field", () => {
    const { model, dev } = openRig();
    expect(dev.linkSpeed()).toBe(1000);
    model.setLink(false);
    expect(dev.linkSpeed()).toBe(0);
    model.setLink(true);
    expect(dev.linkSpeed()).toBe(1000);
    const legacy = openRig({ legacy: true, link: false });
    expect(legacy.dev.linkSpeed()).toBe(0);
  });

  it("considers the link up when VIRTIO_NET_F_STATUS is not negotiated", () => {
    const { dev } = openRig({ features: VERSION_1 | MAC, link: false });
    expect(dev.linkSpeed()).toBe(1000);
  });

  // The contract (docs/packet-api.md): a link still down after linkTimeoutMs is an error with
  // every driver; linkTimeoutMs: 0 opens the device without waiting (openRig's default).
  it("waits up to linkTimeoutMs for the link, then gives up with a DeviceTimeoutError and leaves the device reset", () => {
    const dma = new SimDma();
    const model = new VirtioNetModel({ dma, link: false, address: "sim:down" });
    const start = performance.now();
    expect(() => createVirtioDevice(model.pci, dma, { linkTimeoutMs: 60 })).toThrow(DeviceTimeoutError);
    expect(performance.now() - start).toBeGreaterThanOrEqual(55);
    expect(() => createVirtioDevice(model.pci, dma, { linkTimeoutMs: 20 })).toThrow(
      /sim:down: the link did not come up within 20 ms.*linkTimeoutMs: 0/,
    );
    expect(model.statusLog.slice(-2)).toEqual([ACK | DRIVER | FEATURES_OK | DRIVER_OK | FAILED, 0]);
    expect(model.status).toBe(0);
    // Not waiting opens it with the link down.
    expect(openRig({ link: false }, { linkTimeoutMs: 0 }).dev.linkSpeed()).toBe(0);
  });

  it("close() resets the device so that it stops DMA, and leaves the PCI function to its owner", () => {
    const { model, dev } = openRig({ address: "sim:shut" });
    dev.close();
    expect(model.status).toBe(0);
    expect(model.inject(new Uint8Array(60))).toBe(false);
    // Everything but readStats and close throws DeviceClosedError on a closed device.
    expect(() => dev.rxBatch(0, new Int32Array(32), 32)).toThrow(DeviceClosedError);
    expect(() => dev.txBatch(0, new Int32Array(0), 0)).toThrow(DeviceClosedError);
    expect(() => dev.setPromisc(false)).toThrow(DeviceClosedError);
    expect(() => dev.linkSpeed()).toThrow(DeviceClosedError);
    expect(() => dev.macAddress()).toThrow(/sim:shut: macAddress\(\) on a closed device/);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats.rxPackets).toBe(0);
    dev.close();
    expect(model.statusLog.filter((s) => s === 0)).toHaveLength(2);
    expect(model.pci.closed).toBe(false);
  });

  it("close() gives every buffer of the receive and transmit rings back to its pool", () => {
    const { model, dev, dma } = openRig({}, { rxRingSize: 32, txRingSize: 16, mempoolSize: 64, checked: true });
    // The receive pool: the pool of a received buffer. Hold one frame, leave 31 buffers posted.
    model.inject(new Uint8Array(60));
    const rx = new Int32Array(32);
    expect(dev.rxBatch(0, rx, 32)).toBe(1);
    const rxPool = bufPool[rx[0]!]!;
    expect(poolTop[rxPool]).toBe(64 - 32 - 1);
    // The transmit ring: frames the stalled device has not completed.
    const pool = new Mempool(dma, { count: 16, checked: true });
    const tx = new Int32Array(10);
    pool.allocBatch(tx, 10);
    for (const b of tx) setFrameLength(b, 60);
    model.faults.stall = true;
    expect(dev.txBatch(0, tx, 10)).toBe(10);
    expect(pool.available).toBe(6);
    dev.close();
    expect(pool.available).toBe(16);
    expect(poolTop[rxPool]).toBe(64 - 1); // all but the one the application holds
    dev.close();
    expect(poolTop[rxPool]).toBe(64 - 1);
    pool.close(); // a checked pool closes only with all its buffers home
  });

  it("names the device and the operation when asked for a queue it does not have", () => {
    const { dev } = openRig({ address: "sim:nic7" });
    expect(() => dev.rxBatch(1, new Int32Array(32), 32)).toThrow(RangeError);
    expect(() => dev.rxBatch(1, new Int32Array(32), 32)).toThrow(/sim:nic7: rxBatch\(\) on queue 1, .*queue 0 only/);
    expect(() => dev.txBatch(-1, new Int32Array(1), 0)).toThrow(/sim:nic7: txBatch\(\) on queue -1/);
    expect(dev.address).toBe("sim:nic7");
    expect(dev.driver).toBe("virtio");
  });
});
