/**
 * Run to completion against the pipeline (issue 13's two ways of using two cores), on one queue
 * pair of one instant port, both doing the same per-frame work: processFrame (MAC swap, TTL,
 * incremental checksum, examples/lib/pipeline-stages.ts).
 *
 *   rtc       one worker on core 0: receive, process, send, as fwd does;
 *   pipeline  a receive worker on core 0 hands batches through an SPSC ring to a process worker
 *             on core 1, which sends; the sent buffers go back through the return ring.
 *
 * The comparison says what the hand-over costs against what a second core adds, for this work
 * per frame. Rounds alternate the two (rtc, pipeline, rtc, ...) on the same port. The receive
 * side runs faster than the process stage: what the ring has no room for is freed at once and
 * counted (dropped), as the pipeline app does; so the pipeline's rate is the process stage's.
 * After the last run, every buffer is in its pool or in the port's rings (checked).
 */
import type { NicDevice } from "../../src/device.ts";
import { bufDataOffset, poolBytes, poolTop } from "../../src/mem/buffer-table.ts";
import { returnRing } from "../../src/mem/pool-returns.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { SpscRing } from "../../src/threads/spsc-ring.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";
import { writeUdpFrame } from "../../examples/lib/udp-frame.ts";
import { InstantIxgbePort } from "../instant/ixgbe.ts";
import { InstantVirtioPort } from "../instant/virtio.ts";
import type { Driver } from "../lib/types.ts";
import type { PipelineRole, PipelineWorkerData } from "./pipeline-worker.ts";
import type { DeviceQueueData } from "./protocol.ts";

const ENTRY = new URL("./pipeline-worker.ts", import.meta.url);
const RING_SIZE = 1024;
/** The instant ports' ring size (bench/instant: 512 descriptors; virtio's queues hold no more). */
const RING_DESCRIPTORS = 512;

export interface PipelineConfig {
  readonly batch: number;
  readonly frames: number;
  readonly warmup: number;
  readonly rounds: number;
  readonly cores: readonly (number | null)[];
}

export interface PipelineResult {
  readonly driver: Driver;
  /** Per round, Mpps of the timed frames. */
  readonly rtcMpps: number[];
  readonly pipelineMpps: number[];
  /** Frames dropped in all runs (a full ring or TX ring): they are freed, not lost. */
  readonly dropped: number;
}

interface InstantPort {
  readonly dev: NicDevice;
  queueData(q: number): DeviceQueueData;
}

function openPort(driver: Driver, dma: SimDma): InstantPort {
  return driver === "ixgbe" ? new InstantIxgbePort(dma, 90) : new InstantVirtioPort(dma, 90, undefined, driver === "virtio-packed");
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One run: the workers of `roles` on pair 0; returns the timed side's result. */
async function run(port: InstantPort, roles: readonly PipelineRole[], o: PipelineConfig): Promise<{ mpps: number; dropped: number }> {
  const pair = port.dev.shareQueuePair(0);
  const control = new Int32Array(new SharedArrayBuffer(5 * 4));
  const result = new Float64Array(new SharedArrayBuffer(3 * 8));
  const ring = SpscRing.create(RING_SIZE, { name: "pipeline bench ring" }).shared();
  const returns = returnRing(pair.rxPool, "pipeline bench returns").shared();
  const errors: string[] = [];
  try {
    const exits = roles.map((role, i) => {
      const data: PipelineWorkerData = {
        role, core: o.cores[i] ?? null, pair, device: port.queueData(0), batch: o.batch, frames: o.frames, warmup: o.warmup,
        ring, returns, control, result,
      };
      const w = startTsWorker(ENTRY, { workerData: data });
      return new Promise<void>((resolve) => {
        w.on("message", (m: { ok: boolean; error?: string }) => {
          if (!m.ok) errors.push(`${role} worker: ${m.error}`);
        });
        w.on("error", (e) => errors.push(`${role} worker: ${e.message}`));
        w.on("exit", () => resolve());
      });
    });
    while (Atomics.load(control, 0) < roles.length) await sleep(5);
    Atomics.store(control, 1, 1);
    Atomics.notify(control, 1);
    await Promise.all(exits);
  } finally {
    port.dev.reclaimQueuePair(0);
  }
  if (errors.length > 0) throw new Error(`bench --scaling pipeline: ${errors.join("; ")}`);
  return { mpps: o.frames / (result[0]! / 1e9) / 1e6, dropped: result[2]! };
}

export async function runPipeline(driver: Driver, o: PipelineConfig, log: (line: string) => void): Promise<PipelineResult> {
  const dma = new SimDma(`pipeline bench ${driver}`);
  const port = openPort(driver, dma);
  try {
    // The instant device writes no frame bytes: every receive buffer holds an IPv4/UDP frame.
    const pool = port.dev.shareQueuePair(0).rxPool;
    port.dev.reclaimQueuePair(0);
    const frame = new Uint8Array(60);
    writeUdpFrame(frame, 60);
    const bytes = poolBytes[pool.id]!;
    for (let b = pool.first; b < pool.first + pool.count; b++) bytes.set(frame, bufDataOffset[b]!);
    const rtcMpps: number[] = [];
    const pipelineMpps: number[] = [];
    let dropped = 0;
    for (let r = 0; r < o.rounds; r++) {
      const a = await run(port, ["rtc"], o);
      const b = await run(port, ["rx", "proc"], o);
      rtcMpps.push(a.mpps);
      pipelineMpps.push(b.mpps);
      dropped += a.dropped + b.dropped;
      log(`  ${driver} round ${r + 1}/${o.rounds}: run to completion ${a.mpps.toFixed(1)} Mpps, pipeline ${b.mpps.toFixed(1)} Mpps`);
    }
    // Every buffer of the receive pool is home, or in one of the pair's rings (at most a ring's worth each).
    const home = poolTop[pool.id]!;
    if (home < pool.count - 2 * RING_DESCRIPTORS || home > pool.count) {
      throw new Error(`bench --scaling pipeline (${driver}): ${home} of the receive pool's ${pool.count} buffers are home after the runs`);
    }
    return { driver, rtcMpps, pipelineMpps, dropped };
  } finally {
    port.dev.close();
    dma.close();
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The comparison as a table: medians over the rounds, and pipeline/rtc formed within each round. */
export function formatPipelineTable(results: readonly PipelineResult[]): string {
  const lines = ["driver         rtc 1 core Mpps  pipeline 2 cores Mpps  pipeline/rtc  dropped"];
  for (const r of results) {
    const ratio = median(r.pipelineMpps.map((p, i) => p / r.rtcMpps[i]!));
    lines.push(
      `${r.driver.padEnd(15)}${median(r.rtcMpps).toFixed(1).padStart(15)}${median(r.pipelineMpps).toFixed(1).padStart(23)}` +
        `${ratio.toFixed(2).padStart(14)}${String(r.dropped).padStart(9)}`,
    );
  }
  return lines.join("\n");
}
