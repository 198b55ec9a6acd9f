import { describe, expect, it } from "vitest";
import * as ixy from "../src/index.ts";

describe("driver choice by vendor and device id", () => {
  it.each([
    [0x8086, 0x10fb, "ixgbe"], // 82599ES SFP+ (X520)
    [0x8086, 0x1528, "ixgbe"], // X540-AT2
    [0x8086, 0x1563, "ixgbe"], // X550T
    [0x1af4, 0x1000, "virtio"], // transitional virtio-net
    [0x1af4, 0x1041, "virtio"], // modern virtio-net
    [0x1af4, 0x1009, null], // virtio 9p: not a NIC
    [0x8086, 0x1533, null], // I210: another Intel NIC
    [0x10ec, 0x8168, null], // Realtek
  ])("%s:%s goes to %s", (vendor, device, driver) => {
    expect(ixy.driverFor(vendor, device)).toBe(driver);
  });

  it("every listed id maps to its driver", () => {
    for (const d of ixy.IXGBE_DEVICE_IDS) expect(ixy.driverFor(0x8086, d.deviceId)).toBe("ixgbe");
    for (const d of ixy.VIRTIO_DEVICE_IDS) expect(ixy.driverFor(0x1af4, d.deviceId)).toBe("virtio");
  });
});

describe("the public entry point", () => {
  it("runs a forwarder between two device models with nothing but its exports", () => {
    const dma = new ixy.SimDma();
    const a = new ixy.Ixgbe82599Model({ dma, address: "sim:a" });
    const b = new ixy.VirtioNetModel({ dma, address: "sim:b" });
    const out: Uint8Array[] = [];
    b.onTransmit = (f) => out.push(f.slice());
    const nicA = ixy.createIxgbeDevice(a.pci, dma, { linkTimeoutMs: 0 });
    const nicB = ixy.createVirtioDevice(b.pci, dma, { linkTimeoutMs: 0 });
    const frames = Array.from({ length: 100 }, (_, i) => Uint8Array.from({ length: 60 + i * 10 }, (_, j) => (i * 7 + j) & 0xff));
    const bufs = new Int32Array(32);
    for (const f of frames) {
      expect(a.inject(f)).toBe(true);
      const n = nicA.rxBatch(0, bufs, 32);
      expect(nicB.txBatch(0, bufs, n)).toBe(n);
    }
    expect(out.length).toBe(frames.length);
    out.forEach((f, i) => expect(Buffer.compare(f, frames[i]!)).toBe(0));
    nicA.close();
    nicB.close();
    dma.close();
  });
});
