/**
 * The virtio-net receive queue (virtio 1.2 §5.1.6.3, §5.1.6.4): one descriptor per mempool
 * buffer, the net header (10 or 12 bytes) in the buffer's headroom just below its data, so the
 * frame lands at the data without a copy. Descriptor i always describes the buffer in table[i]; a
 * received buffer is swapped for a fresh one from the pool in the same slot, so the ring stays
 * full. When the pool is empty the frame is dropped (counted as missed) and its buffer goes
 * straight back to the device, which keeps receiving.
 *
 * The device is not trusted (as Linux's virtio_ring.c, hardened for confidential guests, does not
 * trust it): a used entry may only name a descriptor the device holds. The driver keeps every
 * descriptor posted, so the device holds all `capacity` of them, except those it has returned in
 * used entries the driver has not consumed yet; and a descriptor the driver posts again can only
 * come back in a used entry the device writes after that, i.e. at a used-ring position at or
 * beyond the used.idx the driver had seen when it re-posted it. postedAt[id] is that position
 * (a free-running 32-bit count of used entries), so one load and one store per frame tell a
 * repeated or stale id from a fresh one. What no driver of a split ring can tell apart (without
 * VIRTIO_F_IN_ORDER) is a device naming a descriptor it holds but has not written: that is left to
 * the device's own checks (qemu's virtio_error) and DEVICE_NEEDS_RESET, which virtio-device.ts
 * reads.
 */
import { bufDataOffset, bufIovaHi, bufIovaLo, bufLength, bufHome, bufPool, bufRxOffload, bufTxOffload, poolBytes, poolTop } from "../../mem/buffer-table.ts";
import { RX_OFFLOAD } from "../../mem/offload.ts";
import { rxPartial } from "./net-offload.ts";
import { NO_RX_OFFLOADS, type RxQueueOffloads } from "./queue-offloads.ts";
import { freeBuffer, type Mempool } from "../../mem/mempool.ts";
import type { DeviceProtocolError } from "../../errors.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { specialize, type HotPathMode } from "../specialize.ts";
import { openEnv, shareEnv } from "../../threads/shared-env.ts";
import { SharedQueueKind, type SharedQueue } from "../queue-handoff.ts";
import { workerBreaker } from "./worker-breaker.ts";
import type { NotifyTarget } from "./transport.ts";
import { usedIdError, usedIndexError, type VirtqueueRing } from "./virtqueue.ts";
import { VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F_WRITE, VIRTQ_USED_F_NO_NOTIFY } from "./virtio-types.ts";
import { sharedInt32, sharedFloat64 } from "../../mem/shared-arrays.ts";
import type { RingState } from "../../ring-state.ts";
import { splitRingState } from "./ring-snapshot.ts";

/** Receives up to `max` frames into bufs[0 .. n); returns n. */
export type ReceiveLoop = (bufs: Int32Array, max: number) => number;

/** Empty polls between two looks at the device status (see the receive loop). */
export const RX_IDLE_CHECK = 1 << 16;
/** struct ethhdr: a frame shorter than this is a runt. */
const ETH_HLEN = 14;

/** Slots of the counters array. */
export const RxCounter = { packets: 0, bytes: 1, errors: 2, missed: 3, notifications: 4 } as const;

/** Everything the receive loop touches; each field becomes a constant in its compiled copy. */
interface RxEnv {
  readonly desc32: Uint32Array;
  readonly avail16: Uint16Array;
  readonly used16: Uint16Array;
  readonly used32: Uint32Array;
  /** The buffer each descriptor id describes. */
  readonly table: Int32Array;
  readonly size: number;
  /** Descriptors in use: ids 0 .. capacity - 1. */
  readonly capacity: number;
  /**
   * [0]: our avail.idx; [1]: the used.idx we have consumed up to; [2]: the same as a free-running
   * 32-bit count; [3]: non-zero once the queue is broken (RxState); [4]: empty polls (RxState).
   */
  readonly state: Int32Array;
  /** Per descriptor id: the used-ring position (state[2] units) from which the device may return it. */
  readonly postedAt: Int32Array;
  /** packets, bytes, errors, missed, notifications (RxCounter). */
  readonly counters: Float64Array;
  readonly hdrLen: number;
  readonly dataCapacity: number;
  readonly pool: number;
  readonly stack: Int32Array;
  readonly checked: boolean;
  readonly poolTop: Int32Array;
  readonly bufIovaLo: Int32Array;
  readonly bufIovaHi: Int32Array;
  readonly bufLength: Int32Array;
  readonly bufHome: Uint8Array;
  readonly bufDataOffset: Int32Array;
  /** What the device said about each frame (RX_OFFLOAD), and the transmit request it implies. */
  readonly bufRxOffload: Uint8Array;
  readonly bufTxOffload: Uint8Array;
  /** Each pool's bytes (the receive pool's header and data; not shared: a worker supplies its own). */
  readonly poolBytes: Uint8Array[];
  /** VIRTIO_NET_F_GUEST_CSUM negotiated and on (1): the header's flags say DATA_VALID or NEEDS_CSUM. */
  readonly GUEST_CSUM: number;
  /** VIRTIO_NET_F_MRG_RXBUF negotiated (1): the header's num_buffers may say a frame spans entries. */
  readonly MRG: number;
  /** RX_OFFLOAD.l4ChecksumGood. */
  readonly L4_GOOD: number;
  /** A NEEDS_CSUM frame: sets its offload columns; false for a header that makes no sense. */
  readonly rxPartial: (buf: number, hdrLen: number) => boolean;
  readonly queueIndex: number;
  /** The notify register as 16-bit words of a mapped BAR, or null: then through mmio.write16. */
  readonly notifyWords: Uint16Array | null;
  readonly notifyOffset: number;
  readonly mmio: Mmio;
  readonly NO_NOTIFY: number;
  /** Frames shorter than an Ethernet header are runts: dropped and counted as errors. */
  readonly MIN_FRAME: number;
  /** Empty polls between two checks of the device status (a power of two). */
  readonly IDLE_CHECK: number;
  /** Throws the error that broke the queue. */
  readonly throwBroken: () => never;
  /** A used.idx that moved further than the device holds buffers (or backwards): breaks the queue, throws. */
  readonly usedIndexError: (usedIdx: number, last: number, outstanding: number) => never;
  /** A used entry naming an id the device does not hold: breaks the queue (the caller stops there). */
  readonly usedIdError: (id: number, position: number) => void;
  /** Called every IDLE_CHECK empty polls: throws when the device needs a reset. */
  readonly idleCheck: () => void;
}

/**
 * §2.7.14 / §5.1.6.4: takes up to `max` received frames from the used ring, puts a fresh buffer
 * into each slot, makes the slots available again, and notifies the device once per batch unless
 * it said it needs no notification (§2.7.10.2). A used entry with an impossible id or length is
 * counted as an error and never handed out.
 *
 * A factory compiled once per queue (specialize.ts): it may use only `env` and its own locals.
 */
function receiveLoop(env: RxEnv): ReceiveLoop {
  const { desc32, avail16, used16, used32, table, size, capacity, state, postedAt, counters, hdrLen, dataCapacity } = env;
  const { pool, stack, checked, poolTop, bufIovaLo, bufIovaHi, bufLength, bufHome } = env;
  const { queueIndex, notifyWords, notifyOffset, mmio, NO_NOTIFY, MIN_FRAME, IDLE_CHECK } = env;
  const { throwBroken, usedIndexError, usedIdError, idleCheck } = env;
  const { bufDataOffset, bufRxOffload, bufTxOffload, poolBytes, GUEST_CSUM, MRG, L4_GOOD, rxPartial } = env;
  const mask = size - 1;
  const notifyWord = notifyOffset >>> 1;

  /**
   * §5.1.6.4 with VIRTIO_NET_F_MRG_RXBUF: the frame whose first piece (`first` bytes after the
   * header) is in the buffer of descriptor `id` continues in the `pieces - 1` used entries after
   * `last`, each piece from the start of its descriptor's buffer (no header there). Every
   * receive buffer holds a whole frame of the largest size (docs/offloads-virtio.md), so the
   * pieces are copied behind the first one, and their descriptors go back to the device as they
   * are, from avail + 1 on. Returns the frame's length, -1 when it is longer than a buffer (the
   * frame is dropped), -2 for an entry naming an id the device does not hold (the queue breaks).
   */
  function merge(mem: Uint8Array, id: number, first: number, pieces: number, last: number, position: number, seen: number, avail: number): number {
    const dst = bufDataOffset[table[id]!]!;
    let length = first;
    for (let j = 1; j < pieces; j++) {
      const e = (((last + j) & mask) << 1) + 1;
      const piece = used32[e]!;
      if (piece >= capacity || ((position + j - postedAt[piece]!) | 0) < 0) {
        usedIdError(piece, (last + j) & 0xffff);
        return -2;
      }
      postedAt[piece] = seen;
      const len = used32[e + 1]!;
      if (length >= 0 && length + len <= dataCapacity) {
        const src = bufDataOffset[table[piece]!]! - hdrLen;
        mem.copyWithin(dst + length, src, src + len);
        length += len;
      } else length = -1;
      avail16[2 + ((avail + j) & mask)] = piece;
    }
    return length;
  }

  return function receive(bufs: Int32Array, max: number): number {
    if (state[3] !== 0) throwBroken();
    // x86-64 ordering: used.idx is a plain load, and the loads of the used entries below must not
    // be satisfied before it (Linux: virtio_rmb() after reading used->idx). x86 does not reorder
    // loads with older loads; a weakly ordered CPU needs a load barrier here (memory-order.ts).
    const usedIdx = used16[1]!;
    let last = state[1]!;
    const pending = (usedIdx - last) & 0xffff;
    if (pending === 0) {
      // A device that broke (DEVICE_NEEDS_RESET) or was reset behind our back delivers nothing:
      // look at its status now and then, where it costs nothing.
      if ((++state[4]! & (IDLE_CHECK - 1)) === 0) idleCheck();
      return 0;
    }
    // The device holds `capacity` buffers (all of them, the ring is kept full): it cannot have
    // used more. A used.idx that went backwards shows up here too, as a huge 16-bit distance.
    if (pending > capacity) usedIndexError(usedIdx, last, capacity);
    const n = pending < max ? pending : max;
    let position = state[2]!;
    // Where an id re-posted in this batch can come back at the earliest (see the file comment).
    const seen = (position + pending) | 0;
    let avail = state[0]!;
    let top = poolTop[pool]!;
    const mem = poolBytes[pool]!;
    let out = 0;
    let bytes = 0;
    let errors = 0;
    let missed = 0;
    for (let k = 0; k < n; k++) {
      const e = ((last & mask) << 1) + 1;
      const id = used32[e]!;
      // Not a descriptor we posted, or one the device returned already and has not been given
      // again (repeated, stale): nothing to hand out, and the ring can no longer be trusted. Stop
      // here: what came before is good and is handed out (throwing now would lose it); the next
      // call throws, or this one when there is nothing to hand out.
      if (id >= capacity || ((position - postedAt[id]!) | 0) < 0) {
        usedIdError(id, last);
        errors++;
        break;
      }
      const buf = table[id]!;
      // The header's flags (GUEST_CSUM) and num_buffers (MRG_RXBUF); both constants here.
      const h = bufDataOffset[buf]! - hdrLen;
      const flags = GUEST_CSUM !== 0 ? mem[h]! : 0;
      const pieces = MRG !== 0 ? mem[h + 10]! | (mem[h + 11]! << 8) : 1;
      let frameLength = used32[e + 1]! - hdrLen;
      if (pieces !== 1) {
        // The rest of the frame must be in the used ring already: if not, leave the frame (and
        // the batch) for a later call. A count of 0 (no buffer) or beyond the ring: a bad frame.
        const many = pieces > 1 && pieces <= capacity;
        if (many && k + pieces > pending) break;
        postedAt[id] = seen;
        if (many) {
          frameLength = merge(mem, id, frameLength, pieces, last, position, seen, avail);
          if (frameLength === -2) {
            errors++;
            break;
          }
          last = (last + pieces - 1) & 0xffff;
          position = (position + pieces - 1) | 0;
          k += pieces - 1;
        } else frameLength = -1;
      } else postedAt[id] = seen;
      last = (last + 1) & 0xffff;
      position = (position + 1) | 0;
      if (frameLength < MIN_FRAME || frameLength > dataCapacity) errors++;
      else if (top !== 0) {
        bufLength[buf] = frameLength;
        // §5.1.6.4: DATA_VALID, the device checked the checksum; NEEDS_CSUM, it is to be
        // completed (rxPartial sets both offload columns; false: a header that makes no sense).
        let good = true;
        if ((flags & 1) !== 0) good = rxPartial(buf, hdrLen);
        else {
          bufRxOffload[buf] = (flags & 2) !== 0 ? L4_GOOD : 0;
          bufTxOffload[buf] = 0;
        }
        if (good) {
          bufs[out++] = buf;
          bytes += frameLength;
          const fresh = stack[--top]!;
          if (checked) bufHome[fresh] = 0;
          table[id] = fresh;
          // The header goes just below the data; the mempool guarantees that never borrows from
          // the high half, so both halves come straight from the buffer table.
          const d = id << 2;
          desc32[d] = bufIovaLo[fresh]! - hdrLen;
          desc32[d + 1] = bufIovaHi[fresh]!;
        } else errors++;
      } else missed++;
      avail16[2 + (avail & mask)] = id;
      avail = (avail + (pieces > 1 && pieces <= capacity ? pieces : 1)) & 0xffff;
    }
    poolTop[pool] = top;
    state[1] = last;
    state[2] = position;
    if (avail !== state[0]) {
      state[0] = avail;
      // Publish the index with a full barrier (xchg): the load of used.flags below must not pass
      // this store, or device and driver could both decide the other has nothing to do (§2.7.13.4).
      // x86-64 ordering: the descriptor and ring stores above become visible before this one
      // (Linux: virtio_wmb() before updating avail->idx).
      Atomics.store(avail16, 1, avail);
      // x86-64 ordering: used.flags is a plain load (after the xchg above, which orders it).
      if ((used16[0]! & NO_NOTIFY) === 0) {
        if (notifyWords !== null) notifyWords[notifyWord] = queueIndex;
        else mmio.write16(notifyOffset, queueIndex);
        counters[4]++;
      }
    }
    counters[0] += out;
    counters[1] += bytes;
    if (errors !== 0) counters[2] += errors;
    if (missed !== 0) counters[3] += missed;
    // A bad entry with nothing good before it: throw now (there is nothing to hand out).
    if (out === 0 && state[3] !== 0) throwBroken();
    return out;
  };
}

/** In a worker thread: the receive loop of a queue another thread shared (RxQueue.share()). */
export function attachVirtioReceive(shared: SharedQueue, hotPath?: HotPathMode): ReceiveLoop {
  const data = openEnv(shared.env);
  const { throwBroken, breakWith } = workerBreaker(shared, data["state"] as Int32Array, 3);
  const name = shared.label;
  const index = shared.queueIndex!;
  const capacity = shared.capacity!;
  const env = {
    ...data, throwBroken, idleCheck: () => {}, poolBytes, rxPartial,
    usedIndexError: (usedIdx: number, last: number, outstanding: number) => {
      throw breakWith(usedIndexError(name, index, usedIdx, last, outstanding));
    },
    usedIdError: (id: number, position: number) => {
      breakWith(usedIdError(name, index, id, position, capacity));
    },
  } as unknown as RxEnv;
  return specialize(receiveLoop, env, `${shared.label} (worker)`, hotPath);
}

export class RxQueue {
  readonly name: string;
  readonly pool: Mempool;
  /** Buffers kept posted: the ring size, or less when a legacy ring is larger than asked for. */
  readonly capacity: number;
  /** The compiled receive loop of this queue; rxBatch calls it after checking its arguments. */
  readonly receive: ReceiveLoop;
  readonly #ring: VirtqueueRing;
  readonly #notify: NotifyTarget;
  readonly #table: Int32Array;
  readonly #state = sharedInt32(5);
  readonly #env: RxEnv;
  readonly #counters = sharedFloat64(5);
  #broken: DeviceProtocolError | null = null;

  /**
   * `checkDevice` is called now and then while the ring stays empty; it throws (and breaks this
   * queue through breakWith()) when the device needs a reset.
   */
  constructor(name: string, ring: VirtqueueRing, notify: NotifyTarget, pool: Mempool, capacity: number, hdrLen: number,
    hotPath?: HotPathMode, checkDevice: () => void = () => {}, offloads: RxQueueOffloads = NO_RX_OFFLOADS) {
    this.name = name;
    this.pool = pool;
    this.capacity = capacity;
    this.#ring = ring;
    this.#notify = notify;
    this.#table = sharedInt32(capacity).fill(-1);
    // §5.1.6.3 / §2.7.13: make every buffer available. Length and flags of a descriptor never
    // change afterwards (all buffers of the pool have the same size); only the address does.
    for (let id = 0; id < capacity; id++) {
      const buf = pool.alloc();
      if (buf < 0) throw new RangeError(`${name}: the mempool has fewer than ${capacity} buffers to fill the ring`);
      this.#table[id] = buf;
      ring.desc32[id << 2] = bufIovaLo[buf]! - hdrLen;
      ring.desc32[(id << 2) + 1] = bufIovaHi[buf]!;
      ring.desc32[(id << 2) + 2] = hdrLen + pool.dataCapacity;
      ring.desc32[(id << 2) + 3] = VIRTQ_DESC_F_WRITE;
      ring.avail16[2 + id] = id;
    }
    this.#state[0] = capacity & 0xffff;
    Atomics.store(ring.avail16, 1, capacity & 0xffff);
    const env: RxEnv = {
      desc32: ring.desc32,
      avail16: ring.avail16,
      used16: ring.used16,
      used32: ring.used32,
      table: this.#table,
      size: ring.size,
      capacity,
      state: this.#state,
      postedAt: sharedInt32(capacity),
      counters: this.#counters,
      hdrLen,
      dataCapacity: pool.dataCapacity,
      pool: pool.id,
      stack: pool.stack,
      checked: pool.checked,
      poolTop,
      bufIovaLo,
      bufIovaHi,
      bufLength,
      bufHome,
      bufDataOffset,
      bufRxOffload,
      bufTxOffload,
      poolBytes,
      GUEST_CSUM: offloads.guestCsum ? 1 : 0,
      MRG: offloads.mergeable ? 1 : 0,
      L4_GOOD: RX_OFFLOAD.l4ChecksumGood,
      rxPartial,
      queueIndex: ring.index,
      notifyWords: notify.mmio.words16,
      notifyOffset: notify.offset,
      mmio: notify.mmio,
      NO_NOTIFY: VIRTQ_USED_F_NO_NOTIFY,
      MIN_FRAME: ETH_HLEN,
      IDLE_CHECK: RX_IDLE_CHECK,
      throwBroken: () => {
        throw this.#broken!;
      },
      usedIndexError: (usedIdx, last, outstanding) => {
        throw this.breakWith(usedIndexError(name, ring.index, usedIdx, last, outstanding));
      },
      usedIdError: (id, position) => {
        this.breakWith(usedIdError(name, ring.index, id, position, capacity));
      },
      idleCheck: checkDevice,
    };
    this.#env = env;
    this.receive = specialize(receiveLoop, env, name, hotPath);
  }

  /**
   * The receive loop's data for a worker thread, which compiles its own copy
   * (attachVirtioReceive). The device checks stay here: the thread that opened the device notices
   * a device that needs a reset in readStats, and breaks the queue through the shared state.
   */
  share(): SharedQueue {
    return {
      kind: SharedQueueKind.virtioRx, label: this.name, env: shareEnv(this.#env, this.name, [this.#env.notifyOffset]),
      queueIndex: this.#ring.index, capacity: this.capacity,
    };
  }

  /** Marks the queue broken: every later receive() throws `error`. Returns it. */
  breakWith(error: DeviceProtocolError): DeviceProtocolError {
    this.#broken ??= error;
    this.#state[3] = 1;
    return this.#broken;
  }

  /** The error that broke the queue, or null. */
  get broken(): DeviceProtocolError | null {
    return this.#broken;
  }

  /** packets, bytes, errors, missed, notifications: see RxCounter. */
  get counters(): Float64Array {
    return this.#counters;
  }

  /** Notifies the device that buffers are available (after DRIVER_OK, §3.1.1). */
  kick(): void {
    // x86-64 ordering: a plain load of used.flags after the Atomics.store of avail.idx.
    if ((this.#ring.used16[0]! & VIRTQ_USED_F_NO_NOTIFY) === 0) {
      this.#notify.mmio.write16(this.#notify.offset, this.#ring.index);
      this.#counters[RxCounter.notifications]!++;
    }
  }

  /**
   * Interrupts (waitForRx): asks for a used-buffer notification by clearing
   * VIRTQ_AVAIL_F_NO_INTERRUPT (§2.7.7.1; virtqueue.ts sets it at init, and the receive loop
   * never touches the flags), then looks at used.idx once more. True — and the flag is set again —
   * when entries are waiting already: the device may have used them after the caller's last
   * rxBatch but before it saw the flag cleared, and then sent no notification (§2.7.7.2), so
   * sleeping now would miss them (a lost wake-up). Also true on a broken queue (rxBatch throws).
   */
  arm(): boolean {
    if (this.#broken !== null) return true;
    const ring = this.#ring;
    // A full barrier (xchg) between the flag store and the used.idx load: a plain store could
    // still sit in the store buffer when the load is satisfied (x86 reorders a load before an
    // older store), and device and driver would each miss what the other just did.
    Atomics.store(ring.avail16, 0, 0);
    if (ring.used16[1]! !== this.#state[1]!) {
      ring.avail16[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
      return true;
    }
    return false;
  }

  /** Interrupts off again (the state a polling receive queue keeps). */
  disarm(): void {
    this.#ring.avail16[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
  }

  /** A snapshot of the ring for queue pair `queue` (ring-snapshot.ts); changes nothing. */
  ringState(queue: number): RingState {
    return splitRingState("rx", queue, this.#ring.avail16, this.#ring.used16, this.#state[1]!, this.#ring.size);
  }

  /** After the device was reset: gives every posted buffer back to the pool. */
  releaseBuffers(): void {
    const table = this.#table;
    for (let id = 0; id < table.length; id++) {
      // (A buffer whose pool is gone already, its DMA allocator closed first, has no home.)
      if (table[id]! >= 0 && bufPool[table[id]!]! >= 0) freeBuffer(table[id]!);
      table[id] = -1;
    }
  }
}
