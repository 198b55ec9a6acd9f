/**
 * The virtio side of the benchmark's "instant device": the virtio-net model goes through device
 * initialization with the driver (modern interface, 512-entry queues, 12-byte header), then this
 * takes over the virtqueues and completes whatever the driver makes available, at once: up to
 * `max` receive buffers filled with a 60-byte frame per call, every transmit buffer. Notifications
 * are suppressed (VIRTQ_USED_F_NO_NOTIFY), as a polling backend does. bench/ref/virtio-fwd.c
 * does the same in C. With `packed`, the model offers VIRTIO_F_RING_PACKED and the device side is
 * PackedInstantRing (bench/ref/virtio-packed-fwd.c in C): it marks available descriptors used in
 * ring order, and its event suppression structure says DISABLE.
 *
 * For the scaling bench (bench/scaling/) a port has N queue pairs (VIRTIO_NET_F_MQ: the model's
 * `queuePairs`, the driver's rxQueues = txQueues = N, receiveq k at index 2k, transmitq k at
 * 2k + 1, virtio 1.2 §5.1.2) and the device side is one InstantVirtioQueue per pair. It reads only
 * its pair's rings, in SimDma memory (shared), and keeps its ring positions in shared memory, so
 * it can run in the worker thread that drives the pair. The model itself is not used after init:
 * nobody notifies it, and a worker's notify register writes would only be posted to it.
 */
import type { NicDevice } from "../../src/device.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import type { HotPathMode } from "../../src/drivers/specialize.ts";
import { join64 } from "../../src/mem/u64.ts";
import type { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { frameRegionAt, FrameStamps, type FrameRegion } from "./frames.ts";
import { deviceState } from "./ixgbe.ts";

export const QUEUE_SIZE = 512;
const MASK = QUEUE_SIZE - 1;
const HEADER = 12;

/** Views of one split virtqueue as the device sees it (virtio 1.2 §2.7), and its position. */
export interface SplitRingData {
  readonly kind: "split";
  readonly desc32: Uint32Array;
  readonly avail16: Uint16Array;
  readonly used16: Uint16Array;
  readonly used32: Uint32Array;
  /** [0]: last_avail_idx, the next available entry the device will take. */
  readonly state: Int32Array;
}

/** One packed virtqueue as the device sees it (virtio 1.2 §2.8). */
export interface PackedRingData {
  readonly kind: "packed";
  readonly desc32: Uint32Array;
  /** [0] next available position, [1] its wrap counter, [2] next used position, [3] its wrap counter. */
  readonly state: Int32Array;
}

type RingData = SplitRingData | PackedRingData;

/** The device side of one queue pair as it crosses to a worker. */
export interface VirtioQueueData {
  readonly kind: "virtio";
  readonly rx: RingData;
  readonly tx: RingData;
  /** Where frames are, for timestamps (InstantVirtioPort.queueData; empty: none). */
  readonly frames: readonly FrameRegion[];
}

function commonConfig(model: VirtioNetModel, index: number): (lo: number) => number {
  const bar = model.pci.bar(4);
  bar.write16(0x16, index); // common config: queue_select
  return (lo: number) => join64(bar.read32(lo), bar.read32(lo + 4));
}

function splitRing(model: VirtioNetModel, dma: SimDma, index: number): SplitRingData {
  const address = commonConfig(model, index);
  const desc = dma.resolve(address(0x20), 16 * QUEUE_SIZE);
  const avail = dma.resolve(address(0x28), 4 + 2 * QUEUE_SIZE);
  const used = dma.resolve(address(0x30), 4 + 8 * QUEUE_SIZE);
  const used16 = new Uint16Array(used.buffer, used.byteOffset, 2);
  const state = deviceState(1);
  state[0] = used16[1]!;
  return {
    kind: "split",
    desc32: new Uint32Array(desc.buffer, desc.byteOffset, 4 * QUEUE_SIZE),
    avail16: new Uint16Array(avail.buffer, avail.byteOffset, 2 + QUEUE_SIZE),
    used16,
    used32: new Uint32Array(used.buffer, used.byteOffset, 1 + 2 * QUEUE_SIZE),
    state,
  };
}

function packedRing(model: VirtioNetModel, dma: SimDma, index: number): PackedRingData {
  const address = commonConfig(model, index);
  const desc = dma.resolve(address(0x20), 16 * QUEUE_SIZE);
  // The device area (queue_device): event suppression flags DISABLE, no notifications.
  const device = dma.resolve(address(0x30), 4);
  new Uint16Array(device.buffer, device.byteOffset, 2)[1] = 1;
  const state = deviceState(4);
  state[1] = 1;
  state[3] = 1;
  return { kind: "packed", desc32: new Uint32Array(desc.buffer, desc.byteOffset, 4 * QUEUE_SIZE), state };
}

/** A split virtqueue's device side. */
class DeviceRing {
  readonly #desc32: Uint32Array;
  readonly #avail16: Uint16Array;
  readonly #used16: Uint16Array;
  readonly #used32: Uint32Array;
  readonly #state: Int32Array;
  readonly #frames: FrameStamps;

  constructor(d: SplitRingData, frames: FrameStamps) {
    this.#desc32 = d.desc32;
    this.#avail16 = d.avail16;
    this.#used16 = d.used16;
    this.#used32 = d.used32;
    this.#state = d.state;
    this.#frames = frames;
  }

  /** Moves up to `max` available entries to the used ring with length `len`; returns how many. */
  complete(max: number, len: number): number {
    const avail16 = this.#avail16;
    const used32 = this.#used32;
    const availIdx = avail16[1]!;
    let used = this.#used16[1]!;
    let last = this.#state[0]!;
    let i = 0;
    for (; i < max && last !== availIdx; i++) {
      const id = avail16[2 + (last & MASK)]!;
      const e = 1 + 2 * (used & MASK);
      used32[e] = id;
      used32[e + 1] = len;
      used = (used + 1) & 0xffff;
      last = (last + 1) & 0xffff;
    }
    this.#state[0] = last;
    this.#used16[1] = used;
    return i;
  }

  /** As complete(), writing `stamp` into every frame first (at the descriptor's address). */
  completeStamped(max: number, len: number, stamp: number): number {
    const avail16 = this.#avail16;
    const used32 = this.#used32;
    const desc32 = this.#desc32;
    const frames = this.#frames;
    const availIdx = avail16[1]!;
    let used = this.#used16[1]!;
    let last = this.#state[0]!;
    let i = 0;
    frames.setStamp(stamp);
    for (; i < max && last !== availIdx; i++) {
      const id = avail16[2 + (last & MASK)]!;
      frames.put(desc32[(id & MASK) << 2]!);
      const e = 1 + 2 * (used & MASK);
      used32[e] = id;
      used32[e + 1] = len;
      used = (used + 1) & 0xffff;
      last = (last + 1) & 0xffff;
    }
    this.#state[0] = last;
    this.#used16[1] = used;
    return i;
  }

  /** As complete(), recording now - stamp of every stamped frame into `latency` (see InstantIxgbeQueue.transmitTimed). */
  completeTimed(max: number, len: number, latency: Float64Array): number {
    const avail16 = this.#avail16;
    const used32 = this.#used32;
    const desc32 = this.#desc32;
    const frames = this.#frames;
    const availIdx = avail16[1]!;
    let used = this.#used16[1]!;
    let last = this.#state[0]!;
    let i = 0;
    const timing = frames.newBatch();
    for (; i < max && last !== availIdx; i++) {
      const id = avail16[2 + (last & MASK)]!;
      if (timing) frames.timeFrame(desc32[(id & MASK) << 2]!, latency);
      const e = 1 + 2 * (used & MASK);
      used32[e] = id;
      used32[e + 1] = len;
      used = (used + 1) & 0xffff;
      last = (last + 1) & 0xffff;
    }
    this.#state[0] = last;
    this.#used16[1] = used;
    return i;
  }
}

/** A packed virtqueue's device side: its positions and wrap counters. */
class PackedInstantRing {
  readonly #desc32: Uint32Array;
  readonly #state: Int32Array;
  readonly #frames: FrameStamps;

  constructor(d: PackedRingData, frames: FrameStamps) {
    this.#desc32 = d.desc32;
    this.#state = d.state;
    this.#frames = frames;
  }

  /** Marks up to `max` available descriptors used, in order, with length `len`; returns how many. */
  complete(max: number, len: number): number {
    const d32 = this.#desc32;
    const state = this.#state;
    let a = state[0]!;
    let aw = state[1]!;
    let u = state[2]!;
    let uw = state[3]!;
    let i = 0;
    for (; i < max; i++) {
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
    state[0] = a;
    state[1] = aw;
    state[2] = u;
    state[3] = uw;
    return i;
  }

  /** As complete(), writing `stamp` into every frame first (at the descriptor's address). */
  completeStamped(max: number, len: number, stamp: number): number {
    const d32 = this.#desc32;
    const state = this.#state;
    const frames = this.#frames;
    let a = state[0]!;
    let aw = state[1]!;
    let u = state[2]!;
    let uw = state[3]!;
    let i = 0;
    frames.setStamp(stamp);
    for (; i < max; i++) {
      const w = d32[(a << 2) + 3]!;
      if (((w >>> 16) & 0x8080) !== (aw !== 0 ? 0x80 : 0x8000)) break;
      frames.put(d32[a << 2]!);
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
    state[0] = a;
    state[1] = aw;
    state[2] = u;
    state[3] = uw;
    return i;
  }

  /** As complete(), recording now - stamp of every stamped frame into `latency` (see InstantIxgbeQueue.transmitTimed). */
  completeTimed(max: number, len: number, latency: Float64Array): number {
    const d32 = this.#desc32;
    const state = this.#state;
    const frames = this.#frames;
    let a = state[0]!;
    let aw = state[1]!;
    let u = state[2]!;
    let uw = state[3]!;
    let i = 0;
    const timing = frames.newBatch();
    for (; i < max; i++) {
      const w = d32[(a << 2) + 3]!;
      if (((w >>> 16) & 0x8080) !== (aw !== 0 ? 0x80 : 0x8000)) break;
      if (timing) frames.timeFrame(d32[a << 2]!, latency);
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
    state[0] = a;
    state[1] = aw;
    state[2] = u;
    state[3] = uw;
    return i;
  }
}

/**
 * Pair 0's device side for the single-threaded bench (bench/fwd-ts.ts): the loops as they were
 * before there were queue pairs, positions in fields, so that `npm run bench` goes on measuring
 * the same thing. A port whose pairs go to workers uses queueData() instead, never both.
 */
class LocalSplitRing {
  readonly avail16: Uint16Array;
  readonly used16: Uint16Array;
  readonly used32: Uint32Array;
  lastAvail = 0;

  constructor(d: SplitRingData) {
    this.avail16 = d.avail16;
    this.used16 = d.used16;
    this.used32 = d.used32;
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

/** As LocalSplitRing, for a packed virtqueue. */
class LocalPackedRing {
  readonly desc32: Uint32Array;
  availPos = 0;
  availWrap = 1;
  usedPos = 0;
  usedWrap = 1;

  constructor(d: PackedRingData) {
    this.desc32 = d.desc32;
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

/** One queue pair's device side: its receive and transmit virtqueue. */
export class InstantVirtioQueue {
  readonly #rx: DeviceRing | PackedInstantRing;
  readonly #tx: DeviceRing | PackedInstantRing;

  readonly stamps: FrameStamps;

  /** `stamps`: see InstantIxgbeQueue. */
  constructor(d: VirtioQueueData, stamps?: FrameStamps) {
    // The descriptors point at the 12-byte header in front of the frame.
    const frames = stamps ?? new FrameStamps("instant virtio", d.frames, HEADER);
    this.stamps = frames;
    this.#rx = d.rx.kind === "packed" ? new PackedInstantRing(d.rx, frames) : new DeviceRing(d.rx, frames);
    this.#tx = d.tx.kind === "packed" ? new PackedInstantRing(d.tx, frames) : new DeviceRing(d.tx, frames);
  }

  receive(max: number): number {
    return this.#rx.complete(max, HEADER + 60);
  }

  receiveStamped(max: number, stamp: number): number {
    return this.#rx.completeStamped(max, HEADER + 60, stamp);
  }

  transmit(): number {
    return this.#tx.complete(QUEUE_SIZE, 0);
  }

  transmitTimed(latency: Float64Array): number {
    return this.#tx.completeTimed(QUEUE_SIZE, 0, latency);
  }
}

export class InstantVirtioPort {
  readonly dev: NicDevice;
  readonly #dma: SimDma;
  readonly #queues: VirtioQueueData[] = [];
  readonly #rx: LocalSplitRing | LocalPackedRing;
  readonly #tx: LocalSplitRing | LocalPackedRing;

  constructor(dma: SimDma, index: number, hotPath?: HotPathMode, packed = false, queues = 1) {
    // No data-path offloads: the instant device writes no net header (num_buffers, flags), as a
    // device offering none needs not (docs/offloads-virtio.md).
    const model = new VirtioNetModel({ dma, queueSize: QUEUE_SIZE, address: `instant-virtio${index}`, packed, queuePairs: queues, offloads: false });
    this.#dma = dma;
    this.dev = createVirtioDevice(model.pci, dma, {
      linkTimeoutMs: 0, hotPath, ring: packed ? "packed" : "split", rxQueues: queues, txQueues: queues,
    });
    model.suppressNotifications = true;
    for (let q = 0; q < queues; q++) {
      const ring = packed ? packedRing : splitRing;
      this.#queues.push({ kind: "virtio", rx: ring(model, dma, 2 * q), tx: ring(model, dma, 2 * q + 1), frames: [] });
    }
    const { rx, tx } = this.#queues[0]!;
    this.#rx = rx.kind === "packed" ? new LocalPackedRing(rx) : new LocalSplitRing(rx);
    this.#tx = tx.kind === "packed" ? new LocalPackedRing(tx) : new LocalSplitRing(tx);
  }

  /** Queue pair `q`'s device side as data for a worker, with the frame regions `frames`. */
  queueData(q: number, frames: readonly FrameRegion[] = []): VirtioQueueData {
    return { ...this.#queues[q]!, frames };
  }

  /** The memory of pair `q`'s receive pool (found from a buffer address in its descriptors). */
  rxPoolRegion(q: number): FrameRegion {
    const desc = this.#queues[q]!.rx.desc32;
    return frameRegionAt(this.#dma, join64(desc[0]!, desc[1]!) + HEADER);
  }

  /** Pair 0 (the single-threaded bench): up to `max` receive buffers filled. */
  receive(max: number): void {
    this.#rx.complete(max, HEADER + 60);
  }

  /** Pair 0: every transmit buffer sent. */
  transmit(): void {
    this.#tx.complete(QUEUE_SIZE, 0);
  }
}
