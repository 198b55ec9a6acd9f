/**
 * The transmit loop's path for a buffer with an offload request (bufTxOffload[b] != 0): the
 * advanced context descriptor (82599 datasheet 7.2.3.2.3), the data descriptor(s) with POPTS and
 * DCMD.TSE (7.2.3.2.4), and the software fallback. ixgbe-tx-queue.ts's loop calls it for such a
 * buffer only; a frame without a request never comes here.
 *
 * Contexts. The 82599 keeps two per queue (IDX 0 and 1). A context descriptor costs a ring slot,
 * a descriptor fetch and a PCIe read, so the queue remembers what each slot holds and writes a
 * context only when a request's shape (MACLEN, IPLEN, IPv4 or IPv6, TCP or UDP, and for TSO the
 * MSS and L4LEN) is in neither; then it replaces the slot written less recently. A stream of one
 * shape (all TCP over IPv4 without options, say) needs one context descriptor in all; two
 * alternating shapes (TCP and UDP) need two.
 *
 * The checksum fields: requestChecksum/requestTso (src/mem/offload.ts) leave the pseudo-header
 * sum in the L4 field (without the length for TSO) and 0 in the IPv4 one, which is what the
 * 82599 sums over (7.2.5, 7.2.4), so the driver writes nothing into the frame.
 *
 * Ring space is counted in descriptors: a request takes one data descriptor per 16 KB of its
 * buffer (IXGBE_MAX_DATA_PER_TXD in Linux) plus a context descriptor when its shape is new. The
 * buffer goes into the ring slot of its last (EOP) descriptor; the other slots hold no buffer
 * (-1), and their group is marked in `holes`, so that reclaiming it skips them.
 *
 * Report status. RS (7.2.3.5) is set on one descriptor per group of TX_RS_INTERVAL, normally the
 * group's last. A context descriptor cannot carry RS (its DCMD has only DEXT), and RS on a
 * descriptor in the middle of a frame would report the frame's buffer before the device read all
 * of it: so when a frame with a request covers a group's last slot, RS goes on the frame's EOP
 * descriptor, which may be in the next group, and rsAt[group] says where the reclaim looks for DD.
 *
 * Software. With txChecksum off, or a header the context cannot describe (MACLEN over 127 or
 * IPLEN over 511 bytes), the driver completes the checksums itself (completeChecksums) and sends
 * the frame as one without a request: the same bytes on the wire.
 *
 * A factory compiled once per queue (specialize.ts), like the loop that calls it.
 */
import { freeBuffer } from "../../mem/mempool.ts";

/** Queues buffer `buf` with request `request` at descriptor `tail`; returns the new tail, or -1 for no room. */
export type SendOffloaded = (buf: number, request: number, tail: number, clean: number) => number;

/** What the offload path touches; fields of the transmit loop's env (TxEnv in ixgbe-tx-queue.ts). */
export interface TxOffloadEnv {
  readonly desc: Uint32Array;
  readonly ring: Int32Array;
  readonly mask: number;
  /** Words 0, 2 and 3 (IDX left out) of the context in slot 0, then slot 1; [6]: the slot to replace next. Word 2 = 0: empty. */
  readonly contexts: Int32Array;
  /** Per group of RS_INTERVAL descriptors: the descriptor whose DD says the group is done. */
  readonly rsAt: Int32Array;
  /** Per group: 1 while some of its slots hold no buffer (context or non-EOP descriptors). */
  readonly holes: Int32Array;
  /** [0]: frames refused (txErrors). */
  readonly counters: Float64Array;
  readonly bufIovaLo: Int32Array;
  readonly bufIovaHi: Int32Array;
  readonly bufLength: Int32Array;
  readonly bufPool: Int32Array;
  readonly poolCapacity: Int32Array;
  readonly bufTxOffload: Uint8Array;
  readonly bufL2Len: Uint8Array;
  readonly bufL3Len: Uint16Array;
  readonly bufL4Len: Uint8Array;
  readonly bufMss: Uint16Array;
  readonly freeBuffer: (buf: number) => void;
  readonly completeChecksums: (buf: number) => void;
  /** Whether checksum requests go to the device (txChecksum on); false: software. */
  readonly HW_CHECKSUM: boolean;
  /** Frames shorter than this are refused (Linux pads to 17: "minimum packet size for olinfo paylen"). */
  readonly MIN_LENGTH: number;
  /** The longest frame without TSO: maxFrameSize plus a VLAN tag. */
  readonly MAX_LENGTH: number;
  readonly RS_INTERVAL: number;
  readonly GROUP_SHIFT: number;
  /** A data descriptor's DTYP, DEXT, IFCS and EOP (the loop's DATA_CMD). */
  readonly DATA_CMD: number;
  readonly EOP: number;
  readonly RS: number;
  readonly TSE: number;
  readonly PAYLEN_SHIFT: number;
  readonly IDX_SHIFT: number;
  readonly IXSM: number;
  readonly TXSM: number;
  /** A context descriptor's DTYP and DEXT. */
  readonly CONTEXT_CMD: number;
  readonly MACLEN_SHIFT: number;
  readonly TUCMD_IPV4: number;
  readonly TUCMD_L4T_TCP: number;
  readonly L4LEN_SHIFT: number;
  readonly MSS_SHIFT: number;
  /** Bytes per data descriptor at most (16 KB). */
  readonly MAX_DATA: number;
  /** TX_OFFLOAD flags. */
  readonly REQ_IP: number;
  readonly REQ_TCP: number;
  readonly REQ_UDP: number;
  readonly REQ_TSO: number;
  readonly REQ_IPV6: number;
}

export function offloadSender(env: TxOffloadEnv): SendOffloaded {
  const { desc, ring, mask, contexts, rsAt, holes, counters, bufIovaLo, bufIovaHi, bufLength, bufPool, poolCapacity } = env;
  const { bufTxOffload, bufL2Len, bufL3Len, bufL4Len, bufMss, freeBuffer, completeChecksums, HW_CHECKSUM, MIN_LENGTH, MAX_LENGTH } = env;
  const { RS_INTERVAL, GROUP_SHIFT, DATA_CMD, EOP, RS, TSE, PAYLEN_SHIFT, IDX_SHIFT, IXSM, TXSM, CONTEXT_CMD, MACLEN_SHIFT } = env;
  const { TUCMD_IPV4, TUCMD_L4T_TCP, L4LEN_SHIFT, MSS_SHIFT, MAX_DATA, REQ_IP, REQ_TCP, REQ_UDP, REQ_TSO, REQ_IPV6 } = env;
  const LAST_OF_GROUP = RS_INTERVAL - 1;
  // u64.ts's TWO_POW_32, which this copy cannot import: it is compiled outside the module (specialize.ts).
  const TWO_POW_32 = 0x1_0000_0000;

  /** One data descriptor for the whole frame, no offload (the loop's own format). */
  function plain(buf: number, length: number, tail: number): number {
    const w = tail << 2;
    desc[w] = bufIovaLo[buf]!;
    desc[w + 1] = bufIovaHi[buf]!;
    let cmd = DATA_CMD | length;
    if ((tail & LAST_OF_GROUP) === LAST_OF_GROUP) {
      cmd |= RS;
      rsAt[tail >>> GROUP_SHIFT] = tail;
    }
    desc[w + 2] = cmd;
    desc[w + 3] = length << PAYLEN_SHIFT;
    ring[tail] = buf;
    bufTxOffload[buf] = 0;
    return (tail + 1) & mask;
  }

  return function sendOffloaded(buf: number, request: number, tail: number, clean: number): number {
    const length = bufLength[buf]!;
    const tso = (request & REQ_TSO) !== 0;
    const l2 = bufL2Len[buf]!;
    const l3 = bufL3Len[buf]!;
    const l4 = bufL4Len[buf]!;
    const header = l2 + l3 + l4;
    const mss = bufMss[buf]!;
    // Refused, as a frame without a request would be (too short, past its buffer, longer than
    // maxFrameSize), and TSO whose segments would be longer than maxFrameSize or whose headers
    // the context cannot hold (7.2.3.2.3: MACLEN <= 127, MACLEN + IPLEN + L4LEN < 512).
    if (!(length >= MIN_LENGTH && length <= poolCapacity[bufPool[buf]!]! && (tso ? header + mss <= MAX_LENGTH && l2 <= 127 && header < 512 : length <= MAX_LENGTH))) {
      bufTxOffload[buf] = 0;
      freeBuffer(buf);
      counters[0] += 1;
      return tail;
    }
    const free = (clean - tail - 1) & mask;
    // Software: checksums off, a header the context cannot describe, or a TSO request with no
    // payload to segment (PAYLEN 0: completeChecksums fills in the checksums of the one frame).
    if (!HW_CHECKSUM || l2 > 127 || l3 > 511 || (tso && length <= header)) {
      if (free < 1) return -1;
      completeChecksums(buf);
      return plain(buf, length, tail);
    }
    const ipv4 = (request & REQ_IPV6) === 0;
    const w0 = (l2 << MACLEN_SHIFT) | l3;
    const w2 = CONTEXT_CMD | (ipv4 ? TUCMD_IPV4 : 0) | ((request & (REQ_TCP | REQ_TSO)) !== 0 ? TUCMD_L4T_TCP : 0);
    const w3 = tso ? (mss << MSS_SHIFT) | (l4 << L4LEN_SHIFT) : 0;
    let slot = -1;
    if (contexts[1] === w2 && contexts[0] === w0 && contexts[2] === w3) slot = 0;
    else if (contexts[4] === w2 && contexts[3] === w0 && contexts[5] === w3) slot = 1;
    const pieces = tso ? Math.ceil(length / MAX_DATA) : 1;
    if (free < pieces + (slot < 0 ? 1 : 0)) return -1;

    let t = tail;
    let coveredGroup = -1; // the group whose last slot this frame's descriptors take, if any
    if (slot < 0) {
      slot = contexts[6]!;
      contexts[6] = slot ^ 1;
      contexts[slot * 3] = w0;
      contexts[slot * 3 + 1] = w2;
      contexts[slot * 3 + 2] = w3;
      const w = t << 2;
      desc[w] = w0;
      desc[w + 1] = 0;
      desc[w + 2] = w2;
      desc[w + 3] = w3 | (slot << IDX_SHIFT);
      ring[t] = -1;
      holes[t >>> GROUP_SHIFT] = 1;
      if ((t & LAST_OF_GROUP) === LAST_OF_GROUP) coveredGroup = t >>> GROUP_SHIFT;
      t = (t + 1) & mask;
    }
    const popts = ((request & (REQ_TCP | REQ_UDP | REQ_TSO)) !== 0 ? TXSM : 0) | ((request & REQ_IP) !== 0 ? IXSM : 0);
    // PAYLEN: the whole frame, or with TSE the payload after the headers (7.2.3.2.4).
    const olinfo = ((tso ? length - header : length) << PAYLEN_SHIFT) | popts | (slot << IDX_SHIFT);
    const cmd = tso ? (DATA_CMD & ~EOP) | TSE : DATA_CMD & ~EOP;
    const lo = bufIovaLo[buf]! >>> 0;
    const hi = bufIovaHi[buf]!;
    let eop = t;
    for (let k = 0, offset = 0; k < pieces; k++) {
      const size = length - offset < MAX_DATA ? length - offset : MAX_DATA;
      const last = k === pieces - 1;
      const address = lo + offset;
      const w = t << 2;
      desc[w] = address; // (the low 32 bits)
      desc[w + 1] = address >= TWO_POW_32 ? hi + 1 : hi;
      desc[w + 2] = cmd | (last ? EOP : 0) | size;
      desc[w + 3] = k === 0 ? olinfo : 0;
      if (last) {
        ring[t] = buf;
        eop = t;
      } else {
        ring[t] = -1;
        holes[t >>> GROUP_SHIFT] = 1;
      }
      if ((t & LAST_OF_GROUP) === LAST_OF_GROUP) coveredGroup = t >>> GROUP_SHIFT;
      offset += size;
      t = (t + 1) & mask;
    }
    if (coveredGroup >= 0) {
      desc[(eop << 2) + 2] |= RS;
      rsAt[coveredGroup] = eop;
    }
    bufTxOffload[buf] = 0;
    return t;
  };
}

/** Reclaims a group with holes: frees the buffers of ring[start .. start + count), skipping empty slots. */
export function freeSparse(ring: Int32Array, start: number, count: number): void {
  for (let i = start; i < start + count; i++) {
    const buf = ring[i]!;
    if (buf >= 0) freeBuffer(buf);
  }
}
