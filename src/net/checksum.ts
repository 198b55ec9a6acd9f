/**
 * The Internet checksum (RFC 1071) and what a NIC's checksum offload does, in software: for
 * drivers completing a request their device cannot (or was told not to) offload, for the device
 * models, which compute and check checksums as the hardware would, and for tests.
 *
 * The convention every part of ixy.ts follows, the one of Linux's CHECKSUM_PARTIAL and of
 * virtio-net's NEEDS_CSUM (virtio 1.2 §5.1.6.2): a frame handed to a device with a TCP/UDP
 * checksum request carries, in its checksum field, the one's-complement sum of the pseudo-header
 * (not inverted). The device then sums from the start of the L4 header to the end of the frame,
 * field included, and writes the inverted result into the field. An IPv4 header checksum request
 * carries 0 in the IPv4 checksum field. requestChecksum() (src/mem/offload.ts) prepares both.
 */
import { bufDataOffset, bufL2Len, bufL3Len, bufLength, bufPool, bufTxOffload, poolBytes, poolWords16 } from "../mem/buffer-table.ts";
import { TX_OFFLOAD } from "../mem/offload-flags.ts";
import { IPPROTO_TCP, IPPROTO_UDP, parseFrameHeaders } from "./headers.ts";

/** The 16-bit one's-complement sum of bytes[start .. end) (big-endian words; an odd last byte is padded), plus `initial`; folded, not inverted. */
export function onesSum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  // Fold the carries back in (sum stays below 2^32 for any frame below 128 KiB).
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/**
 * onesSum, faster: `words` is a Uint16Array over the same memory as `bytes`, from the same
 * origin (a pool's poolWords16 and poolBytes). It loads native little-endian 16-bit words, a
 * load per two bytes instead of two loads and a shift, and swaps the folded result: RFC 1071
 * §2(B), the one's-complement sum of byte-swapped words is the byte-swapped sum. An odd `start`
 * (never a header's, which all start at even offsets) takes the byte loop.
 */
export function onesSumWords(bytes: Uint8Array, words: Uint16Array, start: number, end: number, initial = 0): number {
  if ((start & 1) !== 0) return onesSum(bytes, start, end, initial);
  let a = 0;
  let b = 0;
  let k = start >>> 1;
  const last = end >>> 1;
  // Two accumulators, four words a round: at most 16384 words each for a 64 KiB frame, so each
  // stays below 2^30 and V8 keeps it a small integer.
  for (; k + 3 < last; k += 4) {
    a += words[k]! + words[k + 2]!;
    b += words[k + 1]! + words[k + 3]!;
  }
  for (; k < last; k++) a += words[k]!;
  let sum = a + b;
  if ((end & 1) !== 0) sum += bytes[end - 1]!; // the odd last byte is the high byte of its big-endian word, low here
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  sum = ((sum & 0xff) << 8) | (sum >>> 8);
  return foldSum(sum + initial);
}

/** The Internet checksum of bytes[start .. end): the inverted one's-complement sum, `initial` added. */
export function internetChecksum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  return ~onesSum(bytes, start, end, initial) & 0xffff;
}

/**
 * The one's-complement sum (folded, not inverted) of the TCP/UDP pseudo-header of the IP header
 * at bytes[ip]: addresses, protocol and `l4Length` (RFC 793 for IPv4; RFC 8200 §8.1 for IPv6).
 * Pass l4Length 0 for the seed the 82599's TSO wants (datasheet 7.2.4: the length changes per
 * segment, so the hardware adds it).
 */
export function pseudoHeaderSum(bytes: Uint8Array, ip: number, ipv6: boolean, proto: number, l4Length: number): number {
  const sum = ipv6 ? onesSum(bytes, ip + 8, ip + 40) : onesSum(bytes, ip + 12, ip + 20);
  return foldSum(sum + proto + (l4Length >>> 16) + (l4Length & 0xffff));
}

function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** Where the L4 checksum field is, from the start of the L4 header. */
export function l4ChecksumOffset(proto: number): number {
  return proto === IPPROTO_UDP ? 6 : 16;
}

/**
 * Where the IP datagram whose header is at bytes[ip] ends, by its own length field, and never
 * past `frameEnd`: Ethernet pads a short frame, and the padding is not part of the segment.
 */
export function ipPayloadEnd(bytes: Uint8Array, ip: number, ipv6: boolean, frameEnd: number): number {
  const end = ipv6 ? ip + 40 + ((bytes[ip + 4]! << 8) | bytes[ip + 5]!) : ip + ((bytes[ip + 2]! << 8) | bytes[ip + 3]!);
  return end < frameEnd ? end : frameEnd;
}

/** Writes the IPv4 header checksum of the header at bytes[ip .. ip + l3). */
export function fillIpv4Checksum(bytes: Uint8Array, ip: number, l3: number, words?: Uint16Array): void {
  bytes[ip + 10] = 0;
  bytes[ip + 11] = 0;
  const c = ~(words === undefined ? onesSum(bytes, ip, ip + l3) : onesSumWords(bytes, words, ip, ip + l3)) & 0xffff;
  bytes[ip + 10] = c >> 8;
  bytes[ip + 11] = c & 0xff;
}

/**
 * Writes the full TCP or UDP checksum of the segment at bytes[l4 .. end) (the field's old
 * content ignored). UDP's 0 is sent as 0xffff (RFC 768: 0 means "no checksum").
 */
export function fillL4Checksum(bytes: Uint8Array, ip: number, l4: number, end: number, ipv6: boolean, proto: number, words?: Uint16Array): void {
  const field = l4 + l4ChecksumOffset(proto);
  bytes[field] = 0;
  bytes[field + 1] = 0;
  const seed = pseudoHeaderSum(bytes, ip, ipv6, proto, end - l4);
  let c = ~(words === undefined ? onesSum(bytes, l4, end, seed) : onesSumWords(bytes, words, l4, end, seed)) & 0xffff;
  if (c === 0 && proto === IPPROTO_UDP) c = 0xffff;
  bytes[field] = c >> 8;
  bytes[field + 1] = c & 0xff;
}

/**
 * Does in software what buffer `buf`'s checksum request asks of a device (bufTxOffload: an IPv4
 * header checksum, a TCP or UDP checksum; the lengths in bufL2Len/bufL3Len). Drivers call it for
 * a request their device does not offload, so that the wire sees the same bytes either way. The
 * request flags are left as they are (txBatch clears them). A TSO request is not a checksum
 * request: its segments' checksums are the segmentation's.
 */
export function completeChecksums(buf: number): void {
  const flags = bufTxOffload[buf]!;
  const pool = bufPool[buf]!;
  const bytes = poolBytes[pool]!;
  const words = poolWords16[pool]!;
  const start = bufDataOffset[buf]!;
  const ip = start + bufL2Len[buf]!;
  const l3 = bufL3Len[buf]!;
  const ipv6 = (flags & TX_OFFLOAD.ipv6) !== 0;
  const end = ipPayloadEnd(bytes, ip, ipv6, start + bufLength[buf]!);
  if ((flags & TX_OFFLOAD.ipChecksum) !== 0) fillIpv4Checksum(bytes, ip, l3, words);
  if ((flags & TX_OFFLOAD.tcpChecksum) !== 0) fillL4Checksum(bytes, ip, ip + l3, end, ipv6, IPPROTO_TCP, words);
  else if ((flags & TX_OFFLOAD.udpChecksum) !== 0) fillL4Checksum(bytes, ip, ip + l3, end, ipv6, IPPROTO_UDP, words);
}

export type ChecksumVerdict = "good" | "bad" | "none";

/**
 * What a receiving NIC would say of the frame in bytes[start .. start + length): the IPv4 header
 * checksum ("none" for IPv6, or a frame that is not IP) and the TCP/UDP checksum ("none" for
 * other protocols, fragments, and UDP over IPv4 sent without a checksum, 0). For models and tests.
 */
export function checkFrameChecksums(bytes: Uint8Array, start: number, length: number): { ip: ChecksumVerdict; l4: ChecksumVerdict } {
  const h = parseFrameHeaders(bytes, start, length);
  if (typeof h === "string") {
    return { ip: ipv4HeaderVerdict(bytes, start, length), l4: "none" };
  }
  const ip = start + h.l2;
  const ipVerdict: ChecksumVerdict = h.ipv6 ? "none" : onesSum(bytes, ip, ip + h.l3) === 0xffff ? "good" : "bad";
  const l4 = ip + h.l3;
  // The segment ends where the IP header says the datagram ends (Ethernet pads short frames).
  const declared = h.ipv6 ? ip + 40 + ((bytes[ip + 4]! << 8) | bytes[ip + 5]!) : ip + ((bytes[ip + 2]! << 8) | bytes[ip + 3]!);
  if (declared > start + length || declared < l4 + h.l4) return { ip: ipVerdict, l4: "bad" };
  const ipEnd = declared;
  const field = l4 + l4ChecksumOffset(h.proto);
  if (h.proto === IPPROTO_UDP && !h.ipv6 && bytes[field] === 0 && bytes[field + 1] === 0) return { ip: ipVerdict, l4: "none" };
  const sum = onesSum(bytes, l4, ipEnd, pseudoHeaderSum(bytes, ip, h.ipv6, h.proto, ipEnd - l4));
  return { ip: ipVerdict, l4: sum === 0xffff ? "good" : "bad" };
}

// An IPv4 header whose L4 part is not offloadable (a fragment, another protocol) still has a
// header checksum the hardware checks.
function ipv4HeaderVerdict(bytes: Uint8Array, start: number, length: number): ChecksumVerdict {
  let ip = start + 14;
  let type = length >= 14 ? (bytes[start + 12]! << 8) | bytes[start + 13]! : 0;
  for (let tags = 0; (type === 0x8100 || type === 0x88a8) && tags < 2 && ip + 4 <= start + length; tags++) {
    type = (bytes[ip + 2]! << 8) | bytes[ip + 3]!;
    ip += 4;
  }
  if (type !== 0x0800 || ip + 20 > start + length || bytes[ip]! >> 4 !== 4) return "none";
  const l3 = (bytes[ip]! & 0xf) * 4;
  if (l3 < 20 || ip + l3 > start + length) return "none";
  return onesSum(bytes, ip, ip + l3) === 0xffff ? "good" : "bad";
}

export { IPPROTO_TCP, IPPROTO_UDP };
