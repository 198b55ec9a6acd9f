/**
 * The pipeline's frame rewrite (examples/lib/pipeline-stages.ts): RFC 1624's incremental
 * checksum update against a full recomputation on random headers, the 0x0000 corner case
 * included, and what processFrame leaves alone.
 */
import { describe, expect, it } from "vitest";
import { processFrame, updateChecksum } from "../../examples/lib/pipeline-stages.ts";
import { ipv4Checksum } from "../../examples/lib/udp-frame.ts";
import { prng, randInt } from "../helpers/prng.ts";

const ETH = 14;

/** Ones'-complement sum of a header's 16-bit words, folded (0xFFFF for a valid header with its checksum). */
function onesSum(h: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += (h[i]! << 8) | h[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function setChecksum(h: Uint8Array): void {
  h[10] = 0;
  h[11] = 0;
  const c = ipv4Checksum(h);
  h[10] = c >>> 8;
  h[11] = c & 0xff;
}

/** A random IPv4 header of `ihl` words with TTL `ttl`, and its checksum. */
function randomHeader(rand: () => number, ihl: number, ttl: number): Uint8Array {
  const h = new Uint8Array(ihl * 4);
  for (let i = 0; i < h.length; i++) h[i] = randInt(rand, 0, 255);
  h[0] = 0x40 | ihl;
  h[8] = ttl;
  setChecksum(h);
  return h;
}

/** An Ethernet frame around `header` and `payload` random bytes. */
function frameOf(rand: () => number, header: Uint8Array, payload: number, etherType = 0x0800): Uint8Array {
  const f = new Uint8Array(ETH + header.length + payload);
  for (let i = 0; i < f.length; i++) f[i] = randInt(rand, 0, 255);
  f[12] = etherType >>> 8;
  f[13] = etherType & 0xff;
  f.set(header, ETH);
  return f;
}

/** What processFrame must make of a forwardable frame: MACs swapped, TTL - 1, the checksum recomputed in full. */
function expected(f: Uint8Array): Uint8Array {
  const e = f.slice();
  e.set(f.subarray(6, 12), 0);
  e.set(f.subarray(0, 6), 6);
  const ihl = f[ETH]! & 0x0f;
  const h = e.subarray(ETH, ETH + ihl * 4);
  h[8] = h[8]! - 1;
  setChecksum(h);
  return e;
}

/** The identification value that makes the header's sum (checksum field 0) come out 0xFFFF: checksum 0x0000. */
function idForZeroChecksum(h: Uint8Array): number {
  const t = h.slice();
  t[4] = 0;
  t[5] = 0;
  t[10] = 0;
  t[11] = 0;
  return 0xffff - onesSum(t);
}

/** RFC 1141's update, HC' = HC + m + ~m' (RFC 1624, eqn. 2): wrong in the corner case. */
function rfc1141(hc: number, m: number, m2: number): number {
  let sum = hc + m + (~m2 & 0xffff);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

describe("the pipeline's frame rewrite", () => {
  it("updates the checksum as a full recomputation does, on 100 000 random headers with and without options", () => {
    const rand = prng(1624);
    for (let n = 0; n < 100_000; n++) {
      const header = randomHeader(rand, randInt(rand, 5, 15), randInt(rand, 2, 255));
      const f = frameOf(rand, header, randInt(rand, 0, 64));
      const want = expected(f);
      expect(processFrame(f, 0, f.length)).toBe(true);
      if (!f.every((b, i) => b === want[i])) throw new Error(`header ${Array.from(header, (b) => b.toString(16).padStart(2, "0")).join("")}: got a different frame`);
      expect(onesSum(f.subarray(ETH, ETH + header.length))).toBe(0xffff);
    }
  });

  it("gets the corner cases right: a checksum of 0x0000 after the update, and before it", () => {
    const rand = prng(7);
    let zeroAfter = 0;
    let zeroBefore = 0;
    for (let n = 0; n < 2000; n++) {
      const ttl = randInt(rand, 2, 255);
      const h = randomHeader(rand, 5, ttl);
      let f: Uint8Array;
      if (n % 2 === 0) {
        // After: the identification chosen so that the decremented header's checksum is 0x0000.
        const after = h.slice();
        after[8] = ttl - 1;
        const id = idForZeroChecksum(after);
        h[4] = id >>> 8;
        h[5] = id & 0xff;
        setChecksum(h);
        f = frameOf(rand, h, 0);
      } else {
        const id = idForZeroChecksum(h);
        h[4] = id >>> 8;
        h[5] = id & 0xff;
        setChecksum(h);
        f = frameOf(rand, h, 0);
        expect((f[ETH + 10]! << 8) | f[ETH + 11]!).toBe(0); // the incoming checksum is 0x0000
        zeroBefore++;
      }
      const want = expected(f);
      const hc = (f[ETH + 10]! << 8) | f[ETH + 11]!;
      const m = (f[ETH + 8]! << 8) | f[ETH + 9]!;
      expect(processFrame(f, 0, f.length)).toBe(true);
      expect(Array.from(f)).toEqual(Array.from(want));
      if (n % 2 === 0) {
        expect((f[ETH + 10]! << 8) | f[ETH + 11]!).toBe(0x0000);
        // RFC 1141's formula gives the other zero, 0xFFFF, which a recomputation never gives.
        expect(rfc1141(hc, m, m - 0x100)).toBe(0xffff);
        expect(updateChecksum(hc, m, m - 0x100)).toBe(0x0000);
        zeroAfter++;
      }
    }
    expect(zeroAfter).toBe(1000);
    expect(zeroBefore).toBe(1000);
  });

  it("drops (returns false, changes nothing) what is not IPv4, would expire, or is cut short", () => {
    const rand = prng(3);
    const cases: [string, Uint8Array][] = [];
    for (const ttl of [0, 1]) cases.push([`TTL ${ttl}`, frameOf(rand, randomHeader(rand, 5, ttl), 30)]);
    cases.push(["IPv6 EtherType", frameOf(rand, randomHeader(rand, 5, 64), 30, 0x86dd)]);
    cases.push(["ARP EtherType", frameOf(rand, randomHeader(rand, 5, 64), 30, 0x0806)]);
    const v6 = randomHeader(rand, 5, 64);
    v6[0] = 0x65;
    cases.push(["version 6 in an IPv4 frame", frameOf(rand, v6, 30)]);
    const shortIhl = randomHeader(rand, 5, 64);
    shortIhl[0] = 0x44;
    cases.push(["IHL 4", frameOf(rand, shortIhl, 30)]);
    cases.push(["options past the frame's end", frameOf(rand, randomHeader(rand, 15, 64), 0).subarray(0, ETH + 40)]);
    cases.push(["shorter than an IPv4 header", frameOf(rand, randomHeader(rand, 5, 64), 0).subarray(0, ETH + 19)]);
    for (const [what, f] of cases) {
      const before = f.slice();
      expect(processFrame(f, 0, f.length), what).toBe(false);
      expect(Array.from(f), what).toEqual(Array.from(before));
    }
  });

  it("works at an offset: only bytes[offset .. offset + length) are the frame", () => {
    const rand = prng(9);
    const f = frameOf(rand, randomHeader(rand, 5, 9), 10);
    const memory = new Uint8Array(200).fill(0xee);
    memory.set(f, 64);
    expect(processFrame(memory, 64, f.length)).toBe(true);
    expect(Array.from(memory.subarray(64, 64 + f.length))).toEqual(Array.from(expected(f)));
    expect(memory.subarray(0, 64).every((b) => b === 0xee) && memory.subarray(64 + f.length).every((b) => b === 0xee)).toBe(true);
  });
});
