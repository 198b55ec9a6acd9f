// The command line of `npm run bench -- --scaling`: two presets (full and --quick), any other
// flag narrows or resizes one (the run is then "custom" and gets a file name of its own).
import { parseCoreList } from '../../src/threads/affinity.ts';
import { DRIVERS, type Driver } from '../lib/types.ts';

export const DEFAULT_RESULTS_DIR = 'bench/results';

const PRESETS = {
  full: { rounds: 5, frames: 30_000_000, warmup: 2_000_000 },
  quick: { rounds: 3, frames: 10_000_000, warmup: 1_000_000 },
} as const;

export interface ScalingOptions {
  quick: boolean;
  rounds: number;
  drivers: Driver[];
  batch: number;
  /** Frames per worker per timed run. */
  frames: number;
  warmup: number;
  /** Worker counts measured, each round in this order. */
  workers: number[];
  /** Worker i's core; null entries when --no-pin. */
  cores: (number | null)[];
  latency: boolean;
  sampleEvery: number;
  /** "queues" (default) or "apart": see ScalingConfig.layout (harness.ts). */
  layout: 'queues' | 'apart';
  /** Also run the C reference (bench/ref/<driver>-fwd --threads k) after each TS run. */
  c: boolean;
  /** Also compare run to completion on one core with the two-worker pipeline (pipeline.ts). */
  pipeline: boolean;
  write: boolean;
  resultsDir: string;
  custom: boolean;
}

export const SCALING_USAGE = `usage: npm run bench -- --scaling [options]
  --quick            3 rounds of 10,000,000 frames per worker (default: 5 rounds of 30,000,000)
  --rounds N         rounds (each runs every worker count once, in order)
  --drivers LIST     ixgbe,virtio,virtio-packed (default all three)
  --workers LIST     worker counts per round (default 1,2)
  --cores LIST       core of worker i (default 0,1,...: one per worker, from 0)
  --batch N          batch size (default 32)
  --frames N         frames each worker forwards per timed run
  --warmup N         frames each worker forwards before each timed run
  --sample N         stamp one receive batch in N for the latency (a power of two, default 64)
  --no-latency       no timestamps at all
  --layout L         queues (default): two ports, one queue pair per worker; apart: two
                     single-queue ports per worker, pools on poolTop blocks of their own
  --no-c             no C reference runs (bench/ref/*-fwd --threads k)
  --no-pipeline      no comparison of run to completion with the two-worker pipeline
  --no-pin           do not pin the workers
  --no-write         print the table only; write no results
  --results-dir DIR  where results go (default ${DEFAULT_RESULTS_DIR})`;

export class ScalingUsageError extends Error {}

function count(flag: string, text: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ScalingUsageError(`${flag} wants a whole number in ${min}..${max}, got ${text ?? 'nothing'}`);
  }
  return n;
}

function list(flag: string, text: string | undefined): string[] {
  const items = (text ?? '').split(',').filter((s) => s !== '');
  if (items.length === 0) throw new ScalingUsageError(`${flag} wants a comma-separated list`);
  return items;
}

/** `argv` without the --scaling flag itself. */
export function parseScalingOptions(argv: readonly string[]): ScalingOptions {
  const quick = argv.includes('--quick');
  const preset = quick ? PRESETS.quick : PRESETS.full;
  const o: ScalingOptions = {
    quick, ...preset, drivers: [...DRIVERS], batch: 32, workers: [1, 2], cores: [], latency: true, sampleEvery: 64,
    layout: 'queues', c: true, pipeline: true, write: true, resultsDir: DEFAULT_RESULTS_DIR, custom: false,
  };
  let cores: number[] | null = null;
  let pin = true;
  let resized = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--quick':
        break;
      case '--rounds':
        o.rounds = count(flag, value(), 1);
        break;
      case '--frames':
        o.frames = count(flag, value(), 1);
        break;
      case '--warmup':
        o.warmup = count(flag, value(), 0);
        break;
      case '--batch':
        o.batch = count(flag, value(), 1, 512);
        resized = true;
        break;
      case '--sample':
        o.sampleEvery = count(flag, value(), 1, 1 << 20);
        if ((o.sampleEvery & (o.sampleEvery - 1)) !== 0) throw new ScalingUsageError(`--sample wants a power of two, got ${o.sampleEvery}`);
        resized = true;
        break;
      case '--drivers':
        o.drivers = list(flag, value()).map((d) => {
          if (!(DRIVERS as readonly string[]).includes(d)) throw new ScalingUsageError(`unknown driver ${d} (ixgbe, virtio, virtio-packed)`);
          return d as Driver;
        });
        break;
      case '--workers':
        o.workers = list(flag, value()).map((w) => count(flag, w, 1, 64));
        resized = true;
        break;
      case '--cores':
        try {
          cores = parseCoreList(value(), '--cores');
        } catch (e) {
          throw new ScalingUsageError((e as Error).message);
        }
        resized = true;
        break;
      case '--no-latency':
        o.latency = false;
        resized = true;
        break;
      case '--layout': {
        const l = value();
        if (l !== 'queues' && l !== 'apart') throw new ScalingUsageError(`--layout wants queues or apart, got ${l ?? 'nothing'}`);
        o.layout = l;
        resized = true;
        break;
      }
      case '--no-c':
        o.c = false;
        resized = true;
        break;
      case '--no-pipeline':
        o.pipeline = false;
        resized = true;
        break;
      case '--no-pin':
        pin = false;
        resized = true;
        break;
      case '--no-write':
        o.write = false;
        break;
      case '--results-dir':
        o.resultsDir = value() ?? '';
        if (o.resultsDir === '') throw new ScalingUsageError('--results-dir wants a path');
        break;
      case '--help':
      case '-h':
        throw new ScalingUsageError('');
      default:
        throw new ScalingUsageError(`unknown option ${flag}`);
    }
  }
  if (new Set(o.drivers).size !== o.drivers.length) throw new ScalingUsageError('--drivers lists a driver twice');
  const most = Math.max(...o.workers);
  cores ??= Array.from({ length: most }, (_, i) => i);
  if (cores.length < most) throw new ScalingUsageError(`--cores lists ${cores.length} cores for up to ${most} workers`);
  o.cores = pin ? cores : cores.map(() => null);
  o.custom = resized || o.rounds !== preset.rounds || o.frames !== preset.frames || o.warmup !== preset.warmup || o.drivers.join() !== DRIVERS.join();
  return o;
}
