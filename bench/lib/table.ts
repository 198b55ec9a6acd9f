// The table run.ts prints: one row per (driver, batch), medians over the rounds.
import type { SummaryRow } from './types.ts';

// Three significant digits or so: more would be noise on a shared machine.
export function fmtNs(ns: number): string {
  return ns < 10 ? ns.toFixed(2) : ns < 100 ? ns.toFixed(1) : ns.toFixed(0);
}

export function fmtPct(pct: number): string {
  return `±${pct < 10 ? pct.toFixed(1) : pct.toFixed(0)}%`;
}

const COLUMNS = [
  { head: 'driver', left: true, cell: (r: SummaryRow) => r.driver },
  { head: 'batch', cell: (r: SummaryRow) => String(r.batch) },
  { head: 'C ns/pkt', cell: (r: SummaryRow) => fmtNs(r.c.medianNs) },
  { head: 'C ±', cell: (r: SummaryRow) => fmtPct(r.c.spreadPct) },
  { head: 'TS ns/pkt', cell: (r: SummaryRow) => fmtNs(r.ts.medianNs) },
  { head: 'TS ±', cell: (r: SummaryRow) => fmtPct(r.ts.spreadPct) },
  { head: 'C Mpps', cell: (r: SummaryRow) => r.c.mpps.toFixed(1) },
  { head: 'TS Mpps', cell: (r: SummaryRow) => r.ts.mpps.toFixed(1) },
  { head: 'TS/C', cell: (r: SummaryRow) => r.ratio.median.toFixed(2) },
  { head: 'spread', cell: (r: SummaryRow) => fmtPct(r.ratio.spreadPct) },
  { head: 'GCs', cell: (r: SummaryRow) => (r.ts.gcsMax === undefined ? '-' : String(r.ts.gcsMax)) },
  { head: 'heap KiB', cell: (r: SummaryRow) => (r.ts.heapGrowthKiBMax === undefined ? '-' : r.ts.heapGrowthKiBMax.toFixed(0)) },
] as const;

export function formatTable(rows: readonly SummaryRow[]): string {
  const cells = rows.map((r) => COLUMNS.map((c) => c.cell(r)));
  const widths = COLUMNS.map((c, i) => Math.max(c.head.length, ...cells.map((row) => row[i]!.length)));
  const line = (texts: readonly string[]): string =>
    texts
      .map((t, i) => ('left' in COLUMNS[i]! ? t.padEnd(widths[i]!) : t.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(COLUMNS.map((c) => c.head))];
  let previous = rows[0]?.driver;
  for (const [i, row] of cells.entries()) {
    if (rows[i]!.driver !== previous) out.push(''); // a gap between the drivers
    previous = rows[i]!.driver;
    out.push(line(row));
  }
  return out.join('\n');
}
