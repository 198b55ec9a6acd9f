// Where a run's results go. A standard full run writes <date>.json and is the only kind that
// replaces latest.json / latest.svg, so the README's stable link always shows a complete
// measurement; a quick run writes <date>-quick.*, anything customised gets "-custom" too, so
// a narrowed run never overwrites the day's full one.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writePlot } from '../plot.ts';
import type { ResultFile } from './types.ts';

export function localDay(d: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}`;
}

// Indented, but with arrays of plain values on one line: a round's runsNs stays readable.
export function toJson(value: unknown): string {
  const text = JSON.stringify(value, null, 2);
  return text.replace(/\[\s+([^[\]{}]*?)\s+\]/g, (_, inner: string) => `[${inner.split(/,\n\s*/).join(', ')}]`) + '\n';
}

export function writeResults(dir: string, result: ResultFile, started: Date, custom: boolean): string[] {
  mkdirSync(dir, { recursive: true });
  const suffix = [result.config.quick ? '-quick' : '', custom ? '-custom' : ''].join('');
  const json = join(dir, `${localDay(started)}${suffix}.json`);
  writeFileSync(json, toJson(result));
  const svg = writePlot(json);
  const written = [json, svg];
  if (!result.config.quick && !custom) {
    copyFileSync(json, join(dir, 'latest.json'));
    copyFileSync(svg, join(dir, 'latest.svg'));
    written.push(join(dir, 'latest.json'), join(dir, 'latest.svg'));
  }
  return written;
}
