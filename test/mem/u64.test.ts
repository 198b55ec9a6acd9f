import { describe, expect, it } from "vitest";
import { hi32, join64, lo32, lo32Signed, TWO_POW_32 } from "../../src/mem/u64.ts";

const MAX_SAFE = Number.MAX_SAFE_INTEGER; // 2^53 - 1

describe("u64 halves", () => {
  it("TWO_POW_32 is 2^32", () => {
    expect(TWO_POW_32).toBe(2 ** 32);
  });

  it("splits values around 2^32", () => {
    expect([hi32(0), lo32(0), lo32Signed(0)]).toEqual([0, 0, 0]);
    expect([hi32(2 ** 32 - 1), lo32(2 ** 32 - 1), lo32Signed(2 ** 32 - 1)]).toEqual([0, 0xffff_ffff, -1]);
    expect([hi32(2 ** 32), lo32(2 ** 32), lo32Signed(2 ** 32)]).toEqual([1, 0, 0]);
    expect([hi32(2 ** 32 + 1), lo32(2 ** 32 + 1)]).toEqual([1, 1]);
    expect([hi32(2 ** 31), lo32(2 ** 31), lo32Signed(2 ** 31)]).toEqual([0, 0x8000_0000, -0x8000_0000]);
  });

  it("splits values around 2^48 and up to 2^53 - 1", () => {
    expect([hi32(2 ** 48), lo32(2 ** 48)]).toEqual([0x1_0000, 0]);
    expect([hi32(2 ** 48 - 1), lo32(2 ** 48 - 1)]).toEqual([0xffff, 0xffff_ffff]);
    expect([hi32(2 ** 48 + 0x1234), lo32(2 ** 48 + 0x1234)]).toEqual([0x1_0000, 0x1234]);
    expect([hi32(MAX_SAFE), lo32(MAX_SAFE), lo32Signed(MAX_SAFE)]).toEqual([0x1f_ffff, 0xffff_ffff, -1]);
  });

  it("agrees with BigInt", () => {
    for (const x of [1, 0x7fff_ffff, 0xdead_beef, 2 ** 40 + 3, 0x12_3456_789a_bcde, MAX_SAFE - 1]) {
      const big = BigInt(x);
      expect(hi32(x)).toBe(Number(big >> 32n));
      expect(lo32(x)).toBe(Number(big & 0xffff_ffffn));
      expect(lo32Signed(x)).toBe(Number(BigInt.asIntN(32, big)));
    }
  });

  it("join64 takes halves unsigned or as signed bit patterns", () => {
    expect(join64(0, 0)).toBe(0);
    expect(join64(0xffff_ffff, 0)).toBe(2 ** 32 - 1);
    expect(join64(-1, 0)).toBe(2 ** 32 - 1);
    expect(join64(0, 1)).toBe(2 ** 32);
    expect(join64(-0x8000_0000, 0x1_0000)).toBe(2 ** 48 + 2 ** 31);
    expect(join64(0xffff_ffff, 0x1f_ffff)).toBe(MAX_SAFE);
  });

  it("round-trips", () => {
    for (const x of [0, 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 48 - 1, 2 ** 48, 0xabcd_1234_5678, MAX_SAFE]) {
      expect(join64(lo32(x), hi32(x))).toBe(x);
      expect(join64(lo32Signed(x), hi32(x))).toBe(x);
    }
  });
});
