import type { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { SpscRing } from "../../src/threads/spsc-ring.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";

const PRODUCER = new URL("./workers/ring-producer.ts", import.meta.url);
const CONSUMER = new URL("./workers/ring-consumer.ts", import.meta.url);

/** A worker and the one message it posts before it ends (rejected on an error or an exit without one). */
function start<T>(entry: URL, workerData: unknown): { worker: Worker; result: Promise<T> } {
  const worker = startTsWorker(entry, { workerData });
  const result = new Promise<T>((resolve, reject) => {
    let message: T | undefined;
    worker.on("message", (m: T) => (message = m));
    worker.on("error", reject);
    worker.on("exit", (code) => (message !== undefined ? resolve(message) : reject(new Error(`${entry.pathname} exited with ${code} and no result`))));
  });
  return { worker, result };
}

interface Consumed {
  received: number;
  mismatch: { at: number; got: number } | null;
  emptySpins: number;
  left: number;
}

async function pass(total: number, capacity: number, maxBatch: number, seed: number) {
  const ring = SpscRing.create(capacity, { name: `test ring ${capacity}` });
  const common = { ring: ring.shared(), total, maxBatch };
  const producer = start<{ sent: number; fullSpins: number }>(PRODUCER, { ...common, seed });
  const consumer = start<Consumed>(CONSUMER, { ...common, seed: seed + 1 });
  const consumed = await consumer.result.catch(async (e: unknown) => {
    await producer.worker.terminate();
    throw e;
  });
  // A consumer that stopped at a wrong item leaves the producer spinning on a full ring.
  if (consumed.mismatch !== null) await producer.worker.terminate();
  expect(consumed.mismatch).toBeNull();
  const produced = await producer.result;
  expect(produced.sent).toBe(total);
  expect(consumed.received).toBe(total);
  expect(consumed.left).toBe(0);
  expect(ring.count).toBe(0);
  return { produced, consumed };
}

describe("SpscRing between two worker threads", () => {
  it("hands ten million sequence numbers from a producer thread to a consumer thread: none lost, none twice, in order", async () => {
    await pass(10_000_000, 1024, 32, 1);
  }, 120_000);

  it("keeps them in order through a ring of 4 slots, batches larger than the ring included", async () => {
    const { produced, consumed } = await pass(1_000_000, 4, 8, 7);
    // Such a small ring is full and empty all the time: both sides had to wait for the other.
    expect(produced.fullSpins + consumed.emptySpins).toBeGreaterThan(0);
  }, 120_000);

  it("keeps them in order with random bursts of up to a whole ring", async () => {
    await pass(3_000_000, 256, 256, 99);
  }, 120_000);
});
