// The C reference point of the scaling bench: bench/ref/<driver>-fwd --threads N, N pthreads each
// with a forwarder of its own on the same instant-device layout, pinned like the workers.
import { spawn } from 'node:child_process';
import { binaryPath } from '../lib/build.ts';
import type { Driver } from '../lib/types.ts';

export interface CThreadsResult {
  readonly threads: number;
  readonly totalMpps: number;
  readonly perThreadMpps: number[];
}

interface Line {
  impl: 'c';
  driver: string;
  threads: number;
  startNs: number[];
  endNs: number[];
  forwarded: number[];
}

export async function runCThreads(
  driver: Driver, threads: number, batch: number, frames: number, warmup: number, cores: readonly (number | null)[],
): Promise<CThreadsResult> {
  const args = ['--threads', String(threads), '--batches', String(batch), '--packets', String(frames), '--warmup', String(warmup)];
  const pinned = cores.slice(0, threads);
  if (pinned.every((c) => c !== null)) args.push('--cores', pinned.join(','));
  const command = binaryPath(driver);
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const who = `${command} ${args.join(' ')}`;
  if (code !== 0) throw new Error(`${who} exited with ${code}: ${err.trim()}`);
  const lines = out.trim().split('\n');
  if (lines.length !== 1) throw new Error(`${who} printed ${lines.length} lines, expected one JSON line`);
  const line = JSON.parse(lines[0]!) as Line;
  if (line.threads !== threads || line.startNs.length !== threads || line.endNs.length !== threads || line.forwarded.length !== threads) {
    throw new Error(`${who}: unexpected line ${lines[0]}`);
  }
  const start = Math.min(...line.startNs);
  const end = Math.max(...line.endNs);
  const total = line.forwarded.reduce((s, x) => s + x, 0);
  return {
    threads,
    totalMpps: (total / (end - start)) * 1e3,
    perThreadMpps: line.forwarded.map((f, t) => (f / (line.endNs[t]! - line.startNs[t]!)) * 1e3),
  };
}
