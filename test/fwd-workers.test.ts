/**
 * examples/lib/fwd-workers.ts, the part of `fwd --workers` a user cannot see from the outside:
 * a worker whose device breaks stops the app with that worker's error, after every worker has
 * stopped and every pair is back (the devices then close, with every buffer home).
 */
import { describe, expect, it } from "vitest";
import { newStats } from "../src/device.ts";
import { DeviceProtocolError, IxyError } from "../src/errors.ts";
import { createVirtioDevice } from "../src/drivers/virtio/virtio-device.ts";
import { VirtioNetModel } from "../src/sim/virtio/virtio-model.ts";
import { deliverPostedWrites } from "../src/sim/sim-mmio.ts";
import { SimDma } from "../src/sim/sim-dma.ts";
import { runForwardWorkers } from "../examples/lib/fwd-workers.ts";
import { account } from "./contract/accounting.ts";
import { allowViolations, openSimPort } from "./ixgbe/helpers.ts";

const FWD = new URL("../examples/fwd.ts", import.meta.url);

describe("fwd --workers: failures", () => {
  it("a reset behind the driver's back, found by the statistics, stops every worker; the app fails with the device's error and the devices close cleanly", async () => {
    const dma = new SimDma("fwd-workers test");
    const options = { rxQueues: 2, txQueues: 2, rxRingSize: 64, txRingSize: 64, mempoolSize: 256, checked: true };
    const a = openSimPort(options, {}, dma);
    const b = openSimPort(options, {}, dma);
    allowViolations(b.model); // the reset is the fault
    let seconds = 0;
    const run = runForwardWorkers(a.dev, b.dev, {
      workers: 2, cores: [null, null], batch: 32, txRetries: 0, seconds: 30, entry: FWD,
      everySecond: () => {
        // What fwd's statistics do once a second; the second time, port b has been reset.
        if (++seconds === 2) b.model.pci.reset();
        for (const d of [a.dev, b.dev]) d.readStats(newStats());
      },
      pump: () => deliverPostedWrites(),
    });
    await expect(run).rejects.toThrow(DeviceProtocolError);
    await expect(run).rejects.toThrow(/sim:ixgbe\d: the device was reset behind the driver's back/);
    // Every pair is back: the devices close (close() with a pair out would throw QueueSharedError).
    a.dev.close();
    b.dev.close();
    account(dma, []);
  }, 60_000);

  it("a device that returns a bad used id to a worker: the app fails with that worker's error, naming it", async () => {
    const dma = new SimDma("fwd-workers test");
    const models = [0, 1].map((i) => new VirtioNetModel({ dma, address: `sim:fwdw${i}`, queuePairs: 2 }));
    const [a, b] = models.map((m) => createVirtioDevice(m.pci, dma, { rxQueues: 2, txQueues: 2, linkTimeoutMs: 0, checked: true }));
    // Traffic of many flows on port a, so that both workers forward; then port b lies.
    const frames = Array.from({ length: 16 }, (_, f) => {
      const frame = new Uint8Array(60);
      frame.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0, 0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 4, f]);
      return frame;
    });
    let rounds = 0;
    const run = runForwardWorkers(a!, b!, {
      workers: 2, cores: [null, null], batch: 32, txRetries: 0, seconds: 30, entry: FWD,
      everySecond: () => {},
      pump: () => {
        deliverPostedWrites();
        for (const f of frames) models[0]!.inject(f);
        if (++rounds === 2000) models[1]!.faults.badUsedId = true;
      },
    });
    await expect(run).rejects.toThrow(IxyError);
    await expect(run).rejects.toThrow(/^fwd worker \d \(queue pair \d\): DeviceProtocolError: sim:fwdw1 TX queue \d/);
    // The owning thread sees the broken queue too (shared state); the pairs are back, so close() works.
    a!.close();
    b!.close();
    account(dma, []);
  }, 60_000);
});
