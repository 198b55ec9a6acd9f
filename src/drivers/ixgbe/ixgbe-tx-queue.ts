/**
 * One ixgbe transmit queue: its descriptor ring and the transmit hot path.
 *
 * The driver owns the tail (TDT) and the device the head (TDH, 7.2.3.3): the driver writes
 * descriptors at the tail and moves TDT, the device sends and moves TDH. The device reports a
 * sent descriptor by writing DD back, but only where the driver set RS (Report Status). Setting
 * RS on one descriptor in TX_CLEAN_BATCH, always the last one of an aligned group, halves the
 * PCIe write-backs; the driver then reclaims a whole group at once when that descriptor's DD is
 * set. This needs TXDCTL.WTHRESH = 0 (write back as soon as an RS descriptor is done; 7.2.3.5),
 * which is what the init programs.
 *
 * Hot-path rules as in ixgbe-rx-queue.ts: Uint32Array ring, two 32-bit address halves, locals,
 * no allocation.
 */
import type { DmaAllocator } from "../../mem/dma.ts";
import type { PacketBuffer } from "../../mem/mempool.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { clearFlags32, getReg32, setFlags32, setReg32, waitClearReg32, waitSetReg32 } from "../../pci/regs.ts";
import {
  IXGBE_ADVTXD_DCMD_DEXT,
  IXGBE_ADVTXD_DCMD_EOP,
  IXGBE_ADVTXD_DCMD_IFCS,
  IXGBE_ADVTXD_DCMD_RS,
  IXGBE_ADVTXD_DTYP_DATA,
  IXGBE_ADVTXD_PAYLEN_SHIFT,
  IXGBE_ADVTXD_STAT_DD,
  IXGBE_DESC_SIZE,
  IXGBE_TDBAH,
  IXGBE_TDBAL,
  IXGBE_TDH,
  IXGBE_TDLEN,
  IXGBE_TDT,
  IXGBE_TXDCTL,
  IXGBE_TXDCTL_ENABLE,
  IXGBE_TXDCTL_HTHRESH_SHIFT,
  IXGBE_TXDCTL_PTHRESH_SHIFT,
  IXGBE_TXDCTL_THRESH_MASK,
  IXGBE_TXDCTL_WTHRESH_SHIFT,
} from "./ixgbe_type.ts";

/** Descriptors reclaimed at once, and the distance between two RS bits. A power of two. */
export const TX_CLEAN_BATCH = 32;

/**
 * TXDCTL thresholds (7.2.3.4.1): prefetch when 32 descriptors are free on chip and at least one
 * is waiting in host memory (Linux's values); WTHRESH 0 because RS is set on one descriptor in
 * TX_CLEAN_BATCH only (DPDK's rule for tx_rs_thresh > 1).
 */
export const TX_PTHRESH = 32;
export const TX_HTHRESH = 1;
export const TX_WTHRESH = 0;

const TWO_POW_32 = 0x1_0000_0000;
/** Every frame is one advanced data descriptor: end of packet, insert the CRC. */
const DATA_CMD = (IXGBE_ADVTXD_DTYP_DATA | IXGBE_ADVTXD_DCMD_DEXT | IXGBE_ADVTXD_DCMD_IFCS | IXGBE_ADVTXD_DCMD_EOP) >>> 0;

export interface TxQueueOptions {
  readonly index: number;
  readonly ringSize: number;
}

export class IxgbeTxQueue {
  readonly index: number;
  readonly size: number;
  readonly ringIova: number;
  /** Frames refused because their length was 0 or larger than their buffer. */
  errors = 0;
  readonly #desc: Uint32Array;
  /** The buffer each in-flight descriptor points to; null before first use. */
  readonly #bufs: (PacketBuffer | null)[];
  readonly #mask: number;
  readonly #tdt: number;
  /** First descriptor not yet reclaimed (always a multiple of TX_CLEAN_BATCH). */
  #clean = 0;
  /** Next descriptor to fill; the value last written to TDT. */
  #tail = 0;

  constructor(dma: DmaAllocator, options: TxQueueOptions) {
    this.index = options.index;
    this.size = options.ringSize;
    this.#mask = options.ringSize - 1;
    this.#tdt = IXGBE_TDT(options.index);
    const region = dma.allocate(options.ringSize * IXGBE_DESC_SIZE, { align: 128 });
    region.bytes.fill(0xff); // see IxgbeRxQueue
    this.ringIova = region.iova;
    this.#desc = new Uint32Array(region.bytes.buffer, region.bytes.byteOffset, region.size >>> 2);
    // Built by appending, so that V8 keeps the array packed (no hole checks in the hot path).
    this.#bufs = [];
    for (let i = 0; i < options.ringSize; i++) this.#bufs.push(null);
  }

  /** Frames handed to the device and not yet reclaimed. */
  get inFlight(): number {
    return (this.#tail - this.#clean) & this.#mask;
  }

  /** 4.6.8: the per-queue part of transmit initialization; the queue stays disabled. */
  configure(mmio: Mmio): void {
    const i = this.index;
    setReg32(mmio, IXGBE_TDBAL(i), this.ringIova >>> 0);
    setReg32(mmio, IXGBE_TDBAH(i), Math.floor(this.ringIova / TWO_POW_32));
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
    this.#clean = 0;
    this.#tail = 0;
    setReg32(mmio, IXGBE_TDH(this.index), 0);
    setReg32(mmio, IXGBE_TDT(this.index), 0);
    setFlags32(mmio, IXGBE_TXDCTL(this.index), IXGBE_TXDCTL_ENABLE);
    waitSetReg32(mmio, IXGBE_TXDCTL(this.index), IXGBE_TXDCTL_ENABLE, { name: `TXDCTL(${this.index}).ENABLE`, timeoutMs });
  }

  /** 4.6.8.2 (disabling a queue): clear TXDCTL.ENABLE and wait until the device agrees. */
  stop(mmio: Mmio, timeoutMs: number): void {
    clearFlags32(mmio, IXGBE_TXDCTL(this.index), IXGBE_TXDCTL_ENABLE);
    waitClearReg32(mmio, IXGBE_TXDCTL(this.index), IXGBE_TXDCTL_ENABLE, { name: `TXDCTL(${this.index}).ENABLE`, timeoutMs });
  }

  /** After the device was stopped: gives every buffer still in the ring back to its pool. */
  releaseBuffers(): void {
    const mask = this.#mask;
    for (let i = this.#clean; i !== this.#tail; i = (i + 1) & mask) {
      const buf = this.#bufs[i]!;
      buf.pool.free(buf);
      this.#bufs[i] = null;
    }
    this.#clean = this.#tail;
  }

  /**
   * The transmit hot path. First reclaims sent descriptors, a group of TX_CLEAN_BATCH at a time
   * (7.2.3.5: DD is written back on the group's last descriptor, the one with RS), returning
   * their buffers to their pools. Then writes one advanced data descriptor (7.2.3.2.4) per frame
   * until the ring is full, and writes TDT once. Returns how many of bufs[0 .. count) it took.
   */
  send(mmio: Mmio, bufs: PacketBuffer[], count: number): number {
    const desc = this.#desc;
    const ring = this.#bufs;
    const mask = this.#mask;
    const start = this.#tail;

    let clean = this.#clean;
    while (((start - clean) & mask) >= TX_CLEAN_BATCH) {
      // clean is a multiple of TX_CLEAN_BATCH and so is the ring size: the group never wraps.
      const last = clean + TX_CLEAN_BATCH - 1;
      if ((desc[(last << 2) + 3]! & IXGBE_ADVTXD_STAT_DD) === 0) break;
      ring[clean]!.pool.freeBatch(ring as PacketBuffer[], TX_CLEAN_BATCH, clean);
      clean = (clean + TX_CLEAN_BATCH) & mask;
    }
    this.#clean = clean;

    let tail = start;
    let errors = 0;
    let taken = 0;
    for (; taken < count; taken++) {
      const next = (tail + 1) & mask;
      if (next === clean) break; // full: one descriptor always stays empty
      const buf = bufs[taken]!;
      const length = buf.length;
      if (!(length > 0 && length <= buf.data.length)) {
        // A descriptor with length 0 or pointing past the buffer would hang the queue or send
        // another buffer's bytes: refuse the frame, count it, and take the buffer back.
        buf.pool.free(buf);
        errors++;
        continue;
      }
      const w = tail << 2;
      desc[w] = buf.iovaLo;
      desc[w + 1] = buf.iovaHi;
      desc[w + 2] = DATA_CMD | ((tail & (TX_CLEAN_BATCH - 1)) === TX_CLEAN_BATCH - 1 ? IXGBE_ADVTXD_DCMD_RS : 0) | length;
      // PAYLEN: the whole frame, as there is no segmentation offload. STA (and DD) start at 0.
      desc[w + 3] = length << IXGBE_ADVTXD_PAYLEN_SHIFT;
      ring[tail] = buf;
      tail = next;
    }
    if (errors !== 0) this.errors += errors;
    if (tail !== start) {
      this.#tail = tail;
      mmio.write32(this.#tdt, tail);
    }
    return taken;
  }
}
