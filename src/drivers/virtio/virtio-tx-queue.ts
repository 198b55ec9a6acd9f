/**
 * The virtio-net transmit queue (virtio 1.2 §5.1.6.2): one descriptor per frame, the net header
 * in the headroom in front of the frame, so header and frame are one device-readable buffer. The
 * header is zeroed (flags 0, gso_type NONE) for a frame without an offload request; one with a
 * request (bufTxOffload) gets its checksum and TSO fields from net-offload.ts, off the hot path. Descriptor ids come from a stack of free ids;
 * completed ids come back through the used ring in whatever order the device finishes them.
 *
 * The device is not trusted: table[id] is -1 for an id the device does not hold, so a used entry
 * naming an id beyond the ring, one never given to the device, or one it completed twice is seen
 * for what it is (a DeviceProtocolError, counted in txErrors, its "buffer" freed never); and
 * used.idx may not move further than the number of descriptors in flight. A used entry is always
 * consumed in the same reclaim as every entry published with it, so a repeat within what the
 * device published at once never meets an id that was reused in between.
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
import type { Mmio } from "../../pci/mmio.ts";
import { badTxBuffer } from "../batch-args.ts";
import { specialize, type HotPathMode } from "../specialize.ts";
import { openEnv, shareEnv } from "../../threads/shared-env.ts";
import { SharedQueueKind, type DmaSpace, type SharedQueue } from "../queue-handoff.ts";
import { workerBreaker } from "./worker-breaker.ts";
import type { NotifyTarget } from "./transport.ts";
import type { DeviceProtocolError } from "../../errors.ts";
import { usedIdError, usedIndexError, type VirtqueueRing } from "./virtqueue.ts";
import { VIRTQ_USED_F_NO_NOTIFY } from "./virtio-types.ts";
import { sharedInt32, sharedFloat64 } from "../../mem/shared-arrays.ts";
import type { RingState } from "../../ring-state.ts";
import { splitRingState } from "./ring-snapshot.ts";
import { txOffloadHeader, type TxOffloadHeader } from "./net-offload.ts";
import { NO_TX_OFFLOADS, tsoRefused, type TxQueueOffloads } from "./queue-offloads.ts";

/**
 * Completed descriptors (used entries; used descriptors on a packed ring) that make a send reclaim
 * before it queues, which then reclaims all that are done; a send also reclaims when descriptor
 * ids run short. Unlike ixgbe's TX_RS_INTERVAL nothing is asked of the device: it reports every
 * descriptor, and this only spaces out the reclaim work.
 */
export const TX_RECLAIM_THRESHOLD = 32;

/** Sends that find the ring full after a reclaim between two looks at the device status. */
export const TX_FULL_CHECK = 256;

/** Queues bufs[0 .. count) for sending; returns how many it took (a prefix). */
export type SendLoop = (bufs: Int32Array, count: number) => number;

/** Slots of the counters array. */
export const TxCounter = { packets: 0, bytes: 1, errors: 2, notifications: 3 } as const;

/** Everything the transmit loop touches; each field becomes a constant in its compiled copy. */
interface TxEnv {
  readonly desc32: Uint32Array;
  readonly avail16: Uint16Array;
  readonly used16: Uint16Array;
  readonly used32: Uint32Array;
  /** The buffer each in-flight descriptor id carries (-1: the id is free). */
  readonly table: Int32Array;
  /** Free descriptor ids: freeIds[0 .. state[2]). */
  readonly freeIds: Int32Array;
  /** Buffers of completed descriptors, collected to be freed in one go. */
  readonly scratch: Int32Array;
  readonly size: number;
  readonly capacity: number;
  /**
   * [0]: our avail.idx; [1]: the used.idx we have consumed up to; [2]: free ids; [3]: non-zero
   * once the queue is broken; [4]: sends that found the ring full after a reclaim.
   */
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
  /** Offload requests per buffer (TX_OFFLOAD), read once and cleared when the buffer is taken. */
  readonly bufTxOffload: Uint8Array;
  /** VIRTIO_NET_F_CSUM negotiated and on (1) or not (0): checksum requests in the header or in software. */
  readonly CSUM: number;
  /** TSO requests allowed (§5.1.3: HOST_TSO4 and HOST_TSO6), as bits: TSO_V4 1, TSO_V6 2. */
  readonly TSO: number;
  /** Writes the header of a buffer with a request (or completes it in software). */
  readonly txOffload: TxOffloadHeader;
  /** A TSO request the device cannot take: undoes the marks of bufs[0 .. i] and throws NotSupportedError. */
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
  readonly NO_NOTIFY: number;
  /** Full-ring sends between two checks of the device status (a power of two). */
  readonly FULL_CHECK: number;
  /** Throws the error that broke the queue. */
  readonly throwBroken: () => never;
  /** A used.idx that moved further than the descriptors in flight (or backwards): breaks the queue, throws. */
  readonly usedIndexError: (usedIdx: number, last: number, outstanding: number) => never;
  /** A used entry naming an id the device does not hold: breaks the queue (the caller stops there). */
  readonly usedIdError: (id: number, position: number) => void;
  /** Called every FULL_CHECK sends that find the ring full: throws when the device needs a reset. */
  readonly fullCheck: () => void;
}

/**
 * §2.7.13: checks every buffer number (a bad one throws before a ring or pool is touched),
 * reclaims completed descriptors (§2.7.14) when ids run short or RECLAIM_THRESHOLD are pending, then
 * queues the frames while descriptor ids last and notifies the device once per batch unless it
 * said it needs no notification. A buffer whose length is 0 or beyond its capacity is taken too,
 * but not sent: it goes back to its pool and counts as an error (a descriptor like that would
 * send another buffer's bytes), so that the caller always knows which buffers the driver owns.
 *
 * A factory compiled once per queue (specialize.ts): it may use only `env` and its own locals.
 */
function sendLoop(env: TxEnv): SendLoop {
  const { desc32, avail16, used16, used32, table, freeIds, scratch, size, capacity, state, counters, hdrLen } = env;
  const { tableState, bufIovaLo, bufIovaHi, bufLength, bufPool, bufHome, bufDataOffset, poolCapacity } = env;
  const { poolWords16, poolWords32, freeBuffer, freeBuffers, badBuffer, queueIndex, notifyWords, notifyOffset } = env;
  const { mmio, RECLAIM_THRESHOLD, NO_NOTIFY, FULL_CHECK, throwBroken, usedIndexError, usedIdError, fullCheck } = env;
  const { poolSpace, UNTRACKED, SPACE, bufTxOffload, TSO, txOffload, tsoRefused } = env;
  const mask = size - 1;
  const notifyWord = notifyOffset >>> 1;

  /** §2.7.14: takes the completed ids back and returns their buffers to their pools. */
  function reclaim(): number {
    // x86-64 ordering: used.idx is a plain load, read before the used entries it covers (Linux:
    // virtio_rmb() after reading used->idx); a weakly ordered CPU needs a load barrier here.
    const usedIdx = used16[1]!;
    let last = state[1]!;
    const pending = (usedIdx - last) & 0xffff;
    let free = state[2]!;
    if (pending === 0) return free;
    // The device holds the descriptors in flight, no more; backwards is a huge distance.
    if (pending > capacity - free) usedIndexError(usedIdx, last, capacity - free);
    let done = 0;
    for (let k = 0; k < pending; k++) {
      const id = used32[((last & mask) << 1) + 1]!;
      const buf = id < capacity ? table[id]! : -1;
      if (buf < 0) {
        // An id we never gave the device, or one it completed twice: stop at it.
        usedIdError(id, last);
        break;
      }
      last = (last + 1) & 0xffff;
      table[id] = -1;
      freeIds[free++] = id;
      scratch[done++] = buf;
    }
    state[1] = last;
    state[2] = free;
    if (done !== 0) freeBuffers(scratch, 0, done);
    return free;
  }

  /** None of bufs[0 .. count) is taken: the marks of the checking pass go (the caller's again). */
  function unmark(bufs: Int32Array, count: number): void {
    for (let k = 0; k < count; k++) if (bufHome[bufs[k]!] === 2) bufHome[bufs[k]!] = 0;
  }

  return function send(bufs: Int32Array, count: number): number {
    // A broken queue throws before anything is checked or marked.
    if (state[3] !== 0) throwBroken();
    const rows = tableState[0]!;
    for (let i = 0; i < count; i++) {
      const buf = bufs[i]!;
      // Refused: a number outside every live pool, a buffer of another address space (its
      // address means other memory to this device; a dead buffer's poolSpace is undefined),
      // and in checked pools one the caller does not hold (in its pool, or already given to a
      // device: twice in this batch, say). badBuffer undoes the marks of bufs[0 .. i).
      // (bufHome: 0 the caller's, 1 in its pool, 2 a device's; UNTRACKED in unchecked pools.)
      if (!(buf >= 0 && buf < rows)) badBuffer(bufs, i);
      const home = bufHome[buf]!;
      if (poolSpace[bufPool[buf]!] !== SPACE || (home !== 0 && home !== UNTRACKED)) badBuffer(bufs, i);
      if (home === 0) bufHome[buf] = 2; // held by the device until reclaimed
      // A TSO request the device cannot segment (tso 8; ipv6 16 picks the family): refused
      // before anything is taken (TSO is a constant of the compiled copy: 3 allows both).
      const request = bufTxOffload[buf]!;
      if ((request & 8) !== 0 && (TSO & ((request & 16) !== 0 ? 2 : 1)) === 0) tsoRefused(bufs, i);
    }
    let free = state[2]!;
    // x86-64 ordering: a plain load of used.idx (see reclaim).
    if (free < count || ((used16[1]! - state[1]!) & 0xffff) >= RECLAIM_THRESHOLD) {
      free = reclaim();
      // A bad used entry: what came before it is reclaimed, none of this batch is taken.
      if (state[3] !== 0) {
        unmark(bufs, count);
        throwBroken();
      }
      if (free === 0 && (++state[4]! & (FULL_CHECK - 1)) === 0) {
        unmark(bufs, count); // fullCheck() throws when the device needs a reset
        fullCheck();
      }
    }
    if (free === 0 || count === 0) {
      unmark(bufs, count);
      return 0;
    }
    let avail = state[0]!;
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
      // Zero the header in the headroom: whatever the buffer held before (a received frame's
      // header, say) must not reach the device as offload requests. A request fills it in.
      const h = bufDataOffset[buf]! - hdrLen;
      const request = bufTxOffload[buf]!;
      if (request !== 0) {
        txOffload(buf, request);
        bufTxOffload[buf] = 0; // a request applies to one send (cleared after: software completion reads it)
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
      const d = id << 2;
      desc32[d] = bufIovaLo[buf]! - hdrLen;
      desc32[d + 1] = bufIovaHi[buf]!;
      desc32[d + 2] = length + hdrLen;
      avail16[2 + (avail & mask)] = id;
      avail = (avail + 1) & 0xffff;
      bytes += length;
      sent++;
    }
    state[2] = free;
    for (let k = taken; k < count; k++) if (bufHome[bufs[k]!] === 2) bufHome[bufs[k]!] = 0; // not taken: the caller's again
    if (refused !== 0) counters[2] += refused;
    if (sent !== 0) {
      state[0] = avail;
      // Full barrier before reading used.flags (see the receive loop). x86-64 ordering: the
      // descriptor, header and ring stores above are visible before avail.idx (virtio_wmb()),
      // and the used.flags load below is a plain one.
      Atomics.store(avail16, 1, avail);
      if ((used16[0]! & NO_NOTIFY) === 0) {
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

/** In a worker thread: the transmit loop of a queue another thread shared (TxQueue.share()). */
export function attachVirtioSend(shared: SharedQueue, hotPath?: HotPathMode): SendLoop {
  const data = openEnv(shared.env);
  const { what, dma } = shared;
  const counters = data["counters"] as Float64Array;
  const { throwBroken, breakWith } = workerBreaker(shared, data["state"] as Int32Array, 3);
  const name = shared.label;
  const index = shared.queueIndex!;
  const capacity = shared.capacity!;
  const env = {
    ...data, throwBroken,
    usedIndexError: (usedIdx: number, last: number, outstanding: number) => {
      throw breakWith(usedIndexError(name, index, usedIdx, last, outstanding));
    },
    usedIdError: (id: number, position: number) => {
      counters[TxCounter.errors]!++;
      breakWith(usedIdError(name, index, id, position, capacity));
    },
    poolWords16, poolWords32, freeBuffer, freeBuffers, fullCheck: () => {},
    badBuffer: (bufs: Int32Array, i: number) => badTxBuffer(what!, bufs, i, dma!),
    txOffload: txOffloadHeader(data["hdrLen"] as number, data["CSUM"] === 1),
    tsoRefused: (bufs: Int32Array, i: number) => tsoRefused(what!, bufs, i, data["TSO"] as number),
  } as unknown as TxEnv;
  return specialize(sendLoop, env, `${shared.label} (worker)`, hotPath);
}

export class TxQueue {
  readonly name: string;
  readonly capacity: number;
  /** The compiled transmit loop of this queue; txBatch calls it after checking its arguments. */
  readonly send: SendLoop;
  readonly #table: Int32Array;
  readonly #state = sharedInt32(5);
  readonly #env: TxEnv;
  readonly #space: DmaSpace;
  readonly #queueIndex: number;
  readonly #counters = sharedFloat64(4);
  #broken: DeviceProtocolError | null = null;

  /**
   * `space`: the device's DMA allocator, whose address space alone txBatch accepts buffers of.
   * `checkDevice` is called now and then while the ring stays full after a reclaim; it throws
   * (and breaks this queue through breakWith()) when the device needs a reset.
   */
  constructor(
    name: string,
    ring: VirtqueueRing,
    notify: NotifyTarget,
    capacity: number,
    hdrLen: number,
    hotPath: HotPathMode | undefined,
    space: Pick<DmaAllocator, "name" | "space">,
    checkDevice: () => void = () => {},
    offloads: TxQueueOffloads = NO_TX_OFFLOADS,
  ) {
    this.name = name;
    this.capacity = capacity;
    this.#table = sharedInt32(capacity).fill(-1);
    // Flags (0: one device-readable descriptor) and next never change; ids pop in ascending order.
    const freeIds = sharedInt32(capacity);
    for (let i = 0; i < capacity; i++) freeIds[i] = capacity - 1 - i;
    this.#state[2] = capacity;
    const env: TxEnv = {
      desc32: ring.desc32,
      avail16: ring.avail16,
      used16: ring.used16,
      used32: ring.used32,
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
      NO_NOTIFY: VIRTQ_USED_F_NO_NOTIFY,
      FULL_CHECK: TX_FULL_CHECK,
      throwBroken: () => {
        throw this.#broken!;
      },
      usedIndexError: (usedIdx, last, outstanding) => {
        throw this.breakWith(usedIndexError(name, ring.index, usedIdx, last, outstanding));
      },
      usedIdError: (id, position) => {
        this.#counters[TxCounter.errors]!++;
        this.breakWith(usedIdError(name, ring.index, id, position, capacity));
      },
      fullCheck: checkDevice,
    };
    this.#env = env;
    this.#space = { name: space.name, space: space.space };
    this.#queueIndex = ring.index;
    this.send = specialize(sendLoop, env, name, hotPath);
  }

  /** The transmit loop's data for a worker thread (attachVirtioSend); see RxQueue.share(). */
  share(): SharedQueue {
    return {
      kind: SharedQueueKind.virtioTx, label: this.name, env: shareEnv(this.#env, this.name, [this.#env.notifyOffset]),
      what: `${this.name}: txBatch()`, dma: this.#space, queueIndex: this.#queueIndex, capacity: this.capacity,
    };
  }

  /** Marks the queue broken: every later send() throws `error`. Returns it. */
  breakWith(error: DeviceProtocolError): DeviceProtocolError {
    this.#broken ??= error;
    this.#state[3] = 1;
    return this.#broken;
  }

  /** The error that broke the queue, or null. */
  get broken(): DeviceProtocolError | null {
    return this.#broken;
  }

  /** packets, bytes, errors, notifications: see TxCounter. */
  get counters(): Float64Array {
    return this.#counters;
  }

  /** Descriptors free for new frames (after the last reclaim). */
  get free(): number {
    return this.#state[2]!;
  }

  /** A snapshot of the ring for queue pair `queue` (ring-snapshot.ts); changes nothing. */
  ringState(queue: number): RingState {
    const env = this.#env;
    return splitRingState("tx", queue, env.avail16, env.used16, this.#state[1]!, env.size);
  }

  /** After the device was reset: gives every buffer still in flight back to its pool. */
  releaseBuffers(): void {
    const table = this.#table;
    for (let id = 0; id < table.length; id++) {
      // (A buffer whose pool is gone already, its DMA allocator closed first, has no home.)
      if (table[id]! >= 0 && bufPool[table[id]!]! >= 0) freeBuffer(table[id]!);
      table[id] = -1;
    }
  }
}
