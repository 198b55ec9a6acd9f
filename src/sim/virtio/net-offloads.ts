/**
 * The virtio-net model's data-path offloads (virtio 1.2 §5.1.6), as a device with a vnet-header
 * backend does them (qemu with a tap netdev, DPDK's vhost library):
 *
 * - transmit, VIRTIO_NET_F_CSUM: a header with NEEDS_CSUM gets the Internet checksum of the frame
 *   from csum_start to its end (the field at csum_start + csum_offset included, which holds the
 *   driver's pseudo-header sum) written at csum_start + csum_offset. Nothing else is looked at:
 *   a wrong csum_start gives a wrong checksum on the wire, as on the real device.
 * - transmit, VIRTIO_NET_F_HOST_TSO4/6: gso_type TCPV4/TCPV6 with gso_size cuts the frame into
 *   segments (segmentTcp, src/net/tcp-segment.ts), every one with its checksums; the L2/L3/L4
 *   lengths come from the frame itself (as Linux's virtio_net_hdr_to_skb does; hdr_len is only a
 *   hint) and must agree with csum_start.
 * - receive, VIRTIO_NET_F_GUEST_CSUM: a frame the model verified (checkFrameChecksums: TCP/UDP
 *   good) gets DATA_VALID; a partial one from a test peer (inject with `partial`) keeps its
 *   pseudo-header sum and gets NEEDS_CSUM with the peer's csum_start/offset. Without GUEST_CSUM
 *   the model completes a partial frame before delivery, as tun does for a guest without it.
 *
 * What the driver must not do is a device error (qemu's virtio_error: the device stops, needs a
 * reset) or a violation: any header field set without the feature that gives it meaning, a GSO
 * type the driver did not negotiate, NEEDS_CSUM pointing outside the frame.
 */
import { checkFrameChecksums } from "../../net/checksum.ts";
import { segmentTcp } from "../../net/tcp-segment.ts";
import { bit, F } from "./virtio-spec.ts";

/** §5.1.6 header fields (byte offsets) and values. */
const HDR_FLAGS = 0;
const HDR_GSO_TYPE = 1;
const HDR_HDR_LEN = 2;
const HDR_GSO_SIZE = 4;
const HDR_CSUM_START = 6;
const HDR_CSUM_OFFSET = 8;
export const HDR_NUM_BUFFERS = 10;
const F_NEEDS_CSUM = 1;
const F_DATA_VALID = 2;
const GSO_NONE = 0;
const GSO_TCPV4 = 1;
const GSO_TCPV6 = 4;
const GSO_ECN = 0x80;

/** A partially checksummed frame from a peer (what NEEDS_CSUM says on receive). */
export interface PartialChecksum {
  readonly csumStart: number;
  readonly csumOffset: number;
}

export interface OffloadCounters {
  /** Transmitted frames whose checksum the model completed (NEEDS_CSUM). */
  txChecksummed: number;
  /** TSO super-frames segmented, and the segments they made. */
  txGso: number;
  txSegments: number;
  /** Received frames delivered with DATA_VALID, and with NEEDS_CSUM. */
  rxDataValid: number;
  rxNeedsCsum: number;
}

export function newOffloadCounters(): OffloadCounters {
  return { txChecksummed: 0, txGso: 0, txSegments: 0, rxDataValid: 0, rxNeedsCsum: 0 };
}

/** What the offload code needs of the model. */
export interface OffloadHost {
  negotiated(featureBit: number): boolean;
  /** A protocol violation the device tolerates (recorded). */
  violation(message: string): void;
  /** A fatal one: the device stops and needs a reset (qemu's virtio_error). */
  deviceError(message: string): void;
}

/**
 * §5.1.3.1 (driver requirements of the feature bits): a feature set the device must refuse at
 * FEATURES_OK, or null. HOST_TSO4/6 require CSUM, GUEST_TSO4/6 require GUEST_CSUM.
 */
export function offloadFeatureProblem(features: bigint): string | null {
  const has = (b: number): boolean => (features & bit(b)) !== 0n;
  if ((has(F.HOST_TSO4) || has(F.HOST_TSO6)) && !has(F.CSUM)) return "VIRTIO_NET_F_HOST_TSO4/6 accepted without VIRTIO_NET_F_CSUM (§5.1.3.1)";
  if ((has(F.GUEST_TSO4) || has(F.GUEST_TSO6)) && !has(F.GUEST_CSUM)) return "VIRTIO_NET_F_GUEST_TSO4/6 accepted without VIRTIO_NET_F_GUEST_CSUM (§5.1.3.1)";
  return null;
}

function get16(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

/** The one's-complement sum of bytes[start .. end), folded (the model's own, not the driver's). */
function sum16(bytes: Uint8Array, start: number, end: number): number {
  let sum = 0;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * §5.1.6.2: what the device puts on the wire for the frame behind `header`: the frame (its
 * checksum completed when asked), its segments (TSO), or nothing (the header is refused: a
 * device error or a violation was recorded). `frame` is the model's own copy.
 */
export function transmitWithHeader(host: OffloadHost, header: Uint8Array, frame: Uint8Array, counters: OffloadCounters): Uint8Array[] {
  const flags = header[HDR_FLAGS]!;
  const gso = header[HDR_GSO_TYPE]!;
  if (flags === 0 && gso === GSO_NONE) {
    // hdr_len, gso_size, csum_* mean nothing here; qemu ignores them, and so does the model.
    return [frame];
  }
  if ((flags & ~F_NEEDS_CSUM) !== 0) {
    host.violation(`transmit header flags 0x${flags.toString(16)}: only NEEDS_CSUM (1) is defined for transmit (§5.1.6.2)`);
    return [];
  }
  if ((flags & F_NEEDS_CSUM) !== 0) {
    if (!host.negotiated(F.CSUM)) {
      host.violation("transmit header with NEEDS_CSUM, but VIRTIO_NET_F_CSUM was not negotiated (§5.1.6.2)");
      return [];
    }
    const start = get16(header, HDR_CSUM_START);
    const offset = get16(header, HDR_CSUM_OFFSET);
    if (start + offset + 2 > frame.length) {
      host.violation(`NEEDS_CSUM with csum_start ${start} + csum_offset ${offset} beyond the ${frame.length}-byte frame`);
      return [];
    }
    if (gso === GSO_NONE) {
      const sum = sum16(frame, start, frame.length);
      const c = ~sum & 0xffff;
      frame[start + offset] = c >> 8;
      frame[start + offset + 1] = c & 0xff;
      counters.txChecksummed++;
      return [frame];
    }
  }
  return segment(host, header, frame, counters);
}

function segment(host: OffloadHost, header: Uint8Array, frame: Uint8Array, counters: OffloadCounters): Uint8Array[] {
  const gso = header[HDR_GSO_TYPE]!;
  const type = gso & ~GSO_ECN;
  const feature = type === GSO_TCPV4 ? F.HOST_TSO4 : type === GSO_TCPV6 ? F.HOST_TSO6 : -1;
  if (feature < 0 || (gso & GSO_ECN) !== 0) {
    host.deviceError(`transmit header gso_type 0x${gso.toString(16)}: not a GSO type the device offers (TCPV4 1, TCPV6 4)`);
    return [];
  }
  if (!host.negotiated(feature)) {
    host.deviceError(`transmit header gso_type ${type === GSO_TCPV4 ? "TCPV4" : "TCPV6"} without VIRTIO_NET_F_${type === GSO_TCPV4 ? "HOST_TSO4" : "HOST_TSO6"} negotiated`);
    return [];
  }
  if ((header[HDR_FLAGS]! & F_NEEDS_CSUM) === 0) {
    host.violation("a GSO frame without NEEDS_CSUM: its segments' checksums cannot be completed (Linux refuses it too)");
    return [];
  }
  const ipv6 = type === GSO_TCPV6;
  const mss = get16(header, HDR_GSO_SIZE);
  const start = get16(header, HDR_CSUM_START);
  // The frame's own headers: Ethernet (one 802.1Q tag at most), IP, TCP.
  let l2 = 14;
  let ether = (frame[12]! << 8) | frame[13]!;
  if (ether === 0x8100) {
    l2 = 18;
    ether = (frame[16]! << 8) | frame[17]!;
  }
  const l3 = ipv6 ? 40 : (frame[l2]! & 0xf) * 4;
  const proto = ipv6 ? frame[l2 + 6]! : frame[l2 + 9]!;
  if (ether !== (ipv6 ? 0x86dd : 0x0800) || proto !== 6 || l2 + l3 + 20 > frame.length) {
    host.violation(`gso_type ${ipv6 ? "TCPV6" : "TCPV4"} on a frame that is not TCP over ${ipv6 ? "IPv6" : "IPv4"} (ethertype 0x${ether.toString(16)}, protocol ${proto})`);
    return [];
  }
  const l4 = (frame[l2 + l3 + 12]! >> 4) * 4;
  if (start !== l2 + l3 || mss === 0 || l4 < 20 || l2 + l3 + l4 > frame.length) {
    host.violation(`GSO frame: csum_start ${start} (headers say ${l2 + l3}), gso_size ${mss}, TCP header ${l4} bytes`);
    return [];
  }
  const hdrLen = get16(header, HDR_HDR_LEN);
  if (hdrLen !== 0 && hdrLen < l2 + l3 + l4) host.violation(`GSO frame: hdr_len ${hdrLen} is shorter than its headers (${l2 + l3 + l4})`);
  const segments = segmentTcp(frame, l2, l3, l4, mss, ipv6);
  counters.txGso++;
  counters.txSegments += segments.length;
  return segments;
}

/**
 * §5.1.6.4: fills `header` (zeroed, num_buffers the caller's) for `frame` as received, and returns
 * the frame to deliver (completed when it is partial and the driver cannot take that).
 */
export function receiveHeader(host: OffloadHost, header: Uint8Array, frame: Uint8Array, partial: PartialChecksum | undefined,
  counters: OffloadCounters): Uint8Array {
  const guest = host.negotiated(F.GUEST_CSUM);
  if (partial !== undefined) {
    if (partial.csumStart + partial.csumOffset + 2 > frame.length) throw new RangeError("VirtioNetModel: inject(): partial checksum beyond the frame");
    if (!guest) {
      // The driver cannot take a partial checksum: complete it (tun's skb_checksum_help).
      const out = frame.slice();
      const at = partial.csumStart + partial.csumOffset;
      const c = ~sum16(out, partial.csumStart, out.length) & 0xffff;
      out[at] = c >> 8;
      out[at + 1] = c & 0xff;
      return out;
    }
    header[HDR_FLAGS] = F_NEEDS_CSUM;
    header[HDR_CSUM_START] = partial.csumStart & 0xff;
    header[HDR_CSUM_START + 1] = partial.csumStart >> 8;
    header[HDR_CSUM_OFFSET] = partial.csumOffset & 0xff;
    header[HDR_CSUM_OFFSET + 1] = partial.csumOffset >> 8;
    counters.rxNeedsCsum++;
    return frame;
  }
  if (guest && checkFrameChecksums(frame, 0, frame.length).l4 === "good") {
    header[HDR_FLAGS] = F_DATA_VALID;
    counters.rxDataValid++;
  }
  return frame;
}
