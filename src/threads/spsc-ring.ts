/**
 * A lock-free ring of buffer numbers between exactly one producer thread and one consumer
 * thread, in a SharedArrayBuffer: the building block for handing packet batches from a receive
 * worker to a processing worker, and buffers back to the thread whose pool they belong to.
 *
 * Layout (byte offsets; 128-byte blocks, see LINE):
 *
 *     0    magic, capacity             written once at creation, read-only afterwards
 *   128    head: slots written so far  stored by the producer only
 *   256    tail: slots read so far     stored by the consumer only
 *   384    capacity x int32 slots      slot i holds item number (i mod capacity)
 *
 * head and tail are free-running 32-bit counters (they wrap at 2^32; `(head - tail) | 0` is
 * the fill level as long as the capacity is below 2^31); a slot's index is the counter masked
 * with capacity - 1, hence the power-of-two capacity.
 *
 * Why each index has its own cache line: a store to a line invalidates every other core's copy
 * of the whole line. If head and tail shared one, each enqueue would take the line away from the
 * consumer and each dequeue from the producer even though neither writes the other's index
 * ("false sharing"); apart, the only transfers left are the ones the protocol needs (the consumer
 * reading head, the producer reading tail). 128 bytes rather than 64 because Intel's L2 spatial
 * prefetcher fetches lines in aligned pairs (Intel 64 and IA-32 Optimization Reference Manual,
 * "Data prefetching"); DPDK's rte_ring keeps its indices apart by that distance for the same
 * reason.
 *
 * Memory ordering. The slots are written and read with plain typed-array accesses; only the two
 * indices go through Atomics (sequentially consistent in the ECMAScript specification's
 * "Memory Model" clause). The producer writes slots [head, head + n) and then does
 * Atomics.store(head + n). A consumer's Atomics.load that reads that value synchronizes with the
 * store, so the slot writes happen-before everything the consumer does after the load: it reads
 * the items the producer wrote, never older ones, and the program has no data race on the slots.
 * The same argument the other way round (slot reads, then Atomics.store of tail; the producer's
 * Atomics.load of tail) guarantees that the producer never overwrites a slot the consumer has
 * not read yet. On x86-64 the plain accesses are movs and stores are never reordered with older
 * stores, nor loads with older loads (Intel SDM vol. 3, 8.2.2), so the order is the one in the
 * program once the compiler keeps it; V8 does not move plain memory accesses across an Atomics
 * operation, and emits the sequentially consistent store as an xchg (a locked instruction) and
 * the load as a plain mov. The xchg costs some tens of cycles: one per batch, not per item.
 *
 * Cached indices. Reading the other side's index means taking its cache line across cores,
 * which is the expensive part of the whole exchange. Each side keeps the last value it read
 * (the producer its idea of tail, the consumer of head) and loads the real index only when that
 * copy says the call cannot be satisfied (too little free space, too few items). Both copies
 * are conservative: tail and head only grow, so a stale tail under-counts the free space and a
 * stale head the items. This is the "cached index" of Lamport-queue descendants such as
 * FastForward and MCRingBuffer, and what rte_ring's single-producer/consumer paths do with
 * their local copies of the indices.
 *
 * One object per side: the producer calls enqueue() on its SpscRing, the consumer dequeue() on
 * its own (made with SpscRing.fromShared() in the other thread); one object may do both within
 * one thread. Two producers (or two consumers) corrupt the ring: nothing checks for it.
 */
import { badBatchRange, checkInteger, checkPowerOfTwo, checkString, describeValue } from "../validate.ts";

/** Bytes between the fields that different threads write. */
const LINE = 128;
const MAGIC = 0x53505352; // "SPSR"
const I_MAGIC = 0;
const I_CAPACITY = 1;
const I_HEAD = LINE / 4;
const I_TAIL = (2 * LINE) / 4;
const SLOTS_OFFSET = 3 * LINE;
/** Large enough for any ring of buffer numbers; small enough that (head - tail) | 0 never overflows. */
export const MAX_RING_CAPACITY = 1 << 28;

/** What a ring needs to be opened in another thread: postMessage/workerData share the SAB, not copy it. */
export interface SharedRing {
  readonly sab: SharedArrayBuffer;
  readonly capacity: number;
  readonly name: string;
}

export interface SpscRingOptions {
  /** For error messages ("rx->worker1"); default "spsc-ring". */
  readonly name?: string;
  /**
   * Where head and tail start (default 0): a test sets it near 2^32 to see the counters wrap.
   * Any int32 (the counters are used modulo 2^32).
   */
  readonly initialIndex?: number;
}

export class SpscRing {
  /** For error messages. */
  readonly name: string;
  /** How many items fit (a power of two). */
  readonly capacity: number;
  readonly #sab: SharedArrayBuffer;
  readonly #index: Int32Array; // the header: magic, capacity, head, tail
  readonly #slots: Int32Array;
  readonly #mask: number;
  // The producer's side: its own head (it is the only writer, so no need to load it) and the
  // last tail it read.
  #head: number;
  #cachedTail: number;
  // The consumer's side: its own tail and the last head it read.
  #tail: number;
  #cachedHead: number;

  private constructor(sab: SharedArrayBuffer, capacity: number, name: string) {
    this.name = name;
    this.capacity = capacity;
    this.#sab = sab;
    this.#index = new Int32Array(sab, 0, SLOTS_OFFSET / 4);
    this.#slots = new Int32Array(sab, SLOTS_OFFSET, capacity);
    this.#mask = capacity - 1;
    this.#head = this.#cachedHead = Atomics.load(this.#index, I_HEAD);
    this.#tail = this.#cachedTail = Atomics.load(this.#index, I_TAIL);
  }

  /** A new, empty ring of `capacity` (a power of two, 2 to 2^28) buffer numbers. */
  static create(capacity: number, options: SpscRingOptions = {}): SpscRing {
    const name = checkString("SpscRing", "name", options.name) ?? "spsc-ring";
    checkPowerOfTwo(name, "capacity", capacity, 2, MAX_RING_CAPACITY);
    const initial = options.initialIndex === undefined ? 0 : checkInteger(name, "initialIndex", options.initialIndex, -(2 ** 31), 2 ** 31 - 1);
    const sab = new SharedArrayBuffer(SLOTS_OFFSET + capacity * 4);
    const index = new Int32Array(sab, 0, SLOTS_OFFSET / 4);
    index[I_MAGIC] = MAGIC;
    index[I_CAPACITY] = capacity;
    index[I_HEAD] = initial;
    index[I_TAIL] = initial;
    return new SpscRing(sab, capacity, name);
  }

  /**
   * The other side of a ring that `shared()` described (passed through workerData or
   * postMessage). Checks that the memory really is such a ring.
   */
  static fromShared(shared: SharedRing): SpscRing {
    if (typeof shared !== "object" || shared === null) {
      throw new TypeError(`SpscRing.fromShared() needs what ring.shared() returned, got ${describeValue(shared)}`);
    }
    const name = checkString("SpscRing.fromShared()", "name", shared.name) ?? "spsc-ring";
    const { sab, capacity } = shared;
    if (!(sab instanceof SharedArrayBuffer)) {
      throw new TypeError(`${name}: SpscRing.fromShared() needs the ring's SharedArrayBuffer as sab, got ${describeValue(sab)}`);
    }
    checkPowerOfTwo(name, "capacity", capacity, 2, MAX_RING_CAPACITY);
    const header = sab.byteLength >= SLOTS_OFFSET ? new Int32Array(sab, 0, 2) : null;
    if (sab.byteLength !== SLOTS_OFFSET + capacity * 4 || header![I_MAGIC] !== MAGIC || header![I_CAPACITY] !== capacity) {
      throw new RangeError(
        `${name}: this SharedArrayBuffer (${sab.byteLength} bytes) is not an SpscRing of capacity ${capacity}: ` +
          `pass the object ring.shared() returned, unchanged`,
      );
    }
    return new SpscRing(sab, capacity, name);
  }

  /** The SharedArrayBuffer and what fromShared() needs besides: a structured-cloneable object. */
  shared(): SharedRing {
    return { sab: this.#sab, capacity: this.capacity, name: this.name };
  }

  /**
   * Items in the ring now (a snapshot: the other side may change it the next moment). Reads
   * both index lines, so it is for statistics, not for the hot loop.
   */
  get count(): number {
    return (Atomics.load(this.#index, I_HEAD) - Atomics.load(this.#index, I_TAIL)) | 0;
  }

  /**
   * Producer: appends up to `n` buffer numbers from bufs[start..start + n) and returns how many
   * it did (0 when the ring is full); the first ones go first. Does not allocate.
   */
  enqueue(bufs: Int32Array, start: number, n: number): number {
    if (!goodRange(bufs, n, start)) badBatchRange(this.name, "enqueue", bufs, n, start);
    const capacity = this.capacity;
    const head = this.#head;
    let free = capacity - ((head - this.#cachedTail) | 0);
    if (free < n) {
      // Only now look at the consumer's line: it may have made room since.
      this.#cachedTail = Atomics.load(this.#index, I_TAIL);
      free = capacity - ((head - this.#cachedTail) | 0);
    }
    const k = n < free ? n : free;
    if (k === 0) return 0;
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = 0; i < k; i++) slots[(head + i) & mask] = bufs[start + i]!;
    const next = (head + k) | 0;
    this.#head = next;
    // Publishes the slots written above: they happen-before the consumer's load of this value.
    Atomics.store(this.#index, I_HEAD, next);
    return k;
  }

  /**
   * Consumer: takes up to `max` buffer numbers into out[start..start + max), oldest first, and
   * returns how many it took (0 when the ring is empty). Does not allocate.
   */
  dequeue(out: Int32Array, start: number, max: number): number {
    if (!goodRange(out, max, start)) badBatchRange(this.name, "dequeue", out, max, start);
    const tail = this.#tail;
    let avail = (this.#cachedHead - tail) | 0;
    if (avail < max) {
      // Only now look at the producer's line: it may have added items since.
      this.#cachedHead = Atomics.load(this.#index, I_HEAD);
      avail = (this.#cachedHead - tail) | 0;
    }
    const k = max < avail ? max : avail;
    if (k === 0) return 0;
    const slots = this.#slots;
    const mask = this.#mask;
    for (let i = 0; i < k; i++) out[start + i] = slots[(tail + i) & mask]!;
    const next = (tail + k) | 0;
    this.#tail = next;
    // Hands the slots read above back: the producer overwrites them only after loading this value.
    Atomics.store(this.#index, I_TAIL, next);
    return k;
  }
}

/** The same few comparisons as the mempool's batch calls. */
function goodRange(a: Int32Array, n: number, start: number): boolean {
  return a instanceof Int32Array && n >= 0 && start >= 0 && (n | 0) === n && (start | 0) === start && start + n <= a.length;
}
