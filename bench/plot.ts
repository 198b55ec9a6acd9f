// Draws a results file as a self-contained SVG: packet rate against batch size, one colour per
// driver, C dashed and TS solid, min-max error bars over the rounds, and the TS/C ratios beside
// it. No dependencies: the SVG is written as text.
//
//   tsx bench/plot.ts bench/results/2025-01-31.json [out.svg]   (default: the .json's name, .svg)
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Driver, Impl, ImplSummary, ResultFile, SummaryRow } from './lib/types.ts';

const WIDTH = 900;
const HEIGHT = 560;
const PLOT = { left: 72, top: 92, right: 680, bottom: 490 } as const;
const COLOURS: Record<Driver, string> = { ixgbe: '#1f5fa8', virtio: '#d2561b', 'virtio-packed': '#2a9d3f' };
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';

// Collects SVG elements; text is escaped once here, so CPU names with "&" cannot break the file.
class Svg {
  #parts: string[] = [];

  static escape(text: string): string {
    return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  }

  add(element: string): void {
    this.#parts.push(element);
  }

  line(x1: number, y1: number, x2: number, y2: number, style: string): void {
    this.add(`<line x1="${r(x1)}" y1="${r(y1)}" x2="${r(x2)}" y2="${r(y2)}" ${style}/>`);
  }

  text(x: number, y: number, text: string, style = ''): void {
    this.add(`<text x="${r(x)}" y="${r(y)}" ${style}>${Svg.escape(text)}</text>`);
  }

  toString(): string {
    return [
      `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ${FONT} font-size="12">`,
      `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
      ...this.#parts,
      '</svg>',
      '',
    ].join('\n');
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function r(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

// A round step (1, 2, 2.5 or 5 times a power of ten) giving about six intervals up to max.
function niceStep(max: number): number {
  const raw = max / 6;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * magnitude >= raw) return m * magnitude;
  return 10 * magnitude;
}

function seriesOf(rows: readonly SummaryRow[], driver: Driver, impl: Impl): { batch: number; s: ImplSummary }[] {
  return rows.filter((row) => row.driver === driver).map((row) => ({ batch: row.batch, s: row[impl] }));
}

export function renderPlot(result: ResultFile): string {
  const rows = result.summary;
  const drivers = [...new Set(rows.map((row) => row.driver))];
  const batches = [...new Set(rows.map((row) => row.batch))].sort((a, b) => a - b);
  const svg = new Svg();

  // x: log2 of the batch size, spanning the powers of two around the measured sizes.
  const lo = Math.floor(Math.log2(batches[0] ?? 1));
  let hi = Math.ceil(Math.log2(batches.at(-1) ?? 256));
  if (hi === lo) hi = lo + 1;
  const x = (batch: number): number => PLOT.left + ((Math.log2(batch) - lo) / (hi - lo)) * (PLOT.right - PLOT.left);

  // y: from zero, so the heights compare as rates do.
  const top = Math.max(1, ...rows.flatMap((row) => [row.c.mppsHigh, row.ts.mppsHigh]));
  const step = niceStep(top * 1.05);
  const yMax = Math.ceil((top * 1.05) / step) * step;
  const y = (mpps: number): number => PLOT.bottom - (mpps / yMax) * (PLOT.bottom - PLOT.top);

  // Title and what the numbers are.
  const day = result.date.slice(0, 10);
  const m = result.machine;
  const c = result.config;
  svg.text(PLOT.left, 30, `ixy.ts forwarder vs C reference on an instant device, ${day}${c.quick ? ' (quick run)' : ''}`, 'font-size="17" font-weight="bold" fill="#222"');
  svg.text(PLOT.left, 52, `${m.cpu}, ${m.cpus} CPUs · node ${m.node} · ${m.gcc.replace(/\s*\(.*?\)\s*/, ' ')} -O2`, 'fill="#555"');
  const runs = `median of ${plural(c.rounds, 'round')}, each the best of ${plural(c.runs, 'run')} of ${c.packets.toLocaleString('en-US')} packets; bars: min–max over the rounds`;
  svg.text(PLOT.left, 70, runs, 'fill="#555"');

  // Grid, axes and ticks.
  for (let v = 0; v <= yMax + step / 1e6; v += step) {
    const yy = y(v);
    svg.line(PLOT.left, yy, PLOT.right, yy, v === 0 ? 'stroke="#333" stroke-width="1"' : 'stroke="#e3e3e3" stroke-width="1"');
    svg.text(PLOT.left - 8, yy + 4, Number(v.toFixed(6)).toString(), 'text-anchor="end" fill="#333"');
  }
  for (let e = lo; e <= hi; e++) {
    const xx = x(2 ** e);
    svg.line(xx, PLOT.top, xx, PLOT.bottom, 'stroke="#f0f0f0" stroke-width="1"');
    svg.line(xx, PLOT.bottom, xx, PLOT.bottom + 5, 'stroke="#333" stroke-width="1"');
    svg.text(xx, PLOT.bottom + 19, String(2 ** e), 'text-anchor="middle" fill="#333"');
  }
  svg.line(PLOT.left, PLOT.top, PLOT.left, PLOT.bottom, 'stroke="#333" stroke-width="1"');
  svg.text((PLOT.left + PLOT.right) / 2, PLOT.bottom + 42, 'batch size (packets per rx_batch call, log scale)', 'text-anchor="middle" font-size="13" fill="#222"');
  const midY = (PLOT.top + PLOT.bottom) / 2;
  svg.add(`<text x="20" y="${r(midY)}" transform="rotate(-90 20 ${r(midY)})" text-anchor="middle" font-size="13" fill="#222">packets forwarded per second (Mpps)</text>`);

  // The four lines: error bars first, then the line, then the markers on top.
  for (const driver of drivers) {
    for (const impl of ['c', 'ts'] as const) {
      const colour = COLOURS[driver];
      const points = seriesOf(rows, driver, impl);
      for (const { batch, s } of points) {
        const xx = x(batch);
        svg.line(xx, y(s.mppsLow), xx, y(s.mppsHigh), `stroke="${colour}" stroke-width="1.3"`);
        for (const v of [s.mppsLow, s.mppsHigh]) svg.line(xx - 4, y(v), xx + 4, y(v), `stroke="${colour}" stroke-width="1.3"`);
      }
      const path = points.map(({ batch, s }, i) => `${i ? 'L' : 'M'}${r(x(batch))},${r(y(s.mpps))}`).join(' ');
      const dash = impl === 'c' ? ' stroke-dasharray="7 5"' : '';
      svg.add(`<path d="${path}" fill="none" stroke="${colour}" stroke-width="2.2"${dash}/>`);
      for (const { batch, s } of points) svg.add(marker(impl, x(batch), y(s.mpps), colour));
    }
  }

  legend(svg, drivers, rows, batches);
  return svg.toString();
}

// TS: a filled dot; C: a hollow square, so the lines differ without colour too.
function marker(impl: Impl, cx: number, cy: number, colour: string): string {
  return impl === 'ts'
    ? `<circle cx="${r(cx)}" cy="${r(cy)}" r="3.6" fill="${colour}"/>`
    : `<rect x="${r(cx - 3.5)}" y="${r(cy - 3.5)}" width="7" height="7" fill="#fff" stroke="${colour}" stroke-width="1.6"/>`;
}

// The legend and, under it, the headline ratio per batch size and driver.
function legend(svg: Svg, drivers: readonly Driver[], rows: readonly SummaryRow[], batches: readonly number[]): void {
  const left = PLOT.right + 28;
  let yy = PLOT.top + 6;
  for (const driver of drivers) {
    for (const impl of ['ts', 'c'] as const) {
      const colour = COLOURS[driver];
      const dash = impl === 'c' ? ' stroke-dasharray="7 5"' : '';
      svg.add(`<path d="M${left},${yy} h34" stroke="${colour}" stroke-width="2.2"${dash}/>`);
      svg.add(marker(impl, left + 17, yy, colour));
      svg.text(left + 44, yy + 4, `${driver} ${impl === 'ts' ? 'TypeScript' : 'C reference'}`, 'fill="#222"');
      yy += 22;
    }
  }

  yy += 18;
  svg.text(left, yy, 'TS/C packet rate', 'font-weight="bold" fill="#222"');
  yy += 15;
  svg.text(left, yy, '(median of per-round ratios)', 'font-size="11" fill="#555"');
  yy += 22;
  const col = (i: number): number => left + 98 + i * 60; // right edges of the ratio columns
  svg.text(left + 34, yy, 'batch', 'text-anchor="end" fill="#555"');
  drivers.forEach((d, i) => svg.text(col(i), yy, d, `text-anchor="end" fill="${COLOURS[d]}" font-weight="bold"`));
  for (const batch of batches) {
    yy += 17;
    svg.text(left + 34, yy, String(batch), 'text-anchor="end" fill="#333"');
    drivers.forEach((d, i) => {
      const row = rows.find((x) => x.driver === d && x.batch === batch);
      svg.text(col(i), yy, row ? row.ratio.median.toFixed(2) : '–', 'text-anchor="end" fill="#222"');
    });
  }
}

export function writePlot(jsonPath: string, svgPath = jsonPath.replace(/\.json$/, '') + '.svg'): string {
  const result = JSON.parse(readFileSync(jsonPath, 'utf8')) as ResultFile;
  if (result.schema !== 'ixy.ts-bench/1') throw new Error(`${jsonPath} is not a bench results file`);
  writeFileSync(svgPath, renderPlot(result));
  return svgPath;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [json, out] = process.argv.slice(2);
  if (!json) {
    console.error('usage: tsx bench/plot.ts bench/results/<file>.json [out.svg]');
    process.exit(2);
  }
  console.log(`wrote ${writePlot(json, out)}`);
}
