// The benchmark harness: builds the C reference forwarders, runs them and the TypeScript
// forwarder side by side in rounds, prints medians and TS/C ratios, and writes the results
// with their plot. See bench/README.md.
//
//   npm run bench              5 rounds, 10,000,000 packets x 3 timed runs per batch size
//   npm run bench -- --quick   3 rounds, 2,000,000 x 2 (under a minute on a 2-core machine)
//   npm run bench -- --scaling 1 and 2 worker threads, one queue pair each (bench/scaling/run.ts)
import { existsSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { binaryPath, buildReference, CFLAGS, ensureGcc } from './lib/build.ts';
import { runChild, type ChildSpec } from './lib/child.ts';
import { busyPercent, machineFacts, pinTarget } from './lib/machine.ts';
import { DEFAULT_TS_SCRIPT, parseOptions, USAGE, UsageError, type Options } from './lib/options.ts';
import { writeResults } from './lib/results.ts';
import { runScaling, SCALING_USAGE, ScalingUsageError } from './scaling/run.ts';
import { summarize } from './lib/summary.ts';
import { formatTable } from './lib/table.ts';
import type { Driver, Impl, ResultFile, Round } from './lib/types.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const log = (line: string): void => void process.stdout.write(`${line}\n`);

// A path relative to the repository if it lies inside it, else absolute.
function fromRoot(path: string): string {
  const rel = relative(ROOT, resolve(path));
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? resolve(path) : rel;
}

function commandLine(args: readonly string[]): string {
  const tail = args.join(' ');
  return process.env.npm_lifecycle_event === 'bench'
    ? `npm run bench${tail ? ` -- ${tail}` : ''}`
    : `tsx bench/run.ts${tail ? ` ${tail}` : ''}`;
}

// Far more than any sane forwarder needs (2 µs a packet is 100 times the C), so a hung child
// is reported instead of hanging the harness.
function timeoutMs(o: Options): number {
  return (o.warmup + o.runs * o.packets) * o.batches.length * 2e-3 + 60_000;
}

function childSpec(o: Options, impl: Impl, driver: Driver, pin: string | null): ChildSpec {
  const common = ['--batches', o.batches.join(','), '--packets', String(o.packets), '--runs', String(o.runs), '--warmup', String(o.warmup)];
  const argv =
    impl === 'c'
      ? [binaryPath(driver), ...common]
      : [process.execPath, '--expose-gc', '--import', 'tsx', o.tsScript, '--driver', driver, ...common];
  const full = pin ? ['taskset', '-c', pin, ...argv] : argv;
  return { impl, driver, command: full[0]!, args: full.slice(1), batches: o.batches, packets: o.packets, runs: o.runs, timeoutMs: timeoutMs(o) };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--scaling')) {
    await runScaling(args.filter((a) => a !== '--scaling'), ROOT);
    return;
  }
  const o = parseOptions(args);
  // Paths on the command line are the caller's; everything else is relative to the repository.
  o.tsScript = fromRoot(o.tsScript);
  o.resultsDir = fromRoot(o.resultsDir);
  if (o.tsScript !== DEFAULT_TS_SCRIPT) o.custom = true; // another forwarder's numbers are not the project's
  process.chdir(ROOT);

  const started = new Date();
  const t0 = performance.now();
  log('ixy.ts bench: the TypeScript forwarder against the C reference, both on an instant device');
  const gcc = ensureGcc(log);
  buildReference(o.drivers);
  if (!existsSync(o.tsScript)) {
    throw new Error(`${o.tsScript} does not exist: it is the TypeScript forwarder this harness measures (see bench/README.md)`);
  }
  const pin = pinTarget(o.pin);
  const machine = machineFacts(gcc, pin, await busyPercent());

  log(`machine  ${machine.cpu}, ${machine.cpus} CPUs, ${machine.os}, Linux ${machine.kernel}`);
  log(`node     ${machine.node}`);
  log(`gcc      ${gcc}; ${CFLAGS.join(' ')}`);
  log(`date     ${started.toISOString()}`);
  log(`pinning  ${pin ? `each forwarder runs on CPU ${pin} (taskset -c ${pin})` : 'none'}`);
  if ((machine.busyAtStartPct ?? 0) >= 15) {
    log(`warning  other work is using ${machine.busyAtStartPct}% of the CPUs: expect a wide spread`);
  }
  log(
    `plan     ${o.rounds} round${o.rounds === 1 ? '' : 's'} of (${o.drivers.join(', ')}) x (TS, C); batches ${o.batches.join(',')}; per batch size ` +
      `${o.warmup.toLocaleString('en-US')} warm-up + ${o.runs} x ${o.packets.toLocaleString('en-US')} timed packets`,
  );
  log('');

  const rounds: Round[] = [];
  for (let i = 0; i < o.rounds; i++) {
    // Alternating who goes first cancels a drift (thermal, a neighbour) that favours the first.
    const order: Impl[] = i % 2 === 0 ? ['ts', 'c'] : ['c', 'ts'];
    const round: Round = { round: i + 1, order, results: [] };
    const said: string[] = [];
    for (const driver of o.drivers) {
      const times: string[] = [];
      for (const impl of order) {
        const outcome = await runChild(childSpec(o, impl, driver, pin));
        if (outcome.stderr.trim()) process.stderr.write(outcome.stderr.replace(/^/gm, `  [${impl} ${driver}] `).trimEnd() + '\n');
        round.results.push(...outcome.results);
        times.push(`${impl === 'c' ? 'C' : 'TS'} ${outcome.seconds.toFixed(1)} s`);
      }
      said.push(`${driver} ${times.join(', ')}`);
    }
    rounds.push(round);
    log(`round ${i + 1}/${o.rounds}  ${said.join('   ')}`);
  }

  const summary = summarize(rounds, o.drivers, o.batches);
  log('');
  log(formatTable(summary));
  log('');
  log(`ns/pkt: median over ${o.rounds === 1 ? 'the one round' : `${o.rounds} rounds`} of each round's best run; ±: half the min-max range over the rounds.`);
  log('TS/C: TS packet rate / C packet rate (C ns / TS ns) per round, median over rounds; spread: its ± range.');
  log('GCs, heap KiB: the worst round of the TS forwarder (collections, heap growth during the timed runs).');

  const durationS = (performance.now() - t0) / 1000;
  const result: ResultFile = {
    schema: 'ixy.ts-bench/1',
    date: started.toISOString(),
    command: commandLine(args),
    machine,
    config: { quick: o.quick, rounds: o.rounds, drivers: o.drivers, batches: o.batches, packets: o.packets, runs: o.runs, warmup: o.warmup, tsScript: o.tsScript },
    durationS: Math.round(durationS * 10) / 10,
    rounds,
    summary,
  };
  if (o.write) {
    const written = writeResults(o.resultsDir, result, started, o.custom);
    log(`wrote ${written.join(', ')}`);
  }
  log(`done in ${durationS.toFixed(1)} s`);
}

main().catch((err: unknown) => {
  if (err instanceof ScalingUsageError) {
    if (err.message) process.stderr.write(`bench --scaling: ${err.message}\n`);
    process.stderr.write(`${SCALING_USAGE}\n`);
    process.exit(err.message ? 2 : 0);
  }
  if (err instanceof UsageError) {
    if (err.message) process.stderr.write(`bench: ${err.message}\n`);
    process.stderr.write(`${USAGE}\n`);
    process.exit(err.message ? 2 : 0);
  }
  process.stderr.write(`bench: error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
