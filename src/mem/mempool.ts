/**
 * Mempool: a fixed number of fixed-size packet buffers in one DMA region, handed out and taken
 * back through a stack of free buffer numbers (an Int32Array). A buffer is a number, its row in
 * the buffer table (buffer-table.ts), where its device address, frame length and pool are kept.
 *
 * Layout of one entry (entrySize bytes, 2048 by default):
 *
 *   | headroom (64 bytes) | data (entrySize - 64 bytes) ............................ |
 *   ^ entry start          ^ bufIovaLo/Hi[b], poolBytes[pool][bufDataOffset[b]]
 *
 * The headroom is for headers a driver puts in front of the frame without copying it (virtio's
 * 12-byte virtio_net_hdr). The data capacity is 1984 bytes by default: enough for any standard
 * Ethernet frame (1518 bytes, 1522 with a VLAN tag); jumbo frames would need larger entries.
 *
 * Nothing here allocates after the constructor: alloc/allocBatch/free/freeBatch move numbers
 * between Int32Arrays.
 */
import { BufferOwnershipError, DmaError, IxyError, PoolClosedError } from "../errors.ts";
import { openView, shareView, type SharedView } from "../threads/shared-view.ts";
import { sharedInt32 } from "./shared-arrays.ts";
import { hi32, join64, lo32, lo32Signed } from "./u64.ts";
import { SpscRing, type SharedRing } from "../threads/spsc-ring.ts";
import { clearReturnPath, poolReturns, returnOne, returnRun, setReturnPath } from "./pool-returns.ts";
import { badBatchRange, checkBoolean, checkInteger, checkOptionsObject, checkPowerOfTwo, checkString, describeValue } from "../validate.ts";
import {
  BUF_RETURNING,
  bufDataOffset,
  bufHome,
  BUF_UNTRACKED,
  bufIovaHi,
  bufIovaLo,
  bufLength,
  bufPool,
  bufTxOffload,
  isBufferNumber,
  ownsBufferTable,
  attachPoolViews,
  detachPoolViews,
  ownerOf,
  poolBytes,
  poolCapacity,
  poolChecked,
  poolStacks,
  poolTop,
  poolWords16,
  poolWords32,
  registerPool,
  unregisterPool,
  type PacketBuffer,
} from "./buffer-table.ts";
import type { DmaAllocator, DmaRegion } from "./dma.ts";

export const MEMPOOL_HEADROOM = 64;
/** What alloc() returns when the pool is empty; never a buffer number. */
export const NO_BUFFER = -1;

export interface MempoolOptions {
  /** Number of buffers (default 4096). */
  readonly count?: number;
  /** Bytes per buffer including the 64-byte headroom; a power of two from 256 to 65536 (default 2048). */
  readonly entrySize?: number;
  /** Throw BufferOwnershipError on a double free or a foreign buffer (costs a little). */
  readonly checked?: boolean;
  /** Names the pool in errors. */
  readonly name?: string;
}

/**
 * A pool as another thread receives it (Mempool.share(), through postMessage or workerData):
 * the free stack and the liveness flag are SharedArrayBuffers, the memory a SharedView.
 */
export interface SharedPool {
  readonly id: number;
  readonly name: string;
  readonly count: number;
  readonly entrySize: number;
  readonly checked: boolean;
  readonly first: number;
  readonly stack: Int32Array;
  readonly alive: Int32Array;
  readonly bytes: SharedView;
}

export interface AttachPoolOptions {
  /**
   * Attach the pool "for returns" (src/mem/pool-returns.ts): another thread allocates from it
   * and has accepted this ring (acceptReturns); here the pool's buffers can be read, written,
   * sent and freed, and every free of them in this thread goes into the ring. alloc() throws.
   * The ring's capacity must be at least the pool's count (returnRing() makes such a ring).
   */
  readonly returns?: SpscRing | SharedRing;
}

/**
 * In a worker thread: the pool that another thread shared (Mempool.share()). Its buffers can be
 * allocated, freed, read and written here as in the owning thread; close() only forgets it here.
 * With `returns`, a thread that only frees the pool's buffers back to the thread that allocates
 * from it (see AttachPoolOptions).
 */
export function attachPool(shared: SharedPool, options: AttachPoolOptions = {}): Mempool {
  if (ownsBufferTable) {
    throw new IxyError(`${shared.name}: attachPool() in the thread that owns the buffer table: use the pool itself there`);
  }
  if (shared.alive[0] === 0) throw new PoolClosedError(`${shared.name}: attachPool() of a pool its thread has closed: make a new pool there`);
  options = checkOptionsObject(shared.name, "attachPool()'s options", options);
  const returns = options.returns === undefined ? undefined : openReturnRing(shared, options.returns, "attachPool");
  return new Mempool(null as unknown as DmaAllocator, {}, shared, returns);
}

/** A return ring for `pool`, checked: an SpscRing (or what its shared() gave) that holds every buffer. */
function openReturnRing(pool: { readonly name: string; readonly count: number }, ring: SpscRing | SharedRing, call: string): SpscRing {
  const r = ring instanceof SpscRing ? ring : SpscRing.fromShared(ring);
  if (r.capacity < pool.count) {
    throw new RangeError(
      `${pool.name}: ${call}() with the return ring ${r.name} of ${r.capacity} slots, fewer than the pool's ${pool.count} ` +
        `buffers: it could fill; make it with returnRing(pool) (src/mem/pool-returns.ts)`,
    );
  }
  return r;
}

/**
 * The device addresses of a pool attached in a worker, read from the buffer table: each buffer
 * is contiguous for the device, and its data address is in bufIovaLo/Hi.
 */
class PoolRegion implements DmaRegion {
  readonly bytes: Uint8Array;
  readonly size: number;
  readonly iova: number;
  readonly contiguous = false;
  readonly #first: number;
  readonly #entrySize: number;

  constructor(bytes: Uint8Array, first: number, entrySize: number) {
    this.bytes = bytes;
    this.size = bytes.length;
    this.#first = first;
    this.#entrySize = entrySize;
    this.iova = this.iovaOf(0);
  }

  iovaOf(offset: number): number {
    if (!(offset >= 0 && offset < this.size)) throw new RangeError(`offset ${offset} is outside the ${this.size}-byte pool memory`);
    const entry = Math.floor(offset / this.#entrySize);
    const b = this.#first + entry;
    const data = join64(bufIovaLo[b]!, bufIovaHi[b]!);
    return data - MEMPOOL_HEADROOM + (offset - entry * this.#entrySize);
  }
}

export class Mempool {
  readonly name: string;
  /** The pool's id in the buffer table (bufPool[b] of each of its buffers). */
  readonly id: number;
  readonly count: number;
  readonly entrySize: number;
  /** Usable bytes per buffer (entrySize - headroom). */
  readonly dataCapacity: number;
  readonly checked: boolean;
  readonly region: DmaRegion;
  /** The pool's memory: buffer b's data starts at bytes[bufDataOffset[b]]. */
  readonly bytes: Uint8Array;
  /** Buffer numbers first .. first + count - 1 are this pool's. */
  readonly first: number;
  readonly #stack: Int32Array;
  /** The allocator; null for a pool attached in a worker (its allocator lives in the owning thread). */
  readonly #dma: DmaAllocator | null;
  /** [0]: 1 while the pool lives in the thread that made it (shared with the threads it is attached in). */
  readonly #alive: Int32Array;
  /** True for a pool made in another thread and attached here (attachPool). */
  readonly #attached: boolean;
  /** Attached for returns (attachPool's `returns`): frees go into this ring; no alloc here. */
  readonly #returnsTo: SpscRing | null;
  /** The owner's side: the rings other threads return this pool's buffers through (acceptReturns). */
  readonly #returnRings: SpscRing[] = [];
  #closed = false;
  /** Takes the onClose callback back from the allocator (null: none, or already done). */
  #forgetAllocator: (() => void) | null = null;

  constructor(dma: DmaAllocator, options: MempoolOptions = {}, attach?: SharedPool, returns?: SpscRing) {
    this.#returnsTo = returns ?? null;
    if (attach !== undefined) {
      // attachPool(): the same pool, seen from a worker thread (see SharedPool).
      this.name = attach.name;
      this.id = attach.id;
      this.count = attach.count;
      this.entrySize = attach.entrySize;
      this.dataCapacity = attach.entrySize - MEMPOOL_HEADROOM;
      this.checked = attach.checked;
      this.first = attach.first;
      this.#stack = attach.stack;
      this.#alive = attach.alive;
      this.#dma = null;
      this.#attached = true;
      this.bytes = openView(attach.bytes) as Uint8Array;
      this.region = new PoolRegion(this.bytes, this.first, this.entrySize);
      attachPoolViews(this.id, this.#stack, this.bytes, this);
      if (returns !== undefined) setReturnPath(this.id, returns, this.name, this.checked);
      return;
    }
    this.#attached = false;
    this.#alive = sharedInt32(1);
    this.#alive[0] = 1;
    if (typeof dma !== "object" || dma === null || typeof dma.allocate !== "function") {
      throw new TypeError(`Mempool: the first argument must be a DmaAllocator (a device's dma, say), got ${describeValue(dma)}`);
    }
    options = checkOptionsObject(`mempool on ${dma.name}`, "the mempool options", options);
    this.name = checkString(`mempool on ${dma.name}`, "name", options.name) ?? `mempool on ${dma.name}`;
    if (dma.closed) throw new PoolClosedError(`${this.name}: its DMA allocator (${dma.name}) is closed: make the pool from an open one`);
    const count = checkInteger(this.name, "count (buffers)", options.count === undefined ? 4096 : options.count, 1, 1 << 24);
    const entrySize = checkPowerOfTwo(this.name, "entrySize", options.entrySize === undefined ? 2048 : options.entrySize, 256, 65536);
    this.count = count;
    this.entrySize = entrySize;
    this.dataCapacity = entrySize - MEMPOOL_HEADROOM;
    this.checked = checkBoolean(this.name, "checked", options.checked) ?? false;
    this.#dma = dma;
    // Buffers need not be contiguous with each other, only each one in itself; a power-of-two
    // entry size inside hugepage-aligned memory never straddles a page.
    this.region = dma.allocate(count * entrySize, { align: entrySize, contiguous: false });
    const bytes = this.region.bytes;
    if (bytes.byteOffset % 4 !== 0) throw new DmaError(`${this.name}: DMA memory is not 4-byte aligned`);
    this.bytes = bytes;
    const { id, first } = registerPool(this, count, dma.space);
    this.id = id;
    this.first = first;
    for (let i = 0; i < count; i++) {
      const start = i * entrySize;
      const iova = this.region.iovaOf(start + MEMPOOL_HEADROOM);
      if (this.region.iovaOf(start + entrySize - 1) !== this.region.iovaOf(start) + entrySize - 1) {
        unregisterPool(id);
        throw new DmaError(`${this.name}: buffer ${i} is not contiguous for the device; use a power-of-two entry size`);
      }
      // Drivers put headers in the headroom and compute their address from the data address's
      // low half alone (iovaLo - hdrLen): the headroom must not straddle a 4 GiB boundary. With
      // entries aligned to their power-of-two size this cannot happen; checked all the same.
      if (lo32(iova) < MEMPOOL_HEADROOM) {
        unregisterPool(id);
        throw new DmaError(`${this.name}: buffer ${i}'s headroom straddles a 4 GiB boundary of device addresses`);
      }
      const b = first + i;
      // The low half as a signed 32-bit integer: the same bits, and V8 keeps it a small integer.
      bufIovaLo[b] = lo32Signed(iova);
      bufIovaHi[b] = hi32(iova);
      bufLength[b] = 0;
      bufPool[b] = id;
      bufDataOffset[b] = start + MEMPOOL_HEADROOM;
      bufHome[b] = this.checked ? 1 : BUF_UNTRACKED; // tracked for checked pools only
    }
    // The stack hands buffers out in ascending order at first: easier to follow in a trace.
    // On a SharedArrayBuffer like the table, so that worker threads can later share the pool.
    const stack = new Int32Array(new SharedArrayBuffer(count * 4));
    for (let i = 0; i < count; i++) stack[i] = first + count - 1 - i;
    this.#stack = stack;
    poolStacks[id] = stack;
    poolTop[id] = count;
    poolChecked[id] = this.checked ? 1 : 0;
    poolCapacity[id] = this.dataCapacity;
    poolBytes[id] = bytes;
    poolWords16[id] = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 1);
    poolWords32[id] = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
    // When the memory goes, so do the buffer numbers: none of them can reach a device again.
    this.#forgetAllocator = dma.onClose?.(() => this.#retire()) ?? null;
  }

  #retire(): void {
    if (this.#closed) return;
    this.#closed = true;
    const registered = this.#registered();
    this.#alive[0] = 0;
    if (registered) unregisterPool(this.id);
  }

  /** Buffers currently in the pool. */
  get available(): number {
    return this.#registered() ? poolTop[this.id]! : 0;
  }

  /** The pool's free stack: drivers that allocate inline read it with poolTop[id]. */
  get stack(): Int32Array {
    return this.#stack;
  }

  /** True once close() was called or the pool's DMA allocator was closed. */
  get dead(): boolean {
    return this.#closed || this.#alive[0] === 0 || this.#dma?.closed === true;
  }

  /**
   * What another thread needs to use this pool (attachPool() there): the pool then belongs to
   * that thread, which alone allocates from it and frees into it (the free stack has no lock),
   * until it detaches. Further threads that only free its buffers attach it for returns
   * (attachPool's `returns`, src/mem/pool-returns.ts). Only the thread that made the pool can share it.
   */
  share(): SharedPool {
    if (this.#attached) throw new IxyError(`${this.name}: share() in a worker: only the thread that made the pool can share it`);
    if (this.dead) this.#throwClosed("share");
    return {
      id: this.id, name: this.name, count: this.count, entrySize: this.entrySize, checked: this.checked, first: this.first,
      stack: this.#stack, alive: this.#alive, bytes: shareView(this.bytes, this.name),
    };
  }

  /** True when `buf` is one of this pool's buffer numbers. */
  owns(buf: number): boolean {
    return this.#registered() && Number.isInteger(buf) && buf >= this.first && buf < this.first + this.count;
  }

  /**
   * One buffer, or NO_BUFFER (-1) when the pool is empty. Its length is what it was when freed.
   * PoolClosedError after close() or once its allocator was closed.
   */
  alloc(): PacketBuffer {
    // After close() (or the table's reclaiming a pool whose allocator was closed) the id may
    // be another pool's by now: never hand out that pool's buffers.
    if (poolStacks[this.id] !== this.#stack || this.#closed) this.#throwClosed("alloc");
    if (this.#returnsTo !== null) this.#throwReturnsOnly("alloc");
    const top = poolTop[this.id]!;
    if (top === 0) return NO_BUFFER;
    if (top > this.count) this.#throwOverfreed("alloc");
    const buf = this.#stack[top - 1]!;
    poolTop[this.id] = top - 1;
    if (this.checked) bufHome[buf] = 0;
    bufTxOffload[buf] = 0; // a request made before an earlier free must not ride along
    return buf;
  }

  /** Fills out[start .. start + got) with up to n buffers; returns got (fewer when the pool runs dry). */
  allocBatch(out: Int32Array, n: number, start = 0): number {
    if (!goodRange(out, n, start)) badBatchRange(this.name, "allocBatch", out, n, start);
    const id = this.id;
    const stack = this.#stack;
    if (poolStacks[id] !== stack || this.#closed) this.#throwClosed("allocBatch"); // see alloc()
    if (this.#returnsTo !== null) this.#throwReturnsOnly("allocBatch");
    let top = poolTop[id]!;
    if (top > this.count) this.#throwOverfreed("allocBatch");
    const got = n < top ? n : top;
    for (let i = 0; i < got; i++) {
      const buf = stack[--top]!;
      out[start + i] = buf;
      bufTxOffload[buf] = 0; // see alloc()
    }
    poolTop[id] = top;
    if (this.checked) for (let i = 0; i < got; i++) bufHome[out[start + i]!] = 0;
    return got;
  }

  /** Returns a buffer to its pool (this one, or whichever it belongs to). */
  free(buf: PacketBuffer): void {
    if (this.#closed || !this.#registered()) this.#throwClosed("free");
    freeBuffer(buf);
  }

  /** Returns bufs[start .. start + count) to the pools they belong to. */
  freeBatch(bufs: Int32Array, count: number, start = 0): void {
    if (!goodRange(bufs, count, start)) badBatchRange(this.name, "freeBatch", bufs, count, start);
    if (this.#closed || !this.#registered()) this.#throwClosed("freeBatch");
    freeBuffers(bufs, start, count);
  }

  /**
   * The owner's side of remote frees (src/mem/pool-returns.ts): another thread, which attached
   * this pool with `{ returns: ring }`, frees its buffers into `ring`; collectReturns() here
   * moves them onto the free stack. Only the thread that allocates from the pool may accept
   * returns (it alone pushes onto the stack); one ring per returning thread (each ring has one
   * producer). Returns the ring, opened in this thread.
   */
  acceptReturns(ring: SpscRing | SharedRing): SpscRing {
    if (this.#returnsTo !== null) this.#throwReturnsOnly("acceptReturns");
    if (this.dead) this.#throwClosed("acceptReturns");
    const r = openReturnRing(this, ring, "acceptReturns");
    this.#returnRings.push(r);
    return r;
  }

  /**
   * Moves the buffers other threads returned (acceptReturns) onto the free stack, straight from
   * each ring into the stack; returns how many. Call it once per loop: with nothing returned it
   * costs one load of each ring's head. Checked pools: each buffer must be marked
   * BUF_RETURNING (it is then home); anything else came through a ring without being returned
   * (freed here and there at once) and throws BufferOwnershipError.
   */
  collectReturns(): number {
    const rings = this.#returnRings;
    if (rings.length === 0) return 0;
    const id = this.id;
    const stack = this.#stack;
    if (poolStacks[id] !== stack || this.#closed) this.#throwClosed("collectReturns");
    let top = poolTop[id]!;
    if (top > this.count) this.#throwOverfreed("collectReturns");
    let got = 0;
    for (let r = 0; r < rings.length; r++) {
      const ring = rings[r]!;
      // Never more than the stack has room for: a ring with more is a double free (below).
      const n = ring.dequeue(stack, top, this.count - top);
      if (this.checked) this.#settle(ring, top, n);
      top += n;
      got += n;
    }
    poolTop[id] = top;
    if (top === this.count) {
      for (let r = 0; r < rings.length; r++) if (rings[r]!.count !== 0) this.#throwOverfreed("collectReturns");
    }
    return got;
  }

  /** Checked pools: the n buffers just collected at stack[top..] were returned, and are home now. */
  #settle(ring: SpscRing, top: number, n: number): void {
    const stack = this.#stack;
    for (let k = top; k < top + n; k++) {
      const buf = stack[k]!;
      if (bufHome[buf] !== BUF_RETURNING) {
        poolTop[this.id] = k; // the stack keeps what was settled; the pool is broken all the same
        throw new BufferOwnershipError(
          `${this.name}: buffer ${buf} came back through ${ring.name} but was not in it as a returned buffer ` +
            `(bufHome ${bufHome[buf]}): it was freed twice, in two threads at once`,
        );
      }
      bufHome[buf] = 1;
    }
  }

  /**
   * Gives the pool's buffer numbers back to the buffer table. Every buffer should be home: a
   * buffer still in a ring or held by someone becomes an invalid number. Throws
   * BufferOwnershipError (and closes nothing) for a checked pool that is missing buffers.
   */
  close(): void {
    if (this.#closed) return;
    // What other threads returned so far is home again (they must have stopped freeing by now).
    if (this.#returnRings.length !== 0 && this.#registered()) this.collectReturns();
    if (this.#attached) {
      // A worker's view of a pool of another thread: it forgets the views; the pool lives on there.
      this.#closed = true;
      if (this.#returnsTo !== null) clearReturnPath(this.id);
      if (this.#registered()) detachPoolViews(this.id);
      return;
    }
    if (!this.#registered()) {
      // The table already took the pool back (its DMA allocator was closed): the id may be
      // another pool's now, and must not be unregistered again.
      this.#closed = true;
      return;
    }
    const top = poolTop[this.id]!;
    if (this.checked && top !== this.count) {
      throw new BufferOwnershipError(
        `${this.name}: close() with ${this.count - top} of its ${this.count} buffers still out: free them first`,
      );
    }
    this.#closed = true;
    this.#alive[0] = 0;
    unregisterPool(this.id);
    // The allocator outlives the pool: it must not keep the pool (and its memory) reachable.
    this.#forgetAllocator?.();
    this.#forgetAllocator = null;
  }

  /**
   * An unchecked pool was given back more buffers than it has: some buffer was freed twice
   * (or sent twice), and its free stack can no longer be trusted. Checked pools catch the
   * double free itself.
   */
  #throwOverfreed(call: string): never {
    throw new BufferOwnershipError(
      `${this.name}: ${call}(): ${poolTop[this.id]} buffers were freed into a pool of ${this.count}: a buffer was freed ` +
        `or sent twice, so the pool could hand one buffer to two owners. Find it with checked: true`,
    );
  }

  #throwReturnsOnly(call: string): never {
    throw new IxyError(
      `${this.name}: ${call}() in a thread that attached the pool for returns (attachPool with returns): only the ` +
        `thread that allocates from it may take buffers from its stack or accept returns`,
    );
  }

  #throwClosed(call: string): never {
    const why = this.#alive[0] === 0 && this.#attached ? "the thread that made it closed it"
      : this.#dma?.closed === true && !this.#closed ? `its DMA allocator (${this.#dma.name}) was closed` : "it was closed";
    throw new PoolClosedError(`${this.name}: ${call}() on a closed mempool (${why}): its buffers are gone; make a new pool`);
  }

  /** True while the buffer table still holds this pool under its id. */
  #registered(): boolean {
    return poolStacks[this.id] === this.#stack && this.#alive[0] !== 0;
  }
}

/** True when out[start .. start + n) is a range of the Int32Array `out` (n and start integers). */
function goodRange(out: Int32Array, n: number, start: number): boolean {
  return out instanceof Int32Array && n >= 0 && start >= 0 && (n | 0) === n && (start | 0) === start && start + n <= out.length;
}

/*
 * The buffer-table columns again, as module constants. An imported binding is read through its
 * module cell (and checked) at every use; a constant of this module is folded into the compiled
 * code of the functions below, which drivers call from their hot loops.
 */
const POOL_OF = bufPool;
const STACKS = poolStacks;
const TOPS = poolTop;
const CHECKED = poolChecked;
/** This thread's return paths (pool-returns.ts): null for a pool whose stack this thread pushes onto. */
const RETURNS = poolReturns;

/**
 * Returns one buffer to the pool it belongs to: onto its free stack, or, in a thread that
 * attached the pool for returns, into its return ring (pool-returns.ts).
 */
export function freeBuffer(buf: PacketBuffer): void {
  const id = POOL_OF[buf];
  // (A string "3" would index the column too: only numbers pass.)
  if (id === undefined || id < 0 || typeof buf !== "number") throw badBuffer(buf);
  const path = RETURNS[id]!;
  if (path !== null) return returnOne(buf, path);
  const stack = STACKS[id]!;
  if (stack.length === 0) throw notHere(buf, id);
  if (CHECKED[id] !== 0) checkFree(buf, id);
  stack[TOPS[id]!++] = buf;
}

/**
 * Returns bufs[start .. start + count) to the pools they belong to. Consecutive buffers of the
 * same pool (the common case: a TX ring's worth from one RX pool) cost two typed-array accesses
 * each; the pool's stack and top are looked up again only when the pool changes, and so is
 * this thread's return path for it: a run of buffers of a pool attached for returns goes into
 * its return ring in one enqueue (pool-returns.ts).
 */
export function freeBuffers(bufs: Int32Array, start: number, count: number): void {
  const end = start + count;
  let pool = -1;
  let stack = STACKS[0]!;
  let top = 0;
  for (let i = start; i < end; i++) {
    const buf = bufs[i]!;
    const id = POOL_OF[buf]!;
    if (id !== pool) {
      if (pool >= 0) TOPS[pool] = top;
      if (!(id >= 0)) throw badBuffer(buf);
      const path = RETURNS[id]!;
      if (path !== null) {
        // The whole run of this pool's buffers, into the ring; the loop goes on after it.
        pool = -1;
        i = returnRun(bufs, i, end, id, path) - 1;
        continue;
      }
      pool = id;
      stack = STACKS[id]!;
      if (stack.length === 0) throw notHere(buf, id);
      top = TOPS[id]!;
    }
    if (CHECKED[id] !== 0) {
      TOPS[id] = top;
      checkFree(buf, id);
    }
    stack[top++] = buf;
  }
  if (pool >= 0) TOPS[pool] = top;
}

function checkFree(buf: number, id: number): void {
  const home = bufHome[buf];
  if (home === 1) throw new BufferOwnershipError(`${nameOfPool(buf, id)}: buffer ${buf} freed twice (it is already in the pool)`);
  if (home === BUF_RETURNING) {
    throw new BufferOwnershipError(`${nameOfPool(buf, id)}: buffer ${buf} freed twice (another thread returned it already: it is in a return ring)`);
  }
  if (poolTop[id]! >= poolStacks[id]!.length) throw new BufferOwnershipError(`${nameOfPool(buf, id)}: more buffers freed than the pool holds`);
  bufHome[buf] = 1;
}

/**
 * A buffer of a live pool whose free stack this thread does not have: a pool made in another
 * thread and not attached here (attachPool). Pushing onto the empty stand-in would lose the
 * buffer and corrupt the pool's count.
 */
function notHere(buf: number, id: number): Error {
  return new BufferOwnershipError(
    `buffer ${buf} belongs to ${nameOfPool(buf, id)}, which is not attached in this thread: a pool belongs to one ` +
      `thread at a time; hand it over with pool.share() and attachPool(), or free the buffer in the thread that owns it`,
  );
}

/**
 * A pool's name for an error: its entry in this thread's table of owners (a pool attached in a
 * worker has one there too, attachPoolViews), else its id.
 */
function nameOfPool(buf: number, id: number): string {
  return ownerOf(buf)?.name ?? `mempool ${id}`;
}

function badBuffer(buf: unknown): Error {
  if (typeof buf !== "number") {
    return new TypeError(`a packet buffer is a number (from Mempool.alloc() or rxBatch()), got ${describeValue(buf)}`);
  }
  return new RangeError(
    `${buf} is not a packet buffer of any open mempool (buffer numbers come from Mempool.alloc() or rxBatch())`,
  );
}

/** The mempool a buffer belongs to, for error messages and tools; null for a bad number. */
export function poolNameOf(buf: number): string | null {
  return isBufferNumber(buf) ? ownerOf(buf)!.name : null;
}
