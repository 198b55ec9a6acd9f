/**
 * Offload requests and results of the packet API, per buffer (docs/offloads.md).
 *
 * Sending: `requestChecksum(b)` asks the device to fill in the IPv4 header checksum and the TCP
 * or UDP checksum of b's frame on its next send; `requestTso(b, mss)` asks it to cut b's TCP
 * segment (larger than the link's MTU) into frames of `mss` payload bytes, each with its
 * checksums. A driver whose device lacks the checksum offload (or had it turned off) completes
 * the request in software; TSO without the device's support is a NotSupportedError from txBatch.
 * A request applies to one send: txBatch clears it as it takes the buffer.
 *
 * Receiving: `rxChecksumOf(b)` says what the device found (hot loops read bufRxOffload[b]).
 *
 * The cost for frames without a request: txBatch loads one byte per buffer, rxBatch stores two.
 * The request functions parse the frame's headers (about as much work as a software checksum of
 * the headers alone, not of the payload).
 */
import { bufDataOffset, bufL2Len, bufL3Len, bufL4Len, bufLength, bufMss, bufPool, bufRxOffload, bufTxOffload, isBufferNumber, poolBytes, type PacketBuffer } from "./buffer-table.ts";
import { RX_OFFLOAD, TX_OFFLOAD } from "./offload-flags.ts";
import { IPPROTO_TCP, parseFrameHeaders, type FrameHeaders } from "../net/headers.ts";
import { ipPayloadEnd, l4ChecksumOffset, pseudoHeaderSum } from "../net/checksum.ts";
import { checkInteger, describeValue } from "../validate.ts";

export { RX_OFFLOAD, TX_CHECKSUM_REQUESTS, TX_OFFLOAD } from "./offload-flags.ts";

/** The largest TCP segment a TSO request may carry: an IP datagram's 64 KiB plus the Ethernet header. */
export const TSO_MAX_FRAME = 65535 + 22;

function headersOf(buf: PacketBuffer, what: string): FrameHeaders {
  if (typeof buf !== "number") throw new TypeError(`${what}: a packet buffer is a number (from Mempool.alloc() or rxBatch()), got ${describeValue(buf)}`);
  if (!isBufferNumber(buf)) throw new RangeError(`${what}: ${buf} is not a packet buffer of any open mempool`);
  const h = parseFrameHeaders(poolBytes[bufPool[buf]!]!, bufDataOffset[buf]!, bufLength[buf]!);
  if (typeof h === "string") throw new RangeError(`${what}: buffer ${buf} holds no TCP or UDP segment to offload (${h})`);
  return h;
}

// Seeds the L4 checksum field with the pseudo-header sum (checksum.ts has the convention).
function seed(buf: PacketBuffer, h: FrameHeaders, l4Length: number): void {
  const bytes = poolBytes[bufPool[buf]!]!;
  const ip = bufDataOffset[buf]! + h.l2;
  const field = ip + h.l3 + l4ChecksumOffset(h.proto);
  const sum = pseudoHeaderSum(bytes, ip, h.ipv6, h.proto, l4Length);
  bytes[field] = sum >> 8;
  bytes[field + 1] = sum & 0xff;
  if (!h.ipv6) {
    bytes[ip + 10] = 0;
    bytes[ip + 11] = 0;
  }
}

function record(buf: PacketBuffer, h: FrameHeaders, flags: number): void {
  bufL2Len[buf] = h.l2;
  bufL3Len[buf] = h.l3;
  bufL4Len[buf] = h.l4;
  bufTxOffload[buf] = flags | (h.ipv6 ? TX_OFFLOAD.ipv6 : TX_OFFLOAD.ipChecksum);
}

/**
 * Asks the device to fill in the checksums of b's frame (IPv4 header, TCP or UDP) on its next
 * send. Writes the pseudo-header seed into the L4 checksum field and 0 into the IPv4 one.
 * RangeError for a frame that is not TCP or UDP over IPv4 or IPv6 (or a fragment).
 */
export function requestChecksum(buf: PacketBuffer): void {
  const h = headersOf(buf, "requestChecksum");
  const start = bufDataOffset[buf]!;
  const ip = start + h.l2;
  const l4Length = ipPayloadEnd(poolBytes[bufPool[buf]!]!, ip, h.ipv6, start + bufLength[buf]!) - (ip + h.l3);
  seed(buf, h, l4Length);
  record(buf, h, h.proto === IPPROTO_TCP ? TX_OFFLOAD.tcpChecksum : TX_OFFLOAD.udpChecksum);
  bufMss[buf] = 0;
}

/**
 * Asks the device to cut b's TCP segment into frames carrying `mss` payload bytes each (the
 * last one the rest), every frame with its IP and TCP checksums. The TCP checksum field is
 * seeded with the pseudo-header sum without the length (the length differs per segment; both
 * the 82599, datasheet 7.2.4, and the virtio devices add it). RangeError for a frame that is not
 * TCP, an mss out of 1 .. 65535, or a frame larger than TSO_MAX_FRAME.
 */
export function requestTso(buf: PacketBuffer, mss: number): void {
  const h = headersOf(buf, "requestTso");
  checkInteger("requestTso", "mss", mss, 1, 0xffff);
  if (h.proto !== IPPROTO_TCP) throw new RangeError(`requestTso: buffer ${buf} holds a UDP datagram; TSO cuts TCP segments only`);
  if (bufLength[buf]! > TSO_MAX_FRAME) throw new RangeError(`requestTso: buffer ${buf} holds ${bufLength[buf]} bytes, more than a TSO request can carry (${TSO_MAX_FRAME})`);
  seed(buf, h, 0);
  record(buf, h, TX_OFFLOAD.tso | TX_OFFLOAD.tcpChecksum);
  bufMss[buf] = mss;
}

/** Withdraws b's request (its next send asks nothing). */
export function clearOffloadRequest(buf: PacketBuffer): void {
  if (!isBufferNumber(buf)) throw new RangeError(`clearOffloadRequest: ${describeValue(buf)} is not a packet buffer of any open mempool`);
  bufTxOffload[buf] = 0;
}

export type RxChecksum = "good" | "bad" | "partial" | "unknown";

/** What the device said about received buffer b's checksums. */
export function rxChecksumOf(buf: PacketBuffer): { ip: RxChecksum; l4: RxChecksum } {
  if (!isBufferNumber(buf)) throw new RangeError(`rxChecksumOf: ${describeValue(buf)} is not a packet buffer of any open mempool`);
  const f = bufRxOffload[buf]!;
  const ip: RxChecksum = (f & RX_OFFLOAD.ipChecksumBad) !== 0 ? "bad" : (f & RX_OFFLOAD.ipChecksumGood) !== 0 ? "good" : "unknown";
  const l4: RxChecksum =
    (f & RX_OFFLOAD.l4ChecksumBad) !== 0 ? "bad" : (f & RX_OFFLOAD.l4ChecksumPartial) !== 0 ? "partial" : (f & RX_OFFLOAD.l4ChecksumGood) !== 0 ? "good" : "unknown";
  return { ip, l4 };
}
