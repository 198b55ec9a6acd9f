/**
 * The pipeline's threads (examples/pipeline.ts): queue pair 0 of one port, its receive queue in
 * a receive worker and its transmit queue in a process worker (src/threads/queue-halves.ts),
 * with two SpscRings between them: received buffers one way, and the buffers the process worker
 * frees (dropped frames, its TX queue's reclaim) back the other way to the receive queue's pool,
 * which belongs to the receive worker (src/mem/pool-returns.ts).
 *
 * Stopping, in an order that loses no buffer: the main thread sets STOP; the receive worker
 * stops receiving and sets RX_DONE after its last enqueue; the process worker, once it has seen
 * RX_DONE, empties the ring, sends or frees what it holds, detaches and sets PROC_DONE after its
 * last free; the receive worker, once it has seen PROC_DONE, collects the last returns, detaches
 * and exits. Only then does the main thread take the pair back (reclaimQueuePair), before the
 * caller closes the device. The main thread keeps delivering the workers' posted doorbells to a
 * device model meanwhile (`idle`), so that a full TX ring can drain while the process worker
 * finishes. A worker that fails posts its error, sets its DONE word (the main thread sets it too
 * when a worker exits), and the pipeline stops with the error, naming the worker.
 */
import type { Worker } from "node:worker_threads";
import type { NicDevice } from "../../src/device.ts";
import type { SharedQueuePair } from "../../src/drivers/queue-sharing.ts";
import { IxyError } from "../../src/errors.ts";
import { returnRingCapacity } from "../../src/mem/pool-returns.ts";
import { SpscRing, type SharedRing } from "../../src/threads/spsc-ring.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";
import { siblingModule } from "../../src/threads/sibling-module.ts";

/** control[...]: Int32 words in a SharedArrayBuffer. */
export const Control = { stop: 0, rxDone: 1, procDone: 2, ready: 3 } as const;

/** Counters, a 128-byte block of Float64s per worker (no two workers write one cache line). */
export const COUNTER_STRIDE = 16;
export const RxCounter = { received: 0, dropped: 1 } as const;
export const ProcCounter = { processed: 0, sent: 1, filtered: 2, dropped: 3 } as const;
export const Role = { receive: "receive", process: "process" } as const;
export type Role = (typeof Role)[keyof typeof Role];

export interface PipelineWorkerData {
  readonly role: Role;
  readonly core: number | null;
  readonly pair: SharedQueuePair;
  /** Received buffers, receive worker -> process worker. */
  readonly ring: SharedRing;
  /** Freed buffers, process worker -> receive worker. */
  readonly returns: SharedRing;
  readonly batch: number;
  readonly txRetries: number;
  readonly control: Int32Array;
  readonly counters: Float64Array;
}

export type PipelineReport =
  | { readonly kind: "stopped"; readonly role: Role }
  | { readonly kind: "failed"; readonly role: Role; readonly name: string; readonly message: string };

export interface PipelineOptions {
  readonly batch: number;
  /** Slots of the ring of received buffers (a power of two). */
  readonly ringSize: number;
  /** Rounds the process stage tries a batch the TX ring did not take in full again (fwd's --tx-retries). */
  readonly txRetries: number;
  /** Cores of the receive and the process worker (null: not pinned). */
  readonly cores: readonly [number | null, number | null];
}

export interface PipelineTotals {
  readonly received: number;
  /** Dropped by the receive worker: the ring to the process worker was full. */
  readonly ringDropped: number;
  readonly processed: number;
  readonly sent: number;
  /** Dropped by processFrame: not IPv4, or a TTL of 0 or 1. */
  readonly filtered: number;
  /** Dropped for want of TX descriptors. */
  readonly txDropped: number;
}

// pipeline-worker.ts under tsx, pipeline-worker.js compiled (the npm package).
const ENTRY = siblingModule("pipeline-worker", import.meta.url);
/** How long the workers get to finish after the stop word, before they are terminated. */
const STOP_TIMEOUT_MS = 5000;

/** Both workers of a pipeline on queue pair 0 of `dev`: PipelineWorkers.start(). */
export class PipelineWorkers {
  readonly #dev: NicDevice;
  readonly #control: Int32Array;
  readonly #counters: Float64Array;
  readonly #workers: Worker[] = [];
  readonly #exited: Promise<void>[] = [];
  readonly #cores: readonly [number | null, number | null];
  #failure: IxyError | null = null;
  #onFailure: () => void = () => {};
  #stopped = false;

  private constructor(dev: NicDevice, o: PipelineOptions) {
    this.#dev = dev;
    this.#cores = o.cores;
    this.#control = new Int32Array(new SharedArrayBuffer(4 * 4));
    this.#counters = new Float64Array(new SharedArrayBuffer(2 * COUNTER_STRIDE * 8));
    const pair = dev.shareQueuePair(0);
    try {
      const ring = SpscRing.create(o.ringSize, { name: `${dev.address} pipeline rx->process` }).shared();
      // Room for every buffer of the receive pool: the return ring never fills (pool-returns.ts).
      const returns = SpscRing.create(returnRingCapacity(pair.rxPool.count), { name: `${dev.address} pipeline returns process->rx` }).shared();
      const roles = [Role.receive, Role.process] as const;
      roles.forEach((role, i) => {
        const data: PipelineWorkerData = {
          role, core: o.cores[i] ?? null, pair, ring, returns, batch: o.batch, txRetries: o.txRetries,
          control: this.#control, counters: this.#counters,
        };
        this.#start(role, i, data);
      });
    } catch (e) {
      Atomics.store(this.#control, Control.stop, 1);
      for (const w of this.#workers) void w.terminate();
      dev.reclaimQueuePair(0);
      throw e;
    }
  }

  /** Shares queue pair 0 of `dev` and starts both workers on it. */
  static start(dev: NicDevice, options: PipelineOptions): PipelineWorkers {
    return new PipelineWorkers(dev, options);
  }

  #start(role: Role, i: number, data: PipelineWorkerData): void {
    const done = role === Role.receive ? Control.rxDone : Control.procDone;
    const who = `pipeline ${role} worker${this.#cores[i] == null ? "" : ` (core ${this.#cores[i]})`}`;
    const worker = startTsWorker(ENTRY, { workerData: data });
    this.#workers.push(worker);
    this.#exited.push(new Promise<void>((resolve) => {
      worker.on("message", (r: PipelineReport) => {
        if (r.kind === "failed") this.#fail(new IxyError(`${who}: ${r.name}: ${r.message}`));
      });
      worker.on("error", (e: Error) => this.#fail(new IxyError(`${who}: ${e.name}: ${e.message}`)));
      worker.on("exit", () => {
        // Whatever happened in it: the other worker must not wait for it any longer.
        Atomics.store(this.#control, done, 1);
        resolve();
      });
    }));
  }

  #fail(e: IxyError): void {
    this.#failure ??= e;
    Atomics.store(this.#control, Control.stop, 1);
    this.#onFailure();
  }

  /** True once both workers are attached and in their loops. */
  get ready(): boolean {
    return Atomics.load(this.#control, Control.ready) === 2;
  }

  /** The first worker failure (null: none so far). */
  get failure(): IxyError | null {
    return this.#failure;
  }

  /** Called once when a worker fails (the app then stops the pipeline). */
  set onFailure(f: () => void) {
    this.#onFailure = f;
  }

  /** The counters so far (each a snapshot: the workers update them once per 64 rounds and at the end). */
  totals(): PipelineTotals {
    const c = this.#counters;
    const p = COUNTER_STRIDE;
    return {
      received: c[RxCounter.received]!, ringDropped: c[RxCounter.dropped]!,
      processed: c[p + ProcCounter.processed]!, sent: c[p + ProcCounter.sent]!,
      filtered: c[p + ProcCounter.filtered]!, txDropped: c[p + ProcCounter.dropped]!,
    };
  }

  /**
   * Stops both workers (see the order above), calling `idle` meanwhile (a model's work: the
   * posted doorbells, say), takes the pair back and returns the totals; rethrows a worker's
   * failure. Call it once.
   */
  async stop(idle: () => void = () => {}): Promise<PipelineTotals> {
    if (this.#stopped) throw new IxyError(`${this.#dev.address}: the pipeline was stopped already`);
    this.#stopped = true;
    Atomics.store(this.#control, Control.stop, 1);
    let exited = false;
    const all = Promise.all(this.#exited.map((done, i) =>
      Promise.race([done, delay(STOP_TIMEOUT_MS).then(() => this.#workers[i]!.terminate())]))).then(() => {
      exited = true;
    });
    while (!exited) {
      idle();
      await new Promise<void>((r) => setImmediate(r));
    }
    await all;
    // Both workers have exited (or were terminated): nothing touches the rings any more.
    this.#dev.reclaimQueuePair(0);
    if (this.#failure !== null) throw this.#failure;
    return this.totals();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
