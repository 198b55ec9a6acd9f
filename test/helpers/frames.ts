/**
 * Builders of TCP and UDP frames over IPv4 or IPv6 (optionally VLAN-tagged, with IP and TCP
 * options) with random payloads, for offload tests. The checksum fields are left as the caller
 * asks: correct (computed by src/net/checksum.ts, cross-checked against tshark in
 * test/net/checksum.test.ts), zero, or garbage.
 */
import { fillIpv4Checksum, fillL4Checksum } from "../../src/net/checksum.ts";
import { randomBytes } from "./prng.ts";

export interface FrameSpec {
  readonly proto: "tcp" | "udp";
  readonly ipv6?: boolean;
  /** 802.1Q tag present (VLAN 5). */
  readonly vlan?: boolean;
  /** IPv4 options bytes (a multiple of 4, up to 40) or IPv6: one 8-byte destination-options header when > 0. */
  readonly ipOptions?: number;
  /** TCP options bytes (a multiple of 4, up to 40). */
  readonly tcpOptions?: number;
  readonly payload: number;
  /** "good" (default): checksums filled in; "zero": both 0; "bad": filled, then the L4 one broken. */
  readonly checksums?: "good" | "zero" | "bad";
  /** TCP flags byte (default PSH|ACK). */
  readonly tcpFlags?: number;
}

export interface BuiltFrame {
  readonly bytes: Uint8Array;
  readonly l2: number;
  readonly l3: number;
  readonly l4: number;
}

export function buildFrame(spec: FrameSpec, rand: () => number): BuiltFrame {
  const l2 = spec.vlan ? 18 : 14;
  const ipOpt = spec.ipOptions ?? 0;
  const l3 = spec.ipv6 ? 40 + (ipOpt > 0 ? 8 : 0) : 20 + ipOpt;
  const l4 = spec.proto === "udp" ? 8 : 20 + (spec.tcpOptions ?? 0);
  const f = new Uint8Array(l2 + l3 + l4 + spec.payload);
  f.set([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
  let at = 12;
  if (spec.vlan) {
    f.set([0x81, 0x00, 0x00, 0x05], 12);
    at = 16;
  }
  f.set(spec.ipv6 ? [0x86, 0xdd] : [0x08, 0x00], at);
  const ip = l2;
  const proto = spec.proto === "udp" ? 17 : 6;
  if (spec.ipv6) {
    f[ip] = 0x60;
    const plen = l3 - 40 + l4 + spec.payload;
    f[ip + 4] = plen >> 8;
    f[ip + 5] = plen & 0xff;
    f[ip + 6] = ipOpt > 0 ? 60 : proto;
    f[ip + 7] = 64;
    f.set(randomBytes(rand, 32), ip + 8);
    if (ipOpt > 0) {
      f[ip + 40] = proto; // next header
      f[ip + 41] = 0; // (0 + 1) * 8 bytes
      f.set([1, 4, 0, 0, 0, 0], ip + 42); // a PadN option filling the header
    }
  } else {
    f[ip] = 0x40 | (l3 / 4);
    const tot = l3 + l4 + spec.payload;
    f[ip + 2] = tot >> 8;
    f[ip + 3] = tot & 0xff;
    f[ip + 4] = (rand() * 256) | 0;
    f[ip + 5] = (rand() * 256) | 0;
    f[ip + 6] = 0x40; // DF
    f[ip + 8] = 64;
    f[ip + 9] = proto;
    f.set(randomBytes(rand, 8), ip + 12);
    for (let i = 20; i < l3; i++) f[ip + i] = 1; // NOP options
  }
  const t = ip + l3;
  f.set(randomBytes(rand, 4), t); // ports
  if (spec.proto === "udp") {
    const len = 8 + spec.payload;
    f[t + 4] = len >> 8;
    f[t + 5] = len & 0xff;
  } else {
    f.set(randomBytes(rand, 8), t + 4); // seq, ack
    f[t + 12] = (l4 / 4) << 4;
    f[t + 13] = spec.tcpFlags ?? 0x18;
    f[t + 14] = 0xff;
    f[t + 15] = 0xff;
    for (let i = 20; i < l4; i++) f[t + i] = 1;
  }
  f.set(randomBytes(rand, spec.payload), t + l4);
  const mode = spec.checksums ?? "good";
  if (mode !== "zero") {
    if (!spec.ipv6) fillIpv4Checksum(f, ip, l3);
    fillL4Checksum(f, ip, t, f.length, spec.ipv6 ?? false, proto);
    if (mode === "bad") f[t + (proto === 17 ? 6 : 16)]! ^= 0x5a;
  }
  return { bytes: f, l2, l3, l4 };
}
