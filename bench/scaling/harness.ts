/**
 * The scaling bench's engine: for one driver, two instant-device ports with `maxWorkers` queue
 * pairs each, one worker thread per pair (worker.ts), and rounds in which first 1, then 2, ...
 * workers forward at once (rounds interleaved: 1,2,1,2,... so that a slow moment of the machine
 * hits both configurations). The thread that runs this only sets things up and then sleeps in its
 * event loop while the workers run.
 *
 * Checked after every run, as the C forwarders check themselves: every frame the device side
 * put into a receive ring came back to it through a transmit ring (nothing lost, nothing sent
 * twice), the forwarder dropped nothing, and each worker moved at least the frames asked for.
 */
import { spawnSync } from "node:child_process";
import type { Worker } from "node:worker_threads";
import type { NicDevice } from "../../src/device.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";
import { newCounts, quantile } from "../lib/histogram.ts";
import type { FrameRegion } from "../instant/frames.ts";
import { InstantIxgbePort } from "../instant/ixgbe.ts";
import { InstantVirtioPort } from "../instant/virtio.ts";
import type { Driver } from "../lib/types.ts";
import { COUNTER_STRIDE, Counter, type Command, type DeviceQueueData, type Report, type RunReport, type WorkerData } from "./protocol.ts";

export interface ScalingConfig {
  readonly batch: number;
  /** Frames each worker forwards in a timed run, after `warmup` untimed ones. */
  readonly frames: number;
  readonly warmup: number;
  readonly rounds: number;
  /** The worker counts of each round, in order (e.g. [1, 2]). */
  readonly workerCounts: readonly number[];
  /** Worker i's core (null: not pinned). */
  readonly cores: readonly (number | null)[];
  readonly latency: boolean;
  /** One receive batch in this many is stamped (a power of two). */
  readonly sampleEvery: number;
  /**
   * "queues" (the default): two ports with one queue pair per worker, worker i on pair i of both.
   * "apart": the experiment on shared lines: each worker gets two single-queue ports of its own,
   * and padding pools put each worker's pools on a 128-byte block of the buffer table's poolTop
   * column of their own (which "queues" cannot: a device makes its queues' pools one after the
   * other, so four workers' pool tops share a line; bench/README.md).
   */
  readonly layout?: "queues" | "apart";
}

/** One timed run of one configuration. */
export interface ScalingRun {
  readonly round: number;
  readonly workers: number;
  /** Frames over the time from the first worker's start to the last one's end, in Mpps. */
  readonly totalMpps: number;
  /** Each worker's frames over its own time. */
  readonly perWorkerMpps: number[];
  readonly gcs: number[];
  readonly heapGrowthKiB: number[];
  /** Latency quantiles of this run (all its workers), ns; null with latency off. */
  readonly p50Ns: number | null;
  readonly p99Ns: number | null;
  readonly timedFrames: number;
  /** Each worker's CPU time over its wall time, in % (below 100: the scheduler ran something else on its core). */
  readonly onCpuPct: number[];
}

export interface DriverResult {
  readonly driver: Driver;
  readonly runs: ScalingRun[];
  /** Latency histogram per worker count, summed over the rounds and workers. */
  readonly latency: Map<number, Float64Array>;
  /** Frames moved by all workers in all runs (warm-ups included), and what the device sides counted. */
  readonly forwarded: number;
  readonly deviceReceived: number;
  readonly deviceSent: number;
  readonly dropped: number;
  /** Each worker's two receive pools' ids (their poolTop entries: 16 to a 64-byte line). */
  readonly poolIds: number[][];
}

interface Port {
  readonly dev: NicDevice;
  queueData(q: number, frames: readonly FrameRegion[]): DeviceQueueData;
  rxPoolRegion(q: number): FrameRegion;
}

const ENTRY = new URL("./worker.ts", import.meta.url);
/** Clock ticks per second of /proc/<pid>/stat (sysconf(_SC_CLK_TCK): 100 on Linux x86-64 unless the kernel says otherwise). */
const CLOCK_TICKS = clockTicks();

function clockTicks(): number {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return r.status === 0 && Number.isInteger(n) && n > 0 ? n : 100;
}
const STOP_TIMEOUT_MS = 10_000;

function openPort(driver: Driver, dma: SimDma, index: number, queues: number): Port {
  return driver === "ixgbe"
    ? new InstantIxgbePort(dma, index, undefined, queues)
    : new InstantVirtioPort(dma, index, undefined, driver === "virtio-packed", queues);
}

/** poolTop entries per 128-byte block (Int32s). */
const POOL_TOPS_PER_BLOCK = 32;

/** Makes small pools until the next pool id starts a 128-byte block of poolTop; returns them. */
function padPoolIds(dma: SimDma): Mempool[] {
  const pads: Mempool[] = [];
  const poolIds: number[][] = [];
  for (;;) {
    const pad = new Mempool(dma, { count: 1, entrySize: 256, name: "scaling bench: poolTop padding" });
    pads.push(pad);
    if ((pad.id + 1) % POOL_TOPS_PER_BLOCK === 0) return pads;
  }
}

/**
 * The ports each worker uses, as [port, queue pair] for A and B. "queues": two ports of `workers`
 * pairs; "apart": two single-queue ports per worker, their pools on a poolTop block of their own.
 */
function openLayout(driver: Driver, dma: SimDma, workers: number, layout: "queues" | "apart", opened: Port[], pads: Mempool[]): [Port, Port][] {
  if (layout === "queues") {
    opened.push(openPort(driver, dma, 0, workers));
    opened.push(openPort(driver, dma, 1, workers));
    return Array.from({ length: workers }, () => [opened[0]!, opened[1]!]);
  }
  const out: [Port, Port][] = [];
  for (let i = 0; i < workers; i++) {
    pads.push(...padPoolIds(dma));
    const a = openPort(driver, dma, 2 * i, 1);
    opened.push(a);
    const b = openPort(driver, dma, 2 * i + 1, 1);
    opened.push(b);
    out.push([a, b]);
  }
  return out;
}

/** A worker's messages, as a queue the harness awaits one at a time. */
class Mailbox {
  readonly #waiting: ((r: Report) => void)[] = [];
  readonly #queued: Report[] = [];
  failure: Error | null = null;

  push(r: Report): void {
    const w = this.#waiting.shift();
    if (w !== undefined) w(r);
    else this.#queued.push(r);
  }

  next(): Promise<Report> {
    const r = this.#queued.shift();
    return r !== undefined ? Promise.resolve(r) : new Promise((resolve) => this.#waiting.push(resolve));
  }
}

async function expect<K extends Report["kind"]>(box: Mailbox, kind: K, who: string): Promise<Extract<Report, { kind: K }>> {
  const r = await box.next();
  if (r.kind === "failed") throw new Error(`${who}: ${r.name}: ${r.message}`);
  if (r.kind !== kind) throw new Error(`${who}: expected "${kind}", got "${r.kind}"`);
  return r as Extract<Report, { kind: K }>;
}

/**
 * Runs the rounds for `driver` and returns every run.
 */
export interface Hooks {
  readonly log?: (line: string) => void;
  /** After each timed run of `workers` workers in `round` (the C reference runs here); returns a note for the log. */
  readonly afterRun?: (round: number, workers: number) => Promise<string>;
  /** Sees the allocator once the devices are closed and every buffer is back in its pool (the test checks that). */
  readonly afterClose?: (dma: SimDma) => void;
}

export async function runDriver(driver: Driver, c: ScalingConfig, hooks: Hooks = {}): Promise<DriverResult> {
  const log = hooks.log ?? (() => {});
  const maxWorkers = Math.max(...c.workerCounts);
  const dma = new SimDma(`scaling ${driver} DMA`);
  const layout = c.layout ?? "queues";
  const ports: Port[] = [];
  const pads: Mempool[] = [];
  const poolIds: number[][] = [];
  const shared: { port: Port; q: number }[] = [];
  const workers: Worker[] = [];
  const boxes: Mailbox[] = [];
  const exited: Promise<void>[] = [];
  const barrier = new Int32Array(new SharedArrayBuffer(4));
  const counters = new Float64Array(new SharedArrayBuffer(maxWorkers * COUNTER_STRIDE * 8));
  const histograms = Array.from({ length: maxWorkers }, () => newCounts(true));
  const runs: ScalingRun[] = [];
  const latency = new Map<number, Float64Array>();
  try {
    const perWorker = openLayout(driver, dma, maxWorkers, layout, ports, pads);
    for (let i = 0; i < maxWorkers; i++) {
      const [pa, pb] = perWorker[i]!;
      const q = layout === "queues" ? i : 0;
      // Pair q of A only ever holds buffers of A's and B's pair-q receive pools.
      const frames = [pa.rxPoolRegion(q), pb.rxPoolRegion(q)];
      const devices: [DeviceQueueData, DeviceQueueData] = [pa.queueData(q, frames), pb.queueData(q, frames)];
      const pairA = pa.dev.shareQueuePair(q);
      shared.push({ port: pa, q });
      const pairB = pb.dev.shareQueuePair(q);
      shared.push({ port: pb, q });
      poolIds.push([pairA.rxPool.id, pairB.rxPool.id]);
      const data: WorkerData = {
        index: i, core: c.cores[i] ?? null, batch: c.batch, pairs: [pairA, pairB], devices, barrier, counters,
        latency: histograms[i]!, sampleEvery: c.sampleEvery,
      };
      const box = new Mailbox();
      const worker = startTsWorker(ENTRY, { workerData: data });
      worker.on("message", (r: Report) => box.push(r));
      worker.on("error", (e: Error) => box.push({ kind: "failed", index: i, name: e.name, message: e.message }));
      exited.push(new Promise((resolve) => worker.on("exit", () => {
        box.push({ kind: "failed", index: i, name: "Exit", message: "the worker exited" });
        resolve();
      })));
      workers.push(worker);
      boxes.push(box);
    }
    for (let i = 0; i < maxWorkers; i++) await expect(boxes[i]!, "ready", `${driver} worker ${i}`);

    for (let round = 1; round <= c.rounds; round++) {
      const said: string[] = [];
      for (const k of c.workerCounts) {
        Atomics.store(barrier, 0, 0);
        const command: Command = { kind: "run", frames: c.frames, warmup: c.warmup, active: k, latency: c.latency };
        for (let i = 0; i < k; i++) workers[i]!.postMessage(command);
        const reports: RunReport[] = [];
        for (let i = 0; i < k; i++) reports.push(await expect(boxes[i]!, "done", `${driver} worker ${i}`));
        const run = summarizeRun(round, k, reports, histograms, latency, c.latency);
        runs.push(run);
        said.push(`${k}w ${run.totalMpps.toFixed(1)} Mpps`);
        if (hooks.afterRun !== undefined) said.push(await hooks.afterRun(round, k));
      }
      log(`  ${driver} round ${round}/${c.rounds}: ${said.join(', ')}`);
    }
  } finally {
    for (const w of workers) w.postMessage({ kind: "stop" } satisfies Command);
    await Promise.all(exited.map((done, i) => Promise.race([done, delay(STOP_TIMEOUT_MS).then(() => workers[i]!.terminate())])));
    // Every worker has detached and exited: nothing touches the rings any more.
    for (const { port, q } of shared) port.dev.reclaimQueuePair(q);
    for (const p of ports) p.dev.close();
    for (const pad of pads) pad.close();
    hooks.afterClose?.(dma);
    dma.close();
  }
  let forwarded = 0;
  let deviceReceived = 0;
  let deviceSent = 0;
  let dropped = 0;
  for (let i = 0; i < maxWorkers; i++) {
    forwarded += counters[i * COUNTER_STRIDE + Counter.forwarded]!;
    deviceReceived += counters[i * COUNTER_STRIDE + Counter.deviceReceived]!;
    deviceSent += counters[i * COUNTER_STRIDE + Counter.deviceSent]!;
    dropped += counters[i * COUNTER_STRIDE + Counter.dropped]!;
  }
  if (deviceReceived !== deviceSent || forwarded !== deviceReceived || dropped !== 0) {
    throw new Error(
      `${driver}: frames lost: the device side received ${deviceReceived} and sent ${deviceSent}, the forwarder ` +
        `forwarded ${forwarded} and dropped ${dropped} (all four must agree, with 0 dropped)`,
    );
  }
  return { driver, runs, latency, forwarded, deviceReceived, deviceSent, dropped, poolIds };
}

function summarizeRun(
  round: number, workers: number, reports: readonly RunReport[], histograms: readonly Float64Array[],
  pooled: Map<number, Float64Array>, latencyOn: boolean,
): ScalingRun {
  const start = Math.min(...reports.map((r) => r.startMs));
  const end = Math.max(...reports.map((r) => r.endMs));
  const frames = reports.reduce((s, r) => s + r.frames, 0);
  const merged = newCounts();
  for (let i = 0; i < workers; i++) for (let j = 0; j < merged.length; j++) merged[j]! += histograms[i]![j]!;
  const all = pooled.get(workers) ?? newCounts();
  for (let j = 0; j < merged.length; j++) all[j]! += merged[j]!;
  pooled.set(workers, all);
  return {
    round,
    workers,
    totalMpps: frames / ((end - start) * 1e3),
    perWorkerMpps: reports.map((r) => r.frames / ((r.endMs - r.startMs) * 1e3)),
    gcs: reports.map((r) => r.gcs),
    heapGrowthKiB: reports.map((r) => r.heapGrowthKiB),
    p50Ns: latencyOn ? quantile(merged, 0.5) : null,
    p99Ns: latencyOn ? quantile(merged, 0.99) : null,
    timedFrames: reports.reduce((s, r) => s + r.timed, 0),
    onCpuPct: reports.map((r) => Math.round(((r.cpuTicks * 1000) / CLOCK_TICKS / (r.endMs - r.startMs)) * 100)),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
