/**
 * An "instant device" for measuring the driver alone: after the model has gone through
 * initialization with the driver, this takes over the receive and transmit rings and completes
 * everything the driver makes available, at once and without allocating — so that any garbage or
 * time measured is the driver's. Notifications are suppressed (VIRTQ_USED_F_NO_NOTIFY), so the
 * model never sees the traffic.
 */
import type { SimDma } from "../../src/sim/sim-dma.ts";
import type { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";

interface Ring {
  readonly mask: number;
  readonly avail16: Uint16Array;
  readonly used16: Uint16Array;
  readonly used32: Uint32Array;
  /** [0]: the avail index the device has consumed up to (a typed array: stores never allocate). */
  readonly state: Uint16Array;
}

function ringOf(model: VirtioNetModel, dma: SimDma, index: number): Ring {
  const bar = model.pci.bar(4);
  bar.write16(0x16, index); // queue_select
  const size = bar.read16(0x18);
  const address = (lo: number) => bar.read32(lo) + bar.read32(lo + 4) * 2 ** 32;
  const avail = dma.resolve(address(0x28), 4 + 2 * size);
  const used = dma.resolve(address(0x30), 4 + 8 * size);
  const used16 = new Uint16Array(used.buffer, used.byteOffset, 2);
  return {
    mask: size - 1,
    avail16: new Uint16Array(avail.buffer, avail.byteOffset, 2 + size),
    used16,
    used32: new Uint32Array(used.buffer, used.byteOffset, 1 + 2 * size),
    state: Uint16Array.of(used16[1]!),
  };
}

/** Moves every available entry to the used ring with length `len`. */
function complete(r: Ring, len: number): void {
  const { mask, avail16, used16, used32, state } = r;
  const availIdx = avail16[1]!;
  let last = state[0]!;
  let used = used16[1]!;
  while (last !== availIdx) {
    const slot = used & mask;
    used32[1 + 2 * slot] = avail16[2 + (last & mask)]!;
    used32[2 + 2 * slot] = len;
    used = (used + 1) & 0xffff;
    last = (last + 1) & 0xffff;
  }
  state[0] = last;
  used16[1] = used;
}

export interface InstantDevice {
  /** Fills every available receive buffer with a frame of `frameLength` bytes; completes every transmit. */
  step(): void;
}

export function instantDevice(model: VirtioNetModel, dma: SimDma, headerLength: number, frameLength: number): InstantDevice {
  model.suppressNotifications = true;
  const rx = ringOf(model, dma, 0);
  const tx = ringOf(model, dma, 1);
  const rxLength = headerLength + frameLength;
  return {
    step() {
      complete(rx, rxLength);
      complete(tx, 0);
    },
  };
}

/**
 * The same for packed virtqueues (virtio 1.2 §2.8): marks every available descriptor used, in
 * ring order, flags last; its event suppression structure says DISABLE. Positions and wrap
 * counters live in a typed array ([0] avail position, [1] avail wrap, [2] used position, [3] used wrap).
 */
interface PackedRing {
  readonly size: number;
  readonly desc32: Uint32Array;
  readonly desc16: Uint16Array;
  readonly state: Uint16Array;
}

function packedRingOf(dma: SimDma, model: VirtioNetModel, index: number): PackedRing {
  const bar = model.pci.bar(4);
  bar.write16(0x16, index); // queue_select
  const size = bar.read16(0x18);
  const address = (lo: number) => bar.read32(lo) + bar.read32(lo + 4) * 2 ** 32;
  const desc = dma.resolve(address(0x20), 16 * size);
  const device = dma.resolve(address(0x30), 4);
  new Uint16Array(device.buffer, device.byteOffset, 2)[1] = 1; // VRING_PACKED_EVENT_FLAG_DISABLE
  return {
    size,
    desc32: new Uint32Array(desc.buffer, desc.byteOffset, 4 * size),
    desc16: new Uint16Array(desc.buffer, desc.byteOffset, 8 * size),
    state: Uint16Array.of(0, 1, 0, 1),
  };
}

function completePacked(r: PackedRing, len: number): void {
  const { size, desc32, desc16, state } = r;
  let a = state[0]!;
  let aw = state[1]!;
  let u = state[2]!;
  let uw = state[3]!;
  for (let n = 0; n < size; n++) {
    const flags = desc16[(a << 3) + 7]!;
    // Available: AVAIL (bit 7) equals the wrap counter, USED (bit 15) does not.
    if ((flags & 0x8080) !== (aw !== 0 ? 0x80 : 0x8000)) break;
    const id = desc16[(a << 3) + 6]!;
    if (++a === size) {
      a = 0;
      aw ^= 1;
    }
    desc32[(u << 2) + 2] = len;
    desc16[(u << 3) + 6] = id;
    desc16[(u << 3) + 7] = uw !== 0 ? 0x8080 : 0;
    if (++u === size) {
      u = 0;
      uw ^= 1;
    }
  }
  state[0] = a;
  state[1] = aw;
  state[2] = u;
  state[3] = uw;
}

export function packedInstantDevice(model: VirtioNetModel, dma: SimDma, headerLength: number, frameLength: number): InstantDevice {
  model.suppressNotifications = true;
  const rx = packedRingOf(dma, model, 0);
  const tx = packedRingOf(dma, model, 1);
  const rxLength = headerLength + frameLength;
  return {
    step() {
      completePacked(rx, rxLength);
      completePacked(tx, 0);
    },
  };
}
