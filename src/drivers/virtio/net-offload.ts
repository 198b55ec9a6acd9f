/**
 * The offload side of the virtio-net header (virtio 1.2 §5.1.6), off the hot paths: the transmit
 * loops call txOffloadHeader only for a buffer with a request (bufTxOffload non-zero), the receive
 * loops call rxPartial only for a frame whose header says NEEDS_CSUM. A frame without either costs
 * the loops one load and one compare.
 *
 * Transmit (§5.1.6.2): a TCP or UDP checksum request becomes flags NEEDS_CSUM with csum_start =
 * L2 + L3 length and csum_offset = where the checksum sits in the L4 header (TCP 16, UDP 6); the
 * checksum field carries the pseudo-header sum, not complemented, as the device folds the rest of
 * the frame into it and complements the result (§5.1.6.2: "the device computes the checksum from
 * csum_start to the end and places it at csum_start + csum_offset"). A TSO request adds gso_type
 * TCPV4 or TCPV6, gso_size = MSS and hdr_len = L2 + L3 + L4; the device then segments and fills
 * every segment's checksums (IP total length, id and checksum per segment too). Virtio has no IPv4
 * header checksum offload: an ipChecksum request is done here, in software, before the frame goes
 * out. Without VIRTIO_NET_F_CSUM (not offered, or offloads.txChecksum false) every checksum request
 * is completed in software (completeChecksums) and the header stays all zero, so the wire sees the
 * same bytes either way.
 *
 * Receive (§5.1.6.4, with VIRTIO_NET_F_GUEST_CSUM): DATA_VALID means the device checked the L4
 * checksum (RX_OFFLOAD.l4ChecksumGood); NEEDS_CSUM means the frame came from a peer that left the
 * checksum for the next hop to complete (only the pseudo-header sum is in the field):
 * RX_OFFLOAD.l4ChecksumPartial, and the buffer gets the matching transmit request, so that sending
 * it on completes the checksum (in the next device, or in software).
 */
import { bufDataOffset, bufL2Len, bufL3Len, bufL4Len, bufLength, bufMss, bufPool, bufRxOffload, bufTxOffload, poolBytes } from "../../mem/buffer-table.ts";
import { RX_OFFLOAD, TX_OFFLOAD } from "../../mem/offload.ts";
import { completeChecksums, fillIpv4Checksum, ipPayloadEnd, pseudoHeaderSum } from "../../net/checksum.ts";
import {
  VIRTIO_NET_HDR_CSUM_OFFSET,
  VIRTIO_NET_HDR_CSUM_START,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_FLAGS,
  VIRTIO_NET_HDR_GSO_SIZE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_GSO_TYPE,
  VIRTIO_NET_HDR_HDR_LEN,
} from "./virtio-types.ts";

/** Where the checksum sits in the L4 header: struct tcphdr.check, struct udphdr.check. */
const TCP_CHECK = 16;
const UDP_CHECK = 6;
const L4_REQUEST = TX_OFFLOAD.tcpChecksum | TX_OFFLOAD.udpChecksum | TX_OFFLOAD.tso;

/** The header writer of one transmit queue: `csum` is VIRTIO_NET_F_CSUM negotiated and on. */
export type TxOffloadHeader = (buf: number, request: number) => void;

export function txOffloadHeader(hdrLen: number, csum: boolean): TxOffloadHeader {
  return (buf, request) => {
    const bytes = poolBytes[bufPool[buf]!]!;
    const data = bufDataOffset[buf]!;
    // The headroom held whatever the buffer carried before (a received frame's header, say).
    bytes.fill(0, data - hdrLen, data);
    if (!csum || (request & L4_REQUEST) === 0) {
      // Nothing the device does for us (an IPv4 header checksum alone never is): in software.
      completeChecksums(buf);
      return;
    }
    const l2 = bufL2Len[buf]!;
    const l3 = bufL3Len[buf]!;
    const l4 = data + l2 + l3;
    const ipv6 = (request & TX_OFFLOAD.ipv6) !== 0;
    const tso = (request & TX_OFFLOAD.tso) !== 0;
    const tcp = tso || (request & TX_OFFLOAD.tcpChecksum) !== 0;
    const ip = data + l2;
    // No IP checksum offload in virtio: filled in here (for TSO the device redoes it per segment).
    if (!ipv6 && (tso || (request & TX_OFFLOAD.ipChecksum) !== 0)) fillIpv4Checksum(bytes, ip, l3);
    const check = tcp ? TCP_CHECK : UDP_CHECK;
    // The pseudo-header sum with this frame's L4 length (by the IP header: Ethernet padding is
    // not part of it). For TSO that is the super-frame's: requestTso seeds without the length, as
    // the 82599 wants, but a virtio device's segmentation adjusts the seed by the length
    // difference per segment (Linux tcp_gso_segment, DPDK virtio_tso_fix_cksum), so it needs it.
    const l4Length = ipPayloadEnd(bytes, ip, ipv6, data + bufLength[buf]!) - l4;
    const seed = pseudoHeaderSum(bytes, ip, ipv6, tcp ? 6 : 17, l4Length);
    bytes[l4 + check] = seed >>> 8;
    bytes[l4 + check + 1] = seed & 0xff;
    const h = data - hdrLen;
    bytes[h + VIRTIO_NET_HDR_FLAGS] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    put16(bytes, h + VIRTIO_NET_HDR_CSUM_START, l2 + l3);
    put16(bytes, h + VIRTIO_NET_HDR_CSUM_OFFSET, check);
    if (tso) {
      bytes[h + VIRTIO_NET_HDR_GSO_TYPE] = ipv6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
      put16(bytes, h + VIRTIO_NET_HDR_HDR_LEN, l2 + l3 + bufL4Len[buf]!);
      put16(bytes, h + VIRTIO_NET_HDR_GSO_SIZE, bufMss[buf]!);
    }
  };
}

/**
 * A received frame whose header says NEEDS_CSUM (§5.1.6.4): RX_OFFLOAD.l4ChecksumPartial and a
 * transmit request for the checksum, with L2/L3 lengths from csum_start and the frame. Returns
 * false for a header that points outside the frame or at no TCP/UDP checksum (a device error: the
 * caller drops the frame and counts it).
 */
export function rxPartial(buf: number, hdrLen: number): boolean {
  const bytes = poolBytes[bufPool[buf]!]!;
  const data = bufDataOffset[buf]!;
  const h = data - hdrLen;
  const start = bytes[h + VIRTIO_NET_HDR_CSUM_START]! | (bytes[h + VIRTIO_NET_HDR_CSUM_START + 1]! << 8);
  const offset = bytes[h + VIRTIO_NET_HDR_CSUM_OFFSET]! | (bytes[h + VIRTIO_NET_HDR_CSUM_OFFSET + 1]! << 8);
  const length = bufLength[buf]!;
  if (offset !== TCP_CHECK && offset !== UDP_CHECK) return false;
  if (start + offset + 2 > length) return false;
  // L2: Ethernet, or Ethernet + one 802.1Q tag; the L3 header runs to csum_start.
  let l2 = 14;
  let type = (bytes[data + 12]! << 8) | bytes[data + 13]!;
  if (type === 0x8100 && length >= 18) {
    l2 = 18;
    type = (bytes[data + 16]! << 8) | bytes[data + 17]!;
  }
  if ((type !== 0x0800 && type !== 0x86dd) || start <= l2) return false;
  bufL2Len[buf] = l2;
  bufL3Len[buf] = start - l2;
  bufRxOffload[buf] = RX_OFFLOAD.l4ChecksumPartial;
  bufTxOffload[buf] = (offset === TCP_CHECK ? TX_OFFLOAD.tcpChecksum : TX_OFFLOAD.udpChecksum) | (type === 0x86dd ? TX_OFFLOAD.ipv6 : 0);
  return true;
}

function put16(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value & 0xff;
  bytes[at + 1] = value >>> 8;
}
