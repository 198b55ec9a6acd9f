import { describe, expect, it } from "vitest";
import { DeviceProtocolError } from "../../src/errors.ts";
import { BarKind, PCI_COMMAND, PCI_COMMAND_MASTER } from "../../src/pci/pci-function.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel, type VirtioNetModelOptions } from "../../src/sim/virtio/virtio-model.ts";
import { openRig } from "./helpers.ts";

// Common configuration offsets (virtio 1.2 §4.1.4.3) in the model's BAR4.
const DFSELECT = 0x00;
const DF = 0x04;
const GFSELECT = 0x08;
const GF = 0x0c;
const STATUS = 0x14;
const NOTIFY = 0x3000;

function modern(options: Omit<VirtioNetModelOptions, "dma"> = {}) {
  const dma = new SimDma();
  const model = new VirtioNetModel({ dma, ...options });
  return { model, bar: model.pci.bar(4) };
}

describe("VirtioNetModel", () => {
  it("presents 1af4:1041 with a memory BAR4, or 1af4:1000 with an I/O-port BAR0 as well", () => {
    const m = modern().model;
    expect([m.pci.vendorId, m.pci.deviceId]).toEqual([0x1af4, 0x1041]);
    expect(m.pci.barKind(0)).toBe(BarKind.none);
    expect(m.pci.barKind(4)).toBe(BarKind.memory);
    const t = modern({ legacy: true }).model;
    expect(t.pci.deviceId).toBe(0x1000);
    expect(t.pci.barKind(0)).toBe(BarKind.io);
    expect(t.pci.bar(0).size).toBe(0x20);
  });

  it("offers 64 bits of features through device_feature_select", () => {
    const { model, bar } = modern();
    bar.write32(DFSELECT, 0);
    const lo = bar.read32(DF);
    bar.write32(DFSELECT, 1);
    const hi = bar.read32(DF);
    expect((BigInt(hi) << 32n) | BigInt(lo)).toBe(model.offeredFeatures);
    expect(hi & 3).toBe(3); // VERSION_1 and ACCESS_PLATFORM
  });

  it("refuses FEATURES_OK for a feature it did not offer", () => {
    const { model, bar } = modern();
    bar.write8(STATUS, 1);
    bar.write8(STATUS, 3);
    bar.write32(GFSELECT, 0);
    bar.write32(GF, 1 << 3); // VIRTIO_NET_F_MTU: not offered
    bar.write32(GFSELECT, 1);
    bar.write32(GF, 3);
    bar.write8(STATUS, 11);
    expect(bar.read8(STATUS) & 8).toBe(0);
    expect(model.violations.join()).toMatch(/did not offer/);
  });

  it("keeps FEATURES_OK for a feature set it offered", () => {
    const { model, bar } = modern();
    bar.write8(STATUS, 1);
    bar.write8(STATUS, 3);
    bar.write32(GFSELECT, 0);
    bar.write32(GF, 1 << 5);
    bar.write32(GFSELECT, 1);
    bar.write32(GF, 3);
    bar.write8(STATUS, 11);
    expect(bar.read8(STATUS)).toBe(11);
    expect(model.violations).toEqual([]);
  });

  it("refuses FEATURES_OK, as qemu does, when ACCESS_PLATFORM is offered but not accepted", () => {
    const { bar } = modern();
    bar.write8(STATUS, 3);
    bar.write32(GFSELECT, 1);
    bar.write32(GF, 1);
    bar.write8(STATUS, 11);
    expect(bar.read8(STATUS) & 8).toBe(0);
  });

  it("answers a register access of the wrong width or offset with a DeviceProtocolError", () => {
    const { bar } = modern();
    expect(() => bar.read8(DF)).toThrow(DeviceProtocolError);
    expect(() => bar.read8(DF)).toThrow(/8-bit read of device_feature/);
    expect(() => bar.read32(STATUS)).toThrow(/device_status/);
    expect(() => bar.read16(0x02)).toThrow(/not at the start of any register/);
    expect(() => bar.read16(0x2000)).toThrow(/mac\[0\]/);
    const legacy = modern({ legacy: true }).model.pci.bar(0);
    expect(() => legacy.read8(0x00)).toThrow(/HOST_FEATURES/);
    expect(legacy.read8(0x14)).toBe(0x52); // the device configuration takes byte reads
  });

  it("records a notification before DRIVER_OK as a protocol violation", () => {
    const { model, bar } = modern();
    bar.write16(NOTIFY + 4, 1);
    expect(model.violations.join()).toMatch(/notification for queue 1 before DRIVER_OK/);
  });

  it("records status bits cleared without a reset, and DRIVER set before ACKNOWLEDGE", () => {
    const { model, bar } = modern();
    bar.write8(STATUS, 2);
    bar.write8(STATUS, 1);
    expect(model.violations.join("\n")).toMatch(/DRIVER set without ACKNOWLEDGE[\s\S]*clears bits/);
  });

  it("cannot be a transitional device offering ACCESS_PLATFORM, as qemu refuses it", () => {
    expect(() => modern({ legacy: true, accessPlatform: true })).toThrow(TypeError);
  });

  it("drops frames while the driver has not finished initialization", () => {
    const { model } = modern();
    expect(model.inject(new Uint8Array(60))).toBe(false);
    expect(model.counters.rxDropped).toBe(1);
  });

  it("does no DMA while bus mastering is disabled, and records the attempt", () => {
    const { model } = openRig();
    model.pci.config.poke16(PCI_COMMAND, model.pci.config.peek16(PCI_COMMAND) & ~PCI_COMMAND_MASTER);
    expect(model.inject(new Uint8Array(60))).toBe(false);
    expect(model.violations.join()).toMatch(/bus mastering is disabled/);
  });

  it("comes out of a reset promiscuous, like qemu, and a function-level reset resets it too", () => {
    const { model, dev } = openRig();
    dev.setPromisc(false);
    expect(model.promisc).toBe(false);
    model.pci.reset();
    expect(model.promisc).toBe(true);
    expect(model.status).toBe(0);
  });

  it("bumps config_generation when the link changes", () => {
    const { model, bar } = modern();
    const before = bar.read8(0x15);
    model.setLink(false);
    expect(bar.read8(0x15)).toBe((before + 1) & 0xff);
    expect(bar.read16(0x2006)).toBe(0);
    expect(bar.read8(0x1000)).toBe(2); // ISR: configuration change; reading clears it
    expect(bar.read8(0x1000)).toBe(0);
  });

  it("validates its options", () => {
    expect(() => modern({ queueSize: 100 })).toThrow(RangeError);
    expect(() => modern({ mac: new Uint8Array(5) })).toThrow(RangeError);
    expect(() => modern({ notifyOffMultiplier: 3 })).toThrow(RangeError);
    expect(() => new VirtioNetModel({ dma: {} as SimDma })).toThrow(TypeError);
    const m = modern().model;
    expect(() => m.connect(m)).toThrow(RangeError);
  });

  it("takes offered features as a BigInt or as a [low, high] pair", () => {
    expect(modern({ features: [0x20, 1] }).model.offeredFeatures).toBe((1n << 32n) | 0x20n);
    expect(modern({ features: 0x1_0000_0020n }).model.offeredFeatures).toBe(0x1_0000_0020n);
    expect(modern({ features: [0x20, 1], accessPlatform: true }).model.offeredFeatures).toBe((3n << 32n) | 0x20n);
  });

  it("drops a whole status write that sets FEATURES_OK with features it refuses, as qemu's virtio_set_status", () => {
    const { model, bar } = modern();
    bar.write8(STATUS, 1);
    bar.write8(STATUS, 3);
    bar.write32(GFSELECT, 0);
    bar.write32(GF, 1 << 3); // not offered
    bar.write8(STATUS, 3 | 8 | 0x80); // FEATURES_OK and FAILED together
    expect(bar.read8(STATUS)).toBe(3);
    bar.write8(STATUS, 3 | 0x80); // FAILED alone sticks
    expect(bar.read8(STATUS)).toBe(0x83);
  });

  it("breaks like qemu's virtio_error: stops its rings, sets DEVICE_NEEDS_RESET for a virtio 1.x driver, until a reset", () => {
    const { model, dev } = openRig({}, { rxRingSize: 16, linkTimeoutMs: 0 });
    model.breakDevice("test");
    model.breakDevice("a second error is not recorded again");
    expect(model.broken).toBe(true);
    expect(model.status & 0x40).toBe(0x40);
    expect(model.violations).toEqual([expect.stringMatching(/test \(fatal: the device needs a reset\)/)]);
    expect(model.inject(new Uint8Array(60)), "a broken device receives nothing").toBe(false);
    expect(model.rxBuffersAvailable).toBe(0);
    dev.close();
    expect(model.broken).toBe(false);
    expect(model.status).toBe(0);

    const legacy = openRig({ legacy: true }, { linkTimeoutMs: 0 });
    legacy.model.breakDevice("test");
    expect(legacy.model.broken).toBe(true);
    expect(legacy.model.status & 0x40, "no DEVICE_NEEDS_RESET for a legacy driver (qemu)").toBe(0);
    legacy.dev.close();
  });

  it("breaks when the driver runs avail.idx more than the ring ahead (qemu: \"Guest moved avail index\")", () => {
    const { model, dma } = openRig({}, { rxRingSize: 16, linkTimeoutMs: 0 });
    const bar = model.pci.bar(4);
    bar.write16(0x16, 0);
    const avail = dma.resolve(bar.read32(0x28) + bar.read32(0x2c) * 2 ** 32, 4);
    new Uint16Array(avail.buffer, avail.byteOffset, 2)[1] = 40;
    expect(model.inject(new Uint8Array(60))).toBe(false);
    expect(model.broken).toBe(true);
    expect(model.violations.join()).toMatch(/avail\.idx 40 is 40 ahead .*fatal/);
  });

  it("refuses an unknown completion mode, and offers ORDER_PLATFORM only when asked", () => {
    const dma = new SimDma();
    expect(() => new VirtioNetModel({ dma, completion: "later" as never })).toThrow(TypeError);
    expect(new VirtioNetModel({ dma }).offeredFeatures & (1n << 36n)).toBe(0n);
    expect(new VirtioNetModel({ dma, orderPlatform: true }).offeredFeatures & (1n << 36n)).toBe(1n << 36n);
  });
});
