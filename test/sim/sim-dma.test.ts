import { describe, expect, it } from "vitest";
import { DmaError, DmaFaultError } from "../../src/errors.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";

describe("SimDma", () => {
  it("hands out zeroed, aligned regions with IOVAs above 4 GiB", () => {
    const dma = new SimDma();
    const a = dma.allocate(100, { align: 4096 });
    const b = dma.allocate(64);
    expect(a.iova % 4096).toBe(0);
    expect(a.iova).toBeGreaterThanOrEqual(2 ** 32);
    expect(b.iova).toBeGreaterThan(a.iova + 100);
    expect(a.bytes.every((x) => x === 0)).toBe(true);
    expect(a.iovaOf(10)).toBe(a.iova + 10);
  });

  it("resolve() gives the device a view aliasing the driver's memory", () => {
    const dma = new SimDma();
    const r = dma.allocate(256);
    const devView = dma.resolve(r.iova + 16, 4);
    devView.set([1, 2, 3, 4]);
    expect(Array.from(r.bytes.subarray(16, 20))).toEqual([1, 2, 3, 4]);
  });

  it("faults on an IOVA outside every allocation, naming the address", () => {
    const dma = new SimDma("sim 0000:00:01.0");
    const r = dma.allocate(256);
    expect(() => dma.resolve(r.iova + 250, 16, "RX write")).toThrow(DmaFaultError);
    expect(() => dma.resolve(r.iova - 1, 1)).toThrow(DmaFaultError);
    expect(() => dma.resolve(0x1234, 4, "descriptor fetch")).toThrow(/descriptor fetch of 4 bytes at IOVA 0x1234/);
    expect(dma.contains(r.iova, 256)).toBe(true);
    expect(dma.contains(r.iova, 257)).toBe(false);
  });

  it("faults on every access after close, as an IOMMU does once the mapping is gone", () => {
    const dma = new SimDma();
    const r = dma.allocate(64);
    expect(dma.closed).toBe(false);
    dma.close();
    expect(dma.closed).toBe(true);
    expect(() => dma.resolve(r.iova, 4)).toThrow(DmaFaultError);
    expect(() => dma.allocate(64)).toThrow(DmaError);
  });

  it("refuses allocations beyond its limit with a DmaError", () => {
    const dma = new SimDma("small", { limitBytes: 1000 });
    dma.allocate(600);
    expect(() => dma.allocate(600)).toThrow(/out of DMA memory/);
  });

  it("rejects a bad size or alignment with a RangeError", () => {
    const dma = new SimDma();
    expect(() => dma.allocate(0)).toThrow(RangeError);
    expect(() => dma.allocate(64, { align: 3 })).toThrow(RangeError);
  });
});
