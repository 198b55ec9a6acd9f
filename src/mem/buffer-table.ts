/**
 * The buffer table: every packet buffer of the process is a row number here, as a pointer to a
 * `struct pkt_buf` is in ixy's C. Whatever a driver or an application needs to know about a
 * buffer lives in typed-array columns indexed by that number:
 *
 *   bufIovaLo[b], bufIovaHi[b]  the device address of the buffer's data, as two 32-bit halves
 *   bufLength[b]                the length of the frame in it, in bytes
 *   bufPool[b]                  the id of the mempool it belongs to (-1: no such buffer)
 *   bufDataOffset[b]            where its data starts within its pool's memory (poolBytes[pool])
 *   bufHome[b]                  checked pools: 1 while it is in its pool's free stack, 2 while a
 *                               device queue holds it (from txBatch until it is reclaimed), 0 while
 *                               the application has it, 4 (BUF_RETURNING) while it is in a return
 *                               ring on its way back to its pool (pool-returns.ts); unchecked pools:
 *                               always 3 (BUF_UNTRACKED)
 *
 * Why numbers and columns instead of one object per buffer: a JavaScript object per packet costs
 * three or more cache lines per packet (the object, its view, the view's backing store), a write
 * barrier per field store, and heap the garbage collector has to walk. A number costs nothing,
 * and a column is a plain array of machine integers that a hot loop indexes directly. (Measured
 * in docs/performance.md: the object-per-packet driver ran at 0.25 of C.)
 *
 * The columns live on SharedArrayBuffers so that worker threads can later see the same table
 * (each thread makes its own views of the DMA memory; a buffer belongs to one thread at a time).
 *
 * Rows are handed to mempools in contiguous ranges and come back when a pool is closed, or when
 * the DMA allocator behind it has been closed (its memory is gone, so are its buffers).
 */
import { workerData } from "node:worker_threads";
import { DmaError, IxyError } from "../errors.ts";

/**
 * A packet buffer: its row in the buffer table. A plain number alias rather than a branded type,
 * because batches are Int32Arrays and an element read from one is a plain number: a brand would
 * ask for a cast at every read and buy no safety.
 */
export type PacketBuffer = number;

/** Rows in the table: 1M buffers, 2 GiB of packet memory at the default 2 KiB per buffer. */
export const BUFFER_TABLE_ROWS = 1 << 20;
/** Mempools that can exist at once. */
export const MAX_POOLS = 4096;

/**
 * The key under which a worker thread finds the table of the thread that started it, in its
 * workerData (src/threads/ts-worker.ts puts it there). A worker's copy of this module then uses
 * the same SharedArrayBuffers instead of making a table of its own, so that a buffer number means
 * the same buffer in every thread.
 */
export const BUFFER_TABLE_KEY = "ixy.ts buffer table";

/** The columns, as a worker receives them. */
export interface SharedBufferTable {
  readonly bufIovaLo: Int32Array;
  readonly bufIovaHi: Int32Array;
  readonly bufLength: Int32Array;
  readonly bufPool: Int32Array;
  readonly bufDataOffset: Int32Array;
  readonly bufHome: Uint8Array;
  readonly bufTxOffload: Uint8Array;
  readonly bufRxOffload: Uint8Array;
  readonly bufL2Len: Uint8Array;
  readonly bufL3Len: Uint16Array;
  readonly bufL4Len: Uint8Array;
  readonly bufMss: Uint16Array;
  readonly poolTop: Int32Array;
  readonly poolChecked: Uint8Array;
  readonly poolSpace: Int32Array;
  readonly poolCapacity: Int32Array;
  readonly tableState: Int32Array;
}

const inherited: SharedBufferTable | null =
  (workerData as Record<string, SharedBufferTable> | null | undefined)?.[BUFFER_TABLE_KEY] ?? null;

/**
 * True in the thread that made the table (the one that opens devices and makes mempools); false
 * in a worker that inherited it. Pools are registered only where the table was made: the row and
 * pool-id allocator below is a plain JavaScript structure of that thread.
 */
export const ownsBufferTable = inherited === null;

function column(rows: number, name: keyof SharedBufferTable): Int32Array {
  return (inherited?.[name] as Int32Array | undefined) ?? new Int32Array(new SharedArrayBuffer(rows * 4));
}

function byteColumn(rows: number, name: keyof SharedBufferTable): Uint8Array {
  return (inherited?.[name] as Uint8Array | undefined) ?? new Uint8Array(new SharedArrayBuffer(rows));
}

function halfColumn(rows: number, name: keyof SharedBufferTable): Uint16Array {
  return (inherited?.[name] as Uint16Array | undefined) ?? new Uint16Array(new SharedArrayBuffer(rows * 2));
}

export const bufIovaLo = column(BUFFER_TABLE_ROWS, "bufIovaLo");
export const bufIovaHi = column(BUFFER_TABLE_ROWS, "bufIovaHi");
export const bufLength = column(BUFFER_TABLE_ROWS, "bufLength");
export const bufPool = inherited === null ? column(BUFFER_TABLE_ROWS, "bufPool").fill(-1) : inherited.bufPool;
export const bufDataOffset = column(BUFFER_TABLE_ROWS, "bufDataOffset");
export const bufHome = byteColumn(BUFFER_TABLE_ROWS, "bufHome");
/**
 * bufHome of every buffer of an unchecked pool: nothing is tracked. A value of its own (not 0),
 * so that txBatch's checking pass tells checked from unchecked buffers by bufHome alone: 0 is a
 * checked buffer the caller holds (marked 2 as it goes to the device), this one passes as it is.
 */
export const BUF_UNTRACKED = 3;
/**
 * bufHome of a checked pool's buffer that another thread freed into the pool's return ring
 * (src/mem/pool-returns.ts): neither free yet (its owner has not collected it) nor anyone's.
 * txBatch refuses it like any buffer that is not 0 or BUF_UNTRACKED.
 */
export const BUF_RETURNING = 4;

/**
 * Offloads (src/mem/offload.ts has the flags and the functions that set them):
 *
 *   bufTxOffload[b]  what the next send of b asks of the device (TX_OFFLOAD flags; 0: nothing).
 *                    txBatch reads it once and clears it as it takes the buffer: a request
 *                    applies to one send. Mempool.alloc/allocBatch clear it too.
 *   bufL2Len[b], bufL3Len[b], bufL4Len[b]
 *                    the header lengths the request was made for (Ethernet with any VLAN tag;
 *                    IPv4 with options or IPv6 with extension headers; TCP with options)
 *   bufMss[b]        TSO: the TCP payload bytes per segment
 *   bufRxOffload[b]  what the device said about a received frame (RX_OFFLOAD flags; 0: nothing
 *                    known). Every rxBatch writes it, and bufTxOffload, for each frame.
 *
 * Columns rather than fields of a descriptor so that a frame without offloads costs one byte
 * load on transmit and two byte stores on receive.
 */
export const bufTxOffload = byteColumn(BUFFER_TABLE_ROWS, "bufTxOffload");
export const bufRxOffload = byteColumn(BUFFER_TABLE_ROWS, "bufRxOffload");
export const bufL2Len = byteColumn(BUFFER_TABLE_ROWS, "bufL2Len");
export const bufL3Len = halfColumn(BUFFER_TABLE_ROWS, "bufL3Len");
export const bufL4Len = byteColumn(BUFFER_TABLE_ROWS, "bufL4Len");
export const bufMss = halfColumn(BUFFER_TABLE_ROWS, "bufMss");

/**
 * Per pool, by pool id: the top of its free stack (poolTop[p] buffers are free, the stack holds
 * them in poolStacks[p][0 .. top)), whether it is checked, and its memory as bytes and as 16- and
 * 32-bit words (for drivers that write headers into a buffer's headroom), and the capacity of its
 * buffers.
 */
export const poolTop = column(MAX_POOLS, "poolTop");
export const poolChecked = byteColumn(MAX_POOLS, "poolChecked");
/**
 * The address space of the pool's device addresses (DmaAllocator.space; 0 for no live pool).
 * txBatch compares it with its device's space: poolSpace[bufPool[b]] is undefined for a dead
 * buffer (bufPool -1), so one comparison refuses both a dead and a foreign buffer.
 */
export const poolSpace = column(MAX_POOLS, "poolSpace");
/** Bytes a buffer of the pool can hold (its data capacity). */
export const poolCapacity = column(MAX_POOLS, "poolCapacity");
export const poolStacks: Int32Array[] = [];
export const poolBytes: Uint8Array[] = [];
export const poolWords16: Uint16Array[] = [];
export const poolWords32: Uint32Array[] = [];
const EMPTY_STACK = new Int32Array(0);
const EMPTY_BYTES = new Uint8Array(0);
const EMPTY_WORDS16 = new Uint16Array(0);
const EMPTY_WORDS32 = new Uint32Array(0);
for (let p = 0; p < MAX_POOLS; p++) {
  // Appended one by one, so that V8 keeps the arrays packed (no hole checks when indexed).
  poolStacks.push(EMPTY_STACK);
  poolBytes.push(EMPTY_BYTES);
  poolWords16.push(EMPTY_WORDS16);
  poolWords32.push(EMPTY_WORDS32);
}

/**
 * tableState[ROWS_IN_USE]: one past the highest row ever handed out; every buffer number a
 * driver accepts is below it (a cheap range check on the hot path). In a typed array rather than
 * a variable so that hot loops compiled against the table see it change.
 */
export const tableState = column(1, "tableState");
export const ROWS_IN_USE = 0;

/** What a pool registers about itself; the table asks it whether its memory is still alive. */
export interface PoolRegistration {
  readonly name: string;
  /** True once the pool was closed or its DMA allocator was. */
  readonly dead: boolean;
}

interface Range {
  first: number;
  count: number;
}

// Read only on cold paths (pool registration, error messages), so not kept packed like the
// pool arrays above: new Array(n).fill(null) leaves V8's elements kind holey, which costs a hole
// check per access and does not matter here.
const owners: (PoolRegistration | null)[] = new Array<PoolRegistration | null>(MAX_POOLS).fill(null);
const ranges: (Range | null)[] = new Array<Range | null>(MAX_POOLS).fill(null);
/** Row ranges given back, kept sorted by first row and merged with their neighbours. */
const freeRanges: Range[] = [{ first: 0, count: BUFFER_TABLE_ROWS }];

/**
 * Reserves a pool id and `count` consecutive rows for a pool whose device addresses belong to
 * address space `space`; returns both. Throws DmaError when full.
 */
export function registerPool(owner: PoolRegistration, count: number, space: number): { id: number; first: number } {
  if (!ownsBufferTable) {
    throw new IxyError(
      `${owner.name}: mempools are made in the thread that opened the devices (it owns the buffer table); ` +
        `make the pool there and hand it to this worker with sharePool() / attachPool()`,
    );
  }
  let id = freePoolId();
  let first = takeRows(count);
  if (id < 0 || first < 0) {
    reclaimDeadPools();
    // Ask again only for what is missing: rows already taken must not be taken a second time.
    if (id < 0) id = freePoolId();
    if (first < 0) first = takeRows(count);
  }
  if (id < 0 || first < 0) {
    if (first >= 0) giveRows(first, count);
    throw new DmaError(
      `${owner.name}: the buffer table is full (${MAX_POOLS} pools, ${BUFFER_TABLE_ROWS} buffers in all): close() ` +
        `mempools you no longer need, or make fewer, larger ones`,
    );
  }
  owners[id] = owner;
  ranges[id] = { first, count };
  poolSpace[id] = space;
  if (first + count > tableState[ROWS_IN_USE]!) tableState[ROWS_IN_USE] = first + count;
  return { id, first };
}

/** Gives a pool's id and rows back; its buffer numbers are invalid from now on. */
export function unregisterPool(id: number): void {
  const range = ranges[id];
  if (range === null || range === undefined) return;
  bufPool.fill(-1, range.first, range.first + range.count);
  bufHome.fill(0, range.first, range.first + range.count);
  poolTop[id] = 0;
  poolChecked[id] = 0;
  poolSpace[id] = 0;
  poolCapacity[id] = 0;
  poolStacks[id] = EMPTY_STACK;
  poolBytes[id] = EMPTY_BYTES;
  poolWords16[id] = EMPTY_WORDS16;
  poolWords32[id] = EMPTY_WORDS32;
  owners[id] = null;
  ranges[id] = null;
  giveRows(range.first, range.count);
}

/** The pool a live buffer number belongs to, or null. */
export function ownerOf(buf: number): PoolRegistration | null {
  if (!isBufferNumber(buf)) return null;
  const id = bufPool[buf]!;
  return id < 0 ? null : owners[id]!;
}

/** True for an integer that names a row of a live pool. */
export function isBufferNumber(buf: number): boolean {
  return Number.isInteger(buf) && buf >= 0 && buf < tableState[ROWS_IN_USE]! && bufPool[buf]! >= 0;
}

/**
 * Pool ids whose poolTop entries share one 128-byte block: a cache line and its pair, which
 * Intel's L2 spatial prefetcher fetches together (the SPSC ring keeps its indices that far apart
 * for the same reason).
 */
const IDS_PER_LINE = 32;

/**
 * A free pool id, preferring one whose poolTop entry shares its cache line with no live pool.
 * poolTop is the one per-pool column the hot paths write (every RX refill, every TX reclaim):
 * two pools of two worker threads with neighbouring ids would put both workers' stores on one
 * line, which then moves between their cores at every batch (false sharing). With at most
 * MAX_POOLS / IDS_PER_LINE = 128 pools every pool has a block of its own; beyond that ids share
 * blocks, as any free id would.
 */
function freePoolId(): number {
  for (let line = 0; line < MAX_POOLS; line += IDS_PER_LINE) {
    let empty = true;
    for (let id = line; id < line + IDS_PER_LINE && empty; id++) empty = owners[id] === null;
    if (empty) return line;
  }
  return owners.indexOf(null);
}

function reclaimDeadPools(): void {
  for (let id = 0; id < MAX_POOLS; id++) {
    if (owners[id]?.dead === true) unregisterPool(id);
  }
}

function takeRows(count: number): number {
  for (let i = 0; i < freeRanges.length; i++) {
    const r = freeRanges[i]!;
    if (r.count < count) continue;
    const first = r.first;
    r.first += count;
    r.count -= count;
    if (r.count === 0) freeRanges.splice(i, 1);
    return first;
  }
  return -1;
}

function giveRows(first: number, count: number): void {
  let i = 0;
  while (i < freeRanges.length && freeRanges[i]!.first < first) i++;
  freeRanges.splice(i, 0, { first, count });
  // Merge with the neighbours, so that large pools find room again after small ones are gone.
  if (i + 1 < freeRanges.length && first + count === freeRanges[i + 1]!.first) {
    freeRanges[i]!.count += freeRanges[i + 1]!.count;
    freeRanges.splice(i + 1, 1);
  }
  if (i > 0 && freeRanges[i - 1]!.first + freeRanges[i - 1]!.count === first) {
    freeRanges[i - 1]!.count += freeRanges[i]!.count;
    freeRanges.splice(i, 1);
  }
}

/** The columns to hand to a worker (ts-worker.ts puts them into its workerData). */
export function shareBufferTable(): SharedBufferTable {
  return { bufIovaLo, bufIovaHi, bufLength, bufPool, bufDataOffset, bufHome, bufTxOffload, bufRxOffload, bufL2Len, bufL3Len, bufL4Len, bufMss, poolTop, poolChecked, poolSpace, poolCapacity, tableState };
}

/**
 * In a worker: makes pool `id`'s memory and free stack known to this thread's copy of the
 * per-pool views (what freeBuffer and the drivers index), for a pool made in the owning thread.
 */
export function attachPoolViews(id: number, stack: Int32Array, bytes: Uint8Array, owner: PoolRegistration): void {
  // The owner table is this thread's: the worker's own entry names the pool in its errors.
  owners[id] = owner;
  poolStacks[id] = stack;
  poolBytes[id] = bytes;
  poolWords16[id] = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 1);
  poolWords32[id] = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
}

/** In a worker: forgets pool `id`'s views again (the pool goes back to the owning thread). */
export function detachPoolViews(id: number): void {
  owners[id] = null;
  poolStacks[id] = EMPTY_STACK;
  poolBytes[id] = EMPTY_BYTES;
  poolWords16[id] = EMPTY_WORDS16;
  poolWords32[id] = EMPTY_WORDS32;
}
