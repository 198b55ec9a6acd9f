/**
 * The model's Toeplitz hash and RSS parser against Microsoft's RSS verification suite (key and
 * expected hashes in rss-frames.ts, with their source).
 */
import { describe, expect, it } from "vitest";
import * as M from "../../src/sim/ixgbe/model-registers.ts";
import { classifyRss, toeplitzHash } from "../../src/sim/ixgbe/toeplitz.ts";
import { MS_IPV4_VECTORS, MS_IPV6_VECTORS, MS_RSS_KEY, flowFrame, ipv4Bytes, ipv6Bytes, type RssVector } from "./rss-frames.ts";

const ALL_TYPES = M.MRQC_MRQE_RSS | M.MRQC_RSS_FIELD_IPV4 | M.MRQC_RSS_FIELD_IPV4_TCP | M.MRQC_RSS_FIELD_IPV4_UDP |
  M.MRQC_RSS_FIELD_IPV6 | M.MRQC_RSS_FIELD_IPV6_TCP | M.MRQC_RSS_FIELD_IPV6_UDP;

function input(v: RssVector, v6: boolean, ports: boolean): Uint8Array {
  const address = v6 ? ipv6Bytes : ipv4Bytes;
  const parts = [...address(v.src), ...address(v.dst)];
  if (ports) parts.push(v.sport >>> 8, v.sport & 0xff, v.dport >>> 8, v.dport & 0xff);
  return Uint8Array.from(parts);
}

const hex = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, "0")}`;

describe("toeplitzHash (7.1.2.8.1) on Microsoft's verification suite", () => {
  it.each(MS_IPV4_VECTORS.map((v) => [v.src, v.dst, v] as const))("IPv4 %s -> %s: addresses, and addresses + TCP ports", (_s, _d, v) => {
    expect(hex(toeplitzHash(MS_RSS_KEY, input(v, false, false)))).toBe(hex(v.l3));
    expect(hex(toeplitzHash(MS_RSS_KEY, input(v, false, true)))).toBe(hex(v.l4));
  });

  it.each(MS_IPV6_VECTORS.map((v) => [v.src, v.dst, v] as const))("IPv6 %s -> %s: addresses, and addresses + TCP ports", (_s, _d, v) => {
    expect(hex(toeplitzHash(MS_RSS_KEY, input(v, true, false)))).toBe(hex(v.l3));
    expect(hex(toeplitzHash(MS_RSS_KEY, input(v, true, true)))).toBe(hex(v.l4));
  });

  it("refuses a key too short for the input (it needs 4 bytes more than the input)", () => {
    expect(() => toeplitzHash(new Uint8Array(11), new Uint8Array(8))).toThrow(RangeError);
  });
});

describe("classifyRss: the hash input the MRQC hash types pick from a frame", () => {
  it("hashes TCP frames over addresses and ports, or addresses only without the TCP type", () => {
    for (const [vectors, v6] of [[MS_IPV4_VECTORS, false], [MS_IPV6_VECTORS, true]] as const) {
      for (const v of vectors) {
        const frame = flowFrame({ v6, protocol: "tcp", ...v }, 1);
        const withPorts = classifyRss(frame, ALL_TYPES, MS_RSS_KEY);
        expect(hex(withPorts.hash)).toBe(hex(v.l4));
        expect(withPorts.rssType).toBe(v6 ? M.RXD_RSSTYPE_IPV6_TCP : M.RXD_RSSTYPE_IPV4_TCP);
        expect(withPorts.packetType).toBe((v6 ? M.RXD_PKTTYPE_IPV6 : M.RXD_PKTTYPE_IPV4) | M.RXD_PKTTYPE_TCP);
        const tcpOff = ALL_TYPES & ~(M.MRQC_RSS_FIELD_IPV4_TCP | M.MRQC_RSS_FIELD_IPV6_TCP);
        const addressesOnly = classifyRss(frame, tcpOff, MS_RSS_KEY);
        expect(hex(addressesOnly.hash)).toBe(hex(v.l3));
        expect(addressesOnly.rssType).toBe(v6 ? M.RXD_RSSTYPE_IPV6 : M.RXD_RSSTYPE_IPV4);
      }
    }
  });

  it("hashes UDP the same fields as TCP (same layout), with the UDP RSS type", () => {
    const v = MS_IPV4_VECTORS[1]!;
    const udp = classifyRss(flowFrame({ v6: false, protocol: "udp", ...v }, 1), ALL_TYPES, MS_RSS_KEY);
    expect(hex(udp.hash)).toBe(hex(v.l4));
    expect(udp.rssType).toBe(M.RXD_RSSTYPE_IPV4_UDP);
    expect(udp.packetType).toBe(M.RXD_PKTTYPE_IPV4 | M.RXD_PKTTYPE_UDP);
    const w = MS_IPV6_VECTORS[2]!;
    const udp6 = classifyRss(flowFrame({ v6: true, protocol: "udp", ...w }, 1), ALL_TYPES, MS_RSS_KEY);
    expect(hex(udp6.hash)).toBe(hex(w.l4));
    expect(udp6.rssType).toBe(M.RXD_RSSTYPE_IPV6_UDP);
  });

  it("hashes an IPv4 fragment on its addresses only, and finds IPv4 behind an 802.1Q tag", () => {
    const v = MS_IPV4_VECTORS[2]!;
    const frame = flowFrame({ v6: false, protocol: "tcp", ...v }, 1);
    const fragment = Uint8Array.from(frame);
    fragment[20] = 0x20; // MF
    const f = classifyRss(fragment, ALL_TYPES, MS_RSS_KEY);
    expect([hex(f.hash), f.rssType, f.packetType]).toEqual([hex(v.l3), M.RXD_RSSTYPE_IPV4, M.RXD_PKTTYPE_IPV4]);
    const tagged = new Uint8Array(frame.length + 4);
    tagged.set(frame.subarray(0, 12), 0);
    tagged.set([0x81, 0x00, 0x00, 0x05], 12);
    tagged.set(frame.subarray(12), 16);
    expect(hex(classifyRss(tagged, ALL_TYPES, MS_RSS_KEY).hash)).toBe(hex(v.l4));
  });

  it("gives no hash to a non-IP frame, nor to an IP frame whose hash types are off", () => {
    const arp = new Uint8Array(60);
    arp[12] = 0x08;
    arp[13] = 0x06;
    expect(classifyRss(arp, ALL_TYPES, MS_RSS_KEY)).toEqual({ hash: 0, rssType: M.RXD_RSSTYPE_NONE, packetType: 0 });
    const v = MS_IPV6_VECTORS[0]!;
    const ipv6 = classifyRss(flowFrame({ v6: true, protocol: "tcp", ...v }, 1), M.MRQC_MRQE_RSS | M.MRQC_RSS_FIELD_IPV4, MS_RSS_KEY);
    expect(ipv6).toEqual({ hash: 0, rssType: M.RXD_RSSTYPE_NONE, packetType: M.RXD_PKTTYPE_IPV6 | M.RXD_PKTTYPE_TCP });
  });
});
