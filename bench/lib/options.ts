// The harness's command line. Two presets (full and --quick); any other flag narrows or resizes one.
import { DRIVERS, type Driver } from './types.ts';

export const DEFAULT_TS_SCRIPT = 'bench/fwd-ts.ts';
export const DEFAULT_RESULTS_DIR = 'bench/results';
const ALL_BATCHES = [1, 2, 4, 8, 16, 32, 64, 128, 256];

const PRESETS = {
  full: { rounds: 5, packets: 10_000_000, runs: 3, warmup: 2_000_000 },
  quick: { rounds: 3, packets: 2_000_000, runs: 2, warmup: 500_000 },
} as const;

export interface Options {
  quick: boolean;
  rounds: number;
  drivers: Driver[];
  batches: number[];
  packets: number;
  runs: number;
  warmup: number;
  write: boolean;
  pin: boolean;
  tsScript: string;
  resultsDir: string;
  // True when anything but the preset is measured: such a run never replaces latest.* or a
  // preset's dated file.
  custom: boolean;
}

export const USAGE = `usage: npm run bench -- [options]   (or: tsx bench/run.ts [options])
  --quick            3 rounds of 2,000,000 packets x 2 runs (default: 5 rounds, 10,000,000 x 3)
  --rounds N         rounds (each runs every driver's C and TS process once)
  --drivers LIST     ixgbe,virtio,virtio-packed (default all three)
  --batches LIST     batch sizes (default 1,2,4,8,16,32,64,128,256)
  --packets N        packets per timed run
  --runs N           timed runs per batch size and process
  --warmup N         packets forwarded before the timed runs of each batch size
  --no-write         print the table only; write no results
  --no-pin           do not pin the forwarders to CPU 1 with taskset
  --ts-script PATH   the TypeScript forwarder (default ${DEFAULT_TS_SCRIPT})
  --results-dir DIR  where results go (default ${DEFAULT_RESULTS_DIR})
  --scaling          the worker-thread scaling bench instead (npm run bench -- --scaling --help)`;

export class UsageError extends Error {}

function count(flag: string, text: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(text);
  if (text === undefined || !/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} wants a whole number in ${min}..${max}, got ${text ?? 'nothing'}`);
  }
  return n;
}

function list(flag: string, text: string | undefined): string[] {
  const items = (text ?? '').split(',').filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`${flag} wants a comma-separated list`);
  return items;
}

export function parseOptions(argv: readonly string[]): Options {
  const quick = argv.includes('--quick');
  const preset = quick ? PRESETS.quick : PRESETS.full;
  const o: Options = {
    quick,
    ...preset,
    drivers: [...DRIVERS],
    batches: [...ALL_BATCHES],
    write: true,
    pin: true,
    tsScript: DEFAULT_TS_SCRIPT,
    resultsDir: DEFAULT_RESULTS_DIR,
    custom: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--quick':
        break;
      case '--rounds':
        o.rounds = count(flag, value(), 1);
        break;
      case '--packets':
        o.packets = count(flag, value(), 1);
        break;
      case '--runs':
        o.runs = count(flag, value(), 1, 64); // the C forwarders keep at most 64
        break;
      case '--warmup':
        o.warmup = count(flag, value(), 0);
        break;
      case '--drivers':
        o.drivers = list(flag, value()).map((d) => {
          if (!(DRIVERS as readonly string[]).includes(d)) throw new UsageError(`unknown driver ${d} (ixgbe, virtio, virtio-packed)`);
          return d as Driver;
        });
        break;
      case '--batches':
        // At most 512 (the ring size) and 32 of them: the C forwarders' limits.
        o.batches = list(flag, value()).map((b) => count(flag, b, 1, 512));
        if (o.batches.length > 32) throw new UsageError('--batches lists more than 32 sizes');
        break;
      case '--no-write':
        o.write = false;
        break;
      case '--no-pin':
        o.pin = false;
        break;
      case '--ts-script':
        o.tsScript = value() ?? '';
        if (o.tsScript === '') throw new UsageError('--ts-script wants a path');
        break;
      case '--results-dir':
        o.resultsDir = value() ?? '';
        if (o.resultsDir === '') throw new UsageError('--results-dir wants a path');
        break;
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown option ${flag}`);
    }
  }
  if (new Set(o.drivers).size !== o.drivers.length) throw new UsageError('--drivers lists a driver twice');
  if (new Set(o.batches).size !== o.batches.length) throw new UsageError('--batches lists a size twice');
  o.custom =
    o.rounds !== preset.rounds ||
    o.packets !== preset.packets ||
    o.runs !== preset.runs ||
    o.warmup !== preset.warmup ||
    o.drivers.join() !== DRIVERS.join() ||
    o.batches.join() !== ALL_BATCHES.join(); // run.ts adds a different --ts-script, once it is resolved
  return o;
}
