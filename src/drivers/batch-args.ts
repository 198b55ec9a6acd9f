/**
 * The errors of a bad rxBatch/txBatch call, the same for every driver. Kept out of the hot
 * loops: a driver checks its arguments with a few comparisons and calls these only to throw.
 */
import { AddressSpaceError, BufferOwnershipError, DeviceClosedError } from "../errors.ts";
import { bufHome, bufPool, isBufferNumber, ownerOf, poolSpace } from "../mem/buffer-table.ts";
import { addressSpaceName, type DmaAllocator } from "../mem/dma.ts";
import { describeValue } from "../validate.ts";

/**
 * True when `bufs` is an Int32Array and `n` an integer from 0 to bufs.length: what rxBatch's max
 * and txBatch's count must be. (NaN fails `n >= 0`; 2.5 fails `(n | 0) === n`.)
 */
export function goodBatch(bufs: Int32Array, n: number): boolean {
  return bufs instanceof Int32Array && n >= 0 && (n | 0) === n && n <= bufs.length;
}

/** readStats(into): `into` must be an object to fill (a DeviceStats, e.g. newStats()). */
export function checkStatsTarget(address: string, into: unknown): void {
  if (typeof into !== "object" || into === null || Array.isArray(into) || Object.isFrozen(into)) {
    throw new TypeError(`${address}: readStats() needs a DeviceStats object to fill (newStats()), got ${into !== null && Object.isFrozen(into) ? "a frozen object" : describeValue(into)}`);
  }
}

/** setPromisc(on): `on` must be a boolean ("false" would turn it on). */
export function checkPromiscArgument(address: string, on: unknown): void {
  if (typeof on !== "boolean") throw new TypeError(`${address}: setPromisc() needs true or false, got ${describeValue(on)}`);
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
    throw new TypeError(`${address}: ${call}() needs an Int32Array of buffer numbers, got ${describeValue(bufs)}`);
  }
  if (typeof n !== "number" || !Number.isInteger(n)) {
    throw new TypeError(`${address}: ${call}() needs an integer count of buffers, got ${describeValue(n)}`);
  }
  throw new RangeError(
    `${address}: ${call}() for ${n} buffers, but the batch holds ${bufs.length}: pass a count from 0 to ${bufs.length}`,
  );
}

/**
 * Throws the error for bufs[i], a number txBatch cannot send, after undoing what the
 * validation pass did to bufs[0 .. i): those buffers passed, so those of checked pools were the
 * caller's (bufHome 0) and were marked as held by the device (2); they are the caller's again.
 * `dma` is the device's allocator: a buffer must come from a pool of its address space.
 */
export function badTxBuffer(what: string, bufs: Int32Array, i: number, dma: Pick<DmaAllocator, "name" | "space">): never {
  const error = txBufferError(what, bufs, i, dma);
  for (let j = 0; j < i; j++) if (bufHome[bufs[j]!] === 2) bufHome[bufs[j]!] = 0;
  throw error;
}

function txBufferError(what: string, bufs: Int32Array, i: number, dma: Pick<DmaAllocator, "name" | "space">): Error {
  const buf = bufs[i]!;
  if (!isBufferNumber(buf)) {
    return new RangeError(
      `${what}: bufs[${i}] = ${buf} is not a packet buffer of any open mempool (buffers come from ` +
        `Mempool.alloc() or rxBatch()); nothing was sent`,
    );
  }
  // (In a worker, a pool not attached there has no entry in its table of owners.)
  const pool = ownerOf(buf)?.name ?? `pool ${bufPool[buf]}`;
  const space = poolSpace[bufPool[buf]!]!;
  if (space !== dma.space) {
    return new AddressSpaceError(
      `${what}: bufs[${i}] = ${buf} belongs to ${pool}, whose device addresses are in ${addressSpaceName(space)}, ` +
        `but this device's DMA (${dma.name}) is ${addressSpaceName(dma.space)}: its address would mean other ` +
        `memory (or none) to this device. Make the pool from this device's dma (dev.dma), open both devices ` +
        `with one allocator (openDevice shares one per VFIO container), or copy the frame into a buffer of this ` +
        `device's pool; nothing was sent`,
    );
  }
  if (bufHome[buf] === 1) {
    return new BufferOwnershipError(`${what}: bufs[${i}] = ${buf} is free in ${pool} (it was freed already); nothing was sent`);
  }
  if (bufHome[buf] === 2) {
    const j = bufs.subarray(0, i).indexOf(buf);
    if (j >= 0) {
      return new BufferOwnershipError(
        `${what}: bufs[${i}] = ${buf} is also bufs[${j}]: one buffer cannot be sent twice at once; nothing was sent`,
      );
    }
    return new BufferOwnershipError(
      `${what}: bufs[${i}] = ${buf} (${pool}) is held by a device queue already (sent and not yet reclaimed): ` +
        `a buffer handed to txBatch is the driver's until it goes back to its pool; nothing was sent`,
    );
  }
  return new RangeError(`${what}: bufs[${i}] = ${buf} cannot be sent`);
}
