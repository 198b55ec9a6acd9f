/** The forwarder's step (examples/fwd.ts and its workers), on its own so that it can be tested. */
import type { NicDevice } from "../../src/device.ts";
import { freeBuffers } from "../../src/mem/mempool.ts";

/**
 * One queue as the forwarder uses it: a device's queue (queueEnd) in the thread that opened
 * the device, or a queue pair attached in a worker (src/threads/queue-pair.ts), which has
 * exactly these two methods.
 */
export interface QueueEnd {
  rxBatch(bufs: Int32Array, max: number): number;
  txBatch(bufs: Int32Array, count: number): number;
}

/** Queue `queue` of `dev` as a QueueEnd. */
export function queueEnd(dev: NicDevice, queue = 0): QueueEnd {
  return {
    rxBatch: (bufs, max) => dev.rxBatch(queue, bufs, max),
    txBatch: (bufs, count) => dev.txBatch(queue, bufs, count),
  };
}

/** What forward() did so far: frames handed to the TX queue, and frames dropped for want of room there. */
export interface ForwardCounts {
  forwarded: number;
  dropped: number;
}

export function newForwardCounts(): ForwardCounts {
  return { forwarded: 0, dropped: 0 };
}

/**
 * Receives up to `batch` frames on rx and sends them on tx, trying `retries` more times for what
 * the TX ring had no room for; adds to `counts` what it forwarded and what it had to drop.
 */
export function forward(rx: QueueEnd, tx: QueueEnd, bufs: Int32Array, batch: number, retries: number, counts: ForwardCounts): void {
  const n = rx.rxBatch(bufs, batch);
  if (n === 0) return;
  let rest = n; // bufs[0 .. rest) are still ours
  try {
    const sent = tx.txBatch(bufs, n); // bufs[0 .. sent) now belong to tx
    rest = n - sent;
    if (rest === 0) {
      counts.forwarded += n;
      return;
    }
    // The unsent to the front: txBatch takes a prefix of what it is given.
    bufs.copyWithin(0, sent, n);
    for (let r = 0; r < retries && rest > 0; r++) {
      const more = tx.txBatch(bufs, rest);
      if (more !== 0) {
        bufs.copyWithin(0, more, rest);
        rest -= more;
      }
    }
  } catch (e) {
    // A txBatch that throws takes none of the batch (src/device.ts): give back what we hold.
    freeBuffers(bufs, 0, rest);
    counts.forwarded += n - rest;
    throw e;
  }
  if (rest > 0) freeBuffers(bufs, 0, rest);
  counts.forwarded += n - rest;
  counts.dropped += rest;
}
