// From raw rounds to the numbers in the table. Each round contributes one value per
// (driver, impl, batch): its process's best run. Medians across rounds damp a round that a
// neighbour on the machine disturbed; the min-max range shows how much that mattered.
import type { BatchResult, Driver, ImplSummary, RatioSummary, Round, SummaryRow } from './types.ts';

export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

// Half the range as a percentage of the median: "±3%" means the rounds lay within about 3%.
function spreadPct(xs: readonly number[], mid: number): number {
  return ((Math.max(...xs) - Math.min(...xs)) / 2 / mid) * 100;
}

function implSummary(perRound: BatchResult[]): ImplSummary {
  const best = perRound.map((r) => r.bestNs);
  const medianNs = median(best);
  const minNs = Math.min(...best);
  const maxNs = Math.max(...best);
  const s: ImplSummary = {
    bestNsPerRound: best,
    medianNs,
    minNs,
    maxNs,
    spreadPct: spreadPct(best, medianNs),
    mpps: 1000 / medianNs,
    mppsLow: 1000 / maxNs,
    mppsHigh: 1000 / minNs,
  };
  // Worst case over the rounds: the goal is zero, so any round with collections should show.
  const gcs = perRound.map((r) => r.gcs).filter((g) => g !== undefined);
  if (gcs.length) s.gcsMax = Math.max(...gcs);
  const heap = perRound.map((r) => r.heapGrowthKiB).filter((h) => h !== undefined);
  if (heap.length) s.heapGrowthKiBMax = Math.max(...heap);
  return s;
}

// The ratio is formed within each round (that round's C and TS ran back to back), then the
// median taken: a slow round slows both and cancels out, which a ratio of medians would not do.
function ratioSummary(c: readonly BatchResult[], ts: readonly BatchResult[]): RatioSummary {
  const perRound = c.map((cr, i) => cr.bestNs / ts[i]!.bestNs);
  const mid = median(perRound);
  return { perRound, median: mid, min: Math.min(...perRound), max: Math.max(...perRound), spreadPct: spreadPct(perRound, mid) };
}

function find(round: Round, impl: 'c' | 'ts', driver: Driver, batch: number): BatchResult {
  const r = round.results.find((x) => x.impl === impl && x.driver === driver && x.batch === batch);
  if (!r) throw new Error(`round ${round.round} has no ${impl} ${driver} result for batch ${batch}`);
  return r;
}

export function summarize(rounds: readonly Round[], drivers: readonly Driver[], batches: readonly number[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const driver of drivers) {
    for (const batch of batches) {
      const c = rounds.map((r) => find(r, 'c', driver, batch));
      const ts = rounds.map((r) => find(r, 'ts', driver, batch));
      rows.push({ driver, batch, c: implSummary(c), ts: implSummary(ts), ratio: ratioSummary(c, ts) });
    }
  }
  return rows;
}
