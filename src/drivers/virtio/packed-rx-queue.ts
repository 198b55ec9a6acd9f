/**
 * The virtio-net receive queue on a packed virtqueue (virtio 1.2 §2.8, §5.1.6.3-4): the same
 * contract as the split receive queue (virtio-rx-queue.ts) — one single-descriptor buffer per
 * mempool buffer, the net header in the headroom, the ring kept full, a frame dropped (missed)
 * when the pool is empty — on the packed layout of packed-ring.ts.
 *
 * Buffer ids: buffer id i always names the mempool buffer in table[i]. The device may complete
 * them in any order (VIRTIO_F_IN_ORDER is not negotiated), so a used descriptor's position says
 * nothing; only its id does. The driver tracks which ids the device holds (held[id]): a used
 * descriptor with an id the device does not hold (out of range, completed twice, never posted) is
 * a device error — counted in the errors, never handed out; the batch stops there (what came
 * before is handed out), the queue is broken and every later receive throws a DeviceProtocolError.
 * Re-posted buffers are made available only after the whole batch was read (a second pass), so an
 * id repeated within a batch cannot be mistaken for a fresh completion. Across batches, as on the
 * split ring: a buffer made available again can only come back in a used descriptor the device
 * writes after that, i.e. at a position (a free-running count of used descriptors) at or beyond
 * the used descriptors the driver could see when it re-posted it; postedAt[id] is that position,
 * so a stale id (one the device returned before, written before the re-post) is refused too. The
 * driver sees them up to the first slot not marked used: when a batch stops at `max` it counts the
 * used slots after it (loads only then).
 *
 * What the split receive queue bounds by the buffers outstanding (used.idx) needs no check here:
 * every used descriptor read clears one held id, and a batch cannot read a slot twice (the
 * re-posted flags go out after the batch, so the slot the batch started at still has the device's
 * flags of the previous lap when the batch comes round to it). As on the split ring, frames shorter
 * than an Ethernet header are dropped and counted as errors, and a ring that stays empty makes the
 * queue look at the device status every RX_IDLE_CHECK polls (DEVICE_NEEDS_RESET, a reset behind
 * the driver's back).
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
import { RX_IDLE_CHECK, RxCounter, type ReceiveLoop } from "./virtio-rx-queue.ts";
import type { NotifyTarget } from "./transport.ts";
import {
  availFlags,
  packedUsedIdError,
  VRING_DESC_F_WRITE,
  VRING_PACKED_DESC_F_AVAIL,
  VRING_PACKED_DESC_F_USED,
  VRING_PACKED_EVENT_FLAG_DISABLE,
  VRING_PACKED_EVENT_FLAG_ENABLE,
  type PackedRing,
} from "./packed-ring.ts";
import { sharedInt32, sharedUint8, sharedFloat64 } from "../../mem/shared-arrays.ts";
import type { RingState } from "../../ring-state.ts";
import { packedRingState } from "./ring-snapshot.ts";

/** Slots of the state array. */
const S = { availPos: 0, availWrap: 1, usedPos: 2, usedWrap: 3, broken: 4, idle: 5, position: 6, scanPos: 7, scanWrap: 8, scanPosition: 9 } as const;
/** struct ethhdr: a frame shorter than this is a runt. */
const ETH_HLEN = 14;

/** Everything the receive loop touches; each field becomes a constant in its compiled copy. */
interface PackedRxEnv {
  readonly desc32: Uint32Array;
  readonly desc16: Uint16Array;
  readonly device16: Uint16Array;
  /** The buffer each buffer id names. */
  readonly table: Int32Array;
  /** 1 while the device holds buffer id i. */
  readonly held: Uint8Array;
  /** Per buffer id: the used position (state[6] units) from which the device may return it. */
  readonly postedAt: Int32Array;
  readonly size: number;
  readonly capacity: number;
  /** See S: next descriptor to make available and its wrap counter; next used descriptor and its wrap counter; broken; empty polls. */
  readonly state: Int32Array;
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
  /** Offloads, as in the split receive loop (virtio-rx-queue.ts). */
  readonly bufDataOffset: Int32Array;
  readonly bufRxOffload: Uint8Array;
  readonly bufTxOffload: Uint8Array;
  readonly poolBytes: Uint8Array[];
  readonly GUEST_CSUM: number;
  readonly MRG: number;
  readonly L4_GOOD: number;
  readonly rxPartial: (buf: number, hdrLen: number) => boolean;
  readonly queueIndex: number;
  readonly notifyWords: Uint16Array | null;
  readonly notifyOffset: number;
  readonly mmio: Mmio;
  readonly AVAIL: number;
  readonly USED: number;
  readonly WRITE: number;
  readonly EVENT_DISABLE: number;
  /** Frames shorter than an Ethernet header are runts: dropped and counted as errors. */
  readonly MIN_FRAME: number;
  /** Empty polls between two checks of the device status (a power of two). */
  readonly IDLE_CHECK: number;
  /** Throws the error that broke the queue. */
  readonly throwBroken: () => never;
  /** A used descriptor naming an id the device does not hold: breaks the queue (the caller stops there). */
  readonly usedIdError: (id: number, slot: number) => void;
  /** Called every IDLE_CHECK empty polls: throws when the device needs a reset. */
  readonly idleCheck: () => void;
}

/**
 * §2.8.6 (the driver reads used descriptors) and §2.8.21 (it makes buffers available): takes up
 * to `max` used descriptors in ring order, each while its flags say AVAIL = USED = the driver's
 * used wrap counter; gives every slot its fresh (or, on a drop, its old) buffer back, then
 * publishes the re-posted descriptors' flags and notifies the device once per batch unless its
 * event suppression structure says DISABLE (§2.8.10).
 *
 * A factory compiled once per queue (specialize.ts): it may use only `env` and its own locals.
 */
function packedReceiveLoop(env: PackedRxEnv): ReceiveLoop {
  const { desc32, desc16, device16, table, held, postedAt, size, capacity, state, counters, hdrLen, dataCapacity } = env;
  const { pool, stack, checked, poolTop, bufIovaLo, bufIovaHi, bufLength, bufHome } = env;
  const { queueIndex, notifyWords, notifyOffset, mmio, AVAIL, USED, WRITE, EVENT_DISABLE, MIN_FRAME, IDLE_CHECK } = env;
  const { throwBroken, usedIdError, idleCheck } = env;
  const { bufDataOffset, bufRxOffload, bufTxOffload, poolBytes, GUEST_CSUM, MRG, L4_GOOD, rxPartial } = env;
  const notifyWord = notifyOffset >>> 1;
  const BOTH = AVAIL | USED;
  const bufferLength = hdrLen + dataCapacity;

  /** Whether the `pieces - 1` slots after slot `u` are marked used too (the rest of a merged frame). */
  function merged(u: number, usedFlags: number, pieces: number): boolean {
    for (let j = 1; j < pieces; j++) {
      if (++u === size) {
        u = 0;
        usedFlags ^= BOTH;
      }
      if (((desc32[(u << 2) + 3]! >>> 16) & BOTH) !== usedFlags) return false;
    }
    return true;
  }

  /**
   * §5.1.6.4 with VIRTIO_NET_F_MRG_RXBUF (see the split receive loop's merge()): the pieces in the
   * `pieces - 1` used slots after `u` are copied behind the first `first` bytes of buffer id
   * `id`, and each piece's buffer goes back to the device as it is, in the slots from `a` + 1 on.
   * Returns the frame's length, -1 when it is longer than a buffer, -2 for a slot naming an id
   * the device does not hold (the queue breaks).
   */
  function merge(mem: Uint8Array, id: number, first: number, pieces: number, u: number, a: number, position: number): number {
    const dst = bufDataOffset[table[id]!]!;
    let length = first;
    for (let j = 1; j < pieces; j++) {
      if (++u === size) u = 0;
      if (++a === size) a = 0;
      const w = desc32[(u << 2) + 3]!;
      const piece = w & 0xffff;
      if (piece >= capacity || held[piece] === 0 || ((position + j - postedAt[piece]!) | 0) < 0) {
        usedIdError(piece, u);
        return -2;
      }
      held[piece] = 0;
      const len = desc32[(u << 2) + 2]!;
      const buf = table[piece]!;
      if (length >= 0 && length + len <= dataCapacity) {
        const src = bufDataOffset[buf]! - hdrLen;
        mem.copyWithin(dst + length, src, src + len);
        length += len;
      } else length = -1;
      const da = a << 2;
      desc32[da] = bufIovaLo[buf]! - hdrLen;
      desc32[da + 1] = bufIovaHi[buf]!;
      desc32[da + 2] = bufferLength;
      desc16[(a << 3) + 6] = piece;
    }
    return length;
  }

  return function receive(bufs: Int32Array, max: number): number {
    if (state[4] !== 0) throwBroken();
    let u = state[2]!;
    // §2.8.2: a used descriptor has AVAIL and USED both equal to the used wrap counter.
    let usedFlags = state[3] !== 0 ? BOTH : 0;
    const a0 = state[0]!;
    let a = a0;
    let top = poolTop[pool]!;
    let out = 0;
    let bytes = 0;
    let errors = 0;
    let missed = 0;
    let bad = 0;
    let reposted = 0;
    let position = state[6]!;
    const mem = poolBytes[pool]!;
    let k = 0;
    for (; k < max; k++) {
      const d = u << 2;
      // One load for id and flags. x86-64 keeps loads in order: the length below is read after
      // the flags said the descriptor is used (§2.8.6; a weakly ordered port needs a read barrier).
      const w = desc32[d + 3]!;
      if (((w >>> 16) & BOTH) !== usedFlags) break;
      const id = w & 0xffff;
      if (id >= capacity || held[id] === 0 || ((position - postedAt[id]!) | 0) < 0) {
        // Not a buffer the device holds: nothing to hand out, nothing to make available again,
        // and the ring can no longer be trusted. Stop here: what came before is good and is
        // handed out; the next call throws, or this one when there is nothing to hand out.
        usedIdError(id, u);
        errors++;
        bad++;
        break;
      }
      let frameLength = desc32[d + 2]! - hdrLen;
      let buf = table[id]!;
      // The header's flags (GUEST_CSUM) and num_buffers (MRG_RXBUF); both constants here.
      const h = bufDataOffset[buf]! - hdrLen;
      const flags = GUEST_CSUM !== 0 ? mem[h]! : 0;
      const pieces = MRG !== 0 ? mem[h + 10]! | (mem[h + 11]! << 8) : 1;
      if (pieces !== 1) {
        // The rest of a merged frame not marked used yet: leave it (and the batch) for later.
        const many = pieces > 1 && pieces <= capacity;
        if (many && !merged(u, usedFlags, pieces)) break;
        held[id] = 0;
        if (many) {
          frameLength = merge(mem, id, frameLength, pieces, u, a, position);
          if (frameLength === -2) {
            errors++;
            bad++;
            break;
          }
          for (let j = 1; j < pieces; j++) {
            if (++u === size) {
              u = 0;
              usedFlags ^= BOTH;
            }
          }
          position = (position + pieces - 1) | 0;
          k += pieces - 1;
        } else frameLength = -1; // num_buffers 0 (no buffer) or beyond the ring: a bad frame
      }
      // §2.8.4: one descriptor per buffer, so the next used descriptor is the next slot.
      if (++u === size) {
        u = 0;
        usedFlags ^= BOTH;
      }
      held[id] = 0;
      position = (position + 1) | 0;
      if (frameLength < MIN_FRAME || frameLength > dataCapacity) errors++;
      else if (top !== 0) {
        bufLength[buf] = frameLength;
        // §5.1.6.4: DATA_VALID / NEEDS_CSUM (see the split receive loop).
        let good = true;
        if ((flags & 1) !== 0) good = rxPartial(buf, hdrLen);
        else {
          bufRxOffload[buf] = (flags & 2) !== 0 ? L4_GOOD : 0;
          bufTxOffload[buf] = 0;
        }
        if (good) {
          bufs[out++] = buf;
          bytes += frameLength;
          buf = stack[--top]!;
          if (checked) bufHome[buf] = 0;
          table[id] = buf;
        } else errors++;
      } else missed++;
      // The slot just read is free (the ring stays full, so it is where the next buffer goes):
      // address, length (the device wrote the used length over it) and id now; the flags, which
      // hand it to the device, in the second pass below.
      const da = a << 2;
      desc32[da] = bufIovaLo[buf]! - hdrLen;
      desc32[da + 1] = bufIovaHi[buf]!;
      desc32[da + 2] = bufferLength;
      desc16[(a << 3) + 6] = id;
      // The pieces of a merged frame went into the slots after this one (merge()).
      const slots = pieces > 1 && pieces <= capacity ? pieces : 1;
      a += slots;
      if (a >= size) a -= size;
      reposted += slots;
    }
    poolTop[pool] = top;
    state[2] = u;
    state[3] = usedFlags !== 0 ? 1 : 0;
    state[6] = position;
    if (reposted !== 0) {
      // Where a buffer re-posted now can come back at the earliest: after every used descriptor
      // visible now (past `max`, the ones this batch left; x86-64 ordering: plain loads).
      let seen = position;
      if (k >= max) {
        // The scan goes on from where the last one stopped (state[7..9]: slot, wrap, position),
        // not from u: used descriptors stay used until the driver takes them, so each slot is
        // scanned once, not once per call (at batches of 1 behind a full ring that would be the
        // whole ring on every call).
        let p = u;
        let f = usedFlags;
        if (((state[9]! - position) | 0) > 0) {
          p = state[7]!;
          f = state[8] !== 0 ? BOTH : 0;
          seen = state[9]!;
        }
        for (let n = (seen - position) | 0; n < size && ((desc32[(p << 2) + 3]! >>> 16) & BOTH) === f; n++) {
          seen = (seen + 1) | 0;
          if (++p === size) {
            p = 0;
            f ^= BOTH;
          }
        }
        state[7] = p;
        state[8] = f !== 0 ? 1 : 0;
        state[9] = seen;
      }
      // §2.8.21: make the buffers available, oldest first; the driver's wrap counter flips where
      // its index passes the end of the ring.
      let wrap = state[1]!;
      let p = a0;
      let flags = (wrap !== 0 ? AVAIL : USED) | WRITE;
      for (let r = 1; r < reposted; r++) {
        postedAt[desc16[(p << 3) + 6]!] = seen;
        held[desc16[(p << 3) + 6]!] = 1;
        desc16[(p << 3) + 7] = flags;
        if (++p === size) {
          p = 0;
          wrap ^= 1;
          flags = (wrap !== 0 ? AVAIL : USED) | WRITE;
        }
      }
      postedAt[desc16[(p << 3) + 6]!] = seen;
      held[desc16[(p << 3) + 6]!] = 1;
      // The last one with a full barrier (xchg): the load of the device's event flags below must
      // not pass it, or device and driver could both decide the other has nothing to do.
      Atomics.store(desc16, (p << 3) + 7, flags);
      if (++p === size) {
        p = 0;
        wrap ^= 1;
      }
      state[0] = p;
      state[1] = wrap;
      if (device16[1] !== EVENT_DISABLE) {
        if (notifyWords !== null) notifyWords[notifyWord] = queueIndex;
        else mmio.write16(notifyOffset, queueIndex);
        counters[4]++;
      }
    }
    counters[0] += out;
    counters[1] += bytes;
    if (errors !== 0) counters[2] += errors;
    if (missed !== 0) counters[3] += missed;
    if (reposted === 0 && bad === 0) {
      // A device that broke (DEVICE_NEEDS_RESET) or was reset behind our back delivers nothing:
      // look at its status now and then, where it costs nothing.
      if ((++state[5]! & (IDLE_CHECK - 1)) === 0) idleCheck();
    }
    // A bad descriptor with nothing good before it: throw now (there is nothing to hand out).
    if (out === 0 && bad !== 0) throwBroken();
    return out;
  };
}

/** In a worker thread: the receive loop of a queue another thread shared (PackedRxQueue.share()). */
export function attachPackedReceive(shared: SharedQueue, hotPath?: HotPathMode): ReceiveLoop {
  const data = openEnv(shared.env);
  const { throwBroken, breakWith } = workerBreaker(shared, data["state"] as Int32Array, S.broken);
  const name = shared.label;
  const index = shared.queueIndex!;
  const capacity = shared.capacity!;
  const env = {
    ...data, throwBroken, idleCheck: () => {}, poolBytes, rxPartial,
    usedIdError: (id: number, slot: number) => {
      breakWith(packedUsedIdError(name, index, id, slot, capacity));
    },
  } as unknown as PackedRxEnv;
  return specialize(packedReceiveLoop, env, `${name} (worker)`, hotPath);
}

export class PackedRxQueue {
  readonly name: string;
  readonly pool: Mempool;
  readonly capacity: number;
  readonly receive: ReceiveLoop;
  readonly #ring: PackedRing;
  readonly #notify: NotifyTarget;
  readonly #table: Int32Array;
  readonly #state = sharedInt32(10);
  readonly #counters = sharedFloat64(5);
  #broken: DeviceProtocolError | null = null;
  readonly #env: PackedRxEnv;

  /**
   * A packed ring has the size the driver chose (§4.1.5.1.3): `capacity` is the ring size.
   * `checkDevice` is called now and then while the ring stays empty; it throws (and breaks this
   * queue through breakWith()) when the device needs a reset.
   */
  constructor(name: string, ring: PackedRing, notify: NotifyTarget, pool: Mempool, hdrLen: number, hotPath?: HotPathMode,
    checkDevice: () => void = () => {}, offloads: RxQueueOffloads = NO_RX_OFFLOADS) {
    const capacity = ring.size;
    this.name = name;
    this.pool = pool;
    this.capacity = capacity;
    this.#ring = ring;
    this.#notify = notify;
    this.#table = sharedInt32(capacity).fill(-1);
    const held = sharedUint8(capacity);
    const desc16 = new Uint16Array(ring.desc32.buffer, ring.desc32.byteOffset, 8 * ring.size);
    // §2.8.21: make every buffer available: descriptor i carries buffer id i in the driver's
    // first wrap (counter 1: AVAIL set, USED clear). Written before DRIVER_OK, so no ordering
    // matters yet; afterwards a descriptor's flags are always written last.
    for (let id = 0; id < capacity; id++) {
      const buf = pool.alloc();
      if (buf < 0) throw new RangeError(`${name}: the mempool has fewer than ${capacity} buffers to fill the ring`);
      this.#table[id] = buf;
      const d = id << 2;
      ring.desc32[d] = bufIovaLo[buf]! - hdrLen;
      ring.desc32[d + 1] = bufIovaHi[buf]!;
      ring.desc32[d + 2] = hdrLen + pool.dataCapacity;
      ring.desc32[d + 3] = (id | (availFlags(1, VRING_DESC_F_WRITE) << 16)) >>> 0;
      held[id] = 1;
    }
    // The whole ring is available: the next descriptor is 0 again, in the second wrap (counter 0).
    this.#state[S.availPos] = 0;
    this.#state[S.availWrap] = 0;
    this.#state[S.usedPos] = 0;
    this.#state[S.usedWrap] = 1;
    const env: PackedRxEnv = {
      desc32: ring.desc32,
      desc16,
      device16: ring.device16,
      table: this.#table,
      held,
      postedAt: sharedInt32(capacity),
      size: ring.size,
      capacity,
      state: this.#state,
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
      AVAIL: VRING_PACKED_DESC_F_AVAIL,
      USED: VRING_PACKED_DESC_F_USED,
      WRITE: VRING_DESC_F_WRITE,
      EVENT_DISABLE: VRING_PACKED_EVENT_FLAG_DISABLE,
      MIN_FRAME: ETH_HLEN,
      IDLE_CHECK: RX_IDLE_CHECK,
      throwBroken: () => {
        throw this.#broken!;
      },
      usedIdError: (id, slot) => {
        this.breakWith(packedUsedIdError(name, ring.index, id, slot, capacity));
      },
      idleCheck: checkDevice,
    };
    this.#env = env;
    this.receive = specialize(packedReceiveLoop, env, name, hotPath);
  }

  /** The receive loop's data for a worker thread (attachPackedReceive); see RxQueue.share(). */
  share(): SharedQueue {
    return {
      kind: SharedQueueKind.packedRx, label: this.name, env: shareEnv(this.#env, this.name, [this.#env.notifyOffset]),
      queueIndex: this.#env.queueIndex, capacity: this.capacity,
    };
  }

  /** Marks the queue broken: every later receive() throws `error`. Returns it. */
  breakWith(error: DeviceProtocolError): DeviceProtocolError {
    this.#broken ??= error;
    this.#state[S.broken] = 1;
    return this.#broken;
  }

  /** The error that broke the queue, or null. */
  get broken(): DeviceProtocolError | null {
    return this.#broken;
  }

  get counters(): Float64Array {
    return this.#counters;
  }

  /** Notifies the device that buffers are available (after DRIVER_OK, §3.1.1), unless it said DISABLE. */
  kick(): void {
    if (this.#ring.device16[1] !== VRING_PACKED_EVENT_FLAG_DISABLE) {
      this.#notify.mmio.write16(this.#notify.offset, this.#ring.index);
      this.#counters[RxCounter.notifications]!++;
    }
  }

  /**
   * Interrupts (waitForRx): asks for used-buffer notifications with the driver event suppression
   * flags ENABLE (§2.8.10; DISABLE since packed-ring.ts set it up, and the receive loop never
   * writes them), then looks once more at the next descriptor the driver would read. True — and
   * DISABLE again — when it is used already: the device may have written it after the caller's
   * last rxBatch but before it saw ENABLE, and then sent no notification (§2.8.10), so sleeping
   * would miss it. Also true on a broken queue (rxBatch throws).
   */
  arm(): boolean {
    if (this.#broken !== null) return true;
    const ring = this.#ring;
    // Full barrier (xchg) between the store and the descriptor load: see RxQueue.arm().
    Atomics.store(ring.driver16, 1, VRING_PACKED_EVENT_FLAG_ENABLE);
    const state = this.#state;
    const both = VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED;
    // §2.8.2: used when AVAIL and USED both equal the driver's used wrap counter.
    const flags = ring.desc32[(state[S.usedPos]! << 2) + 3]! >>> 16;
    if ((flags & both) === (state[S.usedWrap] !== 0 ? both : 0)) {
      ring.driver16[1] = VRING_PACKED_EVENT_FLAG_DISABLE;
      return true;
    }
    return false;
  }

  /** Notifications off again (the state a polling receive queue keeps). */
  disarm(): void {
    this.#ring.driver16[1] = VRING_PACKED_EVENT_FLAG_DISABLE;
  }

  /** A snapshot of the ring for queue pair `queue` (ring-snapshot.ts); changes nothing. */
  ringState(queue: number): RingState {
    const state = this.#state;
    return packedRingState("rx", queue, this.#ring.desc32, this.#ring.size,
      state[S.availPos]!, state[S.availWrap]!, state[S.usedPos]!, state[S.usedWrap]!);
  }

  /** After the device was reset: gives every posted buffer back to the pool. */
  releaseBuffers(): void {
    const table = this.#table;
    for (let id = 0; id < table.length; id++) {
      if (table[id]! >= 0 && bufPool[table[id]!]! >= 0) freeBuffer(table[id]!);
      table[id] = -1;
    }
  }
}
