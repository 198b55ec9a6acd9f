/**
 * One ixgbe receive queue: its descriptor ring, its mempool and the receive hot path.
 *
 * The ring (datasheet 7.1.9) is shared with the device. The device owns the descriptors from RDH
 * up to, not including, RDT: it fills their buffers, writes the descriptor back with DD set and
 * advances RDH. The driver owns the rest: it takes the filled buffers out, puts fresh ones in and
 * hands the descriptors back by moving RDT.
 *
 * Hot-path rules (docs/performance.md): the ring is read and written through a Uint32Array, never
 * a DataView, so DD is one 32-bit load in every tier; 64-bit addresses are written as two 32-bit
 * halves from the buffer table; buffers are numbers; nothing is allocated per packet; and the
 * loop is compiled once per queue (specialize.ts).
 */
import type { DmaAllocator } from "../../mem/dma.ts";
import { hi32, lo32 } from "../../mem/u64.ts";
import { bufIovaHi, bufIovaLo, bufLength, bufHome, bufPool, bufRxOffload, bufTxOffload, poolTop, type PacketBuffer } from "../../mem/buffer-table.ts";
import { rxChecksumTable } from "./ixgbe-offloads.ts";
import { freeBuffer, Mempool } from "../../mem/mempool.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { getReg32, setFlags32, setReg32, waitClearReg32, waitSetReg32, clearFlags32 } from "../../pci/regs.ts";
import { specialize, type HotPathMode } from "../specialize.ts";
import { openEnv, shareEnv } from "../../threads/shared-env.ts";
import { SharedQueueKind, type SharedQueue } from "../queue-handoff.ts";
import {
  IXGBE_DESC_SIZE,
  IXGBE_RDBAH,
  IXGBE_RDBAL,
  IXGBE_RDH,
  IXGBE_RDLEN,
  IXGBE_RDT,
  IXGBE_RXDADV_ERR_FRAME_ERR_MASK,
  IXGBE_RXDADV_STAT_DD,
  IXGBE_RXDADV_STAT_EOP,
  IXGBE_RXDCTL,
  IXGBE_RXDCTL_ENABLE,
  IXGBE_SRRCTL,
  IXGBE_SRRCTL_BSIZEPKT_SHIFT,
  IXGBE_SRRCTL_DESCTYPE_ADV_ONEBUF,
  IXGBE_SRRCTL_DROP_EN,
} from "./ixgbe_type.ts";
import { sharedInt32, sharedFloat64 } from "../../mem/shared-arrays.ts";
import { inRingRange, ringState, RingOwner, type RingState } from "../../ring-state.ts";

/**
 * Receive buffer size programmed into SRRCTL.BSIZEPACKET by default: 2 KB, the mempool's entry
 * size. The data area of a buffer is smaller (2048 - 64 bytes of headroom = 1984), which is safe
 * only because MAXFRS limits frames to 1518 bytes (1522 with a VLAN tag), so the device never
 * writes more than that. With jumbo frames both grow (ixgbe-offloads.ts rxBufferLayout).
 */
export const RX_BUFFER_SIZE = 2048;
/** The largest frame the device can deliver with jumbo frames off: 1518 + 4 bytes of VLAN tag. */
export const MAX_RX_FRAME = 1522;


export interface RxQueueOptions {
  readonly index: number;
  readonly ringSize: number;
  readonly mempoolSize: number;
  readonly checked: boolean;
  /** Names the queue in errors and the mempool, e.g. "0000:01:00.0". */
  readonly device: string;
  readonly hotPath?: HotPathMode;
  /** Reads the device's statistics registers (IxgbeStats.update); called every pollCalls calls. */
  readonly pollStats: () => void;
  readonly pollCalls: number;
  /** Mempool entry size (default 2048) and SRRCTL.BSIZEPACKET in bytes (default RX_BUFFER_SIZE). */
  readonly entrySize?: number;
  readonly bufferSize?: number;
  /** Report the device's checksum verdicts in bufRxOffload (default true). */
  readonly rxChecksum?: boolean;
}

/** Receives up to `max` frames into bufs[0 .. n); returns n. */
export type ReceiveLoop = (bufs: Int32Array, max: number) => number;

/** Everything the receive loop touches; each field becomes a constant in its compiled copy. */
interface RxEnv {
  readonly desc: Uint32Array;
  /** The buffer whose address is in each descriptor. */
  readonly ring: Int32Array;
  readonly mask: number;
  /**
   * [0]: the next descriptor to look at; [1]: 1 while inside a frame over several descriptors;
   * [2]: calls left until the next statistics poll.
   */
  readonly state: Int32Array;
  /** [0]: frames dropped for errors. */
  readonly counters: Float64Array;
  readonly capacity: number;
  readonly pool: number;
  readonly stack: Int32Array;
  readonly checked: boolean;
  readonly poolTop: Int32Array;
  readonly bufIovaLo: Int32Array;
  readonly bufIovaHi: Int32Array;
  readonly bufLength: Int32Array;
  readonly bufHome: Uint8Array;
  readonly bufRxOffload: Uint8Array;
  readonly bufTxOffload: Uint8Array;
  /** RX_OFFLOAD flags by rxChecksumIndex of the status word (ixgbe-offloads.ts); all 0 with rxChecksum off. */
  readonly checksumFlags: Uint8Array;
  /** RDT as a word of the mapped BAR, or null: then through mmio.write32. */
  readonly tailWords: Uint32Array | null;
  readonly tailOffset: number;
  readonly mmio: Mmio;
  readonly pollStats: () => void;
  readonly POLL_CALLS: number;
  readonly DD: number;
  readonly EOP: number;
  readonly ACCEPT_MASK: number;
}

/**
 * The receive hot path (7.1.6 write-back descriptors). Hands out up to `max` received frames in
 * bufs[0 .. n), gives every used descriptor a fresh buffer and writes RDT once. A descriptor
 * whose frame cannot be handed out (error bits, length 0 or over the buffer's capacity, no EOP)
 * keeps its buffer and is counted as an error. When the mempool is empty the descriptor is left
 * as it is, to be picked up by a later call: the ring then fills up and the device counts what
 * it cannot place as missed (MPC).
 *
 * A factory compiled once per queue (specialize.ts): it may use only `env` and its own locals.
 */
function receiveLoop(env: RxEnv): ReceiveLoop {
  const { desc, ring, mask, state, counters, capacity, pool, stack, checked, poolTop } = env;
  const { bufIovaLo, bufIovaHi, bufLength, bufHome, tailWords, tailOffset, mmio, pollStats, POLL_CALLS, DD, EOP, ACCEPT_MASK } = env;
  const { bufRxOffload, bufTxOffload, checksumFlags } = env;
  const tailWord = tailOffset >>> 2;
  return function receive(bufs: Int32Array, max: number): number {
    // The clear-on-read counters must be read before they wrap, whether or not the caller ever
    // calls readStats: every POLL_CALLS calls (IxgbeStats explains the bound). One decrement here.
    const countdown = state[2]! - 1;
    if (countdown > 0) state[2] = countdown;
    else {
      state[2] = POLL_CALLS;
      pollStats();
    }
    // Masked although it is always in range: then TurboFan knows index is 0 .. mask and drops
    // the overflow check on index + 1.
    let index = state[0]! & mask;
    let discarding = state[1]!;
    let top = poolTop[pool]!;
    let errors = 0;
    let consumed = 0;
    let n = 0;
    while (n < max) {
      const w = index << 2;
      // One 32-bit load: DD, EOP and the error bits come from the same device write.
      const status = desc[w + 2]!;
      if ((status & DD) === 0) break;
      // x86-64 ordering: the length is loaded after DD and loads are not reordered with older
      // loads, so it is the written-back length (Linux needs dma_rmb() here on other CPUs).
      const length = desc[w + 3]! & 0xffff;
      let refill = ring[index]!;
      if ((status & ACCEPT_MASK) === EOP && discarding === 0 && length !== 0 && length <= capacity) {
        if (top === 0) break; // no fresh buffer: leave the frame in the ring for later
        const fresh = stack[--top]!;
        if (checked) bufHome[fresh] = 0;
        bufLength[refill] = length;
        // 7.1.11: the checksum verdicts from the same status word (IPCS/IPE, L4CS/TCPE, UDPCS),
        // by table: no branch. No transmit request rides along from the buffer's last use.
        bufRxOffload[refill] = checksumFlags[((status >>> 4) & 7) | ((status >>> 27) & 0x18)]!;
        bufTxOffload[refill] = 0;
        bufs[n++] = refill;
        ring[index] = fresh;
        refill = fresh;
      } else if ((status & EOP) === 0) {
        discarding = 1; // first or middle part of a frame over several descriptors
      } else {
        discarding = 0; // last part of such a frame, or a frame with an error: one error
        errors++;
      }
      desc[w] = bufIovaLo[refill]!;
      desc[w + 1] = bufIovaHi[refill]!;
      desc[w + 2] = 0; // header address 0; this also clears DD
      desc[w + 3] = 0;
      index = (index + 1) & mask;
      consumed++;
    }
    if (consumed !== 0) {
      poolTop[pool] = top;
      state[0] = index;
      state[1] = discarding;
      if (errors !== 0) counters[0] += errors;
      // Hand the descriptors back, all but the last one processed (see IxgbeRxQueue.start()).
      // x86-64 ordering: the descriptor stores above are visible to the device before this tail
      // store (stores are not reordered with other stores; Linux's wmb() before writel()).
      if (tailWords !== null) tailWords[tailWord] = (index - 1) & mask;
      else mmio.write32(tailOffset, (index - 1) & mask);
    }
    return n;
  };
}

/** In a worker thread: the receive loop of a queue another thread shared (IxgbeRxQueue.share()). */
export function attachIxgbeReceive(shared: SharedQueue, hotPath?: HotPathMode): ReceiveLoop {
  const env = { ...openEnv(shared.env), pollStats: () => {} } as unknown as RxEnv;
  return specialize(receiveLoop, env, `${shared.label} (worker)`, hotPath);
}

export class IxgbeRxQueue {
  readonly index: number;
  readonly size: number;
  readonly pool: Mempool;
  /** Device address of the ring. */
  readonly ringIova: number;
  /** The compiled receive loop of this queue; rxBatch calls it after checking its arguments. */
  readonly receive: ReceiveLoop;
  readonly #desc: Uint32Array;
  readonly #ring: Int32Array;
  readonly #state = sharedInt32(3);
  readonly #env: RxEnv;
  readonly #label: string;
  readonly #counters = sharedFloat64(1);
  readonly #bufferSize: number;

  constructor(dma: DmaAllocator, mmio: Mmio, options: RxQueueOptions) {
    this.index = options.index;
    this.size = options.ringSize;
    // Ring base and length must be 128-byte aligned (7.1.9): 16-byte descriptors, size >= 8.
    const region = dma.allocate(options.ringSize * IXGBE_DESC_SIZE, { align: 128 });
    // Until the driver fills them, descriptors point nowhere valid (all ones): a device that
    // fetched one too early would fault in the IOMMU rather than write somewhere (Snabb's trick).
    region.bytes.fill(0xff);
    this.ringIova = region.iova;
    this.#desc = new Uint32Array(region.bytes.buffer, region.bytes.byteOffset, region.size >>> 2);
    this.#ring = sharedInt32(options.ringSize).fill(-1);
    this.pool = new Mempool(dma, {
      count: options.mempoolSize,
      checked: options.checked,
      name: `${options.device} RX queue ${options.index} mempool`,
      entrySize: options.entrySize,
    });
    this.#bufferSize = options.bufferSize ?? RX_BUFFER_SIZE;
    const rdt = IXGBE_RDT(options.index);
    const env: RxEnv = {
      desc: this.#desc,
      ring: this.#ring,
      mask: options.ringSize - 1,
      state: this.#state,
      counters: this.#counters,
      capacity: this.pool.dataCapacity,
      pool: this.pool.id,
      stack: this.pool.stack,
      checked: this.pool.checked,
      poolTop,
      bufIovaLo,
      bufIovaHi,
      bufLength,
      bufHome,
      bufRxOffload,
      bufTxOffload,
      checksumFlags: rxChecksumTable(options.rxChecksum ?? true),
      tailWords: mmio.words32,
      tailOffset: rdt,
      mmio,
      pollStats: options.pollStats,
      POLL_CALLS: options.pollCalls,
      DD: IXGBE_RXDADV_STAT_DD,
      EOP: IXGBE_RXDADV_STAT_EOP,
      ACCEPT_MASK: (IXGBE_RXDADV_STAT_EOP | IXGBE_RXDADV_ERR_FRAME_ERR_MASK) >>> 0,
    };
    this.#env = env;
    this.#label = `ixgbe ${options.device} RX ${options.index}`;
    this.receive = specialize(receiveLoop, env, this.#label, options.hotPath);
  }

  /**
   * The receive loop's data for a worker thread, which compiles its own copy (attachIxgbeReceive).
   * The statistics poll stays here: while a worker drives the queue, the thread that opened the
   * device reads the counters (readStats), often enough for them not to wrap (IxgbeStats).
   */
  share(): SharedQueue {
    return { kind: SharedQueueKind.ixgbeRx, label: this.#label, env: shareEnv(this.#env, this.#label, [this.#env.tailOffset]) };
  }

  /**
   * Whether the device wrote back the next descriptor the receive loop looks at (DD): what
   * waitForRx re-checks after arming the interrupt (ixgbe-interrupts.ts).
   */
  hasFrame(): boolean {
    const env = this.#env;
    return (this.#desc[((this.#state[0]! & env.mask) << 2) + 2]! & env.DD) !== 0;
  }

  /** Frames the driver dropped: error bits, impossible lengths, frames over several descriptors. */
  get errors(): number {
    return this.#counters[0]!;
  }

  /** 4.6.7: the per-queue part of receive initialization; the queue stays disabled. */
  configure(mmio: Mmio): void {
    const i = this.index;
    // Advanced descriptors with one buffer each; drop frames when this queue has no free
    // descriptor instead of holding them in the packet buffer shared by all queues, where one
    // stalled queue would block the others.
    setReg32(mmio, IXGBE_SRRCTL(i),
      IXGBE_SRRCTL_DESCTYPE_ADV_ONEBUF | IXGBE_SRRCTL_DROP_EN | (this.#bufferSize >>> IXGBE_SRRCTL_BSIZEPKT_SHIFT));
    setReg32(mmio, IXGBE_RDBAL(i), lo32(this.ringIova));
    setReg32(mmio, IXGBE_RDBAH(i), hi32(this.ringIova));
    setReg32(mmio, IXGBE_RDLEN(i), this.size * IXGBE_DESC_SIZE);
    // Empty ring: nothing is handed to the device before the queue is enabled.
    setReg32(mmio, IXGBE_RDH(i), 0);
    setReg32(mmio, IXGBE_RDT(i), 0);
  }

  /** 4.6.7.1: fill every descriptor with a buffer, enable the queue, then hand the ring over. */
  start(mmio: Mmio, timeoutMs: number): void {
    const desc = this.#desc;
    for (let slot = 0; slot < this.size; slot++) {
      const buf = this.pool.alloc();
      if (buf < 0) throw new RangeError(`${this.pool.name}: too small to fill a ring of ${this.size} descriptors`);
      this.#ring[slot] = buf;
      desc[slot * 4] = bufIovaLo[buf]!;
      desc[slot * 4 + 1] = bufIovaHi[buf]!;
      desc[slot * 4 + 2] = 0; // header address 0; this also clears DD
      desc[slot * 4 + 3] = 0;
    }
    this.#state[0] = 0;
    this.#state[1] = 0;
    this.#state[2] = 1; // the first call reads the counters once
    setFlags32(mmio, IXGBE_RXDCTL(this.index), IXGBE_RXDCTL_ENABLE);
    waitSetReg32(mmio, IXGBE_RXDCTL(this.index), IXGBE_RXDCTL_ENABLE, { name: `RXDCTL(${this.index}).ENABLE`, timeoutMs });
    // x86-64 ordering: the descriptors written above are visible before the tail store below.
    // The device owns RDH .. RDT - 1; keeping one descriptor back means RDT == RDH always
    // means "no descriptor for the device" and never "all of them".
    setReg32(mmio, IXGBE_RDT(this.index), this.size - 1);
  }

  /** 4.6.7.1 (disabling a queue): clear RXDCTL.ENABLE and wait until the device agrees. */
  stop(mmio: Mmio, timeoutMs: number): void {
    clearFlags32(mmio, IXGBE_RXDCTL(this.index), IXGBE_RXDCTL_ENABLE);
    waitClearReg32(mmio, IXGBE_RXDCTL(this.index), IXGBE_RXDCTL_ENABLE, { name: `RXDCTL(${this.index}).ENABLE`, timeoutMs });
  }

  /**
   * A snapshot of the ring (src/ring-state.ts), off the hot path: reads RDH and RDT (7.1.9) and
   * each descriptor's DD bit, changes nothing. A descriptor with DD set was written back and not
   * yet taken by the driver (done); otherwise the device owns RDH .. RDT - 1 and the driver the
   * rest (the one kept back at RDT, see start()).
   */
  ringState(mmio: Mmio): RingState {
    const rdh = getReg32(mmio, IXGBE_RDH(this.index));
    const rdt = getReg32(mmio, IXGBE_RDT(this.index));
    const next = this.#state[0]! & this.#env.mask;
    const owners = new Uint8Array(this.size);
    for (let i = 0; i < this.size; i++) {
      if ((this.#desc[(i << 2) + 2]! & IXGBE_RXDADV_STAT_DD) !== 0) owners[i] = RingOwner.done;
      else owners[i] = inRingRange(i, rdh, rdt, this.size) ? RingOwner.device : RingOwner.driver;
    }
    return ringState({ layout: "ixgbe", kind: "rx", queue: this.index, size: this.size, owners, head: rdh, tail: rdt, next,
      fields: { RDH: rdh, RDT: rdt, next } });
  }

  /** After the device was stopped: gives the buffers in the ring back to the pool. */
  releaseBuffers(): void {
    const ring = this.#ring;
    for (let slot = 0; slot < ring.length; slot++) {
      const buf: PacketBuffer = ring[slot]!;
      if (buf >= 0 && bufPool[buf]! >= 0) freeBuffer(buf); // (its pool may be gone: see the TX queue)
      ring[slot] = -1;
    }
  }
}
