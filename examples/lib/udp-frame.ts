/**
 * Building the packet generator's frames: Ethernet II + IPv4 + UDP, with a 32-bit sequence number
 * at the start of the UDP payload. Everything but the sequence number is written once per buffer
 * (ixy's trick: the pool's buffers keep their contents between uses), so the send loop only
 * stores four bytes per packet. The UDP checksum is 0 ("not computed", allowed for IPv4, RFC 768).
 */
import { internetChecksum } from "../../src/net/checksum.ts";

export const ETH_HLEN = 14;
export const IPV4_HLEN = 20;
export const UDP_HLEN = 8;
/** Offset of the sequence number in the frame. */
export const SEQ_OFFSET = ETH_HLEN + IPV4_HLEN + UDP_HLEN;
/** Smallest Ethernet frame without the 4-byte FCS the NIC appends. */
export const MIN_FRAME = 60;
export const MAX_FRAME = 1514;

export interface UdpFrameOptions {
  readonly srcMac?: Uint8Array;
  readonly dstMac?: Uint8Array;
  readonly srcIp?: readonly [number, number, number, number];
  readonly dstIp?: readonly [number, number, number, number];
  readonly srcPort?: number;
  readonly dstPort?: number;
}

/** The Internet checksum (RFC 1071) of `header`: 0 for a header whose checksum is right. */
export function ipv4Checksum(header: Uint8Array): number {
  return internetChecksum(header, 0, header.length);
}

/** Writes a complete frame of `size` bytes (60..1514) into `out`; returns size. */
export function writeUdpFrame(out: Uint8Array, size: number, o: UdpFrameOptions = {}): number {
  if (!Number.isInteger(size) || size < MIN_FRAME || size > MAX_FRAME) {
    throw new RangeError(`frame size must be ${MIN_FRAME} to ${MAX_FRAME} bytes, got ${size}`);
  }
  const dst = o.dstMac ?? Uint8Array.of(0x02, 0, 0, 0, 0, 0x02);
  const src = o.srcMac ?? Uint8Array.of(0x02, 0, 0, 0, 0, 0x01);
  const sip = o.srcIp ?? [10, 0, 0, 1];
  const dip = o.dstIp ?? [10, 0, 0, 2];
  out.fill(0, 0, size);
  out.set(dst, 0);
  out.set(src, 6);
  out[12] = 0x08; // EtherType IPv4
  out[13] = 0x00;
  const ip = ETH_HLEN;
  const ipLen = size - ETH_HLEN;
  out[ip] = 0x45; // version 4, IHL 5
  out[ip + 2] = ipLen >>> 8;
  out[ip + 3] = ipLen & 0xff;
  out[ip + 6] = 0x40; // don't fragment
  out[ip + 8] = 64; // TTL
  out[ip + 9] = 17; // UDP
  out.set(sip, ip + 12);
  out.set(dip, ip + 16);
  const csum = ipv4Checksum(out.subarray(ip, ip + IPV4_HLEN));
  out[ip + 10] = csum >>> 8;
  out[ip + 11] = csum & 0xff;
  const udp = ip + IPV4_HLEN;
  const udpLen = size - udp;
  const sport = o.srcPort ?? 42;
  const dport = o.dstPort ?? 1337;
  out[udp] = sport >>> 8;
  out[udp + 1] = sport & 0xff;
  out[udp + 2] = dport >>> 8;
  out[udp + 3] = dport & 0xff;
  out[udp + 4] = udpLen >>> 8;
  out[udp + 5] = udpLen & 0xff;
  // Payload after the sequence number: a recognisable pattern.
  for (let i = SEQ_OFFSET + 4; i < size; i++) out[i] = i & 0xff;
  return size;
}

/**
 * Stores the sequence number big-endian at SEQ_OFFSET of the frame that starts at bytes[start]:
 * four byte stores, no view made. For a packet buffer b of pool p that is
 * setSequence(p.bytes, bufDataOffset[b], seq).
 */
export function setSequence(bytes: Uint8Array, start: number, seq: number): void {
  const at = start + SEQ_OFFSET;
  bytes[at] = seq >>> 24;
  bytes[at + 1] = (seq >>> 16) & 0xff;
  bytes[at + 2] = (seq >>> 8) & 0xff;
  bytes[at + 3] = seq & 0xff;
}

/** The sequence number of the frame that starts at bytes[start] (default: a frame of its own). */
export function getSequence(bytes: Uint8Array, start = 0): number {
  const at = start + SEQ_OFFSET;
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}
