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
  lastAvail: number;
}

function ringOf(model: VirtioNetModel, dma: SimDma, index: number): Ring {
  const bar = model.pci.bar(4);
  bar.write16(0x16, index); // queue_select
  const size = bar.read16(0x18);
  const address = (lo: number) => bar.read32(lo) + bar.read32(lo + 4) * 2 ** 32;
  const avail = dma.resolve(address(0x28), 4 + 2 * size);
  const used = dma.resolve(address(0x30), 4 + 8 * size);
  return {
    mask: size - 1,
    avail16: new Uint16Array(avail.buffer, avail.byteOffset, 2 + size),
    used16: new Uint16Array(used.buffer, used.byteOffset, 2),
    used32: new Uint32Array(used.buffer, used.byteOffset, 1 + 2 * size),
    lastAvail: 0,
  };
}

/** Moves every available entry to the used ring with length `len`. */
function complete(r: Ring, len: number): void {
  const availIdx = r.avail16[1]!;
  let used = r.used16[1]!;
  while (r.lastAvail !== availIdx) {
    const id = r.avail16[2 + (r.lastAvail & r.mask)]!;
    const slot = used & r.mask;
    r.used32[1 + 2 * slot] = id;
    r.used32[2 + 2 * slot] = len;
    used = (used + 1) & 0xffff;
    r.lastAvail = (r.lastAvail + 1) & 0xffff;
  }
  r.used16[1] = used;
}

export interface InstantDevice {
  /** Fills every available receive buffer with a frame of `frameLength` bytes; completes every transmit. */
  step(): void;
}

export function instantDevice(model: VirtioNetModel, dma: SimDma, headerLength: number, frameLength: number): InstantDevice {
  model.suppressNotifications = true;
  const rx = ringOf(model, dma, 0);
  const tx = ringOf(model, dma, 1);
  rx.lastAvail = rx.used16[1]!;
  tx.lastAvail = tx.used16[1]!;
  return {
    step() {
      complete(rx, headerLength + frameLength);
      complete(tx, 0);
    },
  };
}
