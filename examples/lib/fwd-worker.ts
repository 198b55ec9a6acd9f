/**
 * One worker of `fwd --workers N` (fwd-workers.ts starts it): pins itself to its core, attaches
 * queue pair `index` of both ports and forwards between them, run to completion, until the main
 * thread sets its stop word. Nothing on its path locks, allocates or posts a message: the only
 * shared writes are its own counters, on a cache line of their own.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { SharedQueuePair } from "../../src/drivers/queue-sharing.ts";
import { attachQueuePair, type AttachedQueuePair } from "../../src/threads/queue-pair.ts";
import { attachPool, type Mempool } from "../../src/mem/mempool.ts";
import { pinThread } from "../../src/threads/affinity.ts";
import { forward, newForwardCounts } from "./forward.ts";
import { COUNTER_STRIDE, WorkerCounter, type WorkerData, type WorkerReport } from "./fwd-workers.ts";

const data = workerData as WorkerData;
const { index, core, batch, txRetries, control } = data;
const counters = new Float64Array(data.counters.buffer, data.counters.byteOffset + index * COUNTER_STRIDE * 8, COUNTER_STRIDE);
const attached: AttachedQueuePair[] = [];
const pools: Mempool[] = [];

function report(r: WorkerReport): void {
  parentPort!.postMessage(r);
}

try {
  if (core !== null) pinThread(core, `fwd worker ${index}`);
  const [pairA, pairB] = data.pairs as [SharedQueuePair, SharedQueuePair];
  const a = attachQueuePair(pairA);
  attached.push(a);
  const b = attachQueuePair(pairB);
  attached.push(b);
  // Pools whose buffers reach this worker's queues (fwd --tx-first's): freed into here.
  for (const p of data.pools) pools.push(attachPool(p));
  report({ kind: "ready", index });
  const bufs = new Int32Array(batch);
  const ab = newForwardCounts();
  const ba = newForwardCounts();
  // The stop word is read once per 64 rounds: a plain load, but it is another core's line.
  while (Atomics.load(control, 0) === 0) {
    for (let k = 0; k < 64; k++) {
      forward(a, b, bufs, batch, txRetries, ab);
      forward(b, a, bufs, batch, txRetries, ba);
    }
    counters[WorkerCounter.forwardedAB] = ab.forwarded;
    counters[WorkerCounter.forwardedBA] = ba.forwarded;
    counters[WorkerCounter.dropped] = ab.dropped + ba.dropped;
    counters[WorkerCounter.droppedAB] = ab.dropped;
    counters[WorkerCounter.droppedBA] = ba.dropped;
    counters[WorkerCounter.rounds]! += 64;
  }
  for (const q of attached) q.detach();
  for (const p of pools) p.close();
  report({ kind: "stopped", index });
} catch (e) {
  for (const q of attached) q.detach();
  for (const p of pools) p.close();
  const error = e as Error;
  report({ kind: "failed", index, name: error.name ?? "Error", message: error.message ?? String(e) });
}
