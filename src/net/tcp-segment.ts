/**
 * TCP segmentation in software: what a NIC's TSO makes of one large TCP segment. The device
 * models use it to emit what the 82599 (datasheet 7.2.4, "TCP Segmentation") and a virtio-net
 * device with HOST_TSO4/6 (virtio 1.2 §5.1.6.2) put on the wire, and tests use it as the
 * expectation. Never on a hot path: it allocates a frame per segment.
 *
 * Per segment, as both define it: the Ethernet, IP and TCP headers of the large segment are
 * copied; the IPv4 total length (or IPv6 payload length) fits the segment; the IPv4
 * identification goes up by one per segment; the TCP sequence number advances by the payload
 * before it; FIN and PSH stay on the last segment only and CWR on the first only (the 82599's
 * default DTXTCPFLGL/H masks); the IPv4 header checksum and the TCP checksum are computed anew.
 */
import { fillIpv4Checksum, fillL4Checksum, ipPayloadEnd } from "./checksum.ts";
import { IPPROTO_TCP } from "./headers.ts";

const TCP_FIN = 0x01;
const TCP_PSH = 0x08;
const TCP_CWR = 0x80;

/**
 * The frames TSO makes of `frame` (Ethernet header of l2 bytes, IP header of l3, TCP header of
 * l4, then the payload), each carrying at most `mss` payload bytes. A payload of `mss` bytes or
 * less gives one frame (checksums filled all the same).
 */
export function segmentTcp(frame: Uint8Array, l2: number, l3: number, l4: number, mss: number, ipv6: boolean): Uint8Array[] {
  if (!Number.isInteger(mss) || mss < 1) throw new RangeError(`segmentTcp: mss must be a positive integer, got ${mss}`);
  const headers = l2 + l3 + l4;
  const end = ipPayloadEnd(frame, l2, ipv6, frame.length);
  if (end < headers) throw new RangeError(`segmentTcp: the frame's IP length ends inside its headers (${end} < ${headers})`);
  const payload = end - headers;
  const count = payload === 0 ? 1 : Math.ceil(payload / mss);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const id = ipv6 ? 0 : view.getUint16(l2 + 4);
  const seq = view.getUint32(l2 + l3 + 4);
  const flags = frame[l2 + l3 + 13]!;
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const from = headers + i * mss;
    const n = Math.min(mss, end - from);
    const seg = new Uint8Array(headers + Math.max(n, 0));
    seg.set(frame.subarray(0, headers));
    if (n > 0) seg.set(frame.subarray(from, from + n), headers);
    const v = new DataView(seg.buffer);
    if (ipv6) {
      v.setUint16(l2 + 4, l3 - 40 + l4 + Math.max(n, 0));
    } else {
      v.setUint16(l2 + 2, l3 + l4 + Math.max(n, 0));
      v.setUint16(l2 + 4, (id + i) & 0xffff);
      fillIpv4Checksum(seg, l2, l3);
    }
    v.setUint32(l2 + l3 + 4, (seq + i * mss) >>> 0);
    let f = flags;
    if (i !== count - 1) f &= ~(TCP_FIN | TCP_PSH);
    if (i !== 0) f &= ~TCP_CWR;
    seg[l2 + l3 + 13] = f;
    fillL4Checksum(seg, l2, l2 + l3, seg.length, ipv6, IPPROTO_TCP);
    out.push(seg);
  }
  return out;
}
