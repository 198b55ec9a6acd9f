/**
 * Ring snapshots of virtqueues (src/ring-state.ts): what NicDevice.ringState shows for a split
 * (virtio 1.2 §2.7) or packed (§2.8) ring. Loads only; called off the hot path.
 */
import { RingOwner, ringState, type RingState } from "../../ring-state.ts";
import { VRING_PACKED_DESC_F_AVAIL, VRING_PACKED_DESC_F_USED } from "./packed-ring.ts";

/**
 * A split ring, by ring position (avail and used ring slots, not descriptor ids, which the device
 * may complete in any order): positions from the driver's last_used up to used.idx are used
 * entries the driver has not consumed (done, §2.7.8); from used.idx up to avail.idx the driver made
 * available and the device has not used yet (device, §2.7.13); the rest are free (driver). The
 * three indices are free-running 16-bit counters; a slot is the index mod the ring size.
 */
export function splitRingState(kind: "rx" | "tx", queue: number, avail16: Uint16Array, used16: Uint16Array, lastUsed: number, size: number): RingState {
  const availIdx = avail16[1]!;
  const usedIdx = used16[1]!;
  const mask = size - 1;
  // A device that moved used.idx too far would make these larger than the ring: clamp, the
  // queue itself reports that device as broken.
  const done = Math.min((usedIdx - lastUsed) & 0xffff, size);
  const device = Math.min((availIdx - usedIdx) & 0xffff, size - done);
  const owners = new Uint8Array(size).fill(RingOwner.driver);
  for (let k = 0; k < done; k++) owners[(lastUsed + k) & mask] = RingOwner.done;
  for (let k = 0; k < device; k++) owners[(usedIdx + k) & mask] = RingOwner.device;
  return ringState({
    layout: "virtio-split", kind, queue, size, owners, head: usedIdx & mask, tail: availIdx & mask, next: lastUsed & mask,
    fields: { "avail.idx": availIdx, "used.idx": usedIdx, last_used: lastUsed },
  });
}

/**
 * A packed ring, from each descriptor's AVAIL and USED flags (§2.8.1, §2.8.2): AVAIL != USED is a
 * descriptor made available and not used yet (device); AVAIL == USED == the wrap counter the
 * driver expects at that slot is a used descriptor the driver has not read (done) — the driver
 * expects its used wrap counter from its next used slot to the end of the ring, and the inverse
 * before it (the next lap); anything else is a used descriptor of an earlier lap, or a slot never
 * used: free (driver). The device's own position is not visible to a driver (without EVENT_IDX):
 * head is derived as the slot after the done ones.
 */
export function packedRingState(kind: "rx" | "tx", queue: number, desc32: Uint32Array, size: number,
  availPos: number, availWrap: number, usedPos: number, usedWrap: number): RingState {
  const owners = new Uint8Array(size);
  let done = 0;
  for (let i = 0; i < size; i++) {
    const flags = desc32[(i << 2) + 3]! >>> 16;
    const avail = (flags & VRING_PACKED_DESC_F_AVAIL) !== 0 ? 1 : 0;
    const used = (flags & VRING_PACKED_DESC_F_USED) !== 0 ? 1 : 0;
    const expected = i >= usedPos ? usedWrap : 1 - usedWrap;
    if (avail !== used) owners[i] = RingOwner.device;
    else if (avail === expected) {
      owners[i] = RingOwner.done;
      done++;
    } else owners[i] = RingOwner.driver;
  }
  return ringState({
    layout: "virtio-packed", kind, queue, size, owners, head: (usedPos + done) % size, tail: availPos, next: usedPos,
    fields: { avail_pos: availPos, avail_wrap: availWrap, used_pos: usedPos, used_wrap: usedWrap },
  });
}
