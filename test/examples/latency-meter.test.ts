/** LatencyMeter: percentiles of a known distribution, and loss/reorder/duplicate accounting. */
import { describe, expect, it } from "vitest";
import { formatLatency, LatencyHistogram, LatencyMeter, WINDOW } from "../../examples/lib/latency-meter.ts";
import { hasStamp, monotonicClock, readTime, writeMagic, writeTime } from "../../examples/lib/latency-stamp.ts";
import { getSequence, setSequence, writeUdpFrame } from "../../examples/lib/udp-frame.ts";

describe("LatencyHistogram", () => {
  it("gives p50/p99/p99.9 of a uniform 1..100000 ns distribution within 3.2 %, and the exact max", () => {
    const h = new LatencyHistogram();
    // A shuffled order: the histogram must not depend on it.
    const values = Array.from({ length: 100_000 }, (_, i) => i + 1);
    for (let i = values.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1);
      [values[i], values[j]] = [values[j]!, values[i]!];
    }
    for (const v of values) h.record(v);
    expect(h.count).toBe(100_000);
    for (const [q, want] of [[0.5, 50_000], [0.99, 99_000], [0.999, 99_900]] as const) {
      expect(Math.abs(h.quantile(q) - want) / want).toBeLessThan(0.032);
    }
    expect(h.quantile(1)).toBe(100_000);
    expect(h.min).toBe(1);
    expect(h.sum / h.count).toBeCloseTo(50_000.5, 5);
  });

  it("is exact below 64 ns, finds a rare tail, and clamps huge values to the last bucket with an exact max", () => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 998; i++) h.record(10);
    h.record(1_000_000);
    h.record(2 ** 50);
    expect(h.quantile(0.5)).toBe(10);
    expect(h.quantile(0.998)).toBe(10);
    const p999 = h.quantile(0.999);
    expect(Math.abs(p999 - 1_000_000) / 1_000_000).toBeLessThan(0.032);
    expect(h.max).toBe(2 ** 50);
    expect(h.quantile(1)).toBe(2 ** 50);
    h.record(-5); // clocks a little apart: counted as 0
    expect(h.min).toBe(0);
    h.reset();
    expect(h.count).toBe(0);
    expect(h.quantile(0.5)).toBeNaN();
  });
});

describe("LatencyMeter", () => {
  it("counts loss by gaps, reordering and duplicates in a crafted sequence", () => {
    const m = new LatencyMeter();
    // 0..9 arrive except 3 and 7; 5 arrives late (after 8); 2 twice; 9 twice.
    for (const s of [0, 1, 2, 2, 4, 6, 8, 5, 9, 9]) m.record(s, 1000 * (s + 1));
    const r = m.report();
    expect(r.received).toBe(8); // 0 1 2 4 6 8 5 9
    expect(r.duplicates).toBe(2);
    expect(r.reordered).toBe(1);
    expect(r.lost).toBe(2); // 3 and 7, up to the highest seen (9)
    expect(m.highest).toBe(9);
    expect(m.report(12).lost).toBe(4); // the sender says 12: 10 and 11 never came
    expect(r.latencyUs!.max).toBe(10);
    expect(r.latencyUs!.min).toBe(1);
    expect(formatLatency(r)).toMatch(/^received 8, lost 2, reordered 1, duplicates 2; latency us min 1\.00 p50 \S+ p99 \S+ p99\.9 \S+ max 10\.0$/);
  });

  it("a frame older than the duplicate window counts as late, not as a duplicate; a jump past the window forgets it", () => {
    const m = new LatencyMeter();
    m.record(0, NaN);
    m.record(WINDOW + 10, NaN);
    m.record(0, NaN); // too old to tell
    expect(m.report().duplicates).toBe(0);
    expect(m.report().reordered).toBe(1);
    m.record(WINDOW + 5, NaN); // in the window, skipped over: a late frame
    m.record(WINDOW + 5, NaN); // now a duplicate
    const r = m.report();
    expect(r.reordered).toBe(2);
    expect(r.duplicates).toBe(1);
    expect(r.latencyUs).toBeNull(); // sequence numbers only
  });

  it("interval statistics restart at each takeInterval()", () => {
    const m = new LatencyMeter();
    m.record(0, 5000);
    expect(m.takeInterval()).toEqual({ p50: 5, p99: 5, max: 5, frames: 1 });
    expect(m.takeInterval()).toBeNull();
    expect(m.report().latencyUs!.p50).toBe(5);
  });
});

describe("latency stamp", () => {
  it("round-trips sequence number and time through a frame, and only stamped frames have a stamp", () => {
    const f = new Uint8Array(60);
    writeUdpFrame(f, 60);
    expect(hasStamp(f, 0, 60)).toBe(false);
    writeMagic(f, 0);
    setSequence(f, 0, 0xfedcba98);
    const now = monotonicClock()();
    writeTime(f, 0, now);
    expect(hasStamp(f, 0, 60)).toBe(true);
    expect(hasStamp(f, 0, 57)).toBe(false); // too short to carry it
    expect(getSequence(f, 0)).toBe(0xfedcba98);
    expect(Math.abs(readTime(f, 0) - now)).toBeLessThan(1); // a double keeps the ns
  });

  it("the clock is CLOCK_MONOTONIC: it agrees with process.hrtime.bigint() within a millisecond", () => {
    const clock = monotonicClock();
    const a = clock();
    const b = Number(process.hrtime.bigint());
    expect(Math.abs(b - a)).toBeLessThan(1e6);
  });
});
