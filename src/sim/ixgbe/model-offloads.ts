/**
 * The 82599 model's data-path offloads, written from the datasheet (7.1.11 receive checksum
 * offload, 7.2.3.2.3 / 7.2.3.2.4 advanced transmit descriptors, 7.2.4 TCP segmentation, 7.2.5
 * transmit checksum offload), not from the driver: its own header parsing and its own one's
 * complement sums, so that a mistake in the driver's (or the library's software) checksums is
 * not repeated here.
 *
 * Receive (rxChecksumBits): every frame is checked as it arrives, as the 82599 does whatever
 * RXCSUM says (RXCSUM only picks what word 1 of the write-back carries: PCSD, the RSS hash):
 * - IPv4 (one optional 802.1Q tag, version 4, IHL >= 5, the header inside the frame): IPCS, and
 *   IPE when the header checksum is wrong.
 * - TCP or UDP over IPv4 that is not a fragment, or directly over IPv6 (no extension header),
 *   with the datagram inside the frame: L4CS (and UDPCS for UDP), and TCPE when the checksum
 *   over the pseudo-header, header and payload is wrong. The datagram ends where the IP length
 *   says: padding after it is not summed.
 * - An IPv4 UDP datagram without a checksum (field 0): the 82599 erratum Linux works around
 *   (__IXGBE_RX_CSUM_UDP_ZERO_ERR, "UDP frames with a 0 checksum can be marked as checksum
 *   errors"): L4CS, UDPCS and TCPE. A driver must not call such a frame bad.
 * Not modelled: IPv6 extension headers (the 82599 walks some; here L4CS stays clear), tunnels,
 * SCTP (CRC-32c), and the fragment checksum of word 1 with PCSD clear.
 *
 * Transmit (TxOffloads): a context descriptor loads one of the queue's two contexts (IDX 0 or
 * 1); a data descriptor with POPTS.IXSM / POPTS.TXSM or DCMD.TSE uses the context its IDX names.
 * The hardware computes exactly what the datasheet says, so a driver that gets a field wrong
 * gets a wrong frame, not a silently right one:
 * - IXSM: the one's complement of the sum over MACLEN .. MACLEN + IPLEN, stored at MACLEN + 10:
 *   the checksum field is summed as it is, so software must leave it 0.
 * - TXSM: the one's complement of the sum from MACLEN + IPLEN to the last byte of the DMA data,
 *   stored at +16 (L4T TCP) or +6 (UDP; a result of 0 is sent as 0xFFFF). The field is summed as
 *   it is: software puts the pseudo-header sum there (with the L4 length, outside TSO).
 * - TSE (7.2.4): the first MACLEN + IPLEN + L4LEN bytes are the prototype header, the rest
 *   (PAYLEN bytes) is cut into MSS-sized segments (segmentTcp); in each the hardware sets the IP
 *   length, the IPv4 identification (+1 per segment), the TCP sequence number and flags, and
 *   computes both checksums as above, the TCP one from the prototype's checksum field plus the
 *   segment's TCP length: software puts the pseudo-header sum WITHOUT the length there.
 * What the datasheet calls unpredictable (an offload without a loaded context, IXSM with an IPv6
 * context, TSE without TXSM, lengths outside the frame) is a violation, and the frame is sent as
 * it is in memory.
 */
import * as R from "./model-registers.ts";
import { segmentTcp } from "../../net/tcp-segment.ts";

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const PROTO_TCP = 6;
const PROTO_UDP = 17;

/** The 16-bit one's complement sum (folded, not complemented) of bytes[start .. end), on top of `initial`. */
export function onesSum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8; // an odd last byte is padded with a zero byte
  return fold(sum);
}

const be16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The pseudo-header sum of an IPv4 (addresses at l3 + 12) or IPv6 (l3 + 8) datagram, with `length`. */
function pseudoSum(frame: Uint8Array, l3: number, ipv6: boolean, protocol: number, length: number): number {
  const sum = ipv6 ? onesSum(frame, l3 + 8, l3 + 40) : onesSum(frame, l3 + 12, l3 + 20);
  return fold(sum + protocol + (length >>> 16) + (length & 0xffff));
}

/**
 * 7.1.11: the STATUS and ERRORS bits of write-back word 2 the receive checksum checks give a
 * frame (CRC stripped), as a uint32 to OR into the word.
 */
export function rxChecksumBits(frame: Uint8Array): number {
  let l3 = 14;
  if (frame.length < l3) return 0;
  let type = be16(frame, 12);
  if (type === ETHERTYPE_VLAN) {
    l3 = 18;
    if (frame.length < l3) return 0;
    type = be16(frame, 16);
  }
  let bits = 0;
  let l4 = 0;
  let end = 0;
  let protocol = -1;
  let ipv6 = false;
  if (type === ETHERTYPE_IPV4) {
    if (frame.length < l3 + 20 || frame[l3]! >>> 4 !== 4) return 0;
    const headerLength = (frame[l3]! & 0xf) * 4;
    if (headerLength < 20 || frame.length < l3 + headerLength) return 0;
    bits |= R.RXD_STATUS_IPCS;
    if (onesSum(frame, l3, l3 + headerLength) !== 0xffff) bits |= R.RXD_ERROR_IPE;
    const total = be16(frame, l3 + 2);
    const fragment = (be16(frame, l3 + 6) & 0x3fff) !== 0; // MF or a fragment offset
    if (fragment || total < headerLength || l3 + total > frame.length) return bits >>> 0;
    protocol = frame[l3 + 9]!;
    l4 = l3 + headerLength;
    end = l3 + total;
  } else if (type === ETHERTYPE_IPV6) {
    if (frame.length < l3 + 40 || frame[l3]! >>> 4 !== 6) return 0;
    protocol = frame[l3 + 6]!;
    l4 = l3 + 40;
    end = l4 + be16(frame, l3 + 4);
    ipv6 = true;
    if (end > frame.length) return 0;
  } else {
    return 0;
  }
  if (protocol === PROTO_TCP ? end - l4 < 20 : protocol === PROTO_UDP ? end - l4 < 8 : true) return bits >>> 0;
  bits |= R.RXD_STATUS_L4CS | (protocol === PROTO_UDP ? R.RXD_STATUS_UDPCS : 0);
  if (protocol === PROTO_UDP && !ipv6 && be16(frame, l4 + 6) === 0) return (bits | R.RXD_ERROR_TCPE) >>> 0; // the erratum
  const sum = onesSum(frame, l4, end, pseudoSum(frame, l3, ipv6, protocol, end - l4));
  if (sum !== 0xffff) bits |= R.RXD_ERROR_TCPE;
  return bits >>> 0;
}

/** One transmit context as the device stored it (7.2.3.2.3). */
interface TxContext {
  maclen: number;
  iplen: number;
  ipv4: boolean;
  /** TXCTX_TUCMD_L4T_* */
  l4t: number;
  l4len: number;
  mss: number;
}

/** What transmit offloading made of one frame: the frames to send, and what was wrong, if anything. */
export interface TxOffloadResult {
  readonly frames: Uint8Array[];
  readonly violation: string | null;
}

/** The transmit contexts of every queue, and the offloads that use them. */
export class TxOffloads {
  readonly #contexts: (TxContext | null)[];

  constructor(queues: number) {
    this.#contexts = new Array<TxContext | null>(queues * R.TX_CONTEXTS).fill(null);
  }

  /** Device reset (and queue enable): no context is loaded. */
  clear(queue?: number): void {
    if (queue === undefined) this.#contexts.fill(null);
    else for (let i = 0; i < R.TX_CONTEXTS; i++) this.#contexts[queue * R.TX_CONTEXTS + i] = null;
  }

  /**
   * 7.2.3.2.3: a context descriptor (its four words) on queue `q`. Returns a violation, or null.
   * DCMD has no bit but DEXT in a context descriptor (RS there is reserved: no DD is written).
   */
  load(q: number, w0: number, w1: number, w2: number, w3: number): string | null {
    const index = (w3 >>> R.TXCTX_IDX_SHIFT) & 0x7;
    if (index >= R.TX_CONTEXTS) {
      return `TX queue ${q}: a context descriptor with IDX ${index}; the 82599 has ${R.TX_CONTEXTS} contexts per queue (IDX 0 or 1)`;
    }
    this.#contexts[q * R.TX_CONTEXTS + index] = {
      maclen: (w0 >>> R.TXCTX_MACLEN_SHIFT) & R.TXCTX_MACLEN_MASK,
      iplen: w0 & R.TXCTX_IPLEN_MASK,
      ipv4: (w2 & R.TXCTX_TUCMD_IPV4) !== 0,
      l4t: w2 & R.TXCTX_TUCMD_L4T_MASK,
      l4len: (w3 >>> R.TXCTX_L4LEN_SHIFT) & R.TXCTX_L4LEN_MASK,
      mss: w3 >>> R.TXCTX_MSS_SHIFT,
    };
    if ((w2 & 0xff000000) >>> 0 !== R.TXD_DCMD_DEXT) {
      return `TX queue ${q}: a context descriptor with DCMD 0x${((w2 >>> 24) & 0xff).toString(16)}: only DEXT is defined there ` +
        `(RS is reserved in a context descriptor: no DD is written back for it)`;
    }
    if (w1 !== 0) return `TX queue ${q}: a context descriptor with IPsec/FCoE fields set (word 1 = 0x${(w1 >>> 0).toString(16)}); the model does not implement them`;
    return null;
  }

  /**
   * A frame gathered from its data descriptors on queue `q`; `cmd` and `olinfo` are words 2 and
   * 3 of its first data descriptor (7.2.3.2.4: the offload fields are read there only).
   */
  transmit(q: number, frame: Uint8Array, cmd: number, olinfo: number): TxOffloadResult {
    const tse = (cmd & R.TXD_DCMD_TSE) !== 0;
    const ixsm = (olinfo & R.TXD_POPTS_IXSM) !== 0;
    const txsm = (olinfo & R.TXD_POPTS_TXSM) !== 0;
    const payLength = olinfo >>> R.TXD_PAYLEN_SHIFT;
    const refuse = (why: string): TxOffloadResult => ({ frames: [frame], violation: `TX queue ${q}: ${why}; the frame was sent as it is in memory` });
    if ((cmd & R.TXD_DCMD_VLE) !== 0) return refuse("DCMD.VLE (VLAN insertion) is not implemented by the model");
    const index = (olinfo & R.TXD_IDX_MASK) >>> R.TXD_IDX_SHIFT;
    const context = index < R.TX_CONTEXTS ? this.#contexts[q * R.TX_CONTEXTS + index] ?? null : null;
    if (context === null) {
      return refuse(`an offload (${tse ? "TSE " : ""}${ixsm ? "IXSM " : ""}${txsm ? "TXSM" : ""}) with IDX ${index}, a context no context descriptor loaded ` +
        `(7.2.5: "unpredictable results")`);
    }
    const { maclen, iplen, l4len } = context;
    if (maclen < 14) return refuse(`context ${index} has MACLEN ${maclen}, under 14`);
    if (ixsm && !context.ipv4) return refuse(`IXSM with context ${index}, an IPv6 one (TUCMD.IPV4 clear): IXSM must be 0 for IPv6`);
    if (txsm && context.l4t === R.TXCTX_TUCMD_L4T_SCTP) return refuse("an SCTP checksum (CRC-32c) is not implemented by the model");
    if (!tse) {
      if (payLength !== frame.length) return refuse(`PAYLEN is ${payLength} but the frame's descriptors hold ${frame.length} bytes`);
      if (maclen + iplen + (txsm ? (context.l4t === R.TXCTX_TUCMD_L4T_TCP ? 18 : 8) : 0) > frame.length) {
        return refuse(`context ${index}'s MACLEN ${maclen} + IPLEN ${iplen} reach past the ${frame.length}-byte frame`);
      }
      const out = frame.slice();
      insertChecksums(out, context, ixsm, txsm, 0);
      return { frames: [out], violation: null };
    }
    // 7.2.4: TCP segmentation.
    if (!txsm) return refuse("TSE without POPTS.TXSM (TSE needs TXSM)");
    if (context.ipv4 && !ixsm) return refuse("TSE with an IPv4 context but without POPTS.IXSM (needed for IPv4)");
    if (context.l4t !== R.TXCTX_TUCMD_L4T_TCP) return refuse(`TSE with context ${index}, whose L4T is not TCP`);
    const header = maclen + iplen + l4len;
    if (l4len < 20 || header >= 512) return refuse(`context ${index}: L4LEN ${l4len} (at least 20 for TCP) or header length ${header} (under 512)`);
    if (context.mss === 0) return refuse(`TSE with context ${index}, whose MSS is 0`);
    if (payLength + header !== frame.length) {
      return refuse(`TSE with PAYLEN ${payLength}, but the descriptors hold ${frame.length} bytes = ${header} of header + ${frame.length - header}`);
    }
    let segments: Uint8Array[];
    try {
      segments = segmentTcp(frame, maclen, iplen, l4len, context.mss, !context.ipv4);
    } catch (e) {
      return refuse(`TSE with a context that does not describe the frame (${(e as Error).message})`);
    }
    // The checksums as the hardware makes them: from the prototype's fields, whatever
    // segmentTcp (which fills them correctly) put there.
    const ipField = context.ipv4 ? be16(frame, maclen + 10) : 0;
    const tcpField = be16(frame, maclen + iplen + 16);
    for (const segment of segments) {
      if (context.ipv4) put16(segment, maclen + 10, ipField);
      put16(segment, maclen + iplen + 16, tcpField);
      insertChecksums(segment, context, context.ipv4, true, segment.length - maclen - iplen);
    }
    return { frames: segments, violation: null };
  }
}

/**
 * 7.2.5: the IP and L4 checksum insertion of one frame, in place. `addLength` (TSO) is added to
 * the L4 sum: the segment's TCP length, which software left out of the pseudo-header sum.
 */
function insertChecksums(frame: Uint8Array, context: TxContext, ixsm: boolean, txsm: boolean, addLength: number): void {
  const l3 = context.maclen;
  const l4 = l3 + context.iplen;
  if (ixsm) put16(frame, l3 + 10, ~onesSum(frame, l3, l4) & 0xffff);
  if (txsm) {
    const tcp = context.l4t === R.TXCTX_TUCMD_L4T_TCP;
    const at = l4 + (tcp ? 16 : 6);
    let sum = ~onesSum(frame, l4, frame.length, addLength) & 0xffff;
    if (!tcp && sum === 0) sum = 0xffff; // UDP: 0 means "no checksum"
    put16(frame, at, sum);
  }
}
