/**
 * Receive checksum offload on the 82599 (datasheet 7.1.11; write-back status IPCS/L4CS/UDPCS and
 * errors IPE/TCPE, 7.1.6.2): the model checks every arriving frame, the driver turns the bits into
 * bufRxOffload with one table lookup per frame.
 */
import { describe, expect, it } from "vitest";
import { bufRxOffload, bufTxOffload } from "../../src/mem/buffer-table.ts";
import { freeBuffer } from "../../src/mem/mempool.ts";
import { RX_OFFLOAD, rxChecksumOf } from "../../src/mem/offload.ts";
import { copyFrame } from "../../src/mem/packet.ts";
import { checkFrameChecksums, fillIpv4Checksum } from "../../src/net/checksum.ts";
import { rxChecksumBits } from "../../src/sim/ixgbe/model-offloads.ts";
import * as M from "../../src/sim/ixgbe/model-registers.ts";
import { buildFrame } from "../helpers/frames.ts";
import { prng } from "../helpers/prng.ts";
import { openSimPort } from "./helpers.ts";
import { randomSpec } from "./offload-helpers.ts";

/** Receives what is waiting on queue 0: each frame's bytes and its checksum verdict, buffers freed. */
function receiveAll(dev: ReturnType<typeof openSimPort>["dev"]): { bytes: Uint8Array; ip: string; l4: string; tx: number }[] {
  const out: { bytes: Uint8Array; ip: string; l4: string; tx: number }[] = [];
  const bufs = new Int32Array(32);
  for (let n = dev.rxBatch(0, bufs, 32); n > 0; n = dev.rxBatch(0, bufs, 32)) {
    for (let i = 0; i < n; i++) {
      const b = bufs[i]!;
      out.push({ bytes: copyFrame(b), ...rxChecksumOf(b), tx: bufTxOffload[b]! });
      freeBuffer(b);
    }
  }
  return out;
}

/** Breaks one of a built frame's checksums (or none). */
function spoil(frame: Uint8Array, l2: number, l3: number, l4: number, what: "none" | "ip" | "l4"): void {
  if (what === "ip") frame[l2 + 10]! ^= 0x01;
  if (what === "l4") frame[l2 + l3 + (l4 === 8 ? 6 : 16)]! ^= 0x40;
}

describe("ixgbe receive checksum offload", () => {
  it("reports good and bad IPv4 header and TCP/UDP checksums of random frames as the hardware checked them", () => {
    const { model, dev } = openSimPort({ rxRingSize: 512 });
    expect(dev.offloads.rxChecksum).toBe(true);
    const rand = prng(31);
    const sent: { bytes: Uint8Array; ipv6: boolean; udp: boolean; extension: boolean; spoiled: "none" | "ip" | "l4" }[] = [];
    for (let i = 0; i < 400; i++) {
      const spec = randomSpec(rand, [0, 1380]); // at most 1514 bytes with every header option
      const f = buildFrame(spec, rand);
      const spoiled = (["none", "none", "ip", "l4"] as const)[Math.floor(rand() * 4)]!;
      const ipv6 = spec.ipv6 ?? false;
      spoil(f.bytes, f.l2, f.l3, f.l4, ipv6 && spoiled === "ip" ? "none" : spoiled);
      expect(model.inject(f.bytes)).toBe(true);
      sent.push({ bytes: f.bytes, ipv6, udp: spec.proto === "udp", extension: ipv6 && (spec.ipOptions ?? 0) > 0, spoiled: ipv6 && spoiled === "ip" ? "none" : spoiled });
    }
    const got = receiveAll(dev);
    expect(got).toHaveLength(sent.length);
    got.forEach((g, i) => {
      const s = sent[i]!;
      expect(g.bytes).toEqual(s.bytes);
      expect(g.tx).toBe(0);
      expect(g.ip).toBe(s.ipv6 ? "unknown" : s.spoiled === "ip" ? "bad" : "good");
      // The model does not walk IPv6 extension headers (no verdict); a UDP error is no verdict
      // on the 82599 (its zero-checksum erratum), so a bad UDP checksum reads "unknown".
      const l4 = s.extension ? "unknown" : s.spoiled === "l4" ? (s.udp ? "unknown" : "bad") : "good";
      expect(g.l4, `frame ${i}`).toBe(l4);
      // Where the device gave a verdict, it is the software one.
      const soft = checkFrameChecksums(s.bytes, 0, s.bytes.length);
      if (g.ip !== "unknown") expect(g.ip).toBe(soft.ip);
      if (g.l4 !== "unknown") expect(g.l4).toBe(soft.l4);
    });
    dev.close();
  });

  it("says nothing of the L4 checksum of fragments and other protocols, and of a UDP datagram sent without one", () => {
    const { model, dev } = openSimPort();
    const rand = prng(32);
    const fragment = buildFrame({ proto: "tcp", payload: 100 }, rand).bytes;
    fragment[14 + 6] = 0x20; // MF
    fillIpv4Checksum(fragment, 14, 20);
    const icmp = buildFrame({ proto: "udp", payload: 20 }, rand).bytes;
    icmp[14 + 9] = 1;
    fillIpv4Checksum(icmp, 14, 20);
    const noChecksum = buildFrame({ proto: "udp", payload: 30, checksums: "zero" }, rand).bytes;
    fillIpv4Checksum(noChecksum, 14, 20);
    const arp = new Uint8Array(60);
    arp.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    for (const f of [fragment, icmp, noChecksum, arp]) expect(model.inject(f)).toBe(true);
    const got = receiveAll(dev).map(({ ip, l4 }) => ({ ip, l4 }));
    expect(got).toEqual([
      { ip: "good", l4: "unknown" },
      { ip: "good", l4: "unknown" },
      { ip: "good", l4: "unknown" },
      { ip: "unknown", l4: "unknown" },
    ]);
    // The model reports the erratum as the 82599 does: L4CS, UDPCS and TCPE for the zero checksum.
    const bits = rxChecksumBits(noChecksum);
    expect(bits & (M.RXD_STATUS_L4CS | M.RXD_STATUS_UDPCS | M.RXD_ERROR_TCPE)).toBe((M.RXD_STATUS_L4CS | M.RXD_STATUS_UDPCS | M.RXD_ERROR_TCPE) >>> 0);
    dev.close();
  });

  it("with rxChecksum off reports nothing, and no transmit request rides along on a reused buffer", () => {
    const { model, dev } = openSimPort({ rxRingSize: 64, mempoolSize: 65, offloads: { rxChecksum: false } });
    expect(dev.offloads.rxChecksum).toBe(false);
    const rand = prng(33);
    const bufs = new Int32Array(64);
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 40; i++) expect(model.inject(buildFrame(randomSpec(rand), rand).bytes)).toBe(true);
      let seen = 0;
      for (let n = dev.rxBatch(0, bufs, 64); n > 0; n = dev.rxBatch(0, bufs, 64)) {
        for (let i = 0; i < n; i++) {
          expect(bufRxOffload[bufs[i]!]).toBe(0);
          expect(bufTxOffload[bufs[i]!]).toBe(0);
          // A stale request on a buffer that goes back to the pool and into the ring again.
          bufTxOffload[bufs[i]!] = 0xff;
          bufRxOffload[bufs[i]!] = RX_OFFLOAD.l4ChecksumBad;
          freeBuffer(bufs[i]!);
          seen++;
        }
      }
      expect(seen).toBe(40);
    }
    dev.close();
  });
});

describe("the 82599 model's receive checksum check", () => {
  it("agrees with the software verdict on random frames with good, bad and zero checksums", () => {
    const rand = prng(34);
    for (let i = 0; i < 2000; i++) {
      const spec = { ...randomSpec(rand, [0, 300]), checksums: (["good", "bad", "zero"] as const)[Math.floor(rand() * 3)]! };
      const f = buildFrame(spec, rand).bytes;
      if (rand() < 0.2) f[18 + (spec.vlan ? 4 : 0) - 4 + 10]! ^= 1; // sometimes the IPv4 header checksum too
      const bits = rxChecksumBits(f);
      const soft = checkFrameChecksums(f, 0, f.length);
      const ipv6 = spec.ipv6 ?? false;
      const hwIp = (bits & M.RXD_STATUS_IPCS) === 0 ? "none" : (bits & M.RXD_ERROR_IPE) !== 0 ? "bad" : "good";
      expect(hwIp).toBe(soft.ip);
      if ((bits & M.RXD_STATUS_L4CS) === 0) {
        expect(ipv6 && (spec.ipOptions ?? 0) > 0).toBe(true); // only what the model does not walk
      } else if (soft.l4 === "none") {
        expect(bits & M.RXD_ERROR_TCPE).not.toBe(0); // UDP without a checksum: the erratum
      } else {
        expect((bits & M.RXD_ERROR_TCPE) !== 0 ? "bad" : "good").toBe(soft.l4);
      }
    }
  });
});
