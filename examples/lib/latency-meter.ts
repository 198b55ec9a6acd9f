/**
 * Latency and sequence accounting for stamped frames (pktgen --latency and its receivers).
 *
 * LatencyHistogram: a preallocated log-linear histogram of nanosecond values (HDR-histogram
 * style): values below 64 ns each have a bucket of their own; above, every power of two is cut
 * into 32 equal buckets, so a percentile is within 1/32 (3.1 %) of the true value. Recording
 * is an index computation and an increment: no allocation per frame. Covers up to 2^44 ns
 * (~4.9 hours); anything longer lands in the last bucket (max stays exact).
 *
 * LatencyMeter: a total and a per-interval histogram, plus sequence accounting: received,
 * lost (gaps up to the highest sequence number seen), reordered (arrived after a higher one),
 * duplicates (seen twice within the last WINDOW sequence numbers).
 */

const SUB_BITS = 5;
const SUB = 1 << SUB_BITS; // linear buckets per power of two
const LINEAR = 2 * SUB; // values 0 .. 63 exactly
const MAX_EXP = 44;
const BUCKETS = LINEAR + (MAX_EXP - SUB_BITS - 1) * SUB;

/** Bucket of a non-negative integer value. */
function bucketOf(v: number): number {
  if (v < LINEAR) return v < 0 ? 0 : v;
  const e = Math.floor(Math.log2(v)); // >= SUB_BITS + 1
  if (e >= MAX_EXP) return BUCKETS - 1;
  const sub = Math.floor(v / 2 ** (e - SUB_BITS)) - SUB; // 0 .. SUB-1
  const i = LINEAR + (e - SUB_BITS - 1) * SUB + sub;
  return i < BUCKETS ? i : BUCKETS - 1;
}

/** The middle of bucket i's range (the value a percentile reports). */
function bucketValue(i: number): number {
  if (i < LINEAR) return i;
  const k = i - LINEAR;
  const e = Math.floor(k / SUB) + SUB_BITS + 1;
  const width = 2 ** (e - SUB_BITS);
  const low = 2 ** e + (k % SUB) * width;
  return low + (width - 1) / 2;
}

export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  count = 0;
  sum = 0;
  min = Infinity;
  max = 0;

  /** Records one latency in nanoseconds (negative values count as 0: clocks a little apart). */
  record(ns: number): void {
    const v = ns > 0 ? Math.round(ns) : 0;
    this.#counts[bucketOf(v)]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** The q-quantile (0 < q <= 1) in ns, within 3.1 %; the exact max for q = 1; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    if (q >= 1) return this.max;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!;
      if (seen >= rank) return Math.min(Math.max(bucketValue(i), this.min), this.max);
    }
    return this.max;
  }

  reset(): void {
    this.#counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = 0;
  }
}

/** What a LatencyMeter reports; latencies in microseconds (null: no frame yet). */
export interface LatencyReport {
  received: number;
  lost: number;
  reordered: number;
  duplicates: number;
  latencyUs: { min: number; mean: number; p50: number; p99: number; p999: number; max: number } | null;
}

/** Sequence numbers remembered for duplicate detection. */
export const WINDOW = 1 << 16;

export class LatencyMeter {
  readonly total = new LatencyHistogram();
  /** Since the last takeInterval(): the per-second live line. */
  readonly interval = new LatencyHistogram();
  readonly #seen = new Uint8Array(WINDOW);
  #highest = -1;
  #received = 0;
  #reordered = 0;
  #duplicates = 0;

  /** One stamped frame: its sequence number and its latency in ns (NaN: sequence only). */
  record(seq: number, latencyNs: number): void {
    const h = this.#highest;
    if (seq > h) {
      // Forget what the window held for the numbers skipped over.
      if (seq - h >= WINDOW) this.#seen.fill(0);
      else for (let s = h + 1; s < seq; s++) this.#seen[s & (WINDOW - 1)] = 0;
      this.#seen[seq & (WINDOW - 1)] = 1;
      this.#highest = seq;
    } else if (h - seq < WINDOW) {
      const i = seq & (WINDOW - 1);
      if (this.#seen[i] === 1) {
        this.#duplicates++;
        return;
      }
      this.#seen[i] = 1;
      this.#reordered++;
    } else {
      this.#reordered++; // too old to tell a duplicate from a late frame: counted as late
    }
    this.#received++;
    if (latencyNs === latencyNs) {
      this.total.record(latencyNs);
      this.interval.record(latencyNs);
    }
  }

  get received(): number {
    return this.#received;
  }
  /** The highest sequence number seen (-1: none). */
  get highest(): number {
    return this.#highest;
  }

  /**
   * Frames missing: with `sent` (the sender is in this process), sent minus received; otherwise
   * the gaps up to the highest sequence number seen (frames lost after it are not visible).
   */
  lost(sent?: number): number {
    const expected = sent ?? this.#highest + 1;
    return Math.max(0, expected - this.#received);
  }

  report(sent?: number): LatencyReport {
    return {
      received: this.#received,
      lost: this.lost(sent),
      reordered: this.#reordered,
      duplicates: this.#duplicates,
      latencyUs: summary(this.total),
    };
  }

  /** The interval's p50/p99/max in us (null if nothing arrived) and starts a new interval. */
  takeInterval(): { p50: number; p99: number; max: number; frames: number } | null {
    const h = this.interval;
    const r = h.count === 0 ? null : { p50: h.quantile(0.5) / 1000, p99: h.quantile(0.99) / 1000, max: h.max / 1000, frames: h.count };
    h.reset();
    return r;
  }
}

function summary(h: LatencyHistogram): LatencyReport["latencyUs"] {
  if (h.count === 0) return null;
  return {
    min: h.min / 1000,
    mean: h.sum / h.count / 1000,
    p50: h.quantile(0.5) / 1000,
    p99: h.quantile(0.99) / 1000,
    p999: h.quantile(0.999) / 1000,
    max: h.max / 1000,
  };
}

/** "received 1000, lost 0, reordered 0, duplicates 0; latency us p50 1.2 p99 3.4 p99.9 5.6 max 7.8". */
export function formatLatency(r: LatencyReport): string {
  const l = r.latencyUs;
  const us = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  return (
    `received ${r.received}, lost ${r.lost}, reordered ${r.reordered}, duplicates ${r.duplicates}` +
    (l ? `; latency us min ${us(l.min)} p50 ${us(l.p50)} p99 ${us(l.p99)} p99.9 ${us(l.p999)} max ${us(l.max)}` : "; no latency measured")
  );
}
