/**
 * A device reset behind the driver's back (a function-level reset through sysfs, another
 * process): its queues are gone, and rxBatch returned 0 forever while txBatch accepted frames that
 * never reached the wire, with no error (found by the soak). The driver notices through
 * CTRL_EXT.DRV_LOAD, which only its init sets and only a reset clears.
 */
import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { DeviceProtocolError, DeviceTimeoutError } from "../../src/errors.ts";
import { STATS_POLL_CALLS } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { freeBuffers } from "../../src/mem/mempool.ts";
import { IXGBE_CTRL_EXT } from "../../src/drivers/ixgbe/ixgbe_type.ts";
import { allowViolations, batchWith, openSimPort, randomFrame, rng, txPool } from "./helpers.ts";

describe("ixgbe: a reset behind the driver's back", () => {
  it("makes readStats and linkSpeed throw, then rx/txBatch, and close() gives every buffer back", () => {
    const { model, dev } = openSimPort({ checked: true, rxRingSize: 64, txRingSize: 64, mempoolSize: 256 });
    allowViolations(model); // the reset itself is the fault
    const pool = txPool(dev, 256);
    const random = rng(7);
    const frames = Array.from({ length: 8 }, (_, i) => randomFrame(random, 60 + i, i));
    model.pci.reset();
    const stats = newStats();
    expect(() => dev.readStats(stats)).toThrow(DeviceProtocolError);
    expect(() => dev.readStats(stats)).toThrow(/reset behind the driver's back.*close\(\) it/);
    expect(() => dev.linkSpeed()).toThrow(DeviceProtocolError);
    const batch = batchWith(pool, frames);
    expect(() => dev.txBatch(0, batch, batch.length)).toThrow(DeviceProtocolError);
    freeBuffers(batch, 0, batch.length); // refused: still the caller's
    expect(() => dev.rxBatch(0, new Int32Array(8), 8)).toThrow(DeviceProtocolError);
    dev.close();
    expect(pool.available).toBe(pool.count);
  });

  // Asynchronous too: there the model fetched descriptors at every TDT write even for a queue the
  // reset had disabled, and threw from the doorbell write on the zeroed ring registers, after
  // txBatch had taken the buffers (the soak's 20 M run: a buffer freed twice at close()).
  it.each([false, true])("is noticed from rx/txBatch alone within STATS_POLL_CALLS calls, without losing a buffer (asynchronous model: %s)", (asynchronous) => {
    const { model, dev } = openSimPort({ checked: true, rxRingSize: 64, txRingSize: 64, mempoolSize: 256 }, { asynchronous, seed: 3 });
    allowViolations(model);
    const pool = txPool(dev, 256);
    const random = rng(9);
    const bufs = new Int32Array(4);
    // Traffic first, so that the rings are in use when the reset comes.
    const RESET_AT = 40;
    let calls = 0;
    let error: unknown = null;
    for (; calls < RESET_AT + STATS_POLL_CALLS + 2 && error === null; calls++) {
      if (calls === RESET_AT) model.pci.reset();
      const batch = batchWith(pool, [randomFrame(random, 64, calls)]);
      let sent = 0;
      try {
        const n = dev.rxBatch(0, bufs, 4);
        freeBuffers(bufs, 0, n);
        sent = dev.txBatch(0, batch, 1);
        if (asynchronous) model.step();
      } catch (e) {
        error = e;
      }
      freeBuffers(batch, sent, 1 - sent); // what txBatch did not take (or a throw refused) is ours
    }
    expect(error).toBeInstanceOf(DeviceProtocolError);
    expect(String(error)).toMatch(/reset behind the driver's back/);
    expect(calls - RESET_AT).toBeLessThanOrEqual(STATS_POLL_CALLS + 1);
    dev.close();
    expect(pool.available).toBe(pool.count);
  });

  it("takes registers that read all ones (a device that is gone) for a dead device too", () => {
    const { model, dev } = openSimPort();
    allowViolations(model);
    model.regs.poke32(IXGBE_CTRL_EXT, 0xffffffff);
    expect(() => dev.linkSpeed()).toThrow(/no longer answers/);
    dev.close();
  });
});

describe("ixgbe close() with a reset that hangs", () => {
  it("keeps the rings' buffers while the reset is unconfirmed, and a later close() retries and gives them back", () => {
    const { model, dev } = openSimPort({ checked: true, rxRingSize: 64, txRingSize: 64, mempoolSize: 256 });
    allowViolations(model);
    const pool = txPool(dev, 64);
    const random = rng(11);
    model.setLink(false); // nothing is sent: the frames stay in the transmit ring
    const batch = batchWith(pool, Array.from({ length: 8 }, (_, i) => randomFrame(random, 60, i)));
    expect(dev.txBatch(0, batch, 8)).toBe(8);
    model.faults.resetStuck = true;
    expect(() => dev.close()).toThrow(DeviceTimeoutError);
    expect(pool.available).toBe(56); // the device may still read them
    expect(() => dev.close()).toThrow(DeviceTimeoutError); // still hung
    model.faults.resetStuck = false;
    dev.close();
    expect(pool.available).toBe(64);
    dev.close(); // a no-op now
  });
});
