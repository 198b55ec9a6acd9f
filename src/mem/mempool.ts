/**
 * Mempool: a fixed number of fixed-size packet buffers in one DMA region, handed out and taken
 * back through a stack of free buffer indices (a Uint32Array). Every PacketBuffer object and
 * every view is built once, here, so allocBatch/free/freeBatch allocate nothing.
 *
 * Layout of one entry (entrySize bytes, 2048 by default):
 *
 *   | headroom (64 bytes) | data (entrySize - 64 bytes) ............................ |
 *   ^ entry start          ^ buf.iova / buf.data[0]
 *
 * The headroom is for headers a driver puts in front of the frame without copying it (virtio's
 * 12-byte virtio_net_hdr). The data capacity is 1984 bytes by default: enough for any standard
 * Ethernet frame (1518 bytes, 1522 with a VLAN tag); jumbo frames would need larger entries.
 */
import { BufferOwnershipError, DmaError } from "../errors.ts";
import type { DmaAllocator, DmaRegion } from "./dma.ts";

export const MEMPOOL_HEADROOM = 64;

export class PacketBuffer {
  /** The pool this buffer returns to. */
  readonly pool: Mempool;
  /** Index within the pool, 0 .. pool.count - 1. */
  readonly index: number;
  /** Device address of data[0]. */
  readonly iova: number;
  /**
   * iova split into the two 32-bit halves a 64-bit descriptor field takes, computed once here so
   * that hot paths store them without floating-point math: `desc[i] = buf.iovaLo; desc[i + 1] =
   * buf.iovaHi` on a Uint32Array. iovaLo is the low half as a signed 32-bit integer (the same
   * bits; V8 then keeps it a small integer inside the object instead of a separately allocated
   * double, which a hot loop would have to fetch from another cache line), iovaHi the high half.
   */
  readonly iovaLo: number;
  readonly iovaHi: number;
  /** The data area; the frame is data[0 .. length). */
  readonly data: Uint8Array;
  /** Offset of data[0] within pool.region.bytes (the headroom lies just below it). */
  readonly byteOffset: number;
  /** Length of the frame in data, in bytes. */
  length = 0;

  constructor(pool: Mempool, index: number, iova: number, data: Uint8Array, byteOffset: number) {
    this.pool = pool;
    this.index = index;
    this.iova = iova;
    this.iovaLo = iova % 0x1_0000_0000 | 0;
    this.iovaHi = Math.floor(iova / 0x1_0000_0000);
    this.data = data;
    this.byteOffset = byteOffset;
  }

  /** The frame as a view (allocates a view object: not for the hot path). */
  frame(): Uint8Array {
    return this.data.subarray(0, this.length);
  }
}

export interface MempoolOptions {
  /** Number of buffers (default 4096). */
  readonly count?: number;
  /** Bytes per buffer including the 64-byte headroom; a power of two from 256 to 65536 (default 2048). */
  readonly entrySize?: number;
  /** Throw BufferOwnershipError on a double free or a buffer of another pool (costs a little). */
  readonly checked?: boolean;
  /** Names the pool in errors. */
  readonly name?: string;
}

export class Mempool {
  readonly name: string;
  readonly count: number;
  readonly entrySize: number;
  /** Usable bytes per buffer (entrySize - headroom). */
  readonly dataCapacity: number;
  readonly checked: boolean;
  readonly region: DmaRegion;
  /** All buffers, by index. */
  readonly buffers: readonly PacketBuffer[];
  readonly #free: Uint32Array;
  #top: number;
  /** checked mode: 1 while the buffer is in the pool. */
  readonly #inPool: Uint8Array;

  constructor(dma: DmaAllocator, options: MempoolOptions = {}) {
    const count = options.count ?? 4096;
    const entrySize = options.entrySize ?? 2048;
    this.name = options.name ?? `mempool on ${dma.name}`;
    if (!Number.isInteger(count) || count < 1 || count > 1 << 24) {
      throw new RangeError(`${this.name}: buffer count must be an integer from 1 to 16777216, got ${count}`);
    }
    if (!Number.isInteger(entrySize) || entrySize < 256 || entrySize > 65536 || (entrySize & (entrySize - 1)) !== 0) {
      throw new RangeError(`${this.name}: entry size must be a power of two from 256 to 65536, got ${entrySize}`);
    }
    this.count = count;
    this.entrySize = entrySize;
    this.dataCapacity = entrySize - MEMPOOL_HEADROOM;
    this.checked = options.checked ?? false;
    // Buffers need not be contiguous with each other, only each one in itself; a power-of-two
    // entry size inside hugepage-aligned memory never straddles a page.
    this.region = dma.allocate(count * entrySize, { align: entrySize, contiguous: false });
    const bytes = this.region.bytes;
    const buffers: PacketBuffer[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const start = i * entrySize;
      const dataOffset = start + MEMPOOL_HEADROOM;
      const iova = this.region.iovaOf(dataOffset);
      if (this.region.iovaOf(start + entrySize - 1) !== this.region.iovaOf(start) + entrySize - 1) {
        throw new DmaError(`${this.name}: buffer ${i} is not contiguous for the device; use a power-of-two entry size`);
      }
      buffers[i] = new PacketBuffer(this, i, iova, bytes.subarray(dataOffset, start + entrySize), dataOffset);
    }
    this.buffers = buffers;
    this.#free = new Uint32Array(count);
    this.#inPool = new Uint8Array(count);
    // Hand buffers out in ascending order at first: easier to follow in a trace.
    for (let i = 0; i < count; i++) {
      this.#free[i] = count - 1 - i;
      this.#inPool[i] = 1;
    }
    this.#top = count;
  }

  /** Buffers currently in the pool. */
  get available(): number {
    return this.#top;
  }

  /** One buffer, or null when the pool is empty. */
  alloc(): PacketBuffer | null {
    if (this.#top === 0) return null;
    const index = this.#free[--this.#top]!;
    if (this.checked) this.#inPool[index] = 0;
    return this.buffers[index]!;
  }

  /** Fills out[0 .. n) with up to n buffers; returns how many it got (fewer when the pool runs dry). */
  allocBatch(out: PacketBuffer[], n: number): number {
    const got = n < this.#top ? n : this.#top;
    const free = this.#free;
    const buffers = this.buffers;
    let top = this.#top;
    for (let i = 0; i < got; i++) {
      const index = free[--top]!;
      if (this.checked) this.#inPool[index] = 0;
      out[i] = buffers[index]!;
    }
    this.#top = top;
    return got;
  }

  /** Returns a buffer to this pool. */
  free(buf: PacketBuffer): void {
    if (this.checked) this.#checkFree(buf);
    this.#free[this.#top++] = buf.index;
  }

  /** Returns bufs[start .. start + count) to the pools they belong to. */
  freeBatch(bufs: readonly PacketBuffer[], count: number, start = 0): void {
    const end = start + count;
    if (this.checked) {
      for (let i = start; i < end; i++) bufs[i]!.pool.free(bufs[i]!);
      return;
    }
    // The stack top lives in a local for the loop (a field store per buffer is measurably slower).
    const free = this.#free;
    let top = this.#top;
    for (let i = start; i < end; i++) {
      const buf = bufs[i]!;
      if (buf.pool === this) {
        free[top++] = buf.index;
      } else {
        this.#top = top;
        buf.pool.free(buf);
        top = this.#top;
      }
    }
    this.#top = top;
  }

  #checkFree(buf: PacketBuffer): void {
    if (buf.pool !== this || this.buffers[buf.index] !== buf) {
      throw new BufferOwnershipError(`${this.name}: buffer ${buf.index} belongs to ${buf.pool.name}, not to this pool`);
    }
    if (this.#inPool[buf.index] === 1) {
      throw new BufferOwnershipError(`${this.name}: buffer ${buf.index} freed twice (it is already in the pool)`);
    }
    if (this.#top >= this.count) {
      throw new BufferOwnershipError(`${this.name}: more buffers freed than the pool holds`);
    }
    this.#inPool[buf.index] = 1;
  }
}
