/**
 * The ixgbe driver's data-path offloads, everything but the transmit loop's part (that is
 * ixgbe-offloads-tx.ts): which offloads a device gets (DeviceOptions.offloads, maxFrameSize),
 * the receive buffer layout a maximum frame size asks for, the MAC's frame size registers, the
 * receive checksum verdicts, and the error txBatch throws for a request the device cannot do.
 * docs/offloads-ixgbe.md has the whole picture.
 */
import type { DeviceOptions } from "../../device.ts";
import { NotSupportedError } from "../../errors.ts";
import { bufHome, bufTxOffload } from "../../mem/buffer-table.ts";
import { MEMPOOL_HEADROOM } from "../../mem/mempool.ts";
import { RX_OFFLOAD, TX_OFFLOAD } from "../../mem/offload-flags.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { getReg32, setReg32 } from "../../pci/regs.ts";
import { sharedUint8 } from "../../mem/shared-arrays.ts";
import { checkOffloadOptions, decideOffload } from "../offload-options.ts";
import { checkInteger } from "../../validate.ts";
import {
  IXGBE_HLREG0,
  IXGBE_HLREG0_JUMBOEN,
  IXGBE_MAXFRS,
  IXGBE_MHADD_MFS_MASK,
  IXGBE_MHADD_MFS_SHIFT,
  IXGBE_RXDADV_ERR_IPE,
  IXGBE_RXDADV_ERR_TCPE,
  IXGBE_RXD_STAT_IPCS,
  IXGBE_RXD_STAT_L4CS,
  IXGBE_RXD_STAT_UDPCS,
  IXGBE_SRRCTL_BSIZEPKT_SHIFT,
} from "./ixgbe_type.ts";

/** A standard Ethernet frame without its FCS: the default maximum, and the least one may ask for. */
export const IXGBE_STANDARD_FRAME = 1514;
/** The largest frame without FCS the driver allows: 9014 bytes, MAXFRS 9018 (Linux's usual jumbo MTU of 9000). */
export const IXGBE_MAX_FRAME = 9014;
/** Ethernet FCS and one 802.1Q tag: MAXFRS counts the FCS, and a tagged frame may be 4 bytes longer (8.2.3.22.13). */
const FCS = 4;
const VLAN_TAG = 4;

/** What DeviceOptions asks of the ixgbe data path, decided once at open. */
export interface IxgbeDataOffloads {
  readonly rxChecksum: boolean;
  readonly txChecksum: boolean;
  readonly tso: boolean;
  /** The largest frame received and sent, without FCS. */
  readonly maxFrameSize: number;
}

/**
 * DeviceOptions.offloads and maxFrameSize for an 82599: it checks receive checksums (7.1.11),
 * inserts transmit checksums (7.2.5) and segments TCP (7.2.4), so each is on unless turned off.
 * TSO needs the checksum offload (the device computes the segments' checksums as part of it, and
 * a driver doing checksums in software must not have the device compute them): with txChecksum
 * off, tso is off too, and asking for both tso and no txChecksum is a RangeError.
 */
export function decideIxgbeOffloads(address: string, options: DeviceOptions): IxgbeDataOffloads {
  const o = checkOffloadOptions(address, options.offloads);
  const rxChecksum = decideOffload(address, o, "rxChecksum", true, "");
  const txChecksum = decideOffload(address, o, "txChecksum", true, "");
  if (o.tso === true && !txChecksum) {
    throw new RangeError(`${address}: offloads.tso needs offloads.txChecksum (the device computes each segment's checksums); ` +
      `leave txChecksum on, or tso off`);
  }
  const tso = txChecksum && decideOffload(address, o, "tso", true, "");
  const maxFrameSize = checkInteger(address, "maxFrameSize", options.maxFrameSize ?? IXGBE_STANDARD_FRAME, IXGBE_STANDARD_FRAME, IXGBE_MAX_FRAME);
  return { rxChecksum, txChecksum, tso, maxFrameSize };
}

/** How the receive queues hold frames of up to maxFrameSize bytes. */
export interface RxBufferLayout {
  /** Mempool entry size: a power of two holding the headroom and the largest frame the device writes. */
  readonly entrySize: number;
  /** SRRCTL.BSIZEPACKET in bytes (a multiple of 1 KB). */
  readonly bufferSize: number;
  /** The most bytes the device writes for one frame: maxFrameSize plus a VLAN tag (the FCS is stripped). */
  readonly largestWrite: number;
}

/**
 * One buffer per frame, however large (docs/offloads-ixgbe.md, "Jumbo frames"): the receive
 * pools' entries are sized for the largest frame MAXFRS lets in, and SRRCTL.BSIZEPACKET
 * (8.2.3.8.7, 1 KB units) covers it, so the device never spreads a frame over descriptors. The
 * alternative, 2 KB buffers and frames reassembled from several descriptors, would copy every
 * jumbo frame in the hot loop. BSIZEPACKET may exceed the data area (2 KB against 1984 bytes at
 * the default size): MAXFRS keeps the device from writing past largestWrite, which fits.
 */
export function rxBufferLayout(maxFrameSize: number): RxBufferLayout {
  const largestWrite = maxFrameSize + VLAN_TAG;
  let entrySize = 2048;
  while (entrySize - MEMPOOL_HEADROOM < largestWrite) entrySize *= 2;
  const unit = 1 << IXGBE_SRRCTL_BSIZEPKT_SHIFT;
  // Rounded up to whole KB: a frame of largestWrite bytes fits one descriptor.
  const bufferSize = Math.ceil(largestWrite / unit) * unit;
  return { entrySize, bufferSize, largestWrite };
}

/**
 * 8.2.3.22.13 MAXFRS and 8.2.3.22.8 HLREG0.JUMBOEN (Linux's ixgbe_set_rx_buffer_len): frames
 * over 1518 bytes with FCS are received only with JUMBOEN, and then up to MFS (plus 4 for a VLAN
 * tag); longer ones are dropped and counted (ROC, RLEC). The standard size keeps JUMBOEN clear.
 */
export function setupFrameSize(mmio: Mmio, maxFrameSize: number): void {
  // Written only where they differ from what they hold (the reset values for 1514), as Linux does.
  const maxfrs = getReg32(mmio, IXGBE_MAXFRS);
  const wanted = ((maxfrs & ~IXGBE_MHADD_MFS_MASK) | ((maxFrameSize + FCS) << IXGBE_MHADD_MFS_SHIFT)) >>> 0;
  if (wanted !== maxfrs) setReg32(mmio, IXGBE_MAXFRS, wanted);
  const hlreg0 = getReg32(mmio, IXGBE_HLREG0);
  const jumbo = maxFrameSize > IXGBE_STANDARD_FRAME;
  const hlreg0Wanted = (jumbo ? hlreg0 | IXGBE_HLREG0_JUMBOEN : hlreg0 & ~IXGBE_HLREG0_JUMBOEN) >>> 0;
  if (hlreg0Wanted !== hlreg0) setReg32(mmio, IXGBE_HLREG0, hlreg0Wanted);
}

/**
 * The receive loop's checksum verdicts: RX_OFFLOAD flags by five bits of the write-back status
 * word (7.1.6.2), gathered as rxChecksumIndex does. Verdicts (7.1.11):
 * - IPCS set: the IPv4 header checksum was checked, IPE says whether it was wrong.
 * - L4CS set: the TCP/UDP checksum was checked, TCPE says whether it was wrong. Except for UDP
 *   (UDPCS): the 82599 sets TCPE for a UDP datagram sent without a checksum (field 0), an
 *   erratum Linux works around the same way (__IXGBE_RX_CSUM_UDP_ZERO_ERR): a UDP error is no
 *   verdict, the frame's L4 checksum is left unknown.
 * With rxChecksum off every entry is 0.
 */
export function rxChecksumTable(enabled: boolean): Uint8Array {
  const table = sharedUint8(32);
  if (!enabled) return table;
  for (let i = 0; i < 32; i++) {
    const udp = (i & 1) !== 0;
    const l4cs = (i & 2) !== 0;
    const ipcs = (i & 4) !== 0;
    const tcpe = (i & 8) !== 0;
    const ipe = (i & 16) !== 0;
    let flags = 0;
    if (ipcs) flags |= ipe ? RX_OFFLOAD.ipChecksumBad : RX_OFFLOAD.ipChecksumGood;
    if (l4cs && !tcpe) flags |= RX_OFFLOAD.l4ChecksumGood;
    if (l4cs && tcpe && !udp) flags |= RX_OFFLOAD.l4ChecksumBad;
    table[i] = flags;
  }
  return table;
}

/**
 * The index into rxChecksumTable of write-back word 2: UDPCS, L4CS, IPCS (bits 4-6) to bits
 * 0-2, TCPE and IPE (bits 30-31) to bits 3-4. The receive loop inlines this expression.
 */
export function rxChecksumIndex(status: number): number {
  return ((status >>> 4) & 7) | ((status >>> 27) & 0x18);
}
// The bits rxChecksumIndex moves, spelled out: if the register map changed, this fails at load.
if (rxChecksumIndex(IXGBE_RXD_STAT_UDPCS) !== 1 || rxChecksumIndex(IXGBE_RXD_STAT_L4CS) !== 2 || rxChecksumIndex(IXGBE_RXD_STAT_IPCS) !== 4 ||
  rxChecksumIndex(IXGBE_RXDADV_ERR_TCPE) !== 8 || rxChecksumIndex(IXGBE_RXDADV_ERR_IPE) !== 16) {
  throw new Error("ixgbe-offloads.ts: rxChecksumIndex does not match the write-back status bits");
}

/**
 * txBatch's checking pass refused bufs[i] for its request: TCP segmentation on a device opened
 * without it (docs/offloads.md: a NotSupportedError before anything is taken). Undoes the pass's
 * marks on bufs[0 .. i), as badTxBuffer does for a bad buffer.
 */
export function refuseTxRequest(what: string, bufs: Int32Array, i: number): never {
  for (let j = 0; j < i; j++) if (bufHome[bufs[j]!] === 2) bufHome[bufs[j]!] = 0;
  const buf = bufs[i]!;
  throw new NotSupportedError(
    `${what}: bufs[${i}] = ${buf} asks for TCP segmentation (requestTso, TX_OFFLOAD.tso = ${bufTxOffload[buf]! & TX_OFFLOAD.tso}), ` +
      `but the device was opened without it (offloads.tso or offloads.txChecksum false): cut the segment into frames of at ` +
      `most maxFrameSize bytes in software (segmentTcp), or open the device with TSO; nothing was sent`,
  );
}
