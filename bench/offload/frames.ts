// The frames of bench:offload: Ethernet + IPv4 + UDP or TCP, the payload a pattern of the frame's
// number, both checksums correct (as the wire would deliver them).
import { fillIpv4Checksum, fillL4Checksum, IPPROTO_TCP, IPPROTO_UDP } from "../../src/net/checksum.ts";

export type L4 = "udp" | "tcp";

export function buildFrame(l4: L4, size: number, seq: number): Uint8Array {
  const frame = new Uint8Array(size);
  const view = new DataView(frame.buffer);
  frame.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01], 0);
  view.setUint16(12, 0x0800);
  const ip = 14;
  frame[ip] = 0x45;
  view.setUint16(ip + 2, size - ip);
  view.setUint16(ip + 4, seq & 0xffff);
  frame[ip + 6] = 0x40; // don't fragment
  frame[ip + 8] = 64;
  frame[ip + 9] = l4 === "tcp" ? IPPROTO_TCP : IPPROTO_UDP;
  frame.set([10, 0, 0, 1, 10, 0, 0, 2], ip + 12);
  const l4At = ip + 20;
  view.setUint16(l4At, 1024 + (seq & 0x3ff));
  view.setUint16(l4At + 2, 5000);
  const header = l4 === "tcp" ? 20 : 8;
  if (l4 === "tcp") {
    view.setUint32(l4At + 4, seq);
    frame[l4At + 12] = 0x50;
    frame[l4At + 13] = 0x18; // PSH, ACK
    view.setUint16(l4At + 14, 0xffff);
  } else {
    view.setUint16(l4At + 4, size - l4At);
  }
  for (let i = l4At + header; i < size; i++) frame[i] = (seq * 31 + i) & 0xff;
  fillIpv4Checksum(frame, ip, 20);
  fillL4Checksum(frame, ip, l4At, size, false, l4 === "tcp" ? IPPROTO_TCP : IPPROTO_UDP);
  return frame;
}
