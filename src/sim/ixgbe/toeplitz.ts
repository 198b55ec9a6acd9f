/**
 * The 82599 model's receive-side scaling parser and hash (datasheet 7.1.2.8), written from the
 * datasheet and Microsoft's RSS specification, not from the driver (which only programs it).
 *
 * - toeplitzHash: 7.1.2.8.1 / Microsoft "RSS hashing functions": for every input bit from the
 *   most significant bit of byte 0 on, a set bit XORs the key's current leftmost 32 bits into
 *   the result; then the key window slides left by one bit.
 * - classifyRss: parses an Ethernet frame (one optional 802.1Q tag) for IPv4 or IPv6 and TCP or
 *   UDP, and picks the hash input the enabled MRQC hash types ask for (7.1.2.8.1):
 *   IPv4/TCP and IPv4/UDP: source address, destination address, source port, destination port
 *   (12 bytes), only for a frame that is not a fragment; otherwise IPv4: the two addresses (8
 *   bytes); likewise IPv6/TCP, IPv6/UDP (36 bytes) and IPv6 (32 bytes). It also gives the
 *   descriptor's Packet Type bits (7.1.6.2).
 * Simplifications: an IPv6 frame with an extension header is hashed on its addresses only (the
 * IPv6_EX types, which would look into the headers, are not modelled) and has the IPV6E type
 * bit; IPv4 options are skipped (IPV4E). Non-IP frames get no hash (RSS type 0).
 */
import * as R from "./model-registers.ts";

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
/** IPv6 next-header values that are extension headers (RFC 8200 4.1 order: hop-by-hop, routing, fragment, destination options). */
const IPV6_EXTENSIONS: readonly number[] = [0, 43, 44, 60];
/** The hash input being assembled (at most IPv6 addresses + ports); reused, the model is single-threaded. */
const scratch = new Uint8Array(36);

/** The Toeplitz hash of input[0 .. length) with `key` (at least length + 4 bytes), as a uint32. */
export function toeplitzHash(key: Uint8Array, input: Uint8Array, length = input.length): number {
  if (key.length < length + 4) throw new RangeError(`a Toeplitz key for ${length} input bytes needs ${length + 4} bytes, got ${key.length}`);
  let result = 0;
  // The key's leftmost 32 bits, then the next key byte to shift in bit by bit.
  let window = ((key[0]! << 24) | (key[1]! << 16) | (key[2]! << 8) | key[3]!) >>> 0;
  for (let i = 0; i < length; i++) {
    const byte = input[i]!;
    const next = key[i + 4]!;
    for (let bit = 7; bit >= 0; bit--) {
      if (((byte >>> bit) & 1) !== 0) result ^= window;
      window = ((window << 1) | ((next >>> bit) & 1)) >>> 0;
    }
  }
  return result >>> 0;
}

export interface RssClassification {
  /** The Toeplitz hash (0 when no enabled hash type applies). */
  hash: number;
  /** RXD_RSSTYPE_* of the hash computed (RXD_RSSTYPE_NONE: none). */
  rssType: number;
  /** RXD_PKTTYPE_* bits for descriptor word 0. */
  packetType: number;
}

/** The hash input of a frame under the MRQC hash types `mrqc`, hashed with `key` (7.1.2.8.1). */
export function classifyRss(frame: Uint8Array, mrqc: number, key: Uint8Array): RssClassification {
  const out: RssClassification = { hash: 0, rssType: R.RXD_RSSTYPE_NONE, packetType: 0 };
  let l3 = 14;
  if (frame.length < l3) return out;
  let ethertype = (frame[12]! << 8) | frame[13]!;
  if (ethertype === ETHERTYPE_VLAN) {
    l3 += 4;
    if (frame.length < l3) return out;
    ethertype = (frame[16]! << 8) | frame[17]!;
  }
  const input = scratch;
  if (ethertype === ETHERTYPE_IPV4) {
    if (frame.length < l3 + 20 || frame[l3]! >>> 4 !== 4) return out;
    const headerLength = (frame[l3]! & 0xf) * 4;
    if (headerLength < 20 || frame.length < l3 + headerLength) return out;
    out.packetType = R.RXD_PKTTYPE_IPV4 | (headerLength > 20 ? R.RXD_PKTTYPE_IPV4E : 0);
    input.set(frame.subarray(l3 + 12, l3 + 20), 0); // source, destination address
    const protocol = frame[l3 + 9]!;
    // A fragment (MF set or a fragment offset) has no L4 header to hash, or only the first one does.
    const fragment = (((frame[l3 + 6]! << 8) | frame[l3 + 7]!) & 0x3fff) !== 0;
    const l4 = l3 + headerLength;
    const ports = !fragment && frame.length >= l4 + 4;
    if (ports && protocol === PROTO_TCP) out.packetType |= R.RXD_PKTTYPE_TCP;
    if (ports && protocol === PROTO_UDP) out.packetType |= R.RXD_PKTTYPE_UDP;
    if (ports && protocol === PROTO_TCP && (mrqc & R.MRQC_RSS_FIELD_IPV4_TCP) !== 0) {
      input.set(frame.subarray(l4, l4 + 4), 8);
      return hashed(out, key, input, 12, R.RXD_RSSTYPE_IPV4_TCP);
    }
    if (ports && protocol === PROTO_UDP && (mrqc & R.MRQC_RSS_FIELD_IPV4_UDP) !== 0) {
      input.set(frame.subarray(l4, l4 + 4), 8);
      return hashed(out, key, input, 12, R.RXD_RSSTYPE_IPV4_UDP);
    }
    if ((mrqc & R.MRQC_RSS_FIELD_IPV4) !== 0) return hashed(out, key, input, 8, R.RXD_RSSTYPE_IPV4);
    return out;
  }
  if (ethertype === ETHERTYPE_IPV6) {
    if (frame.length < l3 + 40 || frame[l3]! >>> 4 !== 6) return out;
    const next = frame[l3 + 6]!;
    out.packetType = R.RXD_PKTTYPE_IPV6 | (IPV6_EXTENSIONS.includes(next) ? R.RXD_PKTTYPE_IPV6E : 0);
    input.set(frame.subarray(l3 + 8, l3 + 40), 0); // source, destination address
    const l4 = l3 + 40;
    const ports = frame.length >= l4 + 4;
    if (ports && next === PROTO_TCP) out.packetType |= R.RXD_PKTTYPE_TCP;
    if (ports && next === PROTO_UDP) out.packetType |= R.RXD_PKTTYPE_UDP;
    if (ports && next === PROTO_TCP && (mrqc & R.MRQC_RSS_FIELD_IPV6_TCP) !== 0) {
      input.set(frame.subarray(l4, l4 + 4), 32);
      return hashed(out, key, input, 36, R.RXD_RSSTYPE_IPV6_TCP);
    }
    if (ports && next === PROTO_UDP && (mrqc & R.MRQC_RSS_FIELD_IPV6_UDP) !== 0) {
      input.set(frame.subarray(l4, l4 + 4), 32);
      return hashed(out, key, input, 36, R.RXD_RSSTYPE_IPV6_UDP);
    }
    if ((mrqc & R.MRQC_RSS_FIELD_IPV6) !== 0) return hashed(out, key, input, 32, R.RXD_RSSTYPE_IPV6);
  }
  return out;
}

function hashed(out: RssClassification, key: Uint8Array, input: Uint8Array, length: number, rssType: number): RssClassification {
  out.hash = toeplitzHash(key, input, length);
  out.rssType = rssType;
  return out;
}
