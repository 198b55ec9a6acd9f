/**
 * The memory of a split virtqueue (virtio 1.2 §2.7) and its views. The two ways virtio-net uses
 * a virtqueue are in virtio-rx-queue.ts (a receive queue kept full of mempool buffers) and
 * virtio-tx-queue.ts (a transmit queue that takes the caller's buffers); the control queue is in
 * ctrl-queue.ts.
 *
 * Memory layout of one queue of `size` entries (the legacy layout, §2.7.2, which also satisfies
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
 * Hot-path rules (docs/performance.md): the queues work on locals and typed arrays, allocate
 * nothing, write a 64-bit address as two 32-bit halves, and publish avail.idx once per batch.
 *
 * used.idx and used.flags are plain loads, and the descriptor and ring stores before the
 * Atomics.store of avail.idx are plain stores: correct on x86-64 only (src/drivers/memory-order.ts;
 * the device refuses to open elsewhere). Each place a weakly ordered CPU would need a barrier
 * (Linux: virtio_rmb() / virtio_wmb()) is marked "x86-64 ordering" in the queue files.
 */
import { DeviceProtocolError } from "../../errors.ts";
import type { DmaRegion } from "../../mem/dma.ts";
import { hi32, lo32 } from "../../mem/u64.ts";
import type { RingAddresses } from "./transport.ts";
import { VIRTIO_PCI_VRING_ALIGN, VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_SIZE } from "./virtio-types.ts";

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
    // §2.7.7: a polling driver asks the device not to interrupt it.
    this.avail16[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
  }

  /** Writes descriptor `id`: 64-bit address as two halves, length, flags, next. */
  setDescriptor(id: number, iova: number, length: number, flags: number, next: number): void {
    const d = id << 2;
    this.desc32[d] = lo32(iova);
    this.desc32[d + 1] = hi32(iova);
    this.desc32[d + 2] = length;
    this.desc32[d + 3] = (flags | (next << 16)) >>> 0;
  }
}

/**
 * Thrown when used.idx moved further than the device holds buffers (the outstanding ones: it
 * cannot have used more), or backwards: nothing it says can be trusted.
 */
export function usedIndexError(name: string, index: number, usedIdx: number, last: number, outstanding: number): DeviceProtocolError {
  const moved = (usedIdx - last) & 0xffff;
  const how = moved > 0x8000
    ? `back to ${usedIdx} from ${last}`
    : `to ${usedIdx} from ${last}, ${moved} entries, but it held only ${outstanding} buffers`;
  return new DeviceProtocolError(
    `${name}: virtqueue ${index}: the device moved used.idx ${how}; the device is broken: close the device and open it again`,
  );
}

/**
 * A used entry naming a descriptor the device does not hold: beyond the ring, never made
 * available, or returned already (repeated or stale). Its buffer is not handed out.
 */
export function usedIdError(name: string, index: number, id: number, usedIdx: number, capacity: number): DeviceProtocolError {
  const what = id >= capacity
    ? `descriptor ${id}, beyond the ${capacity} the driver uses`
    : `descriptor ${id}, which the device does not hold (returned already and not made available again)`;
  return new DeviceProtocolError(
    `${name}: virtqueue ${index}: the used entry at used.idx ${usedIdx} names ${what}; the device is broken: ` +
      `close the device and open it again`,
  );
}
