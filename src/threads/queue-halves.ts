/**
 * One half of a shared queue pair in a worker thread: its receive queue in one worker and its
 * transmit queue in another, for a pipeline (examples/pipeline.ts) whose receiving stage and
 * transmitting stage are different threads. attachQueuePair (queue-pair.ts) takes both halves
 * into one thread; these take one each:
 *
 *   // receiving worker                              // transmitting worker
 *   const rx = attachReceiveHalf(workerData.pair);   const tx = attachTransmitHalf(workerData.pair);
 *   rx.rxBatch(bufs, 32); rx.rxPool ...              tx.txBatch(bufs, n);
 *   rx.detach();                                     tx.detach();
 *
 * The two queues of a pair share nothing on their hot paths (each has its own ring, state and
 * doorbell), so two threads can drive them at once. What they do share is the receive pool: the
 * receive half owns it (it refills the ring from it), and the transmit queue's reclaim frees the
 * sent buffers into their pools; the transmitting thread must therefore attach the pool for
 * returns (attachPool(shared.rxPool, { returns }), src/mem/pool-returns.ts), and the receiving
 * one collect them (rxPool.collectReturns()).
 *
 * The pair's control word ATTACHED (queue-sharing.ts) is 1 while attachQueuePair holds the
 * whole pair; a half sets its own bit (RX_HALF, TX_HALF), so that neither half can be attached
 * twice, nor a half and the whole pair at once. The owning thread's reclaimQueuePair does not
 * look at it: it must wait for both workers to detach or exit, as for a whole pair.
 */
import { IxyError, QueueSharedError } from "../errors.ts";
import { ownsBufferTable } from "../mem/buffer-table.ts";
import { attachPool, type Mempool } from "../mem/mempool.ts";
import { badBatchCall, goodBatch } from "../drivers/batch-args.ts";
import { checkPairStatus, receiveLoopOf, sendLoopOf } from "./attach-common.ts";
import { ATTACHED, PairStatus, STATUS, type SharedQueuePair } from "../drivers/queue-sharing.ts";
import type { ReceiveLoop } from "../drivers/virtio/virtio-rx-queue.ts";
import type { SendLoop } from "../drivers/virtio/virtio-tx-queue.ts";

/** Bits of control[ATTACHED] besides attachQueuePair's 1. */
const RX_HALF = 2;
const TX_HALF = 4;

/** What both halves share: the claim on the control word and the status checks. */
class Half {
  readonly device: string;
  readonly driver: string;
  readonly queue: number;
  protected readonly control: Int32Array;
  readonly #bit: number;
  #detached = false;

  constructor(shared: SharedQueuePair, bit: number, what: string) {
    if (ownsBufferTable) {
      throw new IxyError(
        `${shared.device}: attach${what}Half() in a thread with a buffer table of its own: start the worker with ` +
          `startTsWorker() (src/threads/ts-worker.ts), which hands it the table of the thread that opened the device`,
      );
    }
    this.device = shared.device;
    this.driver = shared.driver;
    this.queue = shared.queue;
    this.control = shared.control;
    this.#bit = bit;
    for (;;) {
      const old = Atomics.load(shared.control, ATTACHED);
      if ((old & (1 | bit)) !== 0) {
        throw new QueueSharedError(
          `${shared.device}: the ${what.toLowerCase()} queue of pair ${shared.queue} is attached in another thread already ` +
            `(as a whole pair or as a half): attach each half once`,
        );
      }
      if (Atomics.compareExchange(shared.control, ATTACHED, old, old | bit) === old) break;
    }
    try {
      this.checkStatus(`attach${what}Half`);
    } catch (e) {
      this.release();
      throw e;
    }
  }

  /** Gives the claim back; idempotent. */
  protected release(): boolean {
    if (this.#detached) return false;
    this.#detached = true;
    Atomics.and(this.control, ATTACHED, ~this.#bit);
    return true;
  }

  protected get detached(): boolean {
    return this.#detached;
  }

  protected checkStatus(call: string): void {
    checkPairStatus(this.control, this.device, this.queue, call);
  }

  protected bad(call: "rxBatch" | "txBatch", bufs: Int32Array, n: number): never {
    if (this.#detached) throw new QueueSharedError(`${this.device}: ${call}() on queue pair ${this.queue} after detach()`);
    this.checkStatus(call);
    return badBatchCall(this.device, call, false, 0, 1, bufs, n);
  }
}

/** The receive queue of a shared pair, in this thread: attachReceiveHalf(). */
export class AttachedReceiveHalf extends Half {
  /** The receive queue's pool, which this thread now owns (it alone allocates from it). */
  readonly rxPool: Mempool;
  readonly #receive: ReceiveLoop;

  constructor(shared: SharedQueuePair) {
    super(shared, RX_HALF, "Receive");
    try {
      this.rxPool = attachPool(shared.rxPool);
      this.#receive = receiveLoopOf(shared.rx, shared.hotPath);
    } catch (e) {
      this.release();
      throw e;
    }
  }

  /** As NicDevice.rxBatch on this pair's queue. */
  rxBatch(bufs: Int32Array, max: number): number {
    if (this.control[STATUS] !== PairStatus.running || this.detached || !goodBatch(bufs, max)) this.bad("rxBatch", bufs, max);
    return this.#receive(bufs, max);
  }

  /**
   * Done with the queue: what other threads returned is collected (rxPool.close()), and the
   * owning thread can take the pair back once the transmit half is detached too. Idempotent.
   */
  detach(): void {
    if (this.detached) return;
    try {
      this.rxPool.close();
    } finally {
      this.release();
    }
  }
}

/** The transmit queue of a shared pair, in this thread: attachTransmitHalf(). */
export class AttachedTransmitHalf extends Half {
  readonly #send: SendLoop;

  constructor(shared: SharedQueuePair) {
    super(shared, TX_HALF, "Transmit");
    try {
      this.#send = sendLoopOf(shared.tx, shared.hotPath);
    } catch (e) {
      this.release();
      throw e;
    }
  }

  /** As NicDevice.txBatch on this pair's queue. */
  txBatch(bufs: Int32Array, count: number): number {
    if (this.control[STATUS] !== PairStatus.running || this.detached || !goodBatch(bufs, count)) this.bad("txBatch", bufs, count);
    return this.#send(bufs, count);
  }

  /** Done with the queue (the buffers in its ring stay there until the owning thread reclaims the pair). Idempotent. */
  detach(): void {
    this.release();
  }
}

/**
 * In a worker thread: takes over the receive queue of the shared pair (and its pool). The
 * worker must have been started with startTsWorker, as for attachQueuePair.
 */
export function attachReceiveHalf(shared: SharedQueuePair): AttachedReceiveHalf {
  return new AttachedReceiveHalf(shared);
}

/**
 * In a worker thread: takes over the transmit queue of the shared pair. Attach the pools of the
 * buffers it sends for returns first (see above): its reclaim frees them in this thread.
 */
export function attachTransmitHalf(shared: SharedQueuePair): AttachedTransmitHalf {
  return new AttachedTransmitHalf(shared);
}
