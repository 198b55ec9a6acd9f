// `npm run bench -- --scaling`: the instant-device forwarder in 1 and 2 worker threads, one queue
// pair each, pinned to its own core; total and per-worker packet rates, scaling efficiency and
// per-frame latency. bench/run.ts dispatches here; see bench/README.md, "--scaling".
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { buildReference, CFLAGS, ensureGcc } from '../lib/build.ts';
import { busyPercent, machineFacts } from '../lib/machine.ts';
import { runCThreads, type CThreadsResult } from './c-ref.ts';
import { localDay, toJson } from '../lib/results.ts';
import { runDriver, type ScalingRun } from './harness.ts';
import { DEFAULT_RESULTS_DIR, parseScalingOptions, SCALING_USAGE, ScalingUsageError } from './options.ts';
import { formatScalingTable, perCoreParagraph, summarizeScaling, type ScalingRow } from './summary.ts';
import { formatPipelineTable, runPipeline, type PipelineResult } from './pipeline.ts';

const log = (line: string): void => void process.stdout.write(`${line}\n`);

export async function runScaling(argv: readonly string[], root: string): Promise<void> {
  const o = parseScalingOptions(argv);
  const started = new Date();
  const t0 = performance.now();
  log('ixy.ts bench --scaling: the TypeScript forwarder in worker threads, one queue pair each, on the instant device');
  const gcc = o.c ? ensureGcc(log) : '-';
  if (o.c) buildReference(o.drivers);
  const machine = machineFacts(gcc, null, await busyPercent());
  log(`machine  ${machine.cpu}, ${machine.cpus} CPUs, ${machine.os}, Linux ${machine.kernel}`);
  log(`node     ${machine.node}`);
  if (o.c) log(`gcc      ${gcc}; ${CFLAGS.join(' ')}; C reference: bench/ref/<driver>-fwd --threads k after each TS run of k workers`);
  log(`date     ${started.toISOString()}`);
  log(`pinning  ${o.cores.every((c) => c === null) ? 'none' : o.cores.map((c, i) => `worker ${i} on core ${c}`).join(', ')}; the main thread sleeps`);
  if (Math.max(...o.workers) > availableParallelism()) log(`warning  more workers than the ${availableParallelism()} CPUs: they share cores`);
  if ((machine.busyAtStartPct ?? 0) >= 15) log(`warning  other work is using ${machine.busyAtStartPct}% of the CPUs: expect a wide spread`);
  log(
    `plan     ${o.rounds} round${o.rounds === 1 ? '' : 's'} of workers ${o.workers.join(',')} per driver (${o.drivers.join(', ')}); batch ${o.batch}; ` +
      `per worker and run ${o.warmup.toLocaleString('en-US')} warm-up + ${o.frames.toLocaleString('en-US')} timed frames; ` +
      (o.latency ? `latency: one receive batch in ${o.sampleEvery} stamped` : 'latency off') +
      (o.layout === 'apart' ? '; layout apart: two single-queue ports per worker, pools on poolTop blocks of their own' : ''),
  );
  log('');

  const rows: ScalingRow[] = [];
  const raw: { driver: string; runs: ScalingRun[]; forwarded: number; poolIds: number[][]; c: { round: number; result: CThreadsResult }[] }[] = [];
  for (const driver of o.drivers) {
    const cRuns = new Map<number, Map<number, CThreadsResult>>();
    const cList: { round: number; result: CThreadsResult }[] = [];
    const afterRun = async (round: number, k: number): Promise<string> => {
      const r = await runCThreads(driver, k, o.batch, o.frames, o.warmup, o.cores);
      const byThreads = cRuns.get(round) ?? new Map<number, CThreadsResult>();
      byThreads.set(k, r);
      cRuns.set(round, byThreads);
      cList.push({ round, result: r });
      return `C ${k}t ${r.totalMpps.toFixed(1)} Mpps`;
    };
    const result = await runDriver(driver, {
      batch: o.batch, frames: o.frames, warmup: o.warmup, rounds: o.rounds, workerCounts: o.workers, cores: o.cores,
      latency: o.latency, sampleEvery: o.sampleEvery, layout: o.layout,
    }, { log, afterRun: o.c ? afterRun : undefined });
    rows.push(...summarizeScaling(result, o.workers, o.c ? cRuns : undefined));
    raw.push({ driver, runs: result.runs, forwarded: result.forwarded, poolIds: result.poolIds, c: cList });
    log(`  ${driver}: worker pools (ids) ${result.poolIds.map((ids, i) => `${i}: ${ids.join(',')}`).join('; ')}`);
  }

  log('');
  log(formatScalingTable(rows));
  log('');
  log(`total Mpps: all workers' frames over the time from the first one's start to the last one's end, median over ${o.rounds} rounds; ±: half the min-max range.`);
  log('Mpps/worker: each worker\'s frames over its own time (mean over the workers), median over the rounds; ns/frame/core is its inverse.');
  log('efficiency: total(k) / (k x total(1)), formed within each round, median over the rounds.');
  if (o.c) log('C total, C eff: the C reference with k threads (bench/ref/<driver>-fwd --threads k, pinned like the workers, no timestamps), the same way.');
  log(o.latency
    ? 'p50, p99: from the instant device stamping a frame as it receives it to its seeing the frame on a TX ring, over every stamped frame of the configuration.'
    : 'latency: off (--no-latency).');
  log('on-CPU: the lowest share of its timed run a worker spent running (its thread\'s CPU time over wall time); below ~95% other work took its core.');
  log('GCs, heap KiB: the worst worker and round (collections and heap growth in the worker during its timed run).');
  log('');
  log(perCoreParagraph(rows));
  log('Every run checked: the device side got back every frame it delivered, nothing dropped.');

  const pipeline: PipelineResult[] = [];
  if (o.pipeline) {
    log('');
    log('run to completion against the pipeline: one queue pair, every frame through processFrame (MAC swap, TTL, checksum)');
    for (const driver of o.drivers) {
      pipeline.push(await runPipeline(driver, { batch: o.batch, frames: o.frames, warmup: o.warmup, rounds: o.rounds, cores: o.cores }, log));
    }
    log('');
    log(formatPipelineTable(pipeline));
    log('');
    log('rtc: one worker receives, processes and sends; pipeline: a receive worker hands batches through an SPSC ring to a process');
    log('worker on the other core, which sends (the buffers come back through the return ring). Medians over the rounds; pipeline/rtc');
    log('is formed within each round. dropped: frames freed for a full ring or TX ring (freed, not lost).');
  }

  const durationS = (performance.now() - t0) / 1000;
  if (o.write) {
    // A --results-dir on the command line is the caller's path; the default is the repository's.
    const dir = o.resultsDir === DEFAULT_RESULTS_DIR ? join(root, o.resultsDir) : resolve(o.resultsDir);
    mkdirSync(dir, { recursive: true });
    const suffix = [o.quick ? '-quick' : '', o.custom ? '-custom' : ''].join('');
    const file = join(dir, `scaling-${localDay(started)}${suffix}.json`);
    const tail = argv.join(' ');
    writeFileSync(file, toJson({
      schema: 'ixy.ts-bench-scaling/1',
      date: started.toISOString(),
      command: `npm run bench -- --scaling${tail ? ` ${tail}` : ''}`,
      machine: { ...machine, pinnedTo: undefined },
      config: { ...o, write: undefined, resultsDir: undefined },
      durationS: Math.round(durationS * 10) / 10,
      runs: raw,
      summary: rows,
      pipeline,
    }));
    log(`wrote ${file}`);
  }
  log(`done in ${durationS.toFixed(1)} s`);
}

export { SCALING_USAGE, ScalingUsageError };
