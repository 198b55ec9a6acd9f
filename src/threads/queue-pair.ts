/**
 * The worker's end of a shared queue pair (NicDevice.shareQueuePair, src/drivers/queue-sharing.ts).
 *
 *   // main thread                                  // worker (started with startTsWorker)
 *   const pair = dev.shareQueuePair(1);             const q = attachQueuePair(workerData.pair);
 *   startTsWorker(url, { workerData: { pair } });   const n = q.rxBatch(bufs, 32);
 *                                                   q.txBatch(bufs, n); ... q.detach();
 *   // after the worker's exit:
 *   dev.reclaimQueuePair(1); dev.close();
 *
 * attachQueuePair compiles the pair's receive and transmit loops in this thread, from the same
 * factories the device uses (one specialized copy per queue, src/drivers/specialize.ts), over
 * this thread's views of the same rings, state and buffer table. rxBatch and txBatch then work
 * as the device's do for that queue, with the same argument checks and buffer ownership rules,
 * and allocate nothing. What the worker cannot do is whatever needs the device's registers
 * beyond its doorbells (statistics, link, reset): that stays with the thread that opened it.
 */
import { IxyError, QueueSharedError } from "../errors.ts";
import { ownsBufferTable } from "../mem/buffer-table.ts";
import { attachPool, type Mempool } from "../mem/mempool.ts";
import { badBatchCall, goodBatch } from "../drivers/batch-args.ts";
import { checkPairStatus, receiveLoopOf, sendLoopOf } from "./attach-common.ts";
import { ATTACHED, PairStatus, STATUS, type SharedQueuePair } from "../drivers/queue-sharing.ts";
import type { ReceiveLoop } from "../drivers/virtio/virtio-rx-queue.ts";
import type { SendLoop } from "../drivers/virtio/virtio-tx-queue.ts";

/** Drives a queue pair in a worker thread: attachQueuePair(). */
export class AttachedQueuePair {
  /** The device's address, e.g. "0000:01:00.0" (for messages). */
  readonly device: string;
  readonly driver: string;
  /** The pair's index on its device. */
  readonly queue: number;
  /** The receive queue's pool, which this thread now owns: free received buffers into it. */
  readonly rxPool: Mempool;
  readonly #receive: ReceiveLoop;
  readonly #send: SendLoop;
  readonly #control: Int32Array;
  #detached = false;

  constructor(shared: SharedQueuePair) {
    this.device = shared.device;
    this.driver = shared.driver;
    this.queue = shared.queue;
    this.#control = shared.control;
    if (Atomics.compareExchange(shared.control, ATTACHED, 0, 1) !== 0) {
      throw new QueueSharedError(`${shared.device}: queue pair ${shared.queue} is attached in another thread already: share it once per worker`);
    }
    try {
      this.#checkStatus("attachQueuePair");
      this.rxPool = attachPool(shared.rxPool);
      this.#receive = receiveLoopOf(shared.rx, shared.hotPath);
      this.#send = sendLoopOf(shared.tx, shared.hotPath);
    } catch (e) {
      Atomics.store(shared.control, ATTACHED, 0);
      throw e;
    }
  }

  /** As NicDevice.rxBatch on this pair's queue. */
  rxBatch(bufs: Int32Array, max: number): number {
    if (this.#control[STATUS] !== PairStatus.running || !goodBatch(bufs, max)) this.#bad("rxBatch", bufs, max);
    return this.#receive(bufs, max);
  }

  /** As NicDevice.txBatch on this pair's queue. */
  txBatch(bufs: Int32Array, count: number): number {
    if (this.#control[STATUS] !== PairStatus.running || !goodBatch(bufs, count)) this.#bad("txBatch", bufs, count);
    return this.#send(bufs, count);
  }

  /**
   * This thread is done with the pair: free every buffer it holds first (they go back to their
   * pools, which stay valid). Afterwards the thread that opened the device can take the pair
   * back (reclaimQueuePair). Idempotent.
   */
  detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.rxPool.close();
    Atomics.store(this.#control, ATTACHED, 0);
  }

  #checkStatus(call: string): void {
    checkPairStatus(this.#control, this.device, this.queue, call);
  }

  #bad(call: "rxBatch" | "txBatch", bufs: Int32Array, n: number): never {
    if (this.#detached) throw new QueueSharedError(`${this.device}: ${call}() on queue pair ${this.queue} after detach()`);
    this.#checkStatus(call);
    return badBatchCall(this.device, call, false, 0, 1, bufs, n);
  }
}

/**
 * In a worker thread: takes over the queue pair `shared` (from NicDevice.shareQueuePair in the
 * thread that opened the device). The worker must have been started with startTsWorker (or
 * have the buffer table in its workerData, src/threads/ts-worker.ts): buffer numbers must mean
 * the same buffers in both threads.
 */
export function attachQueuePair(shared: SharedQueuePair): AttachedQueuePair {
  if (ownsBufferTable) {
    throw new IxyError(
      `${shared.device}: attachQueuePair() in a thread with a buffer table of its own: start the worker with ` +
        `startTsWorker() (src/threads/ts-worker.ts), which hands it the table of the thread that opened the device`,
    );
  }
  return new AttachedQueuePair(shared);
}
