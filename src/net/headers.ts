/**
 * Where the headers of an Ethernet frame are: what a checksum or segmentation offload needs to
 * know (the lengths an 82599 context descriptor or a virtio-net header carries). Off the hot
 * path: requestChecksum()/requestTso() and the device models call it once per frame.
 *
 * Recognised: Ethernet II with up to two VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8), IPv4 with
 * options, IPv6 with hop-by-hop, routing and destination-options extension headers, then TCP or
 * UDP. Fragments are not offloadable (their L4 header is in the first fragment only).
 */

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETHERTYPE_QINQ = 0x88a8;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
const IPV6_HOP_BY_HOP = 0;
const IPV6_ROUTING = 43;
const IPV6_FRAGMENT = 44;
const IPV6_DEST_OPTIONS = 60;

export interface FrameHeaders {
  /** Ethernet header bytes, VLAN tags included (14, 18 or 22). */
  readonly l2: number;
  /** IP header bytes: IPv4 with options, or IPv6 with its extension headers. */
  readonly l3: number;
  /** TCP header bytes with options, or 8 for UDP. */
  readonly l4: number;
  readonly ipv6: boolean;
  /** IPPROTO_TCP or IPPROTO_UDP. */
  readonly proto: number;
}

/**
 * The headers of the frame in bytes[start .. start + length), or a string saying why it has no
 * offloadable TCP or UDP header (the caller turns it into its own error).
 */
export function parseFrameHeaders(bytes: Uint8Array, start: number, length: number): FrameHeaders | string {
  const end = start + length;
  let l2 = 14;
  if (length < l2) return `a frame of ${length} bytes has no Ethernet header`;
  let type = (bytes[start + 12]! << 8) | bytes[start + 13]!;
  for (let tags = 0; (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ) && tags < 2; tags++) {
    if (length < l2 + 4) return "the frame ends inside a VLAN tag";
    type = (bytes[start + l2 + 2]! << 8) | bytes[start + l2 + 3]!;
    l2 += 4;
  }
  const ip = start + l2;
  let l3: number;
  let proto: number;
  let ipv6: boolean;
  if (type === ETHERTYPE_IPV4) {
    ipv6 = false;
    if (end < ip + 20) return "the frame ends inside its IPv4 header";
    if (bytes[ip]! >> 4 !== 4) return "the IPv4 ethertype carries no IPv4 header";
    l3 = (bytes[ip]! & 0xf) * 4;
    if (l3 < 20 || end < ip + l3) return `bad IPv4 header length ${l3}`;
    const fragment = ((bytes[ip + 6]! << 8) | bytes[ip + 7]!) & 0x3fff; // MF flag and offset
    if (fragment !== 0) return "an IPv4 fragment";
    proto = bytes[ip + 9]!;
  } else if (type === ETHERTYPE_IPV6) {
    ipv6 = true;
    if (end < ip + 40) return "the frame ends inside its IPv6 header";
    l3 = 40;
    proto = bytes[ip + 6]!;
    while (proto === IPV6_HOP_BY_HOP || proto === IPV6_ROUTING || proto === IPV6_DEST_OPTIONS) {
      if (end < ip + l3 + 8) return "the frame ends inside an IPv6 extension header";
      const next = bytes[ip + l3]!;
      l3 += (bytes[ip + l3 + 1]! + 1) * 8;
      proto = next;
    }
    if (proto === IPV6_FRAGMENT) return "an IPv6 fragment";
    if (end < ip + l3) return "the frame ends inside an IPv6 extension header";
  } else {
    return `ethertype 0x${type.toString(16).padStart(4, "0")} is neither IPv4 nor IPv6`;
  }
  let l4: number;
  if (proto === IPPROTO_TCP) {
    if (end < ip + l3 + 20) return "the frame ends inside its TCP header";
    l4 = (bytes[ip + l3 + 12]! >> 4) * 4;
    if (l4 < 20 || end < ip + l3 + l4) return `bad TCP header length ${l4}`;
  } else if (proto === IPPROTO_UDP) {
    if (end < ip + l3 + 8) return "the frame ends inside its UDP header";
    l4 = 8;
  } else {
    return `IP protocol ${proto} is neither TCP nor UDP`;
  }
  return { l2, l3, l4, ipv6, proto };
}
