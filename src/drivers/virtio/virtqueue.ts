/**
 * Split virtqueues (virtio 1.1 §2.6) and the two ways virtio-net uses them: a receive queue kept
 * full of mempool buffers, and a transmit queue that takes the caller's buffers.
 *
 * Memory layout of one queue of `size` entries (the legacy layout, §2.6.2, which also satisfies
 * the modern alignment rules, so both transports share it):
 *
 *   offset 0                 descriptor table   size x { le64 addr, le32 len, le16 flags, le16 next }
 *   16 * size                available ring     le16 flags, le16 idx, le16 ring[size]
 *   next 4096 boundary       used ring          le16 flags, le16 idx, { le32 id, le32 len }[size]
 *
 * The driver writes descriptors and the available ring; the device writes the used ring. Every
 * access goes through Uint16Array/Uint32Array views made once here: one naturally aligned access
 * per field in every V8 tier (a DataView could tear the device's 16-bit used.idx). Ring indices are
 * free-running 16-bit counters; a slot is `idx & (size - 1)` (sizes are powers of two).
 *
 * Hot-path rules (see DESIGN.md): rxBatch/txBatch work on locals and typed arrays, allocate
 * nothing, write a 64-bit address as two 32-bit halves, and publish avail.idx once per batch.
 */
import { DeviceProtocolError } from "../../errors.ts";
import type { DmaRegion } from "../../mem/dma.ts";
import type { Mempool, PacketBuffer } from "../../mem/mempool.ts";
import type { Mmio } from "../../pci/mmio.ts";
import type { NotifyTarget, RingAddresses } from "./transport.ts";
import {
  VIRTIO_PCI_VRING_ALIGN,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_DESC_SIZE,
  VIRTQ_USED_F_NO_NOTIFY,
} from "./virtio_types.ts";

/** Byte offsets of the three ring parts within a queue's memory, and its total size. */
export interface RingLayout {
  readonly availOffset: number;
  readonly usedOffset: number;
  readonly bytes: number;
}

export function ringLayout(size: number): RingLayout {
  const availOffset = VIRTQ_DESC_SIZE * size;
  const usedOffset = alignUp(availOffset + 6 + 2 * size, VIRTIO_PCI_VRING_ALIGN);
  return { availOffset, usedOffset, bytes: alignUp(usedOffset + 6 + 8 * size, VIRTIO_PCI_VRING_ALIGN) };
}

function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}

/** One split virtqueue's memory and its views. */
export class VirtqueueRing {
  readonly index: number;
  readonly size: number;
  readonly addresses: RingAddresses;
  /** Descriptor i is desc32[4i .. 4i+3]: addr low, addr high, len, flags | next << 16. */
  readonly desc32: Uint32Array;
  /** [0] flags, [1] idx, [2 + slot] ring. */
  readonly avail16: Uint16Array;
  /** [0] flags, [1] idx (device-written). */
  readonly used16: Uint16Array;
  /** Used element of slot s: id at [1 + 2s], len at [2 + 2s] (device-written). */
  readonly used32: Uint32Array;

  /** `offset` is 4096-aligned within `region`, which the device sees as one range. */
  constructor(region: DmaRegion, offset: number, index: number, size: number) {
    const layout = ringLayout(size);
    const bytes = region.bytes;
    const base = bytes.byteOffset + offset;
    this.index = index;
    this.size = size;
    this.desc32 = new Uint32Array(bytes.buffer, base, 4 * size);
    this.avail16 = new Uint16Array(bytes.buffer, base + layout.availOffset, 2 + size);
    this.used16 = new Uint16Array(bytes.buffer, base + layout.usedOffset, 2);
    this.used32 = new Uint32Array(bytes.buffer, base + layout.usedOffset, 1 + 2 * size);
    const desc = region.iovaOf(offset);
    this.addresses = { desc, avail: desc + layout.availOffset, used: desc + layout.usedOffset };
    // §2.6.7: a polling driver asks the device not to interrupt it.
    this.avail16[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
  }

  /** Writes descriptor `id`: 64-bit address as two halves, length, flags, next. */
  setDescriptor(id: number, iova: number, length: number, flags: number, next: number): void {
    const d = id << 2;
    this.desc32[d] = iova >>> 0;
    this.desc32[d + 1] = (iova / 4294967296) >>> 0;
    this.desc32[d + 2] = length;
    this.desc32[d + 3] = (flags | (next << 16)) >>> 0;
  }
}

/**
 * The header sits at iova - hdrLen. The hot loops store (iovaLo - hdrLen, iovaHi), which is right
 * as long as no buffer's data starts within hdrLen bytes above a 4 GiB boundary (then the low half
 * would borrow from the high one). Mempool entries are aligned to their power-of-two size and
 * data[0] is 64 bytes in, so this holds; checked once per pool, not per packet.
 */
function checkHeaderRoom(name: string, pool: Mempool, hdrLen: number): void {
  for (const buf of pool.buffers) {
    if (buf.iovaLo >>> 0 < hdrLen || buf.byteOffset < hdrLen) {
      throw new RangeError(`${name}: buffer ${buf.index} of ${pool.name} has no room for the ${hdrLen}-byte virtio header below its data`);
    }
  }
}

/** Thrown when used.idx runs further ahead than the ring holds: nothing it says can be trusted. */
export function usedIndexError(name: string, index: number, usedIdx: number, last: number, size: number): DeviceProtocolError {
  return new DeviceProtocolError(
    `${name}: virtqueue ${index}: the device advanced used.idx to ${usedIdx} from ${last}, more than the ` +
      `${size} entries of the ring; the device is broken: close the device and open it again`,
  );
}

/**
 * The receive queue: one descriptor per mempool buffer, header (10 or 12 bytes) in the buffer's
 * headroom just below data[0], so the frame lands at data[0] without a copy. Descriptor i always
 * holds table[i]; a received buffer is swapped for a fresh one from the pool in the same slot, so
 * the ring stays full. When the pool is empty the frame is dropped (counted in `missed`) and its
 * buffer goes straight back to the device, which keeps receiving.
 */
export class RxQueue {
  readonly name: string;
  readonly pool: Mempool;
  /** Buffers kept posted: the ring size, or less when a legacy ring is larger than asked for. */
  readonly capacity: number;
  packets = 0;
  bytes = 0;
  /** Frames dropped because the mempool had no buffer to replace theirs. */
  missed = 0;
  /** Used entries with an impossible id or length (counted, dropped, never handed out). */
  errors = 0;
  notifications = 0;
  readonly #index: number;
  readonly #size: number;
  readonly #mask: number;
  readonly #desc32: Uint32Array;
  readonly #avail16: Uint16Array;
  readonly #used16: Uint16Array;
  readonly #used32: Uint32Array;
  readonly #hdrLen: number;
  readonly #dataCapacity: number;
  readonly #table: PacketBuffer[];
  readonly #scratch: PacketBuffer[];
  readonly #notifyMmio: Mmio;
  readonly #notifyOffset: number;
  #availIdx = 0;
  #lastUsed = 0;

  constructor(name: string, ring: VirtqueueRing, notify: NotifyTarget, pool: Mempool, capacity: number, hdrLen: number) {
    this.name = name;
    this.pool = pool;
    this.capacity = capacity;
    this.#index = ring.index;
    this.#size = ring.size;
    this.#mask = ring.size - 1;
    this.#desc32 = ring.desc32;
    this.#avail16 = ring.avail16;
    this.#used16 = ring.used16;
    this.#used32 = ring.used32;
    this.#hdrLen = hdrLen;
    this.#dataCapacity = pool.dataCapacity;
    this.#notifyMmio = notify.mmio;
    this.#notifyOffset = notify.offset;
    this.#scratch = new Array<PacketBuffer>(ring.size);
    this.#table = new Array<PacketBuffer>(capacity);
    checkHeaderRoom(name, pool, hdrLen);
    // §5.1.6.3 / §2.6.13: make every buffer available. Length and flags of a descriptor never
    // change afterwards (all buffers of the pool have the same size); only the address does.
    for (let id = 0; id < capacity; id++) {
      const buf = pool.alloc();
      if (buf === null) throw new RangeError(`${name}: the mempool has fewer than ${capacity} buffers to fill the ring`);
      this.#table[id] = buf;
      ring.setDescriptor(id, buf.iova - hdrLen, hdrLen + this.#dataCapacity, VIRTQ_DESC_F_WRITE, 0);
      this.#avail16[2 + id] = id;
    }
    this.#availIdx = capacity & 0xffff;
    Atomics.store(this.#avail16, 1, this.#availIdx);
  }

  /** Notifies the device that buffers are available (after DRIVER_OK, §3.1.1). */
  kick(): void {
    if ((this.#used16[0]! & VIRTQ_USED_F_NO_NOTIFY) === 0) {
      this.#notifyMmio.write16(this.#notifyOffset, this.#index);
      this.notifications++;
    }
  }

  /** §2.6.14 / §5.1.6.4: takes up to `max` received frames; refills their slots; one notification. */
  rxBatch(bufs: PacketBuffer[], max: number): number {
    const used16 = this.#used16;
    const usedIdx = used16[1]!;
    let last = this.#lastUsed;
    const pending = (usedIdx - last) & 0xffff;
    if (pending === 0) return 0;
    if (pending > this.#size) throw usedIndexError(this.name, this.#index, usedIdx, last, this.#size);
    const n = pending < max ? pending : max;
    if (n <= 0) return 0;
    const scratch = this.#scratch;
    const fresh = this.pool.allocBatch(scratch, n);
    const used32 = this.#used32;
    const desc32 = this.#desc32;
    const avail16 = this.#avail16;
    const table = this.#table;
    const mask = this.#mask;
    const hdrLen = this.#hdrLen;
    const dataCapacity = this.#dataCapacity;
    const capacity = this.capacity;
    let avail = this.#availIdx;
    let out = 0;
    let taken = 0;
    let bytes = 0;
    let errors = 0;
    let missed = 0;
    for (let k = 0; k < n; k++) {
      const e = ((last & mask) << 1) + 1;
      const id = used32[e]!;
      const frameLength = used32[e + 1]! - hdrLen;
      last = (last + 1) & 0xffff;
      if (id >= capacity) {
        // Not a descriptor we posted: nothing to hand out, nothing to refill.
        errors++;
        continue;
      }
      const buf = table[id]!;
      let repost = buf;
      if (frameLength <= 0 || frameLength > dataCapacity) errors++;
      else if (taken < fresh) {
        buf.length = frameLength;
        bufs[out++] = buf;
        bytes += frameLength;
        repost = scratch[taken++]!;
        table[id] = repost;
        // The header goes just below data[0]; checkHeaderRoom() made sure that never borrows
        // from the high half, so both halves come precomputed from the buffer.
        const d = id << 2;
        desc32[d] = repost.iovaLo - hdrLen;
        desc32[d + 1] = repost.iovaHi;
      } else missed++;
      avail16[2 + (avail & mask)] = id;
      avail = (avail + 1) & 0xffff;
    }
    if (taken < fresh) this.pool.freeBatch(scratch, fresh - taken, taken);
    this.#lastUsed = last;
    if (avail !== this.#availIdx) {
      this.#availIdx = avail;
      // Publish the index with a full barrier (xchg): the load of used.flags below must not pass
      // this store, or device and driver could both decide the other has nothing to do (§2.6.13.4).
      Atomics.store(avail16, 1, avail);
      if ((used16[0]! & VIRTQ_USED_F_NO_NOTIFY) === 0) {
        this.#notifyMmio.write16(this.#notifyOffset, this.#index);
        this.notifications++;
      }
    }
    this.packets += out;
    this.bytes += bytes;
    this.errors += errors;
    this.missed += missed;
    return out;
  }
}

/** CPU views of a mempool's memory for writing the net header into a buffer's headroom. */
interface HeaderViews {
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
}

/** Used entries reclaimed at once once this many are pending (or when descriptors run short). */
export const TX_CLEAN_BATCH = 32;

/**
 * The transmit queue: one descriptor per frame, the zeroed net header in the headroom in front of
 * data[0] (no offloads: flags 0, gso_type NONE). Descriptor ids come from a stack of free ids;
 * completed ids come back through the used ring in whatever order the device finishes them.
 */
export class TxQueue {
  readonly name: string;
  readonly capacity: number;
  packets = 0;
  bytes = 0;
  /** Used entries with an impossible or repeated id. */
  errors = 0;
  notifications = 0;
  readonly #index: number;
  readonly #size: number;
  readonly #mask: number;
  readonly #desc32: Uint32Array;
  readonly #avail16: Uint16Array;
  readonly #used16: Uint16Array;
  readonly #used32: Uint32Array;
  readonly #hdrLen: number;
  readonly #table: (PacketBuffer | null)[];
  readonly #freeIds: Uint16Array;
  #freeCount: number;
  readonly #scratch: PacketBuffer[];
  readonly #notifyMmio: Mmio;
  readonly #notifyOffset: number;
  readonly #headerViews = new WeakMap<Mempool, HeaderViews>();
  #lastPool: Mempool | null = null;
  #hdr16: Uint16Array = new Uint16Array(0);
  #hdr32: Uint32Array = new Uint32Array(0);
  #availIdx = 0;
  #lastUsed = 0;

  constructor(name: string, ring: VirtqueueRing, notify: NotifyTarget, capacity: number, hdrLen: number) {
    this.name = name;
    this.capacity = capacity;
    this.#index = ring.index;
    this.#size = ring.size;
    this.#mask = ring.size - 1;
    this.#desc32 = ring.desc32;
    this.#avail16 = ring.avail16;
    this.#used16 = ring.used16;
    this.#used32 = ring.used32;
    this.#hdrLen = hdrLen;
    this.#notifyMmio = notify.mmio;
    this.#notifyOffset = notify.offset;
    this.#table = new Array<PacketBuffer | null>(capacity).fill(null);
    this.#scratch = new Array<PacketBuffer>(ring.size);
    // Flags (0: one device-readable descriptor) and next never change; ids pop in ascending order.
    this.#freeIds = new Uint16Array(capacity);
    for (let i = 0; i < capacity; i++) this.#freeIds[i] = capacity - 1 - i;
    this.#freeCount = capacity;
  }

  /** Descriptors free for new frames (after the last reclaim). */
  get free(): number {
    return this.#freeCount;
  }

  /**
   * §2.6.13: queues bufs[0 .. n) for sending; returns n, the buffers taken. One notification per
   * batch. A buffer whose length is 0 or beyond its capacity is taken too, but not sent: it goes
   * back to its pool and counts as an error (a descriptor like that would send another buffer's
   * bytes), so that the caller always knows which buffers the driver now owns.
   */
  txBatch(bufs: PacketBuffer[], count: number): number {
    if (count > bufs.length) {
      throw new RangeError(`${this.name}: txBatch: count ${count} exceeds the ${bufs.length} buffers given`);
    }
    let free = this.#freeCount;
    if (free < count || ((this.#used16[1]! - this.#lastUsed) & 0xffff) >= TX_CLEAN_BATCH) free = this.reclaim();
    if (free <= 0 || count <= 0) return 0;
    const desc32 = this.#desc32;
    const avail16 = this.#avail16;
    const freeIds = this.#freeIds;
    const table = this.#table;
    const mask = this.#mask;
    const hdrLen = this.#hdrLen;
    let hdr16 = this.#hdr16;
    let hdr32 = this.#hdr32;
    let lastPool = this.#lastPool;
    let dataCapacity = lastPool === null ? 0 : lastPool.dataCapacity;
    let avail = this.#availIdx;
    let bytes = 0;
    let sent = 0;
    let refused = 0;
    let taken = 0;
    for (; taken < count && free > 0; taken++) {
      const buf = bufs[taken]!;
      const pool = buf.pool;
      if (pool !== lastPool) {
        const views = this.#viewsOf(pool);
        hdr16 = views.u16;
        hdr32 = views.u32;
        lastPool = pool;
        dataCapacity = pool.dataCapacity;
      }
      const length = buf.length;
      if (!(length > 0 && length <= dataCapacity)) {
        pool.free(buf);
        refused++;
        continue;
      }
      // Zero the header in the headroom: whatever the buffer held before (a received frame's
      // header, say) must not reach the device as offload requests.
      const h = buf.byteOffset - hdrLen;
      if (hdrLen === 12) {
        const w = h >>> 2;
        hdr32[w] = 0;
        hdr32[w + 1] = 0;
        hdr32[w + 2] = 0;
      } else {
        hdr16[h >>> 1] = 0;
        const w = (h + 2) >>> 2;
        hdr32[w] = 0;
        hdr32[w + 1] = 0;
      }
      const id = freeIds[--free]!;
      table[id] = buf;
      const d = id << 2;
      desc32[d] = buf.iovaLo - hdrLen;
      desc32[d + 1] = buf.iovaHi;
      desc32[d + 2] = length + hdrLen;
      avail16[2 + (avail & mask)] = id;
      avail = (avail + 1) & 0xffff;
      bytes += length;
      sent++;
    }
    this.#freeCount = free;
    this.#lastPool = lastPool;
    this.#hdr16 = hdr16;
    this.#hdr32 = hdr32;
    this.errors += refused;
    if (sent > 0) {
      this.#availIdx = avail;
      Atomics.store(avail16, 1, avail);
      if ((this.#used16[0]! & VIRTQ_USED_F_NO_NOTIFY) === 0) {
        this.#notifyMmio.write16(this.#notifyOffset, this.#index);
        this.notifications++;
      }
      this.packets += sent;
      this.bytes += bytes;
    }
    return taken;
  }

  /** §2.6.14: returns the buffers of completed descriptors to their pools; returns the free count. */
  reclaim(): number {
    const usedIdx = this.#used16[1]!;
    let last = this.#lastUsed;
    const pending = (usedIdx - last) & 0xffff;
    if (pending === 0) return this.#freeCount;
    if (pending > this.#size) throw usedIndexError(this.name, this.#index, usedIdx, last, this.#size);
    const used32 = this.#used32;
    const table = this.#table;
    const freeIds = this.#freeIds;
    const scratch = this.#scratch;
    const mask = this.#mask;
    const capacity = this.capacity;
    let free = this.#freeCount;
    let done = 0;
    let errors = 0;
    for (let k = 0; k < pending; k++) {
      const id = used32[((last & mask) << 1) + 1]!;
      last = (last + 1) & 0xffff;
      const buf = id < capacity ? (table[id] as PacketBuffer | null) : null;
      if (buf === null) {
        errors++;
        continue;
      }
      table[id] = null;
      freeIds[free++] = id;
      scratch[done++] = buf;
    }
    this.#lastUsed = last;
    this.#freeCount = free;
    this.errors += errors;
    if (done > 0) scratch[0]!.pool.freeBatch(scratch, done);
    return free;
  }

  #viewsOf(pool: Mempool): HeaderViews {
    let views = this.#headerViews.get(pool);
    if (views === undefined) {
      checkHeaderRoom(this.name, pool, this.#hdrLen);
      const bytes = pool.region.bytes;
      if (bytes.byteOffset % 4 !== 0) throw new RangeError(`${this.name}: ${pool.name} is not 4-byte aligned`);
      views = {
        u16: new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 1),
        u32: new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2),
      };
      this.#headerViews.set(pool, views);
    }
    return views;
  }
}
