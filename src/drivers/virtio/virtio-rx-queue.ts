/**
 * The virtio-net receive queue (virtio 1.1 §5.1.6.3, §5.1.6.4): one descriptor per mempool
 * buffer, the net header (10 or 12 bytes) in the buffer's headroom just below its data, so the
 * frame lands at the data without a copy. Descriptor i always describes the buffer in table[i]; a
 * received buffer is swapped for a fresh one from the pool in the same slot, so the ring stays
 * full. When the pool is empty the frame is dropped (counted as missed) and its buffer goes
 * straight back to the device, which keeps receiving.
 */
import { bufIovaHi, bufIovaLo, bufLength, bufHome, bufPool, poolTop } from "../../mem/buffer-table.ts";
import { freeBuffer, type Mempool } from "../../mem/mempool.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { specialize, type HotPathMode } from "../specialize.ts";
import type { NotifyTarget } from "./transport.ts";
import { usedIndexError, type VirtqueueRing } from "./virtqueue.ts";
import { VIRTQ_DESC_F_WRITE, VIRTQ_USED_F_NO_NOTIFY } from "./virtio_types.ts";

/** Receives up to `max` frames into bufs[0 .. n); returns n. */
export type ReceiveLoop = (bufs: Int32Array, max: number) => number;

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
  /** [0]: our avail.idx; [1]: the used.idx we have consumed up to. */
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
  readonly queueIndex: number;
  /** The notify register as 16-bit words of a mapped BAR, or null: then through mmio.write16. */
  readonly notifyWords: Uint16Array | null;
  readonly notifyOffset: number;
  readonly mmio: Mmio;
  readonly NO_NOTIFY: number;
  readonly usedIndexError: (usedIdx: number, last: number) => never;
}

/**
 * §2.6.14 / §5.1.6.4: takes up to `max` received frames from the used ring, puts a fresh buffer
 * into each slot, makes the slots available again, and notifies the device once per batch unless
 * it said it needs no notification (§2.6.10.2). A used entry with an impossible id or length is
 * counted as an error and never handed out.
 *
 * A factory compiled once per queue (specialize.ts): it may use only `env` and its own locals.
 */
function receiveLoop(env: RxEnv): ReceiveLoop {
  const { desc32, avail16, used16, used32, table, size, capacity, state, counters, hdrLen, dataCapacity } = env;
  const { pool, stack, checked, poolTop, bufIovaLo, bufIovaHi, bufLength, bufHome } = env;
  const { queueIndex, notifyWords, notifyOffset, mmio, NO_NOTIFY, usedIndexError } = env;
  const mask = size - 1;
  const notifyWord = notifyOffset >>> 1;
  return function receive(bufs: Int32Array, max: number): number {
    const usedIdx = used16[1]!;
    let last = state[1]!;
    const pending = (usedIdx - last) & 0xffff;
    if (pending === 0) return 0;
    if (pending > size) usedIndexError(usedIdx, last);
    const n = pending < max ? pending : max;
    let avail = state[0]!;
    let top = poolTop[pool]!;
    let out = 0;
    let bytes = 0;
    let errors = 0;
    let missed = 0;
    for (let k = 0; k < n; k++) {
      const e = ((last & mask) << 1) + 1;
      const id = used32[e]!;
      const frameLength = used32[e + 1]! - hdrLen;
      last = (last + 1) & 0xffff;
      if (id >= capacity) {
        // Not a descriptor we posted: nothing to hand out, nothing to make available again.
        errors++;
        continue;
      }
      if (frameLength <= 0 || frameLength > dataCapacity) errors++;
      else if (top !== 0) {
        const buf = table[id]!;
        bufLength[buf] = frameLength;
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
      } else missed++;
      avail16[2 + (avail & mask)] = id;
      avail = (avail + 1) & 0xffff;
    }
    poolTop[pool] = top;
    state[1] = last;
    if (avail !== state[0]) {
      state[0] = avail;
      // Publish the index with a full barrier (xchg): the load of used.flags below must not pass
      // this store, or device and driver could both decide the other has nothing to do (§2.6.13.4).
      Atomics.store(avail16, 1, avail);
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
    return out;
  };
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
  readonly #state = new Int32Array(2);
  readonly #counters = new Float64Array(5);

  constructor(name: string, ring: VirtqueueRing, notify: NotifyTarget, pool: Mempool, capacity: number, hdrLen: number,
    hotPath?: HotPathMode) {
    this.name = name;
    this.pool = pool;
    this.capacity = capacity;
    this.#ring = ring;
    this.#notify = notify;
    this.#table = new Int32Array(capacity).fill(-1);
    // §5.1.6.3 / §2.6.13: make every buffer available. Length and flags of a descriptor never
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
    this.receive = specialize(receiveLoop, {
      desc32: ring.desc32,
      avail16: ring.avail16,
      used16: ring.used16,
      used32: ring.used32,
      table: this.#table,
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
      queueIndex: ring.index,
      notifyWords: notify.mmio.words16,
      notifyOffset: notify.offset,
      mmio: notify.mmio,
      NO_NOTIFY: VIRTQ_USED_F_NO_NOTIFY,
      usedIndexError: (usedIdx, last) => {
        throw usedIndexError(name, ring.index, usedIdx, last, ring.size);
      },
    }, name, hotPath);
  }

  /** packets, bytes, errors, missed, notifications: see RxCounter. */
  get counters(): Float64Array {
    return this.#counters;
  }

  /** Notifies the device that buffers are available (after DRIVER_OK, §3.1.1). */
  kick(): void {
    if ((this.#ring.used16[0]! & VIRTQ_USED_F_NO_NOTIFY) === 0) {
      this.#notify.mmio.write16(this.#notify.offset, this.#ring.index);
      this.#counters[RxCounter.notifications]!++;
    }
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
