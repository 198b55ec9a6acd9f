/**
 * Handing a device's queue pairs to worker threads, and taking them back: the bookkeeping that
 * both drivers share (NicDevice.shareQueuePair / reclaimQueuePair, src/device.ts).
 *
 * Ownership. After shareQueuePair(q) the worker that attaches the pair (src/threads/queue-pair.ts)
 * is the only thread that calls the pair's hot loops and touches the pair's receive pool; the
 * device's own rxBatch/txBatch on q throw QueueSharedError. The thread that opened the device
 * keeps everything else: register reads, statistics, link, close(). It gets the pair back with
 * reclaimQueuePair(q), which the worker must have detached first (or exited): the rings' memory
 * and the pool must not be touched by two threads at once, and close() unmaps them.
 *
 * The pair's control word (shared) tells the worker about the device: RUNNING, or CLOSED /
 * BROKEN, after which its next call throws instead of touching the rings. A worker that is
 * inside a call at the moment cannot be stopped by it: that is why close() refuses while a pair
 * is out, instead of unmapping memory under a running loop.
 */
import { QueueSharedError } from "../errors.ts";
import type { SharedPool } from "../mem/mempool.ts";
import type { HotPathMode } from "./specialize.ts";
import type { SharedQueue } from "./queue-handoff.ts";

/** control[STATUS]: what the worker's next call does. */
export const PairStatus = { running: 0, closed: 1, broken: 2, reclaimed: 3 } as const;
/** control[ATTACHED]: 1 from attachQueuePair until detach() in the worker. */
export const STATUS = 0;
export const ATTACHED = 1;

/** A queue pair as a worker receives it (postMessage / workerData). */
export interface SharedQueuePair {
  readonly driver: string;
  readonly device: string;
  readonly queue: number;
  readonly rx: SharedQueue;
  readonly tx: SharedQueue;
  /** The receive queue's pool: its fresh buffers come from there, so it belongs to the worker too. */
  readonly rxPool: SharedPool;
  /** [STATUS], [ATTACHED]. */
  readonly control: Int32Array;
  readonly hotPath?: HotPathMode;
}

export class QueueSharing {
  readonly #device: string;
  readonly #pairs: (SharedQueuePair | null)[];

  constructor(device: string, pairs: number) {
    this.#device = device;
    this.#pairs = new Array<SharedQueuePair | null>(pairs).fill(null);
  }

  /** True while pair `queue` is handed out. */
  isShared(queue: number): boolean {
    return this.#pairs[queue] != null;
  }

  /** True while any pair is handed out. */
  get anyShared(): boolean {
    return this.#pairs.some((p) => p !== null);
  }

  /** Records pair `queue` as handed out; `make` builds what the worker receives. */
  share(queue: number, make: (control: Int32Array) => SharedQueuePair): SharedQueuePair {
    if (this.isShared(queue)) {
      throw new QueueSharedError(`${this.#device}: shareQueuePair(${queue}): the pair is already handed to a worker; reclaimQueuePair(${queue}) first`);
    }
    const control = new Int32Array(new SharedArrayBuffer(8));
    const pair = make(control);
    this.#pairs[queue] = pair;
    return pair;
  }

  /** Takes pair `queue` back (the worker detached or exited); returns false if it was not out. */
  reclaim(queue: number): boolean {
    const pair = this.#pairs[queue];
    if (pair == null) return false;
    // Whatever the worker still holds of it, its next call throws instead of using the rings.
    if (Atomics.load(pair.control, STATUS) === PairStatus.running) Atomics.store(pair.control, STATUS, PairStatus.reclaimed);
    this.#pairs[queue] = null;
    return true;
  }

  /** Tells every worker that the device is closed or broken: their next calls throw. */
  stopAll(status: (typeof PairStatus)["closed" | "broken"]): void {
    for (const pair of this.#pairs) if (pair !== null) Atomics.store(pair.control, STATUS, status);
  }

  /** Throws QueueSharedError for `call` on a pair that is out (rxBatch, txBatch on this thread). */
  refuse(queue: number, call: string): never {
    throw new QueueSharedError(
      `${this.#device}: ${call}() on queue ${queue}, which a worker thread drives (shareQueuePair); ` +
        `call it in that worker, or take the pair back with reclaimQueuePair(${queue}) once the worker has stopped`,
    );
  }

  /** close() with pairs out: throws, naming them (nothing is closed). */
  checkNoneOut(): void {
    const out = this.#pairs.flatMap((p, q) => (p === null ? [] : [q]));
    if (out.length === 0) return;
    throw new QueueSharedError(
      `${this.#device}: close() while worker threads drive queue pair${out.length > 1 ? "s" : ""} ${out.join(", ")}: ` +
        `stop those workers (attached.detach(), or let them exit), call reclaimQueuePair() for each, then close(); ` +
        `nothing was closed`,
    );
  }
}
