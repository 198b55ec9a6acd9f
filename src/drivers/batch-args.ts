/**
 * The errors of a bad rxBatch/txBatch call, the same for every driver. Kept out of the hot
 * loops: a driver checks its arguments with a few comparisons and calls these only to throw.
 */
import { BufferOwnershipError, DeviceClosedError } from "../errors.ts";
import { bufHome, isBufferNumber, ownerOf } from "../mem/buffer-table.ts";

/**
 * True when `bufs` is an Int32Array and `n` an integer from 0 to bufs.length: what rxBatch's max
 * and txBatch's count must be. (NaN fails `n >= 0`; 2.5 fails `(n | 0) === n`.)
 */
export function goodBatch(bufs: Int32Array, n: number): boolean {
  return bufs instanceof Int32Array && n >= 0 && (n | 0) === n && n <= bufs.length;
}

/** Throws the error that explains why rxBatch/txBatch(queue, bufs, n) was refused. */
export function badBatchCall(
  address: string,
  call: "rxBatch" | "txBatch",
  closed: boolean,
  queue: number,
  queues: number,
  bufs: unknown,
  n: number,
): never {
  if (closed) throw new DeviceClosedError(`${address}: ${call}() on a closed device; open it again with openDevice()`);
  if (!Number.isInteger(queue) || queue < 0 || queue >= queues) {
    const valid = queues === 0 ? "no such queues" : queues === 1 ? "queue 0 only" : `queues 0 to ${queues - 1}`;
    throw new RangeError(`${address}: ${call}() on queue ${queue}, but the device was opened with ${valid}`);
  }
  if (!(bufs instanceof Int32Array)) {
    const got = bufs === null ? "null" : Array.isArray(bufs) ? "an Array" : typeof bufs === "object" ? bufs.constructor.name : typeof bufs;
    throw new TypeError(`${address}: ${call}() needs an Int32Array of buffer numbers, got ${got}`);
  }
  if (typeof n !== "number" || !Number.isInteger(n)) {
    throw new TypeError(`${address}: ${call}() needs an integer count of buffers, got ${String(n)}`);
  }
  throw new RangeError(
    `${address}: ${call}() for ${n} buffers, but the batch holds ${bufs.length}: pass a count from 0 to ${bufs.length}`,
  );
}

/** Throws the error for bufs[i], a number txBatch cannot send. */
export function badTxBuffer(what: string, bufs: Int32Array, i: number): never {
  const buf = bufs[i]!;
  if (!isBufferNumber(buf)) {
    throw new RangeError(
      `${what}: bufs[${i}] = ${buf} is not a packet buffer of any open mempool (buffers come from ` +
        `Mempool.alloc() or rxBatch()); nothing was sent`,
    );
  }
  if (bufHome[buf] !== 0) {
    throw new BufferOwnershipError(
      `${what}: bufs[${i}] = ${buf} is free in ${ownerOf(buf)!.name} (it was freed or sent already); nothing was sent`,
    );
  }
  throw new RangeError(`${what}: bufs[${i}] = ${buf} cannot be sent`);
}
