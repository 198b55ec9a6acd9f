/**
 * Frames for the RSS tests: Ethernet + IPv4 or IPv6 + TCP or UDP, with the addresses and ports
 * of a flow and a payload that numbers the frame, and Microsoft's RSS verification suite
 * ("Verifying the RSS Hash Calculation", learn.microsoft.com/windows-hardware/drivers/network/
 * verifying-the-rss-hash-calculation; also the 82599 datasheet's 7.1.2.8.3 RSS verification suite).
 */

/** Microsoft's verification key (40 bytes). */
export const MS_RSS_KEY = Uint8Array.from(
  Buffer.from("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa", "hex"),
);

export interface RssVector {
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** Expected hash over the two addresses. */
  l3: number;
  /** Expected hash over addresses and TCP ports. */
  l4: number;
}

/** The IPv4 table of the suite (source and destination as the packet carries them). */
export const MS_IPV4_VECTORS: readonly RssVector[] = [
  { src: "66.9.149.187", sport: 2794, dst: "161.142.100.80", dport: 1766, l3: 0x323e8fc2, l4: 0x51ccc178 },
  { src: "199.92.111.2", sport: 14230, dst: "65.69.140.83", dport: 4739, l3: 0xd718262a, l4: 0xc626b0ea },
  { src: "24.19.198.95", sport: 12898, dst: "12.22.207.184", dport: 38024, l3: 0xd2d0a5de, l4: 0x5c2b394a },
  { src: "38.27.205.30", sport: 48228, dst: "209.142.163.6", dport: 2217, l3: 0x82989176, l4: 0xafc7327f },
  { src: "153.39.163.191", sport: 44251, dst: "202.188.127.2", dport: 1303, l3: 0x5d1809c5, l4: 0x10e828a2 },
];

/** The IPv6 table of the suite. */
export const MS_IPV6_VECTORS: readonly RssVector[] = [
  { src: "3ffe:2501:200:1fff::7", sport: 2794, dst: "3ffe:2501:200:3::1", dport: 1766, l3: 0x2cc18cd5, l4: 0x40207d3d },
  { src: "3ffe:501:8::260:97ff:fe40:efab", sport: 14230, dst: "ff02::1", dport: 4739, l3: 0x0f0c461c, l4: 0xdde51bbf },
  { src: "3ffe:1900:4545:3:200:f8ff:fe21:67cf", sport: 44251, dst: "fe80::200:f8ff:fe21:67cf", dport: 38024, l3: 0x4b61e985, l4: 0x02d1feef },
];

export function ipv4Bytes(address: string): Uint8Array {
  return Uint8Array.from(address.split(".").map(Number));
}

export function ipv6Bytes(address: string): Uint8Array {
  const [head, tail] = address.includes("::") ? address.split("::") : [address, undefined];
  const left = head === "" ? [] : head!.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[2 * i] = v >>> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

export interface Flow {
  v6: boolean;
  protocol: "tcp" | "udp";
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

const DEST_MAC = [0x02, 0x00, 0x00, 0x82, 0x59, 0x99];
const SRC_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];

/**
 * A frame of `flow` with `payload` bytes of L4 payload; payload byte 0-3 carry `seq` (big
 * endian), the rest a pattern of it. Checksums are left 0: the model does not check them.
 */
export function flowFrame(flow: Flow, seq: number, payload = 26): Uint8Array {
  const l4Header = flow.protocol === "tcp" ? 20 : 8;
  const l3Header = flow.v6 ? 40 : 20;
  const frame = new Uint8Array(Math.max(60, 14 + l3Header + l4Header + payload));
  frame.set(DEST_MAC, 0);
  frame.set(SRC_MAC, 6);
  const view = new DataView(frame.buffer);
  view.setUint16(12, flow.v6 ? 0x86dd : 0x0800);
  const l4Length = l4Header + payload;
  const protocol = flow.protocol === "tcp" ? 6 : 17;
  if (flow.v6) {
    frame[14] = 0x60;
    view.setUint16(18, l4Length);
    frame[20] = protocol;
    frame[21] = 64;
    frame.set(ipv6Bytes(flow.src), 22);
    frame.set(ipv6Bytes(flow.dst), 38);
  } else {
    frame[14] = 0x45;
    view.setUint16(16, 20 + l4Length);
    frame[22] = 64;
    frame[23] = protocol;
    frame.set(ipv4Bytes(flow.src), 26);
    frame.set(ipv4Bytes(flow.dst), 30);
  }
  const l4 = 14 + l3Header;
  view.setUint16(l4, flow.sport);
  view.setUint16(l4 + 2, flow.dport);
  if (flow.protocol === "tcp") frame[l4 + 12] = 0x50;
  else view.setUint16(l4 + 4, l4Length);
  const data = l4 + l4Header;
  view.setUint32(data, seq >>> 0);
  for (let i = data + 4; i < data + payload; i++) frame[i] = (seq * 7 + i) & 0xff;
  return frame;
}
