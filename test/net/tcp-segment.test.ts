import { describe, expect, it } from "vitest";
import { checkFrameChecksums } from "../../src/net/checksum.ts";
import { segmentTcp } from "../../src/net/tcp-segment.ts";
import { buildFrame } from "../helpers/frames.ts";
import { prng, randInt } from "../helpers/prng.ts";

const FIN = 0x01;
const PSH = 0x08;
const CWR = 0x80;

describe("segmentTcp (software TSO, the models' reference)", () => {
  it("cuts random segments into frames of mss payload with lengths, ids, sequence numbers, flags and checksums right", () => {
    const rand = prng(2024);
    for (let round = 0; round < 30; round++) {
      const ipv6 = round % 3 === 0;
      const payload = randInt(rand, 0, 12000);
      const mss = randInt(rand, 1, 3000);
      const built = buildFrame({ proto: "tcp", ipv6, payload, vlan: round % 4 === 1, ipOptions: round % 5 === 2 ? 8 : 0, tcpOptions: (round % 3) * 4, tcpFlags: FIN | PSH | CWR | 0x10 }, rand);
      const { bytes, l2, l3, l4 } = built;
      const segs = segmentTcp(bytes, l2, l3, l4, mss, ipv6);
      const hdr = l2 + l3 + l4;
      expect(segs.length).toBe(payload === 0 ? 1 : Math.ceil(payload / mss));
      const view = new DataView(bytes.buffer);
      const seq0 = view.getUint32(l2 + l3 + 4);
      const id0 = ipv6 ? 0 : view.getUint16(l2 + 4);
      let joined = 0;
      segs.forEach((s, i) => {
        const v = new DataView(s.buffer);
        const n = s.length - hdr;
        expect(n).toBe(Math.min(mss, payload - i * mss) > 0 ? Math.min(mss, payload - i * mss) : 0);
        expect(s.subarray(hdr)).toEqual(bytes.subarray(hdr + i * mss, hdr + i * mss + n));
        expect(s.subarray(0, l2)).toEqual(bytes.subarray(0, l2));
        if (ipv6) expect(v.getUint16(l2 + 4)).toBe(l3 - 40 + l4 + n);
        else {
          expect(v.getUint16(l2 + 2)).toBe(l3 + l4 + n);
          expect(v.getUint16(l2 + 4)).toBe((id0 + i) & 0xffff);
        }
        expect(v.getUint32(l2 + l3 + 4)).toBe((seq0 + i * mss) >>> 0);
        const flags = s[l2 + l3 + 13]!;
        expect((flags & (FIN | PSH)) !== 0).toBe(i === segs.length - 1);
        expect((flags & CWR) !== 0).toBe(i === 0);
        expect(flags & 0x10).toBe(0x10); // ACK everywhere
        expect(checkFrameChecksums(s, 0, s.length)).toEqual({ ip: ipv6 ? "none" : "good", l4: "good" });
        joined += n;
      });
      expect(joined).toBe(payload);
    }
  });

  it("refuses an mss of 0", () => {
    const { bytes, l2, l3, l4 } = buildFrame({ proto: "tcp", payload: 10 }, prng(1));
    expect(() => segmentTcp(bytes, l2, l3, l4, 0, false)).toThrow(RangeError);
  });
});
