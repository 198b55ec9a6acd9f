/**
 * 64-bit device addresses and counters as two 32-bit halves.
 *
 * Devices take 64-bit addresses as two 32-bit words (descriptor words, BAL/BAH register pairs,
 * virtio's queue_desc_lo/hi) and count bytes in register pairs (GORCL/GORCH). JavaScript has no
 * 64-bit integer short of BigInt, which allocates; these work on plain numbers instead, which is
 * exact because every address and counter here stays below 2^53 (Number.MAX_SAFE_INTEGER + 1:
 * doubles hold every integer up to there).
 *
 * Why not shifts for everything: JavaScript's bitwise operators work on 32 bits. `x >>> 0`
 * converts x modulo 2^32 (ToUint32), so it gives exactly the low half of any integer up to
 * 2^53, but `x >>> 32` shifts by 32 mod 32 = 0 bits: the high half needs a division.
 *
 * The hot loops compiled by specialize.ts cannot call these (their copy is compiled outside
 * this module); they keep the same arithmetic inline, with TWO_POW_32 as a local constant.
 */

/** 2^32: one unit of the high half. */
export const TWO_POW_32 = 0x1_0000_0000;

/** The high 32 bits of `x`, a non-negative integer below 2^53, as an unsigned number (below 2^21). */
export function hi32(x: number): number {
  // Truncation of a non-negative quotient is Math.floor; `>>> 0` also tells V8 it is a uint32.
  return (x / TWO_POW_32) >>> 0;
}

/**
 * The low 32 bits of `x`, a non-negative integer below 2^53, as an unsigned number (0 to
 * 2^32 - 1): for registers, Uint32Array words and comparisons.
 */
export function lo32(x: number): number {
  return x >>> 0;
}

/**
 * The low 32 bits of `x` as a signed 32-bit integer (-2^31 to 2^31 - 1): the same bit pattern
 * as lo32, for Int32Array columns (the buffer table's bufIovaLo) and values V8 should keep as
 * small integers. lo32(x) === lo32Signed(x) >>> 0.
 */
export function lo32Signed(x: number): number {
  return x | 0;
}

/**
 * The number whose halves are `lo` and `hi`. Each half may be given unsigned or as a signed
 * bit pattern (both are taken modulo 2^32). Exact while hi < 2^21, i.e. the result < 2^53.
 */
export function join64(lo: number, hi: number): number {
  return (hi >>> 0) * TWO_POW_32 + (lo >>> 0);
}
