// From the runs of harness.ts to the rows of the scaling table: medians over the rounds, scaling
// efficiency formed within each round (so that a round the machine slowed down cancels out, as
// the TS/C ratio of the main bench does), latency quantiles over every timed frame of a
// configuration (all rounds, all workers).
import { nonEmpty, quantile } from '../lib/histogram.ts';
import { median } from '../lib/summary.ts';
import type { Driver } from '../lib/types.ts';
import type { CThreadsResult } from './c-ref.ts';
import type { DriverResult } from './harness.ts';

export interface ScalingRow {
  driver: Driver;
  workers: number;
  /** Total Mpps of each round's run, their median and ± half-range in % of it. */
  totalMppsPerRound: number[];
  totalMpps: number;
  totalSpreadPct: number;
  /** Mean per-worker Mpps of each round's run, and their median. */
  perWorkerMpps: number;
  /** total(k) / (k x total(1)) per round, median and ± half-range (1 for k = 1). */
  efficiencyPerRound: number[];
  efficiency: number;
  efficiencySpreadPct: number;
  p50Ns: number | null;
  p99Ns: number | null;
  timedFrames: number;
  /** Worst over the rounds and workers. */
  gcsMax: number;
  heapGrowthKiBMax: number;
  /** The lowest on-CPU share of a worker in any round (100: never descheduled). */
  onCpuPctMin: number;
  /** The C reference with as many threads (null: not run): total Mpps and efficiency, medians over the rounds. */
  cTotalMpps: number | null;
  cEfficiency: number | null;
  /** The pooled latency histogram, [bucket low ns, frames] for the non-empty buckets. */
  latencyBuckets: [number, number][];
}

function spreadPct(xs: readonly number[], mid: number): number {
  return xs.length === 0 || mid === 0 ? 0 : ((Math.max(...xs) - Math.min(...xs)) / 2 / mid) * 100;
}

/** `c`: the C runs by round, then by thread count. */
export function summarizeScaling(result: DriverResult, workerCounts: readonly number[], c?: ReadonlyMap<number, ReadonlyMap<number, CThreadsResult>>): ScalingRow[] {
  const rows: ScalingRow[] = [];
  const single = new Map(result.runs.filter((r) => r.workers === 1).map((r) => [r.round, r.totalMpps]));
  for (const k of workerCounts) {
    const runs = result.runs.filter((r) => r.workers === k);
    const totals = runs.map((r) => r.totalMpps);
    const perWorker = runs.map((r) => r.perWorkerMpps.reduce((s, x) => s + x, 0) / r.perWorkerMpps.length);
    const eff = runs.flatMap((r) => {
      const one = single.get(r.round);
      return one === undefined ? [] : [r.totalMpps / (k * one)];
    });
    const effMedian = eff.length > 0 ? median(eff) : NaN;
    const totalMedian = median(totals);
    const pooled = result.latency.get(k);
    const hasLatency = runs.some((r) => r.p50Ns !== null) && pooled !== undefined;
    const cRounds = c === undefined ? [] : [...c.values()];
    const cTotals = cRounds.flatMap((byThreads) => byThreads.get(k)?.totalMpps ?? []);
    const cEff = cRounds.flatMap((byThreads) => {
      const one = byThreads.get(1);
      const many = byThreads.get(k);
      return one === undefined || many === undefined ? [] : [many.totalMpps / (k * one.totalMpps)];
    });
    rows.push({
      driver: result.driver,
      workers: k,
      totalMppsPerRound: totals,
      totalMpps: totalMedian,
      totalSpreadPct: spreadPct(totals, totalMedian),
      perWorkerMpps: median(perWorker),
      efficiencyPerRound: eff,
      efficiency: effMedian,
      efficiencySpreadPct: spreadPct(eff, effMedian),
      p50Ns: hasLatency ? quantile(pooled, 0.5) : null,
      p99Ns: hasLatency ? quantile(pooled, 0.99) : null,
      timedFrames: runs.reduce((s, r) => s + r.timedFrames, 0),
      gcsMax: Math.max(...runs.flatMap((r) => r.gcs)),
      heapGrowthKiBMax: Math.max(...runs.flatMap((r) => r.heapGrowthKiB)),
      onCpuPctMin: Math.min(...runs.flatMap((r) => r.onCpuPct)),
      cTotalMpps: cTotals.length > 0 ? median(cTotals) : null,
      cEfficiency: cEff.length > 0 ? median(cEff) : null,
      latencyBuckets: hasLatency ? nonEmpty(pooled) : [],
    });
  }
  return rows;
}

const fmtPct = (pct: number): string => `±${pct < 10 ? pct.toFixed(1) : pct.toFixed(0)}%`;
const fmtUs = (ns: number | null): string => (ns === null ? '-' : (ns / 1000).toFixed(ns < 10_000 ? 2 : 1));

const COLUMNS = [
  { head: 'driver', left: true, cell: (r: ScalingRow) => r.driver },
  { head: 'workers', cell: (r: ScalingRow) => String(r.workers) },
  { head: 'total Mpps', cell: (r: ScalingRow) => r.totalMpps.toFixed(1) },
  { head: '±', cell: (r: ScalingRow) => fmtPct(r.totalSpreadPct) },
  { head: 'Mpps/worker', cell: (r: ScalingRow) => r.perWorkerMpps.toFixed(1) },
  { head: 'ns/frame/core', cell: (r: ScalingRow) => (1000 / r.perWorkerMpps).toFixed(1) },
  { head: 'efficiency', cell: (r: ScalingRow) => (r.workers === 1 ? '1' : Number.isNaN(r.efficiency) ? '-' : r.efficiency.toFixed(2)) },
  { head: 'eff ±', cell: (r: ScalingRow) => (r.workers === 1 || Number.isNaN(r.efficiency) ? '' : fmtPct(r.efficiencySpreadPct)) },
  { head: 'C total', cell: (r: ScalingRow) => (r.cTotalMpps === null ? '-' : r.cTotalMpps.toFixed(1)) },
  { head: 'C eff', cell: (r: ScalingRow) => (r.cEfficiency === null ? '-' : r.workers === 1 ? '1' : r.cEfficiency.toFixed(2)) },
  { head: 'p50 µs', cell: (r: ScalingRow) => fmtUs(r.p50Ns) },
  { head: 'p99 µs', cell: (r: ScalingRow) => fmtUs(r.p99Ns) },
  { head: 'on-CPU', cell: (r: ScalingRow) => (Number.isNaN(r.onCpuPctMin) ? '-' : `${r.onCpuPctMin}%`) },
  { head: 'GCs', cell: (r: ScalingRow) => String(r.gcsMax) },
  { head: 'heap KiB', cell: (r: ScalingRow) => r.heapGrowthKiBMax.toFixed(0) },
] as const;

export function formatScalingTable(rows: readonly ScalingRow[]): string {
  const cells = rows.map((r) => COLUMNS.map((c) => c.cell(r)));
  const widths = COLUMNS.map((c, i) => Math.max(c.head.length, ...cells.map((row) => row[i]!.length)));
  const line = (texts: readonly string[]): string =>
    texts.map((t, i) => ('left' in COLUMNS[i]! ? t.padEnd(widths[i]!) : t.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [line(COLUMNS.map((c) => c.head))];
  let previous = rows[0]?.driver;
  for (const [i, row] of cells.entries()) {
    if (rows[i]!.driver !== previous) out.push('');
    previous = rows[i]!.driver;
    out.push(line(row));
  }
  return out.join('\n');
}

/**
 * The per-core paragraph: what one core does, what the second added, and the straight-line
 * extrapolation to `cores` (which the README says why not to trust far).
 */
export function perCoreParagraph(rows: readonly ScalingRow[], cores = 16): string {
  const lines: string[] = [];
  for (const driver of new Set(rows.map((r) => r.driver))) {
    const one = rows.find((r) => r.driver === driver && r.workers === 1);
    const most = rows.filter((r) => r.driver === driver).sort((a, b) => b.workers - a.workers)[0];
    if (one === undefined || most === undefined || most.workers === 1) continue;
    const perCore = most.totalMpps / most.workers;
    const cNote = most.cTotalMpps === null || one.cTotalMpps === null
      ? ''
      : ` C: ${one.cTotalMpps.toFixed(1)} Mpps on one core, ${(most.cTotalMpps / most.workers).toFixed(1)} a core with ${most.workers} (efficiency ${most.cEfficiency?.toFixed(2)}).`;
    lines.push(
      `${driver}: one core ${one.totalMpps.toFixed(1)} Mpps (${(1000 / one.totalMpps).toFixed(1)} ns a frame); with ${most.workers} workers ` +
        `${perCore.toFixed(1)} Mpps a core (efficiency ${most.efficiency.toFixed(2)}); ${cores} cores at that rate: ` +
        `${(perCore * cores).toFixed(0)} Mpps, if nothing else were shared (bench/README.md says what is).${cNote}`,
    );
  }
  return lines.join('\n');
}
