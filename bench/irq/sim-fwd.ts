/**
 * bench:irq's child on the device models: fwd's loop (examples/lib/poll-loop.ts, forward.ts)
 * between two 82599 models in this process, in one --irq mode, through three phases:
 * 1. idle: no traffic; process.cpuUsage() over the phase, as % of one core;
 * 2. latency: one frame every 1000/rate ms into port A; the time from the model's inject() to
 *    port B's transmit of the same frame (its sequence number), p50/p99;
 * 3. throughput: the source offers a burst at every step (as fwd --sim does): frames forwarded
 *    per second.
 * The traffic source runs in this process too (from the loop's steps, and from a 1 ms timer
 * while the loop sleeps): CPU use is only meaningful in the idle phase, which has none.
 *
 *   node --import tsx bench/irq/sim-fwd.ts --mode poll|irq|adaptive [--idle-s 3] [--lat-s 2] [--tput-s 2] [--rate 1000]
 *
 * Prints one JSON line (bench/irq/run.ts collects them).
 */
import { parseArgs } from "node:util";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import type { NicDevice } from "../../src/device.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { forward, newForwardCounts, queueEnd } from "../../examples/lib/forward.ts";
import { irqModeOption, IrqMode, pollLoop } from "../../examples/lib/poll-loop.ts";
import { getSequence, MIN_FRAME, setSequence, writeUdpFrame } from "../../examples/lib/udp-frame.ts";

const { values } = parseArgs({
  options: {
    mode: { type: "string" }, "idle-s": { type: "string" }, "lat-s": { type: "string" }, "tput-s": { type: "string" }, rate: { type: "string" },
  },
});
const mode = irqModeOption(values.mode);
const idleS = Number(values["idle-s"] ?? 3);
const latS = Number(values["lat-s"] ?? 2);
const tputS = Number(values["tput-s"] ?? 2);
const rate = Number(values.rate ?? 1000);
const BATCH = 32;

const dma = new SimDma("bench:irq DMA");
const models = [0, 1].map((i) => new Ixgbe82599Model({ dma, address: `sim:irq${i}`, mac: Uint8Array.of(2, 0, 0, 0, 0x82, i) }));
const options = { linkTimeoutMs: 1000, ...(mode === IrqMode.poll ? {} : { interrupts: true }) };
const devices: NicDevice[] = models.map((m) => createIxgbeDevice(m.pci, dma, options));
const [a, b] = devices as [NicDevice, NicDevice];
const [qa, qb] = [queueEnd(a), queueEnd(b)];
const bufs = new Int32Array(BATCH);
const counts = newForwardCounts();
const frame = new Uint8Array(MIN_FRAME);
writeUdpFrame(frame, MIN_FRAME, {});

// Latency: when each sequence number went in, and how long it took to come out.
const sentAt = new Float64Array(1 << 20);
const latencies: number[] = [];
let seq = 0;
let measuring = false;
models[1]!.onTransmit = (f) => {
  if (!measuring) return;
  const s = getSequence(f);
  if (s < seq) latencies.push(performance.now() - sentAt[s & (sentAt.length - 1)]!);
};
function injectOne(): void {
  setSequence(frame, 0, seq);
  sentAt[seq & (sentAt.length - 1)] = performance.now();
  seq++;
  models[0]!.inject(frame);
}

/** What the models' wires receive before every step: set per phase. */
let source: () => void = () => {};
const wire = () => source();
const step = () => {
  forward(qa, qb, bufs, BATCH, 0, counts);
  forward(qb, qa, bufs, BATCH, 0, counts);
};
const sources = [{ device: a, queue: 0 }, { device: b, queue: 0 }];
const activity = () => counts.forwarded + counts.dropped;
let parks = 0;
let wakeups = 0;
async function phase(seconds: number, whileParked?: () => void): Promise<void> {
  const r = await pollLoop(step, { seconds, wire, irq: { mode, sources, activity, whileParked } });
  parks += r.parks;
  wakeups += r.wakeups;
}

// Warm-up: the hot loops compile.
source = () => models[0]!.inject(frame);
await phase(0.5);
source = () => {};

// 1. Idle CPU.
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await phase(idleS);
const cpu1 = process.cpuUsage(cpu0);
const idleCpuPct = ((cpu1.user + cpu1.system) / 1000 / (performance.now() - t0)) * 100;

// 2. Latency at `rate` frames/s.
measuring = true;
const gap = 1000 / rate;
let next = performance.now();
const paced = () => {
  const now = performance.now();
  if (now >= next) {
    injectOne();
    next = Math.max(next + gap, now - gap);
  }
};
source = paced;
await phase(latS, paced);
measuring = false;
latencies.sort((x, y) => x - y);
const pct = (p: number) => (latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]! * 1000);

// 3. Throughput: a burst at every step.
source = () => {
  for (let i = 0; i < BATCH; i++) models[0]!.inject(frame);
};
const f0 = counts.forwarded;
const t2 = performance.now();
await phase(tputS);
const mpps = (counts.forwarded - f0) / ((performance.now() - t2) / 1000) / 1e6;

for (const d of devices) d.close();
dma.close();
process.stdout.write(`${JSON.stringify({
  target: "sim-ixgbe", mode, idleCpuPct, latency: { frames: latencies.length, p50us: pct(50), p99us: pct(99) }, throughputMpps: mpps, parks, wakeups,
})}\n`);
