/**
 * Remote frees: how a thread gives buffers back to a pool that another thread allocates from.
 *
 * A pool's free stack has no lock: the thread that allocates from it (the pool's owner: the
 * thread that made it, or the worker it was attached to with attachPool) is the only one that
 * may push onto it. Any other thread that ends up holding the pool's buffers (a pipeline's
 * transmitting stage, whose TX queue reclaims them) attaches the pool "for returns":
 *
 *   // the owner                                     // the other thread
 *   const ring = returnRing(pool, "tx->rx");         const pool = attachPool(shared, { returns: ringShared });
 *   pool.acceptReturns(ring);                        freeBuffer(buf);   // goes into the ring
 *   ... pool.collectReturns() once per loop ...
 *
 * In that thread, freeBuffer/freeBuffers (src/mem/mempool.ts), and so every driver's TX reclaim,
 * find the pool's id in this module's per-thread table and enqueue the buffers into its SPSC
 * ring instead of touching the stack; the owner moves them from the ring onto its stack in
 * collectReturns(). The ring's capacity is at least the pool's count, so that it can hold every
 * buffer of the pool: it never fills unless a buffer was freed twice.
 *
 * Checked pools: a buffer in a return ring is marked BUF_RETURNING (bufHome, buffer-table.ts),
 * and becomes home (1) only when its owner collects it. A second free of it, in either thread,
 * finds that mark (or 1, once collected) and throws BufferOwnershipError in the freeing thread.
 * The mark is written before the enqueue publishes the buffer, and read by the owner after the
 * dequeue, so the ring's own ordering (src/threads/spsc-ring.ts) orders the marks too.
 */
import { BufferOwnershipError } from "../errors.ts";
import { SpscRing } from "../threads/spsc-ring.ts";
import { BUF_RETURNING, bufHome, bufPool, MAX_POOLS } from "./buffer-table.ts";

/** One entry of the per-thread table: where this thread's frees of pool `id` go. */
export class ReturnPath {
  readonly ring: SpscRing;
  /** The pool's name (the buffer table's owners are known only in the thread that made it). */
  readonly poolName: string;
  readonly checked: boolean;

  constructor(ring: SpscRing, poolName: string, checked: boolean) {
    this.ring = ring;
    this.poolName = poolName;
    this.checked = checked;
  }
}

/**
 * This thread's return paths, by pool id; null: frees of that pool go onto its stack. Module
 * state on purpose: each thread has its own copy of this module, so each its own table.
 */
export const poolReturns: (ReturnPath | null)[] = [];
for (let p = 0; p < MAX_POOLS; p++) poolReturns.push(null); // packed, no holes (as poolStacks in buffer-table.ts): read per free

/**
 * From now on, this thread's frees of pool `id`'s buffers go into `ring`. attachPool(shared,
 * { returns }) calls it; a single-threaded test may call it by hand.
 */
export function setReturnPath(id: number, ring: SpscRing, poolName: string, checked: boolean): void {
  poolReturns[id] = new ReturnPath(ring, poolName, checked);
}

/** This thread's frees of pool `id` go onto its stack again. */
export function clearReturnPath(id: number): void {
  poolReturns[id] = null;
}

/** The smallest power of two (at least 2) that holds `count` buffers: a return ring's capacity. */
export function returnRingCapacity(count: number): number {
  let c = 2;
  while (c < count) c *= 2;
  return c;
}

/** A ring for returning `pool`'s buffers to it: capacity for every one of them (see above). */
export function returnRing(pool: { readonly count: number; readonly name: string }, name?: string): SpscRing {
  return SpscRing.create(returnRingCapacity(pool.count), { name: name ?? `returns to ${pool.name}` });
}

/**
 * freeBuffers' remote case: enqueues bufs[i .. j) into pool `id`'s return ring, where j is the
 * first index from i on whose buffer is not pool `id`'s (or `end`); returns j. One enqueue
 * for the run: a TX reclaim's batch is one run.
 */
export function returnRun(bufs: Int32Array, i: number, end: number, id: number, path: ReturnPath): number {
  let j = i + 1;
  while (j < end && bufPool[bufs[j]!] === id) j++;
  if (path.checked) markReturning(bufs, i, j, path);
  const n = j - i;
  const taken = path.ring.enqueue(bufs, i, n);
  if (taken !== n) throw ringFull(path, bufs[i + taken]!);
  return j;
}

/** freeBuffer's remote case. */
export function returnOne(buf: number, path: ReturnPath): void {
  if (path.checked) {
    checkNotFree(buf, path);
    bufHome[buf] = BUF_RETURNING;
  }
  ONE[0] = buf;
  if (path.ring.enqueue(ONE, 0, 1) !== 1) throw ringFull(path, buf);
}

const ONE = new Int32Array(1);

function markReturning(bufs: Int32Array, i: number, j: number, path: ReturnPath): void {
  for (let k = i; k < j; k++) {
    const buf = bufs[k]!;
    checkNotFree(buf, path); // (as the local path, marks of the run before it stay: the pool is broken)
    bufHome[buf] = BUF_RETURNING;
  }
}

function checkNotFree(buf: number, path: ReturnPath): void {
  const home = bufHome[buf];
  if (home === 1) throw new BufferOwnershipError(`${path.poolName}: buffer ${buf} freed twice (it is already in the pool)`);
  if (home === BUF_RETURNING) {
    throw new BufferOwnershipError(`${path.poolName}: buffer ${buf} freed twice (it is on its way back to the pool, in ${path.ring.name})`);
  }
}

function ringFull(path: ReturnPath, buf: number): BufferOwnershipError {
  return new BufferOwnershipError(
    `${path.poolName}: its return ring ${path.ring.name} is full at buffer ${buf}: it holds as many buffers as the pool has, so ` +
      `a buffer was freed twice, or the owner never calls collectReturns(); find it with checked: true`,
  );
}
