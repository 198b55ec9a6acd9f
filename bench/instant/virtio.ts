/**
 * The virtio side of the benchmark's "instant device": the virtio-net model goes through device
 * initialization with the driver (modern interface, 512-entry queues, 12-byte header), then this
 * takes over both virtqueues and completes whatever the driver makes available, at once: up to
 * `max` receive buffers filled with a 60-byte frame per call, every transmit buffer. Notifications
 * are suppressed (VIRTQ_USED_F_NO_NOTIFY), as a polling backend does. bench/ref/virtio-fwd.c
 * does the same in C. With `packed`, the model offers VIRTIO_F_RING_PACKED and the device side is
 * PackedInstantRing (bench/ref/virtio-packed-fwd.c in C): it marks available descriptors used in
 * ring order, and its event suppression structure says DISABLE.
 */
import type { NicDevice } from "../../src/device.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import type { HotPathMode } from "../../src/drivers/specialize.ts";
import type { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";

export const QUEUE_SIZE = 512;
const MASK = QUEUE_SIZE - 1;
const HEADER = 12;

/** Views of one split virtqueue as the device sees it, and where the device has read up to. */
class DeviceRing {
  readonly avail16: Uint16Array;
  readonly used16: Uint16Array;
  readonly used32: Uint32Array;
  lastAvail = 0;

  constructor(model: VirtioNetModel, dma: SimDma, index: number) {
    const bar = model.pci.bar(4);
    bar.write16(0x16, index); // common config: queue_select
    const address = (lo: number) => bar.read32(lo) + bar.read32(lo + 4) * 2 ** 32;
    const avail = dma.resolve(address(0x28), 4 + 2 * QUEUE_SIZE);
    const used = dma.resolve(address(0x30), 4 + 8 * QUEUE_SIZE);
    this.avail16 = new Uint16Array(avail.buffer, avail.byteOffset, 2 + QUEUE_SIZE);
    this.used16 = new Uint16Array(used.buffer, used.byteOffset, 2);
    this.used32 = new Uint32Array(used.buffer, used.byteOffset, 1 + 2 * QUEUE_SIZE);
    this.lastAvail = this.used16[1]!;
  }

  /** Moves up to `max` available entries to the used ring with length `len`. */
  complete(max: number, len: number): void {
    const availIdx = this.avail16[1]!;
    let used = this.used16[1]!;
    let last = this.lastAvail;
    for (let i = 0; i < max && last !== availIdx; i++) {
      const id = this.avail16[2 + (last & MASK)]!;
      const e = 1 + 2 * (used & MASK);
      this.used32[e] = id;
      this.used32[e + 1] = len;
      used = (used + 1) & 0xffff;
      last = (last + 1) & 0xffff;
    }
    this.lastAvail = last;
    this.used16[1] = used;
  }
}

/** One packed virtqueue as the device sees it (virtio 1.2 §2.8): its positions and wrap counters. */
class PackedInstantRing {
  readonly desc32: Uint32Array;
  availPos = 0;
  availWrap = 1;
  usedPos = 0;
  usedWrap = 1;

  constructor(model: VirtioNetModel, dma: SimDma, index: number) {
    const bar = model.pci.bar(4);
    bar.write16(0x16, index); // common config: queue_select
    const address = (lo: number) => bar.read32(lo) + bar.read32(lo + 4) * 2 ** 32;
    const desc = dma.resolve(address(0x20), 16 * QUEUE_SIZE);
    this.desc32 = new Uint32Array(desc.buffer, desc.byteOffset, 4 * QUEUE_SIZE);
    // The device area (queue_device): event suppression flags DISABLE, no notifications.
    const device = dma.resolve(address(0x30), 4);
    new Uint16Array(device.buffer, device.byteOffset, 2)[1] = 1;
  }

  /** Marks up to `max` available descriptors used, in order, with length `len`. */
  complete(max: number, len: number): void {
    const d32 = this.desc32;
    let a = this.availPos;
    let aw = this.availWrap;
    let u = this.usedPos;
    let uw = this.usedWrap;
    for (let i = 0; i < max; i++) {
      const w = d32[(a << 2) + 3]!;
      // Available: AVAIL (bit 7) = the wrap counter, USED (bit 15) = its inverse.
      if (((w >>> 16) & 0x8080) !== (aw !== 0 ? 0x80 : 0x8000)) break;
      if (++a === QUEUE_SIZE) {
        a = 0;
        aw ^= 1;
      }
      d32[(u << 2) + 2] = len;
      d32[(u << 2) + 3] = ((w & 0xffff) | ((uw !== 0 ? 0x8080 : 0) << 16)) >>> 0;
      if (++u === QUEUE_SIZE) {
        u = 0;
        uw ^= 1;
      }
    }
    this.availPos = a;
    this.availWrap = aw;
    this.usedPos = u;
    this.usedWrap = uw;
  }
}

export class InstantVirtioPort {
  readonly dev: NicDevice;
  readonly #rx: DeviceRing | PackedInstantRing;
  readonly #tx: DeviceRing | PackedInstantRing;

  constructor(dma: SimDma, index: number, hotPath?: HotPathMode, packed = false) {
    const model = new VirtioNetModel({ dma, queueSize: QUEUE_SIZE, address: `instant-virtio${index}`, packed });
    this.dev = createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0, hotPath, ring: packed ? "packed" : "split" });
    model.suppressNotifications = true;
    this.#rx = packed ? new PackedInstantRing(model, dma, 0) : new DeviceRing(model, dma, 0);
    this.#tx = packed ? new PackedInstantRing(model, dma, 1) : new DeviceRing(model, dma, 1);
  }

  receive(max: number): void {
    this.#rx.complete(max, HEADER + 60);
  }

  transmit(): void {
    this.#tx.complete(QUEUE_SIZE, 0);
  }
}
