/** The forwarder's step (examples/fwd.ts), on its own so that it can be tested. */
import type { NicDevice } from "../../src/device.ts";
import { freeBuffers } from "../../src/mem/mempool.ts";

/**
 * Receives up to `batch` frames on rx and sends them on tx, trying `retries` more times for what
 * the TX ring had no room for; returns how many it had to drop.
 */
export function forward(rx: NicDevice, tx: NicDevice, bufs: Int32Array, batch: number, retries: number): number {
  const n = rx.rxBatch(0, bufs, batch);
  if (n === 0) return 0;
  const sent = tx.txBatch(0, bufs, n); // bufs[0 .. sent) now belong to tx
  let rest = n - sent;
  if (rest === 0) return 0;
  // The unsent to the front: txBatch takes a prefix of what it is given.
  bufs.copyWithin(0, sent, n);
  for (let r = 0; r < retries && rest > 0; r++) {
    const more = tx.txBatch(0, bufs, rest);
    if (more !== 0) {
      bufs.copyWithin(0, more, rest);
      rest -= more;
    }
  }
  if (rest > 0) freeBuffers(bufs, 0, rest);
  return rest;
}
