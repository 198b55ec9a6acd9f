/**
 * One ixgbe transmit queue: its descriptor ring and the transmit hot path.
 *
 * The driver owns the tail (TDT) and the device the head (TDH, 7.2.3.3): the driver writes
 * descriptors at the tail and moves TDT, the device sends and moves TDH. The device reports a
 * sent descriptor by writing DD back, but only where the driver set RS (Report Status). Setting
 * RS on one descriptor in every TX_RS_INTERVAL, always the last one of an aligned group, halves the
 * PCIe write-backs; the driver then reclaims a whole group at once when that descriptor's DD is
 * set. This needs TXDCTL.WTHRESH = 0 (write back as soon as an RS descriptor is done; 7.2.3.5),
 * which is what the init programs.
 *
 * A buffer with an offload request (bufTxOffload, docs/offloads.md) takes the path in
 * ixgbe-offloads-tx.ts instead: a context descriptor when its shape is new, one data descriptor
 * per 16 KB, RS on its last descriptor when it covers a group's end (rsAt). A frame without a
 * request pays one byte load for all that, and one store per RS_INTERVAL frames (rsAt).
 *
 * Hot-path rules as in ixgbe-rx-queue.ts: Uint32Array ring, two 32-bit address halves, locals,
 * no allocation.
 */
import type { DmaAllocator } from "../../mem/dma.ts";
import { hi32, lo32 } from "../../mem/u64.ts";
import {
  bufHome, bufIovaHi, bufIovaLo, bufL2Len, bufL3Len, bufL4Len, bufLength, bufMss, bufPool, bufTxOffload, poolCapacity, poolSpace, tableState,
  BUF_UNTRACKED,
} from "../../mem/buffer-table.ts";
import { TX_OFFLOAD } from "../../mem/offload-flags.ts";
import { completeChecksums } from "../../net/checksum.ts";
import { freeSparse, offloadSender, type SendOffloaded, type TxOffloadEnv } from "./ixgbe-offloads-tx.ts";
import { refuseTxRequest } from "./ixgbe-offloads.ts";
import { freeBuffer, freeBuffers } from "../../mem/mempool.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { getReg32, setFlags32, setReg32, waitClearReg32, waitSetReg32 } from "../../pci/regs.ts";
import { specialize, type HotPathMode } from "../specialize.ts";
import { openEnv, shareEnv } from "../../threads/shared-env.ts";
import { SharedQueueKind, type DmaSpace, type SharedQueue } from "../queue-handoff.ts";
import { badTxBuffer } from "../batch-args.ts";
import {
  IXGBE_ADVTXD_DCMD_DEXT,
  IXGBE_ADVTXD_DCMD_EOP,
  IXGBE_ADVTXD_DCMD_IFCS,
  IXGBE_ADVTXD_DCMD_RS,
  IXGBE_ADVTXD_DCMD_TSE,
  IXGBE_ADVTXD_DTYP_CTXT,
  IXGBE_ADVTXD_DTYP_DATA,
  IXGBE_ADVTXD_IDX_SHIFT,
  IXGBE_ADVTXD_L4LEN_SHIFT,
  IXGBE_ADVTXD_MACLEN_SHIFT,
  IXGBE_ADVTXD_MSS_SHIFT,
  IXGBE_ADVTXD_PAYLEN_SHIFT,
  IXGBE_ADVTXD_POPTS_IXSM,
  IXGBE_ADVTXD_POPTS_TXSM,
  IXGBE_ADVTXD_STAT_DD,
  IXGBE_ADVTXD_TUCMD_IPV4,
  IXGBE_ADVTXD_TUCMD_L4T_TCP,
  IXGBE_DESC_SIZE,
  IXGBE_TDBAH,
  IXGBE_TDBAL,
  IXGBE_TDH,
  IXGBE_TDLEN,
  IXGBE_TDT,
  IXGBE_TXDCTL,
  IXGBE_TXDCTL_ENABLE,
  IXGBE_TXDCTL_HTHRESH_SHIFT,
  IXGBE_TXDCTL_SWFLSH,
  IXGBE_TXDCTL_PTHRESH_SHIFT,
  IXGBE_TXDCTL_THRESH_MASK,
  IXGBE_TXDCTL_WTHRESH_SHIFT,
} from "./ixgbe_type.ts";
import { sharedInt32, sharedFloat64 } from "../../mem/shared-arrays.ts";
import { inRingRange, ringState, RingOwner, type RingState } from "../../ring-state.ts";

/** The shortest frame txBatch sends; shorter ones are refused and counted in txErrors. */
export const IXGBE_MIN_TX_LENGTH = 17;

/**
 * The distance between two RS bits: RS goes on the last descriptor of each aligned group of this
 * many, and a group is reclaimed as a whole once that descriptor's DD is set. A power of two.
 * bench/ref/ixgbe-fwd.c keeps the name ixy's C driver has for it, TX_CLEAN_BATCH.
 */
export const TX_RS_INTERVAL = 32;
const GROUP_SHIFT = Math.log2(TX_RS_INTERVAL);
/**
 * The most bytes one data descriptor carries: 16 KB (Linux's IXGBE_MAX_DATA_PER_TXD; the
 * model's limit, model-registers.ts TXD_MAX_DATA, says why not 64 KB). A TSO buffer of up to
 * 64 KB takes up to four.
 */
export const IXGBE_MAX_DATA_PER_TXD = 16384;

/**
 * TXDCTL thresholds (7.2.3.4.1): prefetch when 32 descriptors are free on chip and at least one
 * is waiting in host memory (Linux's values); WTHRESH 0 because RS is set on one descriptor in
 * TX_RS_INTERVAL (DPDK's rule for tx_rs_thresh > 1).
 */
export const TX_PTHRESH = 32;
export const TX_HTHRESH = 1;
export const TX_WTHRESH = 0;

/** The statistics countdown after start: the first call polls. */
const STATE_POLL_FIRST = 1;
/** Every frame is one advanced data descriptor: end of packet, insert the CRC. */
const DATA_CMD = (IXGBE_ADVTXD_DTYP_DATA | IXGBE_ADVTXD_DCMD_DEXT | IXGBE_ADVTXD_DCMD_IFCS | IXGBE_ADVTXD_DCMD_EOP) >>> 0;

export interface TxQueueOptions {
  readonly index: number;
  readonly ringSize: number;
  /** Names the queue in errors, e.g. "0000:01:00.0". */
  readonly device: string;
  readonly hotPath?: HotPathMode;
  /** Reads the device's statistics registers (IxgbeStats.update); called every pollCalls calls. */
  readonly pollStats: () => void;
  readonly pollCalls: number;
  /** Checksum requests to the device (true, the default) or completed in software (false). */
  readonly txChecksum?: boolean;
  /** TCP segmentation requests to the device (default true); false: txBatch refuses them (NotSupportedError). */
  readonly tso?: boolean;
  /** The largest frame without TSO: DeviceOptions.maxFrameSize (default 1514). */
  readonly maxFrameSize?: number;
}

/** Queues bufs[0 .. count) for sending; returns how many it took (a prefix). */
export type SendLoop = (bufs: Int32Array, count: number) => number;

/** Everything the transmit loop touches; each field becomes a constant in its compiled copy. */
interface TxEnv extends TxOffloadEnv {
  readonly desc: Uint32Array;
  /** The buffer each in-flight descriptor points to (-1: none). */
  readonly ring: Int32Array;
  readonly mask: number;
  /**
   * [0]: first descriptor not yet reclaimed (a multiple of RS_INTERVAL); [1]: next to fill (=
   * TDT); [2]: calls left until the next statistics poll.
   */
  readonly state: Int32Array;
  /** [0]: frames refused for their length. */
  readonly counters: Float64Array;
  readonly tableState: Int32Array;
  readonly bufIovaLo: Int32Array;
  readonly bufIovaHi: Int32Array;
  readonly bufLength: Int32Array;
  readonly bufPool: Int32Array;
  readonly bufHome: Uint8Array;
  readonly poolCapacity: Int32Array;
  /** The address space of each pool's buffers (buffer-table.ts). */
  readonly poolSpace: Int32Array;
  /** bufHome of an unchecked pool's buffers (BUF_UNTRACKED). */
  readonly UNTRACKED: number;
  /** The address space of this queue's device (DmaAllocator.space). */
  readonly SPACE: number;
  readonly freeBuffer: (buf: number) => void;
  readonly freeBuffers: (bufs: Int32Array, start: number, count: number) => void;
  readonly freeSparse: (bufs: Int32Array, start: number, count: number) => void;
  readonly badBuffer: (bufs: Int32Array, i: number) => never;
  /** Throws the NotSupportedError for bufs[i]'s request (after undoing the checking pass's marks). */
  readonly refuseRequest: (bufs: Int32Array, i: number) => never;
  /** TX_OFFLOAD flags the device cannot do (tso when TSO is off): refused in the checking pass. */
  readonly REFUSED: number;
  /** The path of a buffer with a request (ixgbe-offloads-tx.ts), compiled for this queue. */
  readonly sendOffloaded: SendOffloaded;
  /** TDT as a word of the mapped BAR, or null: then through mmio.write32. */
  readonly tailWords: Uint32Array | null;
  readonly tailOffset: number;
  readonly mmio: Mmio;
  readonly pollStats: () => void;
  readonly POLL_CALLS: number;
  readonly DD: number;
}

/**
 * The transmit hot path. First checks every buffer number (a bad one throws before the ring or
 * a pool is touched). Then reclaims sent descriptors, a group of RS_INTERVAL at a time (7.2.3.5: DD is
 * written back on the group's last descriptor, the one with RS), returning their buffers to their
 * pools. Then writes one advanced data descriptor (7.2.3.2.4) per frame until the ring is full,
 * and writes TDT once. Returns how many of bufs[0 .. count) it took.
 *
 * A factory compiled once per queue (specialize.ts): it may use only `env` and its own locals.
 */
function sendLoop(env: TxEnv): SendLoop {
  const { desc, ring, mask, state, counters, tableState, bufIovaLo, bufIovaHi, bufLength, bufPool, bufHome, poolCapacity } = env;
  const { freeBuffer, freeBuffers, freeSparse, badBuffer, tailWords, tailOffset, mmio, RS_INTERVAL, DATA_CMD, RS, DD, PAYLEN_SHIFT } = env;
  const { pollStats, POLL_CALLS, MIN_LENGTH, MAX_LENGTH } = env;
  const { poolSpace, UNTRACKED, SPACE } = env;
  const { bufTxOffload, rsAt, holes, GROUP_SHIFT, REFUSED, refuseRequest, sendOffloaded } = env;
  const tailWord = tailOffset >>> 2;
  return function send(bufs: Int32Array, count: number): number {
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
      // A request the device cannot do (TSO when it is off): NotSupportedError, nothing taken.
      if ((bufTxOffload[buf]! & REFUSED) !== 0) refuseRequest(bufs, i);
      if (home === 0) bufHome[buf] = 2; // held by the device until reclaimed
    }
    // Masked although always in range, so that TurboFan can drop bounds and overflow checks.
    const start = state[1]! & mask;
    let clean = state[0]! & mask;
    while (((start - clean) & mask) >= RS_INTERVAL) {
      // clean is a multiple of RS_INTERVAL and so is the ring size: the group never wraps. Its
      // RS descriptor is its last one, or the EOP of an offloaded frame over that slot (rsAt).
      const group = clean >>> GROUP_SHIFT;
      if ((desc[((rsAt[group]! & mask) << 2) + 3]! & DD) === 0) break;
      // x86-64 ordering: the buffers are reused only after DD was loaded (loads are not
      // reordered with later stores), so the device has finished reading them.
      if (holes[group] === 0) freeBuffers(ring, clean, RS_INTERVAL);
      else {
        freeSparse(ring, clean, RS_INTERVAL); // context descriptors, parts of large frames: no buffer
        holes[group] = 0;
      }
      clean = (clean + RS_INTERVAL) & mask;
    }
    state[0] = clean;

    let tail = start;
    let errors = 0;
    let taken = 0;
    for (; taken < count; taken++) {
      const buf = bufs[taken]!;
      const request = bufTxOffload[buf]!;
      if (request !== 0) {
        // Checksums, TSO (ixgbe-offloads-tx.ts): -1 when its descriptors do not fit.
        const after = sendOffloaded(buf, request, tail, clean);
        if (after < 0) break;
        tail = after;
        continue;
      }
      const next = (tail + 1) & mask;
      if (next === clean) break; // full: one descriptor always stays empty
      const length = bufLength[buf]!;
      if (!(length >= MIN_LENGTH && length <= poolCapacity[bufPool[buf]!]! && length <= MAX_LENGTH)) {
        // A descriptor with length 0 or pointing past the buffer would hang the queue or send
        // another buffer's bytes, one under 17 bytes is below what the hardware takes (Linux
        // pads those), one over maxFrameSize (and a VLAN tag) more than the link takes: refuse
        // the frame, count it, and take the buffer back.
        freeBuffer(buf);
        errors++;
        continue;
      }
      const w = tail << 2;
      desc[w] = bufIovaLo[buf]!;
      desc[w + 1] = bufIovaHi[buf]!;
      let cmd = DATA_CMD | length;
      if ((tail & (RS_INTERVAL - 1)) === RS_INTERVAL - 1) {
        cmd |= RS;
        rsAt[tail >>> GROUP_SHIFT] = tail;
      }
      desc[w + 2] = cmd;
      // PAYLEN: the whole frame, as there is no segmentation. STA (and DD) start at 0.
      desc[w + 3] = length << PAYLEN_SHIFT;
      ring[tail] = buf;
      tail = next;
    }
    if (errors !== 0) counters[0] += errors;
    for (let k = taken; k < count; k++) if (bufHome[bufs[k]!] === 2) bufHome[bufs[k]!] = 0; // not taken: the caller's again
    if (tail !== start) {
      state[1] = tail;
      // x86-64 ordering: the descriptor stores above reach the device before this tail store.
      if (tailWords !== null) tailWords[tailWord] = tail;
      else mmio.write32(tailOffset, tail);
    }
    // Read the clear-on-read counters every POLL_CALLS calls, as the receive path does.
    const countdown = state[2]! - 1;
    if (countdown > 0) state[2] = countdown;
    else {
      state[2] = POLL_CALLS;
      pollStats();
    }
    return taken;
  };
}

/** In a worker thread: the transmit loop of a queue another thread shared (IxgbeTxQueue.share()). */
export function attachIxgbeSend(shared: SharedQueue, hotPath?: HotPathMode): SendLoop {
  const { what, dma } = shared;
  const env = {
    ...openEnv(shared.env), pollStats: () => {}, freeBuffer, freeBuffers, freeSparse, completeChecksums,
    badBuffer: (bufs: Int32Array, i: number) => badTxBuffer(what!, bufs, i, dma!),
    refuseRequest: (bufs: Int32Array, i: number) => refuseTxRequest(what!, bufs, i),
  } as Record<string, unknown>;
  env["sendOffloaded"] = specialize(offloadSender, env as unknown as TxOffloadEnv, `${shared.label} offloads (worker)`, hotPath);
  return specialize(sendLoop, env as unknown as TxEnv, `${shared.label} (worker)`, hotPath);
}

export class IxgbeTxQueue {
  readonly index: number;
  readonly size: number;
  readonly ringIova: number;
  /** The compiled transmit loop of this queue; txBatch calls it after checking its arguments. */
  readonly send: SendLoop;
  readonly #desc: Uint32Array;
  readonly #ring: Int32Array;
  readonly #mask: number;
  readonly #state = sharedInt32(3);
  /** The two transmit contexts the device holds (ixgbe-offloads-tx.ts). */
  readonly #contexts = sharedInt32(7);
  readonly #holes: Int32Array;
  readonly #env: TxEnv;
  readonly #label: string;
  readonly #space: DmaSpace;
  readonly #device: string;
  readonly #counters = sharedFloat64(1);

  constructor(dma: DmaAllocator, mmio: Mmio, options: TxQueueOptions) {
    this.index = options.index;
    this.size = options.ringSize;
    this.#mask = options.ringSize - 1;
    const region = dma.allocate(options.ringSize * IXGBE_DESC_SIZE, { align: 128 });
    region.bytes.fill(0xff); // see IxgbeRxQueue
    this.ringIova = region.iova;
    this.#desc = new Uint32Array(region.bytes.buffer, region.bytes.byteOffset, region.size >>> 2);
    this.#ring = sharedInt32(options.ringSize).fill(-1);
    const groups = options.ringSize / TX_RS_INTERVAL;
    this.#holes = sharedInt32(groups);
    const device = options.device;
    this.#device = device;
    const index = options.index;
    const what = `${device}: txBatch() on queue ${index}`;
    const env: Omit<TxEnv, "sendOffloaded"> = {
      desc: this.#desc,
      ring: this.#ring,
      mask: this.#mask,
      state: this.#state,
      counters: this.#counters,
      tableState,
      bufIovaLo,
      bufIovaHi,
      bufLength,
      bufPool,
      bufHome,
      poolCapacity,
      poolSpace,
      UNTRACKED: BUF_UNTRACKED,
      SPACE: dma.space,
      freeBuffer,
      freeBuffers,
      freeSparse,
      badBuffer: (bufs, i) => badTxBuffer(what, bufs, i, dma),
      refuseRequest: (bufs, i) => refuseTxRequest(what, bufs, i),
      REFUSED: options.tso ?? true ? 0 : TX_OFFLOAD.tso,
      tailWords: mmio.words32,
      tailOffset: IXGBE_TDT(options.index),
      mmio,
      pollStats: options.pollStats,
      POLL_CALLS: options.pollCalls,
      MIN_LENGTH: IXGBE_MIN_TX_LENGTH,
      MAX_LENGTH: (options.maxFrameSize ?? 1514) + 4, // and a VLAN tag, as on receive (8.2.3.22.13)
      RS_INTERVAL: TX_RS_INTERVAL,
      GROUP_SHIFT,
      DATA_CMD,
      RS: IXGBE_ADVTXD_DCMD_RS,
      DD: IXGBE_ADVTXD_STAT_DD,
      PAYLEN_SHIFT: IXGBE_ADVTXD_PAYLEN_SHIFT,
      // Offloads (ixgbe-offloads-tx.ts).
      contexts: this.#contexts,
      rsAt: sharedInt32(groups),
      holes: this.#holes,
      bufTxOffload,
      bufL2Len,
      bufL3Len,
      bufL4Len,
      bufMss,
      completeChecksums,
      HW_CHECKSUM: options.txChecksum ?? true,
      EOP: IXGBE_ADVTXD_DCMD_EOP,
      TSE: IXGBE_ADVTXD_DCMD_TSE,
      IDX_SHIFT: IXGBE_ADVTXD_IDX_SHIFT,
      IXSM: IXGBE_ADVTXD_POPTS_IXSM,
      TXSM: IXGBE_ADVTXD_POPTS_TXSM,
      CONTEXT_CMD: IXGBE_ADVTXD_DTYP_CTXT | IXGBE_ADVTXD_DCMD_DEXT,
      MACLEN_SHIFT: IXGBE_ADVTXD_MACLEN_SHIFT,
      TUCMD_IPV4: IXGBE_ADVTXD_TUCMD_IPV4,
      TUCMD_L4T_TCP: IXGBE_ADVTXD_TUCMD_L4T_TCP,
      L4LEN_SHIFT: IXGBE_ADVTXD_L4LEN_SHIFT,
      MSS_SHIFT: IXGBE_ADVTXD_MSS_SHIFT,
      MAX_DATA: IXGBE_MAX_DATA_PER_TXD,
      REQ_IP: TX_OFFLOAD.ipChecksum,
      REQ_TCP: TX_OFFLOAD.tcpChecksum,
      REQ_UDP: TX_OFFLOAD.udpChecksum,
      REQ_TSO: TX_OFFLOAD.tso,
      REQ_IPV6: TX_OFFLOAD.ipv6,
    };
    const full = env as TxEnv & { sendOffloaded: SendOffloaded };
    full.sendOffloaded = specialize(offloadSender, full, `ixgbe ${device} TX ${index} offloads`, options.hotPath);
    this.#env = full;
    this.#label = `ixgbe ${device} TX ${index}`;
    this.#space = { name: dma.name, space: dma.space };
    this.send = specialize(sendLoop, full, this.#label, options.hotPath);
  }

  /** The transmit loop's data for a worker thread (attachIxgbeSend); see IxgbeRxQueue.share(). */
  share(): SharedQueue {
    return {
      kind: SharedQueueKind.ixgbeTx, label: this.#label, env: shareEnv(this.#env, this.#label, [this.#env.tailOffset]),
      what: `${this.#device}: txBatch() on queue ${this.index}`, dma: this.#space,
    };
  }

  /** Frames refused for their length: under 17 bytes, larger than their buffer or than maxFrameSize. */
  get errors(): number {
    return this.#counters[0]!;
  }

  /** Frames handed to the device and not yet reclaimed. */
  get inFlight(): number {
    return (this.#state[1]! - this.#state[0]!) & this.#mask;
  }

  /** 4.6.8: the per-queue part of transmit initialization; the queue stays disabled. */
  configure(mmio: Mmio): void {
    const i = this.index;
    setReg32(mmio, IXGBE_TDBAL(i), lo32(this.ringIova));
    setReg32(mmio, IXGBE_TDBAH(i), hi32(this.ringIova));
    setReg32(mmio, IXGBE_TDLEN(i), this.size * IXGBE_DESC_SIZE);
    const m = IXGBE_TXDCTL_THRESH_MASK;
    let txdctl = getReg32(mmio, IXGBE_TXDCTL(i));
    txdctl &= ~((m << IXGBE_TXDCTL_PTHRESH_SHIFT) | (m << IXGBE_TXDCTL_HTHRESH_SHIFT) | (m << IXGBE_TXDCTL_WTHRESH_SHIFT));
    txdctl |= (TX_PTHRESH << IXGBE_TXDCTL_PTHRESH_SHIFT) | (TX_HTHRESH << IXGBE_TXDCTL_HTHRESH_SHIFT) |
      (TX_WTHRESH << IXGBE_TXDCTL_WTHRESH_SHIFT);
    setReg32(mmio, IXGBE_TXDCTL(i), txdctl);
  }

  /** 4.6.8.1: empty ring (TDH = TDT = 0), enable the queue and wait until it is. */
  start(mmio: Mmio, timeoutMs: number): void {
    this.#state[0] = 0;
    this.#state[1] = 0;
    this.#state[2] = STATE_POLL_FIRST;
    // 7.2.3.2.3: an enabled queue starts without contexts (the model clears them at enable).
    this.#contexts.fill(0);
    this.#holes.fill(0);
    setReg32(mmio, IXGBE_TDH(this.index), 0);
    setReg32(mmio, IXGBE_TDT(this.index), 0);
    setFlags32(mmio, IXGBE_TXDCTL(this.index), IXGBE_TXDCTL_ENABLE);
    waitSetReg32(mmio, IXGBE_TXDCTL(this.index), IXGBE_TXDCTL_ENABLE, { name: `TXDCTL(${this.index}).ENABLE`, timeoutMs });
  }

  /**
   * 4.6.8.2 (disabling a queue), as Linux's ixgbe_disable_tx writes it: TXDCTL = SWFLSH, which
   * clears ENABLE (and the thresholds) and flushes pending descriptor write-backs. The queue is
   * disabled once ENABLE reads 0, which a queue with pending descriptors reaches only with the
   * link up (waitStopped).
   */
  flush(mmio: Mmio): void {
    setReg32(mmio, IXGBE_TXDCTL(this.index), IXGBE_TXDCTL_SWFLSH);
  }

  /** Waits until TXDCTL.ENABLE reads 0 after flush(). */
  waitStopped(mmio: Mmio, timeoutMs: number): void {
    waitClearReg32(mmio, IXGBE_TXDCTL(this.index), IXGBE_TXDCTL_ENABLE, { name: `TXDCTL(${this.index}).ENABLE`, timeoutMs });
  }

  /**
   * A snapshot of the ring (src/ring-state.ts), off the hot path: reads TDH and TDT (7.2.3.3),
   * changes nothing. The device owns TDH .. TDT - 1; what lies between the driver's next
   * descriptor to reclaim and TDH the device has processed (done) — the driver learns that from DD
   * on the RS descriptor ending each group of TX_RS_INTERVAL (7.2.3.5) and reclaims the group at
   * once. `fields.dd` counts the descriptors with DD set that the driver has not reclaimed yet.
   */
  ringState(mmio: Mmio): RingState {
    const tdh = getReg32(mmio, IXGBE_TDH(this.index));
    const tdt = getReg32(mmio, IXGBE_TDT(this.index));
    const clean = this.#state[0]! & this.#mask;
    const tail = this.#state[1]! & this.#mask;
    const owners = new Uint8Array(this.size);
    let dd = 0;
    for (let i = 0; i < this.size; i++) {
      if (inRingRange(i, tdh, tdt, this.size)) owners[i] = RingOwner.device;
      else if (inRingRange(i, clean, tdh, this.size)) owners[i] = RingOwner.done;
      else owners[i] = RingOwner.driver;
      if (inRingRange(i, clean, tail, this.size) && (this.#desc[(i << 2) + 3]! & IXGBE_ADVTXD_STAT_DD) !== 0) dd++;
    }
    return ringState({ layout: "ixgbe", kind: "tx", queue: this.index, size: this.size, owners, head: tdh, tail: tdt, next: clean,
      fields: { TDH: tdh, TDT: tdt, next: clean, dd } });
  }

  /** After the device was stopped: gives every buffer still in the ring back to its pool. */
  releaseBuffers(): void {
    const mask = this.#mask;
    const ring = this.#ring;
    for (let i = this.#state[0]!; i !== this.#state[1]!; i = (i + 1) & mask) {
      // A buffer whose pool is gone already (its DMA allocator was closed first) has no home.
      if (bufPool[ring[i]!]! >= 0) freeBuffer(ring[i]!);
      ring[i] = -1;
    }
    this.#state[0] = this.#state[1]!;
  }
}
