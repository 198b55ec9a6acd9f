/**
 * A latency histogram that records without allocating (the scaling bench's workers record into
 * it from their forwarding loop): log-linear buckets, as HdrHistogram's, over whole nanoseconds.
 * Values below 32 ns have a bucket each; above, every power of two is cut into 16 buckets, so a
 * bucket is at most 1/16 (6.25%) of its values wide, up to 2^31 ns (2.1 s; more is counted
 * there). The counts are a Float64Array (on a SharedArrayBuffer if the caller wants the thread
 * that started the worker to read them).
 */

const EXACT = 32;
const SUB = 16;
/** Buckets: 32 exact ones, then 16 per power of two from 2^5 to 2^30. */
export const BUCKETS = EXACT + (30 - 5 + 1) * SUB;
const MAX_NS = 2 ** 31 - 1;

/** The bucket of `ns` (any number; clamped to 0 .. 2^31 - 1 and truncated). */
export function bucketOf(ns: number): number {
  const v = ns >= MAX_NS ? MAX_NS : ns > 0 ? ns | 0 : 0;
  if (v < EXACT) return v;
  const e = 31 - Math.clz32(v); // 5 .. 30
  return EXACT + (e - 5) * SUB + ((v >>> (e - 4)) & (SUB - 1));
}

/** The smallest value of bucket `i` (bucketLow(BUCKETS) is the end of the last one). */
export function bucketLow(i: number): number {
  if (i < EXACT) return i;
  const e = 5 + ((i - EXACT) >> 4);
  return (SUB + ((i - EXACT) & (SUB - 1))) * 2 ** (e - 4);
}

/** Adds `count` values of `ns` to `counts` (BUCKETS long). */
export function record(counts: Float64Array, ns: number, count = 1): void {
  counts[bucketOf(ns)]! += count;
}

export function newCounts(shared = false): Float64Array {
  return shared ? new Float64Array(new SharedArrayBuffer(BUCKETS * 8)) : new Float64Array(BUCKETS);
}

export function total(counts: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i]!;
  return n;
}

/**
 * The `q`-quantile (0 < q <= 1) of the recorded values: the middle of the bucket holding it (so
 * within half a bucket, 3%, above 32 ns); NaN when nothing was recorded.
 */
export function quantile(counts: ArrayLike<number>, q: number): number {
  const n = total(counts);
  if (n === 0) return NaN;
  const rank = Math.max(1, Math.ceil(q * n));
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= rank) return i < EXACT ? i : (bucketLow(i) + bucketLow(i + 1)) / 2;
  }
  return bucketLow(BUCKETS);
}

/** The non-empty buckets as [low ns, count] pairs (for the results file). */
export function nonEmpty(counts: ArrayLike<number>): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) out.push([bucketLow(i), counts[i]!]);
  return out;
}
