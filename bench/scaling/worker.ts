/**
 * One worker of the scaling bench (harness.ts starts it): pins itself to its core, attaches queue
 * pair i of both ports, builds the instant device's side of those two pairs, and on each "run"
 * command forwards between them, run to completion, with the device side in the same loop: per
 * iteration, for A->B and then B->A, exactly as bench/fwd-ts.ts does for pair 0 in one thread:
 *
 *   device completes up to `batch` RX descriptors; n = rxBatch; data[1]++ on each frame;
 *   sent = txBatch(n), the rest freed; the device completes every TX descriptor.
 *
 * With latency on, the device stamps one receive batch in `sampleEvery` per port with
 * performance.now() in 10 ns ticks (one clock read for the batch: the instant device fills the
 * whole batch at that instant; bench/instant/frames.ts), and its transmit side records
 * now - stamp for every stamped frame it sends (one clock read per transmit call that meets
 * one). Between runs the worker waits in its event loop. Nothing on the forwarding path posts a
 * message or allocates, but for the number each performance.now() call returns.
 */
import { readFileSync } from "node:fs";
import { getHeapStatistics } from "node:v8";
import { parentPort, workerData } from "node:worker_threads";
import { bufDataOffset, bufPool, poolBytes } from "../../src/mem/buffer-table.ts";
import { freeBuffers } from "../../src/mem/mempool.ts";
import { pinThread } from "../../src/threads/affinity.ts";
import { attachQueuePair, type AttachedQueuePair } from "../../src/threads/queue-pair.ts";
import { stampTicks } from "../instant/frames.ts";
import { exposedGc, GcWindow } from "../lib/gc-window.ts";
import { InstantIxgbeQueue } from "../instant/ixgbe.ts";
import { InstantVirtioQueue } from "../instant/virtio.ts";
import { COUNTER_STRIDE, Counter, type Command, type DeviceQueueData, type Report, type WorkerData } from "./protocol.ts";

const data = workerData as WorkerData;
const { index, core, batch, barrier, latency, sampleEvery } = data;
const counters = new Float64Array(data.counters.buffer, data.counters.byteOffset + index * COUNTER_STRIDE * 8, COUNTER_STRIDE);
const POOL_OF = bufPool;
const DATA_AT = bufDataOffset;
const BYTES = poolBytes;
const SAMPLE_MASK = sampleEvery - 1;

type DeviceSide = InstantIxgbeQueue | InstantVirtioQueue;

/** `other`: the device side of the other port, whose FrameStamps this one shares. */
function deviceSide(d: DeviceQueueData, other?: DeviceSide): DeviceSide {
  return d.kind === "ixgbe" ? new InstantIxgbeQueue(d, other?.stamps) : new InstantVirtioQueue(d, other?.stamps);
}

const report = (r: Report): void => parentPort!.postMessage(r);

const attached: AttachedQueuePair[] = [];
let a: AttachedQueuePair;
let b: AttachedQueuePair;
let devA: DeviceSide;
let devB: DeviceSide;
const bufs = new Int32Array(batch);
/** Receive calls so far per port (the sampling counter). */
let callsA = 0;
let callsB = 0;
// Per run, added to the shared counters at its end.
let deviceReceived = 0;
let deviceSent = 0;
let dropped = 0;

/** One direction of one iteration; returns the frames received. */
function forward(devRx: DeviceSide, rx: AttachedQueuePair, tx: AttachedQueuePair, devTx: DeviceSide, stamp: number, timed: boolean): number {
  deviceReceived += stamp !== 0 ? devRx.receiveStamped(batch, stamp) : devRx.receive(batch);
  const n = rx.rxBatch(bufs, batch);
  let lastPool = -1;
  let bytes = BYTES[0]!;
  for (let i = 0; i < n; i++) {
    const buf = bufs[i]!;
    const pool = POOL_OF[buf]!;
    if (pool !== lastPool) {
      lastPool = pool;
      bytes = BYTES[pool]!;
    }
    bytes[DATA_AT[buf]! + 1]!++;
  }
  const sent = tx.txBatch(bufs, n);
  if (sent < n) {
    freeBuffers(bufs, sent, n - sent);
    dropped += n - sent;
  }
  deviceSent += timed ? devTx.transmitTimed(latency) : devTx.transmit();
  return n;
}

function run(frames: number, timed: boolean): number {
  let moved = 0;
  while (moved < frames) {
    const stampA = timed && (++callsA & SAMPLE_MASK) === 0 ? stampTicks(performance.now()) : 0;
    moved += forward(devA, a, b, devB, stampA, timed);
    const stampB = timed && (++callsB & SAMPLE_MASK) === 0 ? stampTicks(performance.now()) : 0;
    moved += forward(devB, b, a, devA, stampB, timed);
  }
  return moved;
}

/** Collections that started inside the timed part (performance.now() of this thread). */
const gcWindow = new GcWindow();
// A worker gets no --expose-gc from the command line (exposedGc says how it gets gc anyway): the
// young generation is emptied before each timed run (bench/fwd-ts.ts calls gc() after its
// warm-up for the same reason): the clock's results are the one allocation left in the loop,
// and the timed part should not pay for the warm-up's garbage.
const gc = exposedGc();
// Let the entries of the warm-up and the forced collection arrive before the run.
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

/** This thread's CPU time so far in clock ticks (utime + stime of /proc/thread-self/stat), or NaN. */
function cpuTicks(): number {
  try {
    const stat = readFileSync("/proc/thread-self/stat", "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return NaN;
  }
}

/** Adds this part's counts to the shared ones (the harness checks them against each other). */
function addCounts(forwarded: number): void {
  counters[Counter.deviceReceived]! += deviceReceived;
  counters[Counter.deviceSent]! += deviceSent;
  counters[Counter.forwarded]! += forwarded;
  counters[Counter.dropped]! += dropped;
  deviceReceived = deviceSent = dropped = 0;
}

async function timedRun(c: Extract<Command, { kind: "run" }>): Promise<void> {
  addCounts(run(c.warmup, c.latency));
  gc({ type: "minor" });
  await settle();
  latency.fill(0);
  const heapBefore = getHeapStatistics().used_heap_size;
  const ticksBefore = cpuTicks();
  // The start line: every worker of this run has warmed up (a spin of microseconds).
  Atomics.add(barrier, 0, 1);
  while (Atomics.load(barrier, 0) < c.active);
  const startMs = performance.timeOrigin + gcWindow.open();
  const frames = run(c.frames, c.latency);
  const endMs = performance.timeOrigin + gcWindow.close();
  const ticks = cpuTicks() - ticksBefore;
  const heapGrowthKiB = Math.round((getHeapStatistics().used_heap_size - heapBefore) / 1024);
  addCounts(frames);
  await settle();
  let timedFrames = 0;
  for (let i = 0; i < latency.length; i++) timedFrames += latency[i]!;
  report({ kind: "done", index, frames, startMs, endMs, gcs: gcWindow.collections, heapGrowthKiB, timed: timedFrames, cpuTicks: ticks });
}

function fail(e: unknown): void {
  for (const q of attached) q.detach();
  const error = e as Error;
  report({ kind: "failed", index, name: error?.name ?? "Error", message: error?.message ?? String(e) });
  gcWindow.disconnect();
  parentPort!.close();
}

try {
  if (core !== null) pinThread(core, `scaling worker ${index}`);
  a = attachQueuePair(data.pairs[0]);
  attached.push(a);
  b = attachQueuePair(data.pairs[1]);
  attached.push(b);
  devA = deviceSide(data.devices[0]);
  devB = deviceSide(data.devices[1], devA);
  parentPort!.on("message", (c: Command) => {
    if (c.kind === "stop") {
      for (const q of attached) q.detach();
      gcWindow.disconnect();
      report({ kind: "stopped", index });
      parentPort!.close();
      return;
    }
    timedRun(c).catch(fail);
  });
  report({ kind: "ready", index });
} catch (e) {
  fail(e);
}
