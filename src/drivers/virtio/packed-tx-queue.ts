/**
 * The virtio-net transmit queue on a packed virtqueue (virtio 1.2 §2.8, §5.1.6.2): the same
 * contract as the split transmit queue (virtio-tx-queue.ts) — one device-readable descriptor per
 * frame with the net header in the headroom, zeroed or filled from the buffer's offload request
 * (net-offload.ts) — on the packed layout of packed-ring.ts.
 *
 * Buffer ids come from a stack of free ids; the device returns them in whatever order it finishes
 * (VIRTIO_F_IN_ORDER is not negotiated). An id the device does not hold (table[id] < 0: never
 * given, or completed twice) is a device error: counted in the errors, nothing freed, the reclaim
 * stops there and the queue is broken (this send and every later one throw a DeviceProtocolError).
 * The used descriptors read per reclaim are bounded by the buffers in flight, and a slot marked
 * used beyond them (it can only be the one the next frame goes to, which the driver has not made
 * available in this lap) is a device error too: the split ring's used.idx bound (virtio-tx-queue.ts).
 * As there, a send that finds the ring full after a reclaim looks at the device status every
 * TX_FULL_CHECK times (DEVICE_NEEDS_RESET, a reset behind the driver's back).
 */
import {
  bufDataOffset,
  bufHome,
  bufTxOffload,
  bufIovaHi,
  bufIovaLo,
  bufLength,
  bufPool,
  poolCapacity,
  poolSpace,
  poolWords16,
  poolWords32,
  tableState,
  BUF_UNTRACKED,
} from "../../mem/buffer-table.ts";
import type { DmaAllocator } from "../../mem/dma.ts";
import { freeBuffer, freeBuffers } from "../../mem/mempool.ts";
import type { DeviceProtocolError } from "../../errors.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { badTxBuffer } from "../batch-args.ts";
import { specialize, type HotPathMode } from "../specialize.ts";
import { openEnv, shareEnv } from "../../threads/shared-env.ts";
import { SharedQueueKind, type DmaSpace, type SharedQueue } from "../queue-handoff.ts";
import { workerBreaker } from "./worker-breaker.ts";
import type { NotifyTarget } from "./transport.ts";
import { TX_RECLAIM_THRESHOLD, TX_FULL_CHECK, TxCounter, type SendLoop } from "./virtio-tx-queue.ts";
import {
  packedUsedCountError,
  packedUsedIdError,
  VRING_PACKED_DESC_F_AVAIL,
  VRING_PACKED_DESC_F_USED,
  VRING_PACKED_EVENT_FLAG_DISABLE,
  type PackedRing,
} from "./packed-ring.ts";
import { sharedInt32, sharedFloat64 } from "../../mem/shared-arrays.ts";
import type { RingState } from "../../ring-state.ts";
import { packedRingState } from "./ring-snapshot.ts";
import { txOffloadHeader, type TxOffloadHeader } from "./net-offload.ts";
import { NO_TX_OFFLOADS, tsoRefused, type TxQueueOffloads } from "./queue-offloads.ts";

/** Slots of the state array. */
const S = { availPos: 0, availWrap: 1, usedPos: 2, usedWrap: 3, free: 4, inFlight: 5, broken: 6, full: 7 } as const;

/** Everything the transmit loop touches; each field becomes a constant in its compiled copy. */
interface PackedTxEnv {
  readonly desc32: Uint32Array;
  readonly desc16: Uint16Array;
  readonly device16: Uint16Array;
  /** The buffer each in-flight buffer id carries (-1: the device does not hold the id). */
  readonly table: Int32Array;
  /** Free buffer ids: freeIds[0 .. state[4]). */
  readonly freeIds: Int32Array;
  /** Buffers of completed descriptors, collected to be freed in one go. */
  readonly scratch: Int32Array;
  readonly size: number;
  readonly capacity: number;
  /** See S. */
  readonly state: Int32Array;
  /** packets, bytes, errors, notifications (TxCounter). */
  readonly counters: Float64Array;
  readonly hdrLen: number;
  readonly tableState: Int32Array;
  readonly bufIovaLo: Int32Array;
  readonly bufIovaHi: Int32Array;
  readonly bufLength: Int32Array;
  readonly bufPool: Int32Array;
  readonly bufHome: Uint8Array;
  readonly bufDataOffset: Int32Array;
  /** Offload requests, as in the split transmit loop (virtio-tx-queue.ts): CSUM, TSO, txOffload, tsoRefused. */
  readonly bufTxOffload: Uint8Array;
  readonly CSUM: number;
  readonly TSO: number;
  readonly txOffload: TxOffloadHeader;
  readonly tsoRefused: (bufs: Int32Array, i: number) => never;
  readonly poolCapacity: Int32Array;
  readonly poolWords16: Uint16Array[];
  readonly poolWords32: Uint32Array[];
  /** The address space of each pool's buffers (buffer-table.ts). */
  readonly poolSpace: Int32Array;
  /** bufHome of an unchecked pool's buffers (BUF_UNTRACKED). */
  readonly UNTRACKED: number;
  /** The address space of this queue's device (DmaAllocator.space). */
  readonly SPACE: number;
  readonly freeBuffer: (buf: number) => void;
  readonly freeBuffers: (bufs: Int32Array, start: number, count: number) => void;
  readonly badBuffer: (bufs: Int32Array, i: number) => never;
  readonly queueIndex: number;
  readonly notifyWords: Uint16Array | null;
  readonly notifyOffset: number;
  readonly mmio: Mmio;
  readonly RECLAIM_THRESHOLD: number;
  readonly AVAIL: number;
  readonly USED: number;
  readonly EVENT_DISABLE: number;
  /** Full-ring sends between two checks of the device status (a power of two). */
  readonly FULL_CHECK: number;
  /** Throws the error that broke the queue. */
  readonly throwBroken: () => never;
  /** A used descriptor naming an id the device does not hold: breaks the queue (the caller stops there). */
  readonly usedIdError: (id: number, slot: number) => void;
  /** A descriptor marked used beyond the buffers in flight: breaks the queue (the caller stops there). */
  readonly usedCountError: (slot: number, outstanding: number) => void;
  /** Called every FULL_CHECK sends that find the ring full: throws when the device needs a reset. */
  readonly fullCheck: () => void;
}

/**
 * §2.8.21: checks every buffer number (a bad one throws before a ring or pool is touched),
 * reclaims used descriptors (§2.8.6) when ids run short or RECLAIM_THRESHOLD are used, then makes the
 * frames available while ids last, and notifies the device once per batch unless its event
 * suppression structure says DISABLE (§2.8.10). A buffer whose length is 0 or beyond its capacity
 * is taken but not sent (back to its pool, counted as an error), as on the split ring.
 *
 * A factory compiled once per queue (specialize.ts): it may use only `env` and its own locals.
 */
function packedSendLoop(env: PackedTxEnv): SendLoop {
  const { desc32, desc16, device16, table, freeIds, scratch, size, capacity, state, counters, hdrLen } = env;
  const { tableState, bufIovaLo, bufIovaHi, bufLength, bufPool, bufHome, bufDataOffset, poolCapacity } = env;
  const { poolWords16, poolWords32, freeBuffer, freeBuffers, badBuffer, queueIndex, notifyWords, notifyOffset } = env;
  const { mmio, RECLAIM_THRESHOLD, AVAIL, USED, EVENT_DISABLE, FULL_CHECK, throwBroken, usedIdError, usedCountError, fullCheck } = env;
  const { poolSpace, UNTRACKED, SPACE, bufTxOffload, TSO, txOffload, tsoRefused } = env;
  const notifyWord = notifyOffset >>> 1;
  const BOTH = AVAIL | USED;

  /** §2.8.6: takes the used buffer ids back and returns their buffers to their pools. */
  function reclaim(): number {
    let u = state[2]!;
    let usedFlags = state[3] !== 0 ? BOTH : 0;
    let free = state[4]!;
    const inFlight = state[5]!;
    let done = 0;
    let k = 0;
    for (; k < inFlight; k++) {
      const d = u << 2;
      // x86-64 ordering: one plain load for id and flags (§2.8.6; a weakly ordered port needs a
      // read barrier before anything read after the flags said the descriptor is used).
      const w = desc32[d + 3]!;
      if (((w >>> 16) & BOTH) !== usedFlags) break;
      const id = w & 0xffff;
      const buf = id < capacity ? table[id]! : -1;
      if (buf < 0) {
        // An id the device does not hold (never given, or completed twice): stop at it.
        usedIdError(id, u);
        break;
      }
      if (++u === size) {
        u = 0;
        usedFlags ^= BOTH;
      }
      table[id] = -1;
      freeIds[free++] = id;
      scratch[done++] = buf;
    }
    // Every buffer in flight came back: the next slot is where the next frame goes, not made
    // available in this lap, so it cannot be marked used (one load, only on a drained ring).
    if (k === inFlight && ((desc32[(u << 2) + 3]! >>> 16) & BOTH) === usedFlags) usedCountError(u, inFlight);
    state[2] = u;
    state[3] = usedFlags !== 0 ? 1 : 0;
    state[4] = free;
    state[5] = inFlight - k;
    if (done !== 0) freeBuffers(scratch, 0, done);
    return free;
  }

  /** Whether RECLAIM_THRESHOLD descriptors are used: the RECLAIM_THRESHOLD-th in flight is (they are used in ring order). */
  function reclaimDue(): boolean {
    if (state[5]! < RECLAIM_THRESHOLD) return false;
    let p = state[2]! + RECLAIM_THRESHOLD - 1;
    let usedFlags = state[3] !== 0 ? BOTH : 0;
    if (p >= size) {
      p -= size;
      usedFlags ^= BOTH;
    }
    return ((desc32[(p << 2) + 3]! >>> 16) & BOTH) === usedFlags;
  }

  /** None of bufs[0 .. count) is taken: the marks of the checking pass go (the caller's again). */
  function unmark(bufs: Int32Array, count: number): void {
    for (let k = 0; k < count; k++) if (bufHome[bufs[k]!] === 2) bufHome[bufs[k]!] = 0;
  }

  return function send(bufs: Int32Array, count: number): number {
    // A broken queue throws before anything is checked or marked.
    if (state[6] !== 0) throwBroken();
    const rows = tableState[0]!;
    for (let i = 0; i < count; i++) {
      const buf = bufs[i]!;
      // Refused (as on the split ring, virtio-tx-queue.ts): a number outside every live pool, a
      // buffer of another address space (its address means other memory to this device; a dead
      // buffer's poolSpace is undefined), and in checked pools one the caller does not hold (in
      // its pool, or already given to a device: twice in this batch, say). badBuffer undoes the
      // marks of bufs[0 .. i).
      // (bufHome: 0 the caller's, 1 in its pool, 2 a device's; UNTRACKED in unchecked pools.)
      if (!(buf >= 0 && buf < rows)) badBuffer(bufs, i);
      const home = bufHome[buf]!;
      if (poolSpace[bufPool[buf]!] !== SPACE || (home !== 0 && home !== UNTRACKED)) badBuffer(bufs, i);
      if (home === 0) bufHome[buf] = 2; // held by the device until reclaimed
      // A TSO request the device cannot segment: refused before anything is taken (split loop).
      const request = bufTxOffload[buf]!;
      if ((request & 8) !== 0 && (TSO & ((request & 16) !== 0 ? 2 : 1)) === 0) tsoRefused(bufs, i);
    }
    let free = state[4]!;
    if (free < count || reclaimDue()) {
      free = reclaim();
      // A bad used descriptor: what came before it is reclaimed, none of this batch is taken.
      if (state[6] !== 0) {
        unmark(bufs, count);
        throwBroken();
      }
      if (free === 0 && (++state[7]! & (FULL_CHECK - 1)) === 0) {
        unmark(bufs, count); // fullCheck() throws when the device needs a reset
        fullCheck();
      }
    }
    if (free === 0 || count === 0) {
      unmark(bufs, count);
      return 0;
    }
    const a0 = state[0]!;
    let a = a0;
    let wrap = state[1]!;
    let availFlags = wrap !== 0 ? AVAIL : USED;
    let firstFlags = 0;
    let lastPool = -1;
    let words16 = poolWords16[0]!;
    let words32 = poolWords32[0]!;
    let bytes = 0;
    let sent = 0;
    let refused = 0;
    let taken = 0;
    for (; taken < count && free !== 0; taken++) {
      const buf = bufs[taken]!;
      const pool = bufPool[buf]!;
      const length = bufLength[buf]!;
      if (!(length > 0 && length <= poolCapacity[pool]!)) {
        freeBuffer(buf);
        refused++;
        continue;
      }
      if (pool !== lastPool) {
        lastPool = pool;
        words16 = poolWords16[pool]!;
        words32 = poolWords32[pool]!;
      }
      // Zero the header in the headroom, or fill it from a request (see the split transmit loop).
      const h = bufDataOffset[buf]! - hdrLen;
      const request = bufTxOffload[buf]!;
      if (request !== 0) {
        txOffload(buf, request);
        bufTxOffload[buf] = 0;
      } else if (hdrLen === 12) {
        const w = h >>> 2;
        words32[w] = 0;
        words32[w + 1] = 0;
        words32[w + 2] = 0;
      } else {
        words16[h >>> 1] = 0;
        const w = (h + 2) >>> 2;
        words32[w] = 0;
        words32[w + 1] = 0;
      }
      const id = freeIds[--free]!;
      table[id] = buf;
      const d = a << 2;
      desc32[d] = bufIovaLo[buf]! - hdrLen;
      desc32[d + 1] = bufIovaHi[buf]!;
      desc32[d + 2] = length + hdrLen;
      // §2.8.21: id and flags in one store, after address and length. The batch's first
      // descriptor gets its id now and its flags last (below), so the device sees the batch
      // whole or not at all.
      if (sent === 0) {
        desc16[(a << 3) + 6] = id;
        firstFlags = availFlags;
      } else desc32[d + 3] = (id | (availFlags << 16)) >>> 0;
      if (++a === size) {
        a = 0;
        wrap ^= 1;
        availFlags = wrap !== 0 ? AVAIL : USED;
      }
      bytes += length;
      sent++;
    }
    state[4] = free;
    for (let k = taken; k < count; k++) if (bufHome[bufs[k]!] === 2) bufHome[bufs[k]!] = 0; // not taken: the caller's again
    if (refused !== 0) counters[2] += refused;
    if (sent !== 0) {
      state[0] = a;
      state[1] = wrap;
      state[5] += sent;
      // A full barrier (xchg): the load of the device's event flags must not pass this store.
      // (16 bits: Atomics.store returns its value, and a 32-bit one above 2^31 would be boxed.)
      Atomics.store(desc16, (a0 << 3) + 7, firstFlags);
      if (device16[1] !== EVENT_DISABLE) {
        if (notifyWords !== null) notifyWords[notifyWord] = queueIndex;
        else mmio.write16(notifyOffset, queueIndex);
        counters[3]++;
      }
      counters[0] += sent;
      counters[1] += bytes;
    }
    return taken;
  };
}

/** In a worker thread: the transmit loop of a queue another thread shared (PackedTxQueue.share()). */
export function attachPackedSend(shared: SharedQueue, hotPath?: HotPathMode): SendLoop {
  const data = openEnv(shared.env);
  const { what, dma } = shared;
  const counters = data["counters"] as Float64Array;
  const { throwBroken, breakWith } = workerBreaker(shared, data["state"] as Int32Array, S.broken);
  const name = shared.label;
  const index = shared.queueIndex!;
  const capacity = shared.capacity!;
  const env = {
    ...data, throwBroken, poolWords16, poolWords32, freeBuffer, freeBuffers, fullCheck: () => {},
    badBuffer: (bufs: Int32Array, i: number) => badTxBuffer(what!, bufs, i, dma!),
    txOffload: txOffloadHeader(data["hdrLen"] as number, data["CSUM"] === 1),
    tsoRefused: (bufs: Int32Array, i: number) => tsoRefused(what!, bufs, i, data["TSO"] as number),
    usedIdError: (id: number, slot: number) => {
      counters[TxCounter.errors]!++;
      breakWith(packedUsedIdError(name, index, id, slot, capacity));
    },
    usedCountError: (slot: number, outstanding: number) => {
      counters[TxCounter.errors]!++;
      breakWith(packedUsedCountError(name, index, slot, outstanding));
    },
  } as unknown as PackedTxEnv;
  return specialize(packedSendLoop, env, `${name} (worker)`, hotPath);
}

export class PackedTxQueue {
  readonly name: string;
  readonly capacity: number;
  readonly send: SendLoop;
  readonly #table: Int32Array;
  readonly #env: PackedTxEnv;
  readonly #space: DmaSpace;
  readonly #state = sharedInt32(8);
  readonly #counters = sharedFloat64(4);
  #broken: DeviceProtocolError | null = null;

  /**
   * A packed ring has the size the driver chose: `capacity` is the ring size. `checkDevice` is
   * called now and then while the ring stays full after a reclaim; it throws (and breaks this
   * queue through breakWith()) when the device needs a reset. `space`: the device's DMA
   * allocator, whose address space alone txBatch accepts buffers of.
   */
  constructor(
    name: string,
    ring: PackedRing,
    notify: NotifyTarget,
    hdrLen: number,
    hotPath: HotPathMode | undefined,
    space: Pick<DmaAllocator, "name" | "space">,
    checkDevice: () => void = () => {},
    offloads: TxQueueOffloads = NO_TX_OFFLOADS,
  ) {
    const capacity = ring.size;
    this.name = name;
    this.capacity = capacity;
    this.#table = sharedInt32(capacity).fill(-1);
    // Ids pop in ascending order.
    const freeIds = sharedInt32(capacity);
    for (let i = 0; i < capacity; i++) freeIds[i] = capacity - 1 - i;
    // §2.8.2: both wrap counters start at 1.
    this.#state[S.availWrap] = 1;
    this.#state[S.usedWrap] = 1;
    this.#state[S.free] = capacity;
    const env: PackedTxEnv = {
      desc32: ring.desc32,
      desc16: new Uint16Array(ring.desc32.buffer, ring.desc32.byteOffset, 8 * ring.size),
      device16: ring.device16,
      table: this.#table,
      freeIds,
      scratch: sharedInt32(ring.size),
      size: ring.size,
      capacity,
      state: this.#state,
      counters: this.#counters,
      hdrLen,
      tableState,
      bufIovaLo,
      bufIovaHi,
      bufLength,
      bufPool,
      bufHome,
      bufDataOffset,
      bufTxOffload,
      CSUM: offloads.csum ? 1 : 0,
      TSO: offloads.tso,
      txOffload: txOffloadHeader(hdrLen, offloads.csum),
      tsoRefused: (bufs, i) => tsoRefused(`${name}: txBatch()`, bufs, i, offloads.tso),
      poolCapacity,
      poolWords16,
      poolWords32,
      poolSpace,
      UNTRACKED: BUF_UNTRACKED,
      SPACE: space.space,
      freeBuffer,
      freeBuffers,
      badBuffer: (bufs, i) => badTxBuffer(`${name}: txBatch()`, bufs, i, space),
      queueIndex: ring.index,
      notifyWords: notify.mmio.words16,
      notifyOffset: notify.offset,
      mmio: notify.mmio,
      RECLAIM_THRESHOLD: TX_RECLAIM_THRESHOLD,
      AVAIL: VRING_PACKED_DESC_F_AVAIL,
      USED: VRING_PACKED_DESC_F_USED,
      EVENT_DISABLE: VRING_PACKED_EVENT_FLAG_DISABLE,
      FULL_CHECK: TX_FULL_CHECK,
      throwBroken: () => {
        throw this.#broken!;
      },
      usedIdError: (id, slot) => {
        this.#counters[TxCounter.errors]!++;
        this.breakWith(packedUsedIdError(name, ring.index, id, slot, capacity));
      },
      usedCountError: (slot, outstanding) => {
        this.#counters[TxCounter.errors]!++;
        this.breakWith(packedUsedCountError(name, ring.index, slot, outstanding));
      },
      fullCheck: checkDevice,
    };
    this.#env = env;
    this.#space = { name: space.name, space: space.space };
    this.send = specialize(packedSendLoop, env, name, hotPath);
  }

  /** The transmit loop's data for a worker thread (attachPackedSend); see RxQueue.share(). */
  share(): SharedQueue {
    return {
      kind: SharedQueueKind.packedTx, label: this.name, env: shareEnv(this.#env, this.name, [this.#env.notifyOffset]),
      what: `${this.name}: txBatch()`, dma: this.#space, queueIndex: this.#env.queueIndex, capacity: this.capacity,
    };
  }

  /** Marks the queue broken: every later send() throws `error`. Returns it. */
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

  /** Buffer ids free for new frames (after the last reclaim). */
  get free(): number {
    return this.#state[S.free]!;
  }

  /** A snapshot of the ring for queue pair `queue` (ring-snapshot.ts); changes nothing. */
  ringState(queue: number): RingState {
    const state = this.#state;
    return packedRingState("tx", queue, this.#env.desc32, this.#env.size,
      state[S.availPos]!, state[S.availWrap]!, state[S.usedPos]!, state[S.usedWrap]!);
  }

  /** After the device was reset: gives every buffer still in flight back to its pool. */
  releaseBuffers(): void {
    const table = this.#table;
    for (let id = 0; id < table.length; id++) {
      if (table[id]! >= 0 && bufPool[table[id]!]! >= 0) freeBuffer(table[id]!);
      table[id] = -1;
    }
  }
}
