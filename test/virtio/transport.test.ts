import { describe, expect, it } from "vitest";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { findVirtioCapabilities, ModernTransport } from "../../src/drivers/virtio/transport-modern.ts";
import { LegacyTransport } from "../../src/drivers/virtio/transport-legacy.ts";
import { DeviceProtocolError, NotSupportedError } from "../../src/errors.ts";
import type { Mmio } from "../../src/pci/mmio.ts";
import { PCI_CAP_ID_VNDR, type PciFunction } from "../../src/pci/pci-function.ts";
import { TracingMmio, type RegisterAccess } from "../../src/pci/tracing-mmio.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { SimMmio } from "../../src/sim/sim-mmio.ts";
import { SimPciFunction } from "../../src/sim/sim-pci.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";

/** struct virtio_pci_cap after id/next: cap_len, cfg_type, bar, id, padding, offset, length [, extra]. */
function cap(type: number, bar: number, offset: number, length: number, extra?: number, capLen = extra === undefined ? 16 : 20) {
  const body = new Uint8Array(capLen - 2);
  body[0] = capLen;
  body[1] = type;
  body[2] = bar;
  const put = (at: number, v: number) => {
    for (let i = 0; i < 4; i++) body[at + i] = (v >>> (8 * i)) & 0xff;
  };
  put(6, offset);
  put(10, length);
  if (extra !== undefined && capLen >= 20) put(14, extra);
  return body;
}

function pciWithCaps(caps: Uint8Array[], bars: (SimMmio | null)[] = [null, null, new SimMmio("BAR2", 0x2000)]) {
  const pci = new SimPciFunction({ address: "sim:caps", vendorId: 0x1af4, deviceId: 0x1041, bars });
  for (const body of caps) pci.addCapability(PCI_CAP_ID_VNDR, body);
  return pci;
}

/** The PciFunction of a model, with every BAR access reported to `log`. */
function traced(pci: PciFunction, log: (RegisterAccess & { bar: number })[]): PciFunction {
  const bars = new Map<number, Mmio>();
  return Object.assign(Object.create(pci) as PciFunction, {
    bar(index: number): Mmio {
      let bar = bars.get(index);
      if (bar === undefined) {
        bar = new TracingMmio(pci.bar(index), (op, offset, width, value) => log.push({ op, offset, width, value, bar: index }));
        bars.set(index, bar);
      }
      return bar;
    },
    barKind: (index: number) => pci.barKind(index),
    enableDma: () => pci.enableDma(),
    config: pci.config,
    address: pci.address,
    vendorId: pci.vendorId,
    deviceId: pci.deviceId,
  });
}

describe("virtio PCI transports", () => {
  it("finds the common, notify, ISR and device structures through vendor capabilities", () => {
    const model = new VirtioNetModel({ dma: new SimDma(), notifyOffMultiplier: 2 });
    const caps = findVirtioCapabilities(model.pci)!;
    expect(caps.common).toEqual({ bar: 4, offset: 0x0000, length: 0x1000 });
    expect(caps.isr).toEqual({ bar: 4, offset: 0x1000, length: 0x1000 });
    expect(caps.device).toEqual({ bar: 4, offset: 0x2000, length: 0x1000 });
    expect(caps.notify).toEqual({ bar: 4, offset: 0x3000, length: 0x1000, multiplier: 2 });
  });

  it("skips capabilities naming a reserved or missing BAR, and short notify capabilities; the first usable one wins", () => {
    const pci = pciWithCaps([
      cap(1, 7, 0x000, 0x100), // reserved BAR value
      cap(1, 3, 0x000, 0x100), // BAR3 does not exist
      cap(2, 2, 0x800, 0x100, undefined, 16), // notify capability without its multiplier
      cap(1, 2, 0x100, 0x100),
      cap(1, 2, 0x300, 0x100), // a second common structure: ignored
      cap(2, 2, 0x400, 0x100, 4),
      cap(5, 0, 0, 0, 0), // PCI configuration access: not used
    ]);
    const caps = findVirtioCapabilities(pci)!;
    expect(caps.common).toEqual({ bar: 2, offset: 0x100, length: 0x100 });
    expect(caps.notify).toEqual({ bar: 2, offset: 0x400, length: 0x100, multiplier: 4 });
    expect(caps.isr).toBeNull();
    expect(caps.device).toBeNull();
  });

  it("tells the user to use the legacy transport when there are no virtio capabilities", () => {
    const pci = pciWithCaps([]);
    expect(findVirtioCapabilities(pci)).toBeNull();
    expect(() => new ModernTransport(pci)).toThrow(NotSupportedError);
    expect(() => new ModernTransport(pci)).toThrow(/transport 'legacy'/);
  });

  it("rejects a capability that points outside its BAR", () => {
    const pci = pciWithCaps([cap(1, 2, 0x1f00, 0x200), cap(2, 2, 0x400, 0x100, 4)]);
    expect(() => new ModernTransport(pci)).toThrow(DeviceProtocolError);
    expect(() => new ModernTransport(pci)).toThrow(/common configuration capability is malformed/);
  });

  it("reads the 64-bit device features as two 32-bit halves", () => {
    const model = new VirtioNetModel({ dma: new SimDma() });
    expect(new ModernTransport(model.pci).readDeviceFeatures()).toBe(model.offeredFeatures);
  });

  it("needs an I/O-port BAR0 for the legacy transport", () => {
    const model = new VirtioNetModel({ dma: new SimDma() });
    expect(() => new LegacyTransport(model.pci)).toThrow(/BAR0 is not an I\/O-port BAR/);
  });

  it("accesses the legacy header only at register offsets with their natural widths", () => {
    const dma = new SimDma();
    const model = new VirtioNetModel({ dma, legacy: true });
    const log: (RegisterAccess & { bar: number })[] = [];
    createVirtioDevice(traced(model.pci, log), dma, { linkTimeoutMs: 0 });
    const widths: Record<number, number> = { 0x00: 4, 0x04: 4, 0x08: 4, 0x0c: 2, 0x0e: 2, 0x10: 2, 0x12: 1, 0x13: 1 };
    for (const a of log) {
      expect(a.bar).toBe(0);
      expect(a.width).toBe(a.offset >= 0x14 ? (a.offset === 0x1a ? 2 : 1) : widths[a.offset]);
    }
    // The queue address is a page frame number; the queue size is never written.
    const pfns = log.filter((a) => a.op === "write" && a.offset === 0x08).map((a) => a.value);
    expect(pfns).toHaveLength(3);
    for (const pfn of pfns) expect(pfn).toBeGreaterThanOrEqual(0x100000); // SimDma IOVAs start at 4 GiB
    expect(log.some((a) => a.op === "write" && a.offset === 0x0c)).toBe(false);
    expect(log.filter((a) => a.offset === 0x10)).toHaveLength(2); // receive kick, control command
  });

  it("writes each queue's 64-bit ring addresses as low and high halves on the modern transport", () => {
    const dma = new SimDma();
    const model = new VirtioNetModel({ dma });
    const log: (RegisterAccess & { bar: number })[] = [];
    createVirtioDevice(traced(model.pci, log), dma, { linkTimeoutMs: 0 });
    const ringWrites = log.filter((a) => a.op === "write" && a.offset >= 0x20 && a.offset < 0x38);
    expect(ringWrites).toHaveLength(3 * 6);
    for (const a of ringWrites) expect(a.width).toBe(4);
    const highs = ringWrites.filter((a) => (a.offset & 4) !== 0);
    for (const a of highs) expect(a.value).toBeGreaterThanOrEqual(1); // above 4 GiB: the high half matters
  });
});
