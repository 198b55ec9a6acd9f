/**
 * The scaling bench's harness (bench/scaling/) in a tiny configuration: two workers, each driving
 * queue pair i of both instant-device ports with the device side of that pair in its own loop.
 * Checks that frames moved, that nothing was lost or sent twice (the harness's own check, and
 * every buffer back in its pool after close), and that every stamped frame was timed. No timing
 * assertions: the numbers are the bench's business.
 */
import { describe, expect, it } from "vitest";
import { onlineCores } from "../../src/threads/affinity.ts";
import { bucketLow, bucketOf, BUCKETS, newCounts, quantile, record } from "../../bench/lib/histogram.ts";
import { runDriver } from "../../bench/scaling/harness.ts";
import { summarizeScaling } from "../../bench/scaling/summary.ts";
import { runPipeline } from "../../bench/scaling/pipeline.ts";
import { DRIVERS } from "../../bench/lib/types.ts";
import { poolsOn } from "../contract/accounting.ts";

const FRAMES = 4000;
const WARMUP = 1000;
const cores = onlineCores();
// Pinned as the bench pins them when the machine has two cores; otherwise left to the scheduler.
const CORES = cores.length >= 2 ? [cores[0]!, cores[1]!] : [null, null];

describe.each(DRIVERS)("the scaling harness: %s", (driver) => {
  it("forwards with 1 and 2 workers, loses nothing and times every stamped frame", async () => {
    const pools: { name: string; available: number; count: number }[] = [];
    const result = await runDriver(driver, {
      batch: 32, frames: FRAMES, warmup: WARMUP, rounds: 2, workerCounts: [1, 2], cores: CORES, latency: true, sampleEvery: 1,
    }, {
      afterClose: (dma) => {
        for (const p of poolsOn(dma)) pools.push({ name: p.name, available: p.available, count: p.count });
      },
    });
    expect(result.runs.map((r) => r.workers)).toEqual([1, 2, 1, 2]);
    for (const run of result.runs) {
      expect(run.perWorkerMpps).toHaveLength(run.workers);
      expect(run.totalMpps).toBeGreaterThan(0);
      // Every receive batch was stamped (sampleEvery 1), and every frame received in the timed
      // part went out in the same iteration: each one was timed, once.
      expect(run.p50Ns).toBeGreaterThan(0);
    }
    // Frames moved, and the device side got back exactly what it delivered.
    const workerRuns = result.runs.reduce((s, r) => s + r.workers, 0);
    expect(result.forwarded).toBeGreaterThanOrEqual(workerRuns * (FRAMES + WARMUP));
    expect(result.deviceReceived).toBe(result.forwarded);
    expect(result.deviceSent).toBe(result.forwarded);
    expect(result.dropped).toBe(0);
    const timed = result.runs.reduce((s, r) => s + r.timedFrames, 0);
    // The timed parts moved at least FRAMES per worker; every one of those frames was timed.
    expect(timed).toBeGreaterThanOrEqual(workerRuns * FRAMES);
    expect(timed).toBeLessThan(workerRuns * (FRAMES + 64));
    // After close, every buffer of the four receive pools (2 ports x 2 pairs) is back in its pool.
    expect(pools).toHaveLength(4);
    for (const p of pools) expect(p, p.name).toMatchObject({ available: p.count });
    const rows = summarizeScaling(result, [1, 2]);
    expect(rows.map((r) => r.workers)).toEqual([1, 2]);
    expect(rows[1]!.efficiencyPerRound).toHaveLength(2);
  }, 120_000);
});

describe.each(DRIVERS)("bench --scaling, run to completion against the pipeline: %s", (driver) => {
  it("moves the frames through one worker and through the two-stage pipeline, and every buffer comes home", async () => {
    const cores = onlineCores();
    const r = await runPipeline(driver, { batch: 32, frames: 4000, warmup: 1000, rounds: 1, cores: [cores[0]!, cores[1 % cores.length]!] }, () => {});
    expect(r.rtcMpps[0]).toBeGreaterThan(0);
    expect(r.pipelineMpps[0]).toBeGreaterThan(0);
  }, 60_000);
});

describe("the latency histogram", () => {
  it("puts each value in a bucket no wider than 1/16 of it, and finds quantiles there", () => {
    for (const v of [0, 1, 31, 32, 33, 63, 64, 100, 1000, 12_345, 1e6, 2 ** 30, 2 ** 31 - 1]) {
      const b = bucketOf(v);
      expect(b).toBeLessThan(BUCKETS);
      expect(bucketLow(b)).toBeLessThanOrEqual(v);
      expect(bucketLow(b + 1)).toBeGreaterThan(v);
      expect(bucketLow(b + 1) - bucketLow(b)).toBeLessThanOrEqual(Math.max(1, v / 16));
    }
    expect(bucketOf(-5)).toBe(0);
    expect(bucketOf(1e12)).toBe(BUCKETS - 1);
    const counts = newCounts();
    record(counts, 1000, 98);
    record(counts, 50_000, 2);
    expect(Math.abs(quantile(counts, 0.5) - 1000)).toBeLessThan(1000 / 32);
    expect(Math.abs(quantile(counts, 0.98) - 1000)).toBeLessThan(1000 / 32);
    expect(Math.abs(quantile(counts, 0.99) - 50_000)).toBeLessThan(50_000 / 32);
    expect(quantile(newCounts(), 0.5)).toBeNaN();
  });
});
