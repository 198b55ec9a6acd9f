import { describe, expect, it } from "vitest";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { IXGBE_RXCTRL, IXGBE_RXDCTL } from "../../src/drivers/ixgbe/ixgbe_type.ts";
import { DeviceTimeoutError } from "../../src/errors.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { bufferWith, openSimPort, txPool } from "./helpers.ts";

describe("ixgbe link", () => {
  it("reports 10 Gbit/s once the link is up", () => {
    const { dev } = openSimPort();
    expect(dev.linkSpeed()).toBe(10_000);
  });

  it("waits at init for a link that comes up late", () => {
    const start = performance.now();
    const { dev } = openSimPort({ linkTimeoutMs: 2000 }, { linkUpDelayMs: 60 });
    expect(performance.now() - start).toBeGreaterThanOrEqual(60);
    expect(dev.linkSpeed()).toBe(10_000);
  });

  it("makes init fail with a clear DeviceTimeoutError when the link stays down", () => {
    const dma = new SimDma();
    const model = new Ixgbe82599Model({ dma, address: "0000:05:00.1", linkUp: false });
    const start = performance.now();
    let error: unknown;
    try {
      createIxgbeDevice(model.pci, dma, { linkTimeoutMs: 100 });
    } catch (e) {
      error = e;
    }
    expect(performance.now() - start).toBeGreaterThanOrEqual(100);
    expect(error).toBeInstanceOf(DeviceTimeoutError);
    const message = (error as Error).message;
    expect(message).toContain("0000:05:00.1: the link did not come up within 100 ms");
    expect(message).toContain("check the cable");
    expect(message).toContain("linkTimeoutMs: 0");
    // Nobody can close a device that failed to open: the driver reset it on the way out.
    expect(model.resets).toBe(2);
    expect(model.regs.peek32(IXGBE_RXCTRL)).toBe(0);
    expect(model.regs.peek32(IXGBE_RXDCTL(0))).toBe(0);
  });

  it("does not wait when linkTimeoutMs is 0, and reports 0 Mbit/s while the link is down", () => {
    const start = performance.now();
    const { model, dev } = openSimPort({ linkTimeoutMs: 0 }, { linkUp: false, linkUpDelayMs: 5000 });
    expect(performance.now() - start).toBeLessThan(1000);
    expect(dev.linkSpeed()).toBe(0);
    model.setLink(true);
    expect(dev.linkSpeed()).toBe(0); // still negotiating
  });

  it("goes down when the cable is pulled and holds transmission until it is back", () => {
    const { model, dev } = openSimPort();
    const sent: Uint8Array[] = [];
    model.onTransmit = (f) => sent.push(f);
    model.setLink(false);
    expect(dev.linkSpeed()).toBe(0);
    const pool = txPool(dev, 4);
    expect(dev.txBatch(0, Int32Array.of(bufferWith(pool, new Uint8Array(64).fill(1))), 1)).toBe(1);
    expect(model.inject(new Uint8Array(64))).toBe(false); // nothing arrives either
    expect(sent.length).toBe(0);
    model.setLink(true);
    expect(dev.linkSpeed()).toBe(10_000);
    expect(sent.length).toBe(1);
  });
});
