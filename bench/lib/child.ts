// Runs one forwarder process (C or TS) and checks what it prints: exactly one JSON line per
// batch size, in order, and nothing else on stdout. Anything off is an error that names the
// process, so a broken forwarder cannot slip a wrong number into the table.
import { spawn } from 'node:child_process';
import type { BatchResult, Driver, Impl } from './types.ts';

export class ChildError extends Error {}

export interface ChildSpec {
  impl: Impl;
  driver: Driver;
  command: string;
  args: string[];
  batches: readonly number[];
  packets: number;
  runs: number;
  timeoutMs: number;
}

export interface ChildOutcome {
  results: BatchResult[];
  stderr: string;
  seconds: number;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isPositive(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

// Returns what is wrong with one parsed line, or null if it is the expected result.
function problem(spec: ChildSpec, line: Record<string, unknown>, batch: number): string | null {
  if (line.impl !== spec.impl) return `"impl" is ${JSON.stringify(line.impl)}, expected "${spec.impl}"`;
  if (line.driver !== spec.driver) return `"driver" is ${JSON.stringify(line.driver)}, expected "${spec.driver}"`;
  if (line.batch !== batch) return `"batch" is ${JSON.stringify(line.batch)}, expected ${batch}`;
  if (line.packets !== spec.packets) return `"packets" is ${JSON.stringify(line.packets)}, expected ${spec.packets}`;
  const runs = line.runsNs;
  if (!Array.isArray(runs) || runs.length !== spec.runs || !runs.every(isPositive)) {
    return `"runsNs" must be ${spec.runs} positive numbers, got ${JSON.stringify(runs)}`;
  }
  if (!isPositive(line.bestNs) || Math.abs(line.bestNs - Math.min(...runs)) > 1e-3 * line.bestNs + 1e-3) {
    return `"bestNs" ${JSON.stringify(line.bestNs)} is not the minimum of "runsNs"`;
  }
  if (spec.impl === 'ts') {
    if (!isCount(line.gcs)) return `"gcs" must be a whole number >= 0, got ${JSON.stringify(line.gcs)}`;
    const heap = line.heapGrowthKiB;
    if (typeof heap !== 'number' || !Number.isFinite(heap)) return `"heapGrowthKiB" must be a number, got ${JSON.stringify(heap)}`;
  }
  return null;
}

function parse(spec: ChildSpec, stdout: string): BatchResult[] {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  const results: BatchResult[] = [];
  for (const [i, text] of lines.entries()) {
    if (i >= spec.batches.length) throw new Error(`printed more lines than batch sizes: ${text.slice(0, 200)}`);
    let line: unknown;
    try {
      line = JSON.parse(text);
    } catch {
      throw new Error(`printed a line that is not JSON (logs belong on stderr): ${text.slice(0, 200)}`);
    }
    if (typeof line !== 'object' || line === null || Array.isArray(line)) throw new Error(`printed a JSON line that is not an object: ${text.slice(0, 200)}`);
    const why = problem(spec, line as Record<string, unknown>, spec.batches[i]!);
    if (why) throw new Error(`line ${i + 1}: ${why}`);
    const r = line as BatchResult;
    results.push({
      impl: r.impl, driver: r.driver, batch: r.batch, packets: r.packets, runsNs: r.runsNs, bestNs: r.bestNs,
      ...(spec.impl === 'ts' ? { gcs: r.gcs!, heapGrowthKiB: r.heapGrowthKiB! } : {}),
    });
  }
  if (results.length < spec.batches.length) {
    const missing = spec.batches.slice(results.length).join(',');
    throw new Error(results.length === 0 ? 'printed no JSON' : `printed no JSON for batch sizes ${missing}`);
  }
  return results;
}

// All of a short stderr; of a long one the start (where node puts the error) and the end.
function excerpt(text: string): string {
  const all = text.trimEnd().split('\n');
  const shown = all.length <= 40 ? all : [...all.slice(0, 25), `... (${all.length - 35} lines)`, ...all.slice(-10)];
  return shown.map((l) => `    ${l}`).join('\n');
}

export function runChild(spec: ChildSpec): Promise<ChildOutcome> {
  const name = `${spec.impl === 'c' ? 'C' : 'TS'} ${spec.driver} forwarder (${[spec.command, ...spec.args].join(' ')})`;
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(spec.command, spec.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, spec.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new ChildError(`${name} could not start: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const said = stderr.trim() ? `\n  its stderr:\n${excerpt(stderr)}` : '';
      if (timedOut) return reject(new ChildError(`${name} took longer than ${spec.timeoutMs / 1000} s and was killed${said}`));
      if (code !== 0) return reject(new ChildError(`${name} failed with ${signal ? `signal ${signal}` : `exit code ${code}`}${said}`));
      try {
        resolve({ results: parse(spec, stdout), stderr, seconds });
      } catch (err) {
        reject(new ChildError(`${name} ${(err as Error).message}${said}`));
      }
    });
  });
}
