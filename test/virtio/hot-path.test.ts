import { describe, expect, it } from "vitest";
import { freeBuffers } from "../../src/mem/mempool.ts";
import { fewestGcs } from "../helpers/gc.ts";
import { openRig } from "./helpers.ts";
import { instantDevice } from "./instant-device.ts";

describe("virtio hot path", () => {
  it("forwards a million packets through rxBatch and txBatch without allocating", async () => {
    // No data-path offloads: the instant device writes no net header (num_buffers, flags).
    const { model, dev, dma } = openRig({ queueSize: 512, offloads: false });
    const device = instantDevice(model, dma, dev.headerLength, 60);
    const bufs = new Int32Array(32);
    let forwarded = 0;
    const run = (packets: number) => {
      while (forwarded < packets) {
        device.step();
        const n = dev.rxBatch(0, bufs, 32);
        const sent = dev.txBatch(0, bufs, n);
        freeBuffers(bufs, sent, n - sent);
        forwarded += n;
      }
    };
    run(100_000); // warm up: let V8 optimize the loops
    // The best of up to three windows (fewestGcs says why); an allocating loop collects in each.
    const { fewest, counts } = await fewestGcs(() => {
      forwarded = 0;
      run(1_000_000);
    });
    expect(forwarded).toBeGreaterThanOrEqual(1_000_000);
    expect(fewest, `collections per window: ${counts.join(", ")}`).toBeLessThanOrEqual(1);
  });
});
