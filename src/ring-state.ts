/**
 * RingState: a read-only snapshot of one descriptor ring, for pictures and teaching
 * (NicDevice.ringState, examples/lib/ring-picture.ts, docs/rings.md).
 *
 * Every ring the drivers use is a circle of descriptors that the driver and the device pass to
 * each other. At any moment each descriptor is in one of three states:
 *
 * - device: given to the device and not yet done (ixgbe: between the head and the tail registers,
 *   82599 datasheet 7.1.9 / 7.2.3.3; virtio: made available and not yet used, spec §2.7 / §2.8);
 * - done: the device has finished it (ixgbe RX: DD written back; ixgbe TX: the head moved past it;
 *   virtio: in the used ring / marked used) and the driver has not taken it back yet;
 * - driver: the driver holds it (free, or kept back).
 *
 * A snapshot is taken off the hot path (once a second, from a timer) and only reads: the same
 * descriptor memory and registers the queue works on, and the queue's own indices. It never
 * changes the queue.
 */

/** What a descriptor's owner byte in RingState.owners means. */
export const RingOwner = { device: 0, done: 1, driver: 2 } as const;
export type RingOwner = (typeof RingOwner)[keyof typeof RingOwner];

/** Which ring layout a snapshot is of. */
export type RingLayoutName = "ixgbe" | "virtio-split" | "virtio-packed";

export interface RingState {
  /** "ixgbe" (advanced descriptors), "virtio-split" (§2.7) or "virtio-packed" (§2.8). */
  readonly layout: RingLayoutName;
  readonly kind: "rx" | "tx";
  readonly queue: number;
  /** Descriptors (ixgbe, packed) or ring slots (split) in the ring. */
  readonly size: number;
  /** Owner of each slot: RingOwner.device, .done or .driver. */
  readonly owners: Uint8Array;
  /** How many slots are in each state. */
  readonly device: number;
  readonly done: number;
  readonly driver: number;
  /**
   * The slot where the device works next (ixgbe RDH/TDH; split: used.idx mod size; packed: the
   * first slot after the done ones, derived, since a packed device keeps its position to itself).
   */
  readonly head: number;
  /** The slot the driver hands over next (ixgbe RDT/TDT; split: avail.idx mod size; packed: the driver's next available slot). */
  readonly tail: number;
  /** The driver's next slot to take back (ixgbe: next to clean; split: last_used mod size; packed: next used slot). */
  readonly next: number;
  /** The raw values behind head, tail and next, under their datasheet / spec names, for the numbers line. */
  readonly fields: Readonly<Record<string, number>>;
}

/** Builds a RingState from its owner bytes (counts them). */
export function ringState(base: Omit<RingState, "device" | "done" | "driver">): RingState {
  let device = 0;
  let done = 0;
  for (const owner of base.owners) {
    if (owner === RingOwner.device) device++;
    else if (owner === RingOwner.done) done++;
  }
  return { ...base, device, done, driver: base.size - device - done };
}

/** Whether slot `i` lies in [from, to) on a ring of `size` slots (from === to: empty). */
export function inRingRange(i: number, from: number, to: number, size: number): boolean {
  return (i - from + size) % size < (to - from + size) % size;
}
