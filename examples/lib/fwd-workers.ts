/**
 * `fwd --workers N`: one worker_thread per queue pair, each pinned to its core, each owning
 * queue pair i of both ports (NicDevice.shareQueuePair) and the pair's receive pools. The main
 * thread keeps the devices: it reads their statistics once a second (the pairs' counters are in
 * shared memory, ixgbe's hardware counters are registers only it reads), runs the device models
 * in --sim mode, and on SIGINT/SIGTERM, at the end of --seconds, or when a worker fails: stops
 * every worker, waits until each has detached its pairs, takes the pairs back and only then
 * lets the caller close the devices (which unmaps the rings the workers used).
 */
import type { Worker } from "node:worker_threads";
import type { NicDevice } from "../../src/device.ts";
import type { SharedQueuePair } from "../../src/drivers/queue-sharing.ts";
import type { Mempool, SharedPool } from "../../src/mem/mempool.ts";
import { IxyError } from "../../src/errors.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";
import { onStopSignal } from "./cli.ts";

/** Each worker's counters: a 128-byte block of Float64s, so that no two workers write one cache line. */
export const COUNTER_STRIDE = 16;
export const WorkerCounter = { forwardedAB: 0, forwardedBA: 1, dropped: 2, rounds: 3, droppedAB: 4, droppedBA: 5 } as const;

export interface WorkerData {
  readonly [FWD_WORKER]: true;
  readonly index: number;
  readonly core: number | null;
  readonly pairs: readonly SharedQueuePair[];
  readonly pools: readonly SharedPool[];
  readonly batch: number;
  readonly txRetries: number;
  /** [0]: non-zero: stop. */
  readonly control: Int32Array;
  readonly counters: Float64Array;
}

export type WorkerReport =
  | { readonly kind: "ready"; readonly index: number }
  | { readonly kind: "stopped"; readonly index: number }
  | { readonly kind: "failed"; readonly index: number; readonly name: string; readonly message: string };

export interface ForwardWorkersOptions {
  readonly workers: number;
  /** Core of each worker (null: not pinned). */
  readonly cores: readonly (number | null)[];
  readonly batch: number;
  readonly txRetries: number;
  readonly seconds: number;
  /** Once a second, with each worker's totals so far (its counters, read from shared memory). */
  readonly everySecond: (workers: readonly WorkerTotals[]) => void;
  /** --sim: the models' work, run by this thread between checks (null: this thread sleeps). */
  readonly pump: ((burst: number) => void) | null;
  /**
   * The module the workers start from: fwd.ts itself (its import.meta.url), which runs
   * fwd-worker.ts when its workerData says FWD_WORKER. So a bundle of fwd.ts (the testbed runs
   * bundles, test/vm/compile.ts) is its own worker entry, as the .ts file is under tsx.
   */
  readonly entry: URL;
  /** Per worker, more pools whose buffers reach its queues (fwd --tx-first's): they go to that worker. */
  readonly pools?: readonly (readonly Mempool[])[];
}

export interface WorkerTotals {
  readonly index: number;
  readonly core: number | null;
  readonly forwarded: number;
  readonly dropped: number;
  /** Of `dropped`: port b's TX ring was full (forwarding a to b), port a's (b to a). */
  readonly droppedAB: number;
  readonly droppedBA: number;
}

/** The key in a worker's workerData that makes examples/fwd.ts run as a worker (fwd-worker.ts). */
export const FWD_WORKER = "fwd worker";
/** How long a worker gets to detach its pairs after the stop word, before it is terminated. */
const STOP_TIMEOUT_MS = 5000;

/**
 * Runs the workers until a signal, the time limit or a failure; returns each worker's totals
 * after every pair is back with its device. The first failure is rethrown after every worker has
 * stopped: a worker's as IxyError naming the worker, or this thread's own (readStats finding a
 * device broken, which also makes the workers' next calls throw).
 */
export async function runForwardWorkers(a: NicDevice, b: NicDevice, o: ForwardWorkersOptions): Promise<WorkerTotals[]> {
  const control = new Int32Array(new SharedArrayBuffer(4));
  const counters = new Float64Array(new SharedArrayBuffer(o.workers * COUNTER_STRIDE * 8));
  const shared: { dev: NicDevice; queue: number }[] = [];
  const workers: Worker[] = [];
  const exited: Promise<void>[] = [];
  const ready: Promise<void>[] = [];
  /** The first error: a worker's (as IxyError naming it), or this thread's (statistics, models). */
  let failure: Error | null = null;
  let stop = false;
  let wake: () => void = () => {};
  const totals = (): WorkerTotals[] =>
    Array.from({ length: o.workers }, (_, i) => ({
      index: i,
      core: o.cores[i] ?? null,
      forwarded: counters[i * COUNTER_STRIDE + WorkerCounter.forwardedAB]! + counters[i * COUNTER_STRIDE + WorkerCounter.forwardedBA]!,
      dropped: counters[i * COUNTER_STRIDE + WorkerCounter.dropped]!,
      droppedAB: counters[i * COUNTER_STRIDE + WorkerCounter.droppedAB]!,
      droppedBA: counters[i * COUNTER_STRIDE + WorkerCounter.droppedBA]!,
    }));
  const stopAll = (): void => {
    stop = true;
    Atomics.store(control, 0, 1);
    wake();
  };
  try {
    for (let i = 0; i < o.workers; i++) {
      const pairs = [a.shareQueuePair(i)];
      shared.push({ dev: a, queue: i });
      pairs.push(b.shareQueuePair(i));
      shared.push({ dev: b, queue: i });
      const pools = (o.pools?.[i] ?? []).map((p) => p.share());
      const data: WorkerData = { [FWD_WORKER]: true, index: i, core: o.cores[i] ?? null, pairs, pools, batch: o.batch, txRetries: o.txRetries, control, counters };
      const worker = startTsWorker(o.entry, { workerData: data });
      workers.push(worker);
      let isReady: () => void = () => {};
      ready.push(new Promise<void>((resolve) => (isReady = resolve)));
      exited.push(new Promise<void>((resolve) => {
        worker.on("message", (r: WorkerReport) => {
          if (r.kind === "ready") isReady();
          if (r.kind === "failed" && failure === null) {
            failure = new IxyError(`fwd worker ${r.index} (queue pair ${r.index}${o.cores[i] == null ? "" : `, core ${o.cores[i]}`}): ${r.name}: ${r.message}`);
            stopAll();
          }
        });
        worker.on("error", (e: Error) => {
          failure ??= new IxyError(`fwd worker ${i}: ${e.name}: ${e.message}`);
          stopAll();
        });
        worker.on("exit", () => {
          isReady(); // one that ends before it is ready ends the wait for it too
          resolve();
        });
      }));
    }
    onStopSignal(stopAll);
    // --seconds is forwarding time: it starts once every worker has attached its pairs (starting
    // a thread and compiling its TypeScript takes a while, seconds on a loaded machine).
    if (!stop) await Promise.race([Promise.all(ready), new Promise<void>((resolve) => (wake = resolve))]);
    await untilStopped(o, () => o.everySecond(totals()), () => stop, (w) => (wake = w)).catch((e: unknown) => {
      // This thread's statistics or models failed (a device found broken, say): stop everything.
      failure ??= e instanceof Error ? e : new Error(String(e));
    });
  } finally {
    stopAll();
    await Promise.all(exited.map((done, i) => Promise.race([done, delay(STOP_TIMEOUT_MS).then(() => workers[i]!.terminate())])));
    // Every worker has exited (or was terminated): nothing touches the rings any more.
    for (const { dev, queue } of shared) dev.reclaimQueuePair(queue);
    // --sim: the doorbells the workers posted last reach the models (the frames they queued are sent).
    o.pump?.(0);
  }
  if (failure !== null) throw failure;
  return totals();
}

/**
 * The main thread's part while the workers run: statistics once a second, and in --sim mode the
 * models (in slices of a few milliseconds, yielding to the event loop between them so that
 * worker messages and signals get through); otherwise it sleeps.
 */
function untilStopped(
  o: ForwardWorkersOptions, everySecond: () => void, stopped: () => boolean, setWake: (wake: () => void) => void,
): Promise<void> {
  const start = performance.now();
  let nextSecond = start + 1000;
  return new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | null = null;
    const finish = () => {
      if (timer !== null) clearTimeout(timer);
      resolve();
    };
    setWake(finish);
    const slice = () => {
      try {
        step();
      } catch (e) {
        if (timer !== null) clearTimeout(timer);
        reject(e);
      }
    };
    const step = () => {
      const now = performance.now();
      if (now >= nextSecond) {
        everySecond();
        nextSecond += 1000;
      }
      if (stopped() || (o.seconds > 0 && now - start >= o.seconds * 1000)) return finish();
      if (o.pump === null) {
        timer = setTimeout(slice, Math.max(1, Math.min(nextSecond - now, 100)));
        return;
      }
      const end = now + 5;
      while (performance.now() < end) for (let k = 0; k < 16; k++) o.pump(o.batch);
      setImmediate(slice);
    };
    setImmediate(slice);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
