/**
 * The memory of a packed virtqueue (virtio 1.2 §2.8, VIRTIO_F_RING_PACKED) and its views. The
 * queues that use it are packed-rx-queue.ts, packed-tx-queue.ts and packed-ctrl-queue.ts; the
 * split layout is in virtqueue.ts. docs/packed-ring.md explains the ring for a reader of the spec.
 *
 * One ring of `size` descriptors that driver and device both write, plus two small event
 * suppression structures (§2.8.10, §2.8.14):
 *
 *   offset 0          descriptor ring   size x { le64 addr, le32 len, le16 id, le16 flags }
 *   16 * size         driver area       struct pvirtq_event_suppress (driver-written)
 *   16 * size + 64    device area       struct pvirtq_event_suppress (device-written)
 *
 *   struct pvirtq_event_suppress { le16 desc (offset:15, wrap:1); le16 flags }
 *
 * (The two areas sit a cache line apart so that the device's writes to its area do not bounce
 * the line that holds ours; §2.8.10.1 only asks for 4-byte alignment.)
 *
 * The driver makes a descriptor available by writing its flags with AVAIL = its wrap counter and
 * USED = the inverse (§2.8.1); the device marks it used with AVAIL = USED = its own wrap counter
 * (§2.8.2). Both counters start at 1 and flip each time their index passes the end of the ring.
 * The 16-bit id and the 16-bit flags share one 32-bit word, written as one store: the driver's
 * id and flags reach the device together, and a used descriptor's id and flags are read together.
 */
import { DeviceProtocolError } from "../../errors.ts";
import type { DmaRegion } from "../../mem/dma.ts";
import type { RingAddresses } from "./transport.ts";
import { VIRTIO_PCI_VRING_ALIGN } from "./virtio-types.ts";

// --- §2.8.2 / §2.8.15 constants (Linux include/uapi/linux/virtio_ring.h names) -----------------

/** Descriptor flags (le16 flags): NEXT and WRITE as in split rings, AVAIL bit 7, USED bit 15. */
export const VRING_DESC_F_NEXT = 1;
export const VRING_DESC_F_WRITE = 2;
export const VRING_PACKED_DESC_F_AVAIL = 1 << 7;
export const VRING_PACKED_DESC_F_USED = 1 << 15;
/** pvirtq_event_suppress.flags (§2.8.10): notifications on, off, or at one descriptor (EVENT_IDX). */
export const VRING_PACKED_EVENT_FLAG_ENABLE = 0;
export const VRING_PACKED_EVENT_FLAG_DISABLE = 1;
export const VRING_PACKED_EVENT_FLAG_DESC = 2;
/** Bytes per descriptor (§2.8.13). */
export const PACKED_DESC_SIZE = 16;
/** Offsets of the two event suppression structures after the descriptor ring. */
const DEVICE_AREA_GAP = 64;

/** Byte offsets of the driver and device areas within a queue's memory, and its total size. */
export interface PackedRingLayout {
  readonly driverOffset: number;
  readonly deviceOffset: number;
  readonly bytes: number;
}

export function packedRingLayout(size: number): PackedRingLayout {
  const driverOffset = PACKED_DESC_SIZE * size;
  const deviceOffset = driverOffset + DEVICE_AREA_GAP;
  return { driverOffset, deviceOffset, bytes: Math.ceil((deviceOffset + 4) / VIRTIO_PCI_VRING_ALIGN) * VIRTIO_PCI_VRING_ALIGN };
}

/**
 * The flags half (bits 16-31 of a descriptor's id/flags word) that makes a descriptor available
 * in the driver's wrap `wrap` (§2.8.1): AVAIL = wrap, USED = !wrap.
 */
export function availFlags(wrap: number, flags: number): number {
  return flags | (wrap !== 0 ? VRING_PACKED_DESC_F_AVAIL : VRING_PACKED_DESC_F_USED);
}

/** One packed virtqueue's memory and its views. */
export class PackedRing {
  readonly index: number;
  readonly size: number;
  /** What the transport gives the device: desc = the ring, avail = driver area, used = device area (§4.1.4.3). */
  readonly addresses: RingAddresses;
  /** Descriptor i is desc32[4i .. 4i+3]: addr low, addr high, len, id | flags << 16. */
  readonly desc32: Uint32Array;
  /** Driver event suppression: [0] desc (off_wrap), [1] flags. */
  readonly driver16: Uint16Array;
  /** Device event suppression (device-written): [0] desc (off_wrap), [1] flags. */
  readonly device16: Uint16Array;

  /** `offset` is 4096-aligned within `region`, which the device sees as one range. */
  constructor(region: DmaRegion, offset: number, index: number, size: number) {
    const layout = packedRingLayout(size);
    const bytes = region.bytes;
    const base = bytes.byteOffset + offset;
    this.index = index;
    this.size = size;
    this.desc32 = new Uint32Array(bytes.buffer, base, 4 * size);
    this.driver16 = new Uint16Array(bytes.buffer, base + layout.driverOffset, 2);
    this.device16 = new Uint16Array(bytes.buffer, base + layout.deviceOffset, 2);
    // §2.8.2: the ring starts zeroed, no descriptor available (AVAIL 0 is "not available" in the
    // driver's first wrap, whose counter is 1). The region may be reused memory: clear it.
    this.desc32.fill(0);
    this.device16.fill(0);
    const desc = region.iovaOf(offset);
    this.addresses = { desc, avail: desc + layout.driverOffset, used: desc + layout.deviceOffset };
    // §2.8.10: a polling driver asks the device not to send used-buffer notifications.
    this.driver16[0] = 0;
    this.driver16[1] = VRING_PACKED_EVENT_FLAG_DISABLE;
  }
}

/**
 * A used descriptor naming a buffer id the device does not hold: beyond the ring, never made
 * available, or returned already (repeated or stale). Its buffer is not handed out.
 */
export function packedUsedIdError(name: string, index: number, id: number, slot: number, capacity: number): DeviceProtocolError {
  const what = id >= capacity
    ? `buffer id ${id}, beyond the ${capacity} the driver uses`
    : `buffer id ${id}, which the device does not hold (returned already, or never made available)`;
  return new DeviceProtocolError(
    `${name}: packed virtqueue ${index}: the used descriptor in slot ${slot} names ${what}; the device is broken: ` +
      `close the device and open it again`,
  );
}

/**
 * A descriptor marked used beyond the buffers the device holds (§2.8.6: the device writes one
 * used descriptor per buffer it was given): nothing it says can be trusted.
 */
export function packedUsedCountError(name: string, index: number, slot: number, outstanding: number): DeviceProtocolError {
  return new DeviceProtocolError(
    `${name}: packed virtqueue ${index}: the device marked the descriptor in slot ${slot} used, beyond the ` +
      `${outstanding} buffers it held; the device is broken: close the device and open it again`,
  );
}
