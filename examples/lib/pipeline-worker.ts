/**
 * One worker of the pipeline (pipeline-workers.ts starts two): pins itself to its core and runs
 * its stage (pipeline-stages.ts) until told to stop, then finishes in the order that
 * pipeline-workers.ts describes. Nothing on the loop locks, allocates or posts a message.
 */
import { parentPort, workerData } from "node:worker_threads";
import { attachPool, type Mempool } from "../../src/mem/mempool.ts";
import { pinThread } from "../../src/threads/affinity.ts";
import { attachReceiveHalf, attachTransmitHalf, type AttachedReceiveHalf, type AttachedTransmitHalf } from "../../src/threads/queue-halves.ts";
import { SpscRing } from "../../src/threads/spsc-ring.ts";
import { newProcessStage, newReceiveStage, processStep, receiveStep } from "./pipeline-stages.ts";
import { COUNTER_STRIDE, Control, ProcCounter, Role, RxCounter, type PipelineReport, type PipelineWorkerData } from "./pipeline-workers.ts";

const data = workerData as PipelineWorkerData;
const { role, control, batch } = data;
const counters = new Float64Array(data.counters.buffer, data.counters.byteOffset + (role === Role.receive ? 0 : COUNTER_STRIDE * 8), COUNTER_STRIDE);
/** Rounds between two looks at the stop word (another core's line) and two counter updates. */
const ROUNDS = 64;

function report(r: PipelineReport): void {
  parentPort!.postMessage(r);
}

/** Waits (spinning, calling `meanwhile`) until control[word] is set. */
function awaitWord(word: number, meanwhile: () => void): void {
  while (Atomics.load(control, word) === 0) meanwhile();
}

function receiveWorker(): void {
  let half: AttachedReceiveHalf | null = null;
  let pool: Mempool | null = null;
  try {
    if (data.core !== null) pinThread(data.core, "pipeline receive worker");
    half = attachReceiveHalf(data.pair);
    pool = half.rxPool;
    pool.acceptReturns(data.returns);
    const s = newReceiveStage(half, pool, SpscRing.fromShared(data.ring), batch);
    Atomics.add(control, Control.ready, 1);
    while (Atomics.load(control, Control.stop) === 0) {
      for (let k = 0; k < ROUNDS; k++) receiveStep(s);
      counters[RxCounter.received] = s.received;
      counters[RxCounter.dropped] = s.dropped;
    }
    // The last enqueue above happens-before this store: the process worker that loads it finds them all.
    Atomics.store(control, Control.rxDone, 1);
    const p = pool;
    awaitWord(Control.procDone, () => p.collectReturns());
    half.detach(); // closes the pool here: collects what came back since
    report({ kind: "stopped", role });
  } catch (e) {
    Atomics.store(control, Control.rxDone, 1);
    // The process worker may still free into the return ring until it is done: wait for it.
    const p = pool;
    try {
      awaitWord(Control.procDone, () => p?.collectReturns());
    } catch {
      // (collecting failed too: the first error is the one to report)
    }
    half?.detach();
    const error = e as Error;
    report({ kind: "failed", role, name: error.name ?? "Error", message: error.message ?? String(e) });
  }
}

function processWorker(): void {
  let half: AttachedTransmitHalf | null = null;
  let pool: Mempool | null = null;
  try {
    if (data.core !== null) pinThread(data.core, "pipeline process worker");
    // Before the transmit queue: its reclaim frees the receive pool's buffers, from now on into the return ring.
    pool = attachPool(data.pair.rxPool, { returns: data.returns });
    half = attachTransmitHalf(data.pair);
    const ring = SpscRing.fromShared(data.ring);
    const s = newProcessStage(half, ring, batch, data.txRetries);
    Atomics.add(control, Control.ready, 1);
    const publish = () => {
      counters[ProcCounter.processed] = s.processed;
      counters[ProcCounter.sent] = s.sent;
      counters[ProcCounter.filtered] = s.filtered;
      counters[ProcCounter.dropped] = s.dropped;
    };
    for (;;) {
      // Read before the rounds: once it is set, the rounds after it see every frame received.
      const rxDone = Atomics.load(control, Control.rxDone) !== 0;
      for (let k = 0; k < ROUNDS; k++) processStep(s);
      publish();
      if (rxDone && s.pending === 0 && ring.count === 0) break;
    }
    publish();
    half.detach();
    pool.close(); // no more frees in this thread
    // Every free of this thread (the last return enqueued) happens-before this store.
    Atomics.store(control, Control.procDone, 1);
    report({ kind: "stopped", role });
  } catch (e) {
    half?.detach();
    pool?.close();
    Atomics.store(control, Control.procDone, 1);
    const error = e as Error;
    report({ kind: "failed", role, name: error.name ?? "Error", message: error.message ?? String(e) });
  }
}

if (role === Role.receive) receiveWorker();
else processWorker();
