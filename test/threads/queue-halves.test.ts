/**
 * The halves of a shared queue pair (src/threads/queue-halves.ts): each half once, and never a
 * half and the whole pair at once. (Both halves driving traffic from two threads: pipeline.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { IxyError } from "../../src/errors.ts";
import { attachReceiveHalf } from "../../src/threads/queue-halves.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";
import { VARIANTS } from "../contract/rigs.ts";
import { account } from "../contract/accounting.ts";

const PROBE = new URL("./workers/half-probe.ts", import.meta.url);

describe("queue halves", () => {
  it("claim one queue of a pair each, refuse a second claim of it and the whole pair meanwhile", async () => {
    const rig = VARIANTS[0]!.open({ ringSize: 64, checked: true });
    const pair = rig.dev.shareQueuePair(0);
    expect(() => attachReceiveHalf(pair)).toThrow(IxyError); // this thread has its own buffer table
    const worker = startTsWorker(PROBE, { workerData: { pair } });
    const steps = await new Promise<[string, string][]>((resolve, reject) => {
      worker.on("message", resolve);
      worker.on("error", reject);
    });
    await worker.terminate();
    expect(steps).toEqual([
      ["receive half", "ok"],
      ["receive half again", "QueueSharedError"],
      ["whole pair while a half is out", "QueueSharedError"],
      ["transmit half", "ok"],
      ["transmit half again", "QueueSharedError"],
      ["rxBatch", "ok"],
      ["txBatch of nothing", "ok"],
      ["whole pair with the transmit half out", "QueueSharedError"],
      ["rxBatch after detach", "QueueSharedError"],
      ["whole pair after both detached", "ok"],
      ["a half while the whole pair is out", "QueueSharedError"],
    ]);
    expect(rig.dev.reclaimQueuePair(0)).toBe(true);
    rig.dev.close();
    account(rig.dma, []);
  }, 30_000);
});
