/**
 * fwd: forwards frames between two ports in both directions, ixy's reference app (ixy-fwd.c).
 *
 *   fwd <port-a> <port-b> [--batch 32] [--seconds N] [--json] [--tx-first] [--tx-retries N] [--mac aa:bb:cc:dd:ee:ff]
 *       [--ring packed|split] [--workers N [--cores LIST]] [--irq poll|irq|adaptive] [--sim-pps N]
 *   fwd --sim [--sim-nic ixgbe|virtio] [--seconds N]   (two device models, no hardware)
 *
 * Read it next to ixy-fwd.c: main() has the same parts, in the same order.
 *   ixy-fwd.c                                    here
 *   if (argc != 3) ... usage                     fwdOptions(): the command line, checked
 *   dev1 = ixy_init(argv[1], 1, 1, 0); dev2 =    openBoth(): openDevice() on each port (--sim: openSimulatedPorts())
 *   stats_init(&stats1, dev1); ...               new LiveStats([a, b]), printStartLines()
 *   while (true) {                               pollLoop(() => {
 *     forward(dev1, 0, dev2, 0);                   forward(qa, qb, ...);
 *     forward(dev2, 0, dev1, 0);                   forward(qb, qa, ...);
 *     every second: print_stats_diff(...)        }, { everySecond, ... })
 *   }
 *   static void forward(): rx_batch, tx_batch,   lib/forward.ts's forward()
 *     free what tx_batch did not take
 * ixy-fwd.c runs until killed; this loop ends at --seconds or a signal, and main() prints the
 * totals and closes the ports. --workers runs the same loop in threads: forwardInWorkers().
 *
 * A port is a PCI address or a vhost-user backend, vhost-user:<socket> (DPDK's testpmd, say).
 * With --sim the two ports are device models of src/sim driven by the very same drivers
 * (lib/sim-ports.ts); their simulated wires are fed by pollLoop's `wire`, before every step, so
 * that the step is the forwarding alone, as on hardware.
 *
 * Run to completion: receive a batch on one port, send it on the other, and back. Frames the TX
 * ring has no room for are dropped (freed) — a forwarder must never block; --tx-retries N first
 * tries N more times for the rest, for a device that sends from a thread of its own (qemu's
 * I/O thread, a vhost-user backend) and may have made room a moment later. (The loop yields to
 * Node's event loop every few milliseconds: see lib/poll-loop.ts.) --tx-first sends one batch
 * of generated frames on each port first, as testpmd's --tx-first does, so that frames circulate
 * between two forwarders (or a forwarder and testpmd) with no traffic source.
 *
 * --irq irq|adaptive opens the ports with interrupts and sleeps on them when idle instead of
 * spinning (lib/poll-loop.ts, docs/adaptive-polling.md); --sim-pps N paces --sim's traffic.
 *
 * --workers N opens N queue pairs on each port and forwards pair i in worker thread i, pinned to
 * the i-th core of --cores (default: the CPUs near the first port's device, or all of them), as
 * DPDK's l2fwd runs one lcore per queue: see forwardInWorkers() and lib/fwd-workers.ts. The ports
 * spread received frames over their queues by flow (ixgbe RSS, virtio multiqueue), so each flow
 * stays in order.
 *
 * A packet is a number (its buffer's row in the buffer table, docs/packet-api.md) and a batch is
 * an Int32Array of them, allocated once: the loop never allocates, and never touches the frames.
 */
import type { DeviceOptions, NicDevice } from "../src/device.ts";
import { Mempool } from "../src/mem/mempool.ts";
import { writeFrame } from "../src/mem/packet.ts";
import { openDevice, type OpenOptions } from "../src/open-device.ts";
import { intOption, parse, portArguments, PORTS_HELP, runMain, SECONDS_OPTION, UsageError, type CommandSpec, type OptionSpecs } from "./lib/cli.ts";
import { forward, newForwardCounts, queueEnd, type ForwardCounts } from "./lib/forward.ts";
import { isMainThread, workerData } from "node:worker_threads";
import { FWD_WORKER, runForwardWorkers, type WorkerTotals } from "./lib/fwd-workers.ts";
import { deviceCpus } from "../src/mem/numa.ts";
import { onlineCores, parseCoreList } from "../src/threads/affinity.ts";
import { LiveStats, STATS_OPTIONS, statsFormat } from "./lib/live-stats.ts";
import { latencyReportLine, measureRx } from "./lib/latency-rx.ts";
import { cpuMeter, IRQ_OPTIONS, irqModeOption, IrqMode, pollLoop, simPpsOption, type IrqLoopOptions } from "./lib/poll-loop.ts";
import { placementLines } from "./lib/placement-lines.ts";
import { openSimulatedPorts, type SimulatedPorts } from "./lib/sim-ports.ts";
import { formatPps } from "./lib/stats-format.ts";
import { MIN_FRAME, writeUdpFrame } from "./lib/udp-frame.ts";
import { ringPictures, SHOW_RINGS_OPTION } from "./lib/ring-picture.ts";
import { addFlowRules, FLOW_FLAG, OFFLOAD_FLAGS, offloadDeviceOptions, offloadLines, parseFlowRule } from "./lib/offload-options.ts";

const SPEC = {
  name: "ixy-fwd",
  summary: "forwards frames between two ports in both directions, ixy's reference app",
  usage: ["<port-a> <port-b> [options]", "--sim [--sim-nic ixgbe|virtio] [options]"],
  options: {
    batch: { type: "string", arg: "N", help: "frames received and sent per call, 1 to 512", default: "32", unit: "frames" },
    ...SECONDS_OPTION,
    ...STATS_OPTIONS,
    ...SHOW_RINGS_OPTION,
    "frame-size": { type: "string", arg: "N", help: "with --sim: the size of the frames the models receive, 60 to 1514", default: "60", unit: "bytes" },
    "tx-first": { type: "boolean", help: "send one burst of 32 frames on each port first, as testpmd's --tx-first" },
    ring: { type: "string", arg: "packed|split", help: "the virtqueue layout of virtio ports", default: "packed where offered" },
    "tx-retries": { type: "string", arg: "N", help: "try N more times to send what the TX ring had no room for, before dropping it", default: "0" },
    workers: { type: "string", arg: "N", help: "forward N queue pairs per port, pair i in worker thread i (0: in the main thread)", default: "0" },
    cores: { type: "string", arg: "LIST", help: "with --workers: the core of each worker, as 0-3,8", default: "the CPUs near the first port" },
    latency: { type: "boolean", help: "measure frames stamped by ixy-pktgen --latency as they arrive on either port: loss, reordering, one-way latency (pktgen on the same host); not with --workers" },
    ...IRQ_OPTIONS,
    ...OFFLOAD_FLAGS,
    ...FLOW_FLAG,
  },
  details: PORTS_HELP,
} as const satisfies CommandSpec<OptionSpecs>;
/** Frames --tx-first sends on each port (testpmd's burst). */
const TX_FIRST_BURST = 32;

async function main(): Promise<number> {
  const o = fwdOptions();
  const { batch, txRetries } = o;

  // The two ports. --sim: two device models (src/sim) driven by the same drivers, each with a
  // simulated wire; otherwise openDevice() on each address, as ixy-fwd.c's two ixy_init().
  const sim = o.sim === null ? null : openSimulatedPorts(o.sim, 2, { ...o.device, frameSize: o.frameSize });
  const [a, b] = sim !== null ? sim.devices : openBoth(o.addresses, { ...o.device, mac: o.mac });
  // Kept until the end: the frames circulate, and come back to these pools when they are dropped.
  const txFirstPools = o.values["tx-first"] ? await sendFirstBursts(a, b, o.queues) : [];
  // What was forwarded a to b, and dropped because b's TX ring was full; and b to a.
  const ab = newForwardCounts();
  const ba = newForwardCounts();
  const stats = new LiveStats([a, b], { format: o.format, app: "fwd", appDrops: () => [ba.dropped, ab.dropped] });
  printStartLines(a, b, o, txFirstPools.length > 0);
  // --flow: the rules are programmed here, each named on a line.
  process.stderr.write(offloadLines("fwd", [a, b]) + addFlowRules("fwd", [a, b], o.flowRules));

  if (o.workers > 0) {
    await forwardInWorkers(a, b, sim, o, txFirstPools, stats, ab, ba);
  } else {
    const bufs = new Int32Array(batch);
    // --latency (docs/pktgen.md): each port's received frames pass a meter first.
    const measured = o.values.latency ? [measureRx(queueEnd(a)), measureRx(queueEnd(b))] : null;
    const [qa, qb] = measured ? [measured[0]!.end, measured[1]!.end] : [queueEnd(a), queueEnd(b)];
    const pps = simPpsOption(o.values["sim-pps"]);
    const wire = sim?.traffic(batch, pps);
    const sleeps = { parks: 0, wakeups: 0 };
    const run = await pollLoop(
      () => {
        forward(qa, qb, bufs, batch, txRetries, ab);
        forward(qb, qa, bufs, batch, txRetries, ba);
      },
      {
        seconds: o.seconds,
        wire,
        everySecond: everySecond(stats, [a, b], o, ab, ba, sleeps),
        irq: sleepOnInterrupts(o.irq, a, b, ab, ba, wire, sleeps),
      },
    );
    if (o.irq !== IrqMode.poll) process.stderr.write(`fwd: --irq ${o.irq}: slept ${run.parks} times, ${run.wakeups} woken by an interrupt\n`);
    stats.finish();
    if (measured) for (const [i, m] of measured.entries()) process.stdout.write(latencyReportLine([a, b][i]!.address, m, o.values.json ?? false) + "\n");
  }

  process.stderr.write(`fwd: dropped ${ab.dropped + ba.dropped} frames for lack of TX descriptors\n`);
  if (sim !== null) process.stderr.write(sim.wireLines("fwd"));
  closePorts(sim, a, b);
  return 0;
}

/** fwd's command line, checked as far as it can be before a device is opened. */
function fwdOptions() {
  const { values, positionals, sim, mac, unsafeNoIommu, device } = parse(SPEC);
  const addresses = portArguments(SPEC, positionals, 2, sim !== null);
  const irq = irqModeOption(values.irq);
  if (irq !== IrqMode.poll && Number(values.workers ?? 0) > 0) throw new UsageError("--irq irq|adaptive does not go with --workers (yet)");
  const flowRules = (values.flow ?? []).map(parseFlowRule);
  const format = statsFormat(values);
  const batch = intOption("batch", values.batch, 32, 1, 512);
  const seconds = intOption("seconds", values.seconds, 0, 0, 1e9);
  const txRetries = intOption("tx-retries", values["tx-retries"], 0, 0, 1e9);
  const workers = intOption("workers", values.workers, 0, 0, 64);
  if (values.latency && workers > 0) throw new UsageError("--latency does not go with --workers (yet)");
  // The workers own their rings: a picture drawn here would race with their hot loops.
  if (values["show-rings"] && workers > 0) throw new UsageError("--show-rings does not go with --workers: the rings belong to the workers");
  if (values.cores !== undefined && workers === 0) throw new UsageError("--cores goes with --workers N");
  const ring = values.ring;
  if (ring !== undefined && ring !== "packed" && ring !== "split") throw new UsageError(`--ring must be packed or split, got ${ring}`);
  const frameSize = intOption("frame-size", values["frame-size"], 60, 60, 1514);
  /** The DeviceOptions of both ports, whether openDevice() opens them or they are device models. */
  const deviceOptions: DeviceOptions = {
    ...device,
    ...(ring === undefined ? {} : { ring }),
    unsafeNoIommu,
    ...(workers > 1 ? { rxQueues: workers, txQueues: workers } : {}),
    ...(irq === IrqMode.poll ? {} : { interrupts: true }),
    ...offloadDeviceOptions(values),
  };
  /** Queue pairs per port: one per worker, or the one this thread forwards. */
  const queues = Math.max(1, workers);
  return { values, sim, addresses, mac, device: deviceOptions, irq, flowRules, format, batch, seconds, txRetries, workers, queues, frameSize };
}
type FwdOptions = ReturnType<typeof fwdOptions>;

/**
 * The two ports on hardware (or vhost-user backends): openDevice() on each, ixy-fwd.c's
 * ixy_init(argv[1]) and ixy_init(argv[2]); the first is closed again if the second fails.
 * portArguments() has checked both addresses already, before either is opened.
 */
function openBoth(addresses: readonly string[], options: OpenOptions): [NicDevice, NicDevice] {
  const a = openDevice(addresses[0]!, options);
  try {
    return [a, openDevice(addresses[1]!, options)];
  } catch (e) {
    a.close();
    throw e;
  }
}

/** Closes both ports: with --sim the models' devices and their DMA. */
function closePorts(sim: SimulatedPorts | null, a: NicDevice, b: NicDevice): void {
  if (sim !== null) {
    sim.close();
  } else {
    a.close();
    b.close();
  }
}

/** "fwd: forwarding a <-> b, batch 32 ...", then where each PCI device and its memory are. */
function printStartLines(a: NicDevice, b: NicDevice, o: FwdOptions, sentFirst: boolean): void {
  process.stderr.write(
    `fwd: forwarding ${a.address} <-> ${b.address}, batch ${o.batch}${o.sim ? ` (device models: ${o.sim})` : ""}` +
      `${sentFirst ? `, sent ${TX_FIRST_BURST} frames on each ${o.queues > 1 ? "queue of each " : ""}port first` : ""}${virtioRings(a, b)}\n`,
  );
  // After the --tx-first pools exist, so that their memory is counted.
  process.stderr.write(placementLines("fwd", [a, b]));
}

/**
 * Once a second in the single-thread loop: the statistics, --show-rings' pictures, and with --irq
 * (any mode) the CPU use and the frames forwarded in that second. Made once, before the loop.
 */
function everySecond(stats: LiveStats, ports: readonly NicDevice[], o: FwdOptions, ab: ForwardCounts, ba: ForwardCounts, sleeps: { parks: number; wakeups: number }): () => void {
  const cpu = o.values.irq === undefined ? null : cpuMeter();
  let lastForwarded = 0;
  return () => {
    stats.print();
    if (o.values["show-rings"]) process.stderr.write(ringPictures(ports));
    if (cpu === null) return;
    process.stderr.write(
      `fwd: cpu ${cpu().toFixed(1)}% of one core, forwarded ${ab.forwarded + ba.forwarded - lastForwarded}, slept ${sleeps.parks} (${sleeps.wakeups} woken by irq)\n`,
    );
    lastForwarded = ab.forwarded + ba.forwarded;
  };
}

/**
 * --irq irq|adaptive: the loop sleeps on the receive interrupts of both ports (queue 0) when a step
 * forwarded nothing (lib/poll-loop.ts); with --sim the models' wires keep coming while it sleeps.
 */
function sleepOnInterrupts(
  mode: IrqMode, a: NicDevice, b: NicDevice, ab: ForwardCounts, ba: ForwardCounts, wire: (() => void) | undefined, counts: { parks: number; wakeups: number },
): IrqLoopOptions {
  const sources = [{ device: a, queue: 0 }, { device: b, queue: 0 }];
  return { mode, sources, activity: () => ab.forwarded + ab.dropped + ba.forwarded + ba.dropped, whileParked: wire, counts };
}

/**
 * --workers N: queue pair i of both ports forwarded by worker thread i (lib/fwd-workers.ts: the
 * same two forward() calls, in a loop of their own). This thread prints the statistics from the
 * workers' shared counters, into `ab` and `ba`, and with --sim runs the models. Ends with a line
 * per worker.
 */
async function forwardInWorkers(
  a: NicDevice, b: NicDevice, sim: SimulatedPorts | null, o: FwdOptions, txFirstPools: readonly Mempool[][], stats: LiveStats, ab: ForwardCounts, ba: ForwardCounts,
): Promise<void> {
  const { workers } = o;
  const cores = workerCores(workers, o.values.cores, a, sim !== null);
  process.stderr.write(`fwd: ${workers} worker thread${workers > 1 ? "s" : ""}, queue pair i on core ${cores.map((c, i) => `${i}:${c}`).join(" ")}\n`);
  const started = performance.now();
  let totals: WorkerTotals[] = [];
  try {
    totals = await runForwardWorkers(a, b, {
      workers, cores, batch: o.batch, txRetries: o.txRetries, seconds: o.seconds, everySecond: (now) => {
        countDrops(now, ab, ba);
        stats.print(workerRates(now));
      }, pump: sim ? (n) => sim.pump(n) : null,
      // --tx-first's pool of queue i goes to worker i, where its frames are dropped.
      pools: Array.from({ length: workers }, (_, i) => txFirstPools.map((byQueue) => byQueue[i]!)),
      entry: new URL(import.meta.url),
    });
  } catch (e) {
    closePorts(sim, a, b);
    throw e;
  }
  const elapsed = (performance.now() - started) / 1000;
  countDrops(totals, ab, ba);
  stats.finish();
  for (const t of totals) {
    process.stderr.write(
      `fwd: worker ${t.index} (core ${t.core ?? "any"}): forwarded ${t.forwarded} frames, ${(t.forwarded / elapsed / 1e6).toFixed(3)} Mpps, dropped ${t.dropped}\n`,
    );
  }
}

/** The workers' drops, summed into the counts of each direction (the live lines' ring-full, the totals). */
function countDrops(workers: readonly WorkerTotals[], ab: ForwardCounts, ba: ForwardCounts): void {
  ab.dropped = sum(workers, (w) => w.droppedAB);
  ba.dropped = sum(workers, (w) => w.droppedBA);
}

/**
 * --tx-first: one burst of generated frames on each queue of each port. A vhost-user backend
 * starts its queues a moment after the handshake, with no signal for it (DPDK drops what it
 * cannot forward yet): let it, before the first burst.
 */
async function sendFirstBursts(a: NicDevice, b: NicDevice, queues: number): Promise<Mempool[][]> {
  await new Promise((resolve) => setTimeout(resolve, 200));
  return [txFirst(a, queues), txFirst(b, queues)];
}

/**
 * One burst of 60-byte UDP frames on each queue of the port, from a pool of its own per queue
 * (returned, by queue): the frames come back to it when they are dropped, which with --workers
 * happens in the worker of that queue pair, so the pool goes to that worker.
 */
function txFirst(dev: NicDevice, queues: number): Mempool[] {
  const pools: Mempool[] = [];
  for (let q = 0; q < queues; q++) {
    const pool = new Mempool(dev.dma, { count: TX_FIRST_BURST, name: `fwd --tx-first pool on ${dev.address} queue ${q}` });
    pools.push(pool);
    const frame = new Uint8Array(MIN_FRAME);
    writeUdpFrame(frame, MIN_FRAME, { srcMac: dev.macAddress(), srcPort: 1024 + q });
    const bufs = new Int32Array(TX_FIRST_BURST);
    const n = pool.allocBatch(bufs, TX_FIRST_BURST);
    for (let i = 0; i < n; i++) writeFrame(bufs[i]!, frame);
    const sent = dev.txBatch(q, bufs, n); // before any pair is handed to a worker
    pool.freeBatch(bufs, n - sent, sent);
  }
  return pools;
}

/** Each worker's forwarding rate since the last call, for the per-second statistics. */
let lastWorkers: { forwarded: number; at: number }[] = [];
function workerRates(now: readonly WorkerTotals[]): { json: Record<string, unknown>; text: string } {
  const t = performance.now();
  const rates = now.map((w, i) => {
    const last = lastWorkers[i] ?? { forwarded: 0, at: t - 1000 };
    return { worker: w.index, core: w.core, mpps: (w.forwarded - last.forwarded) / ((t - last.at) / 1000) / 1e6, dropped: w.dropped };
  });
  lastWorkers = now.map((w) => ({ forwarded: w.forwarded, at: t }));
  return { json: { workers: rates }, text: `workers ${rates.map((r) => `${r.worker}: ${formatPps(r.mpps * 1e6)}`).join(", ")}` };
}

function sum(workers: readonly WorkerTotals[], f: (w: WorkerTotals) => number): number {
  return workers.reduce((s, w) => s + f(w), 0);
}

/**
 * The core of each worker: --cores in the order written (one per worker), or by default the
 * CPUs near the first port's PCI device (deviceCpus: its NUMA node's), all online CPUs for
 * models and vhost-user ports, taken in turn.
 */
function workerCores(workers: number, list: string | undefined, first: NicDevice, sim: boolean): number[] {
  if (list !== undefined) {
    const cores = parseCoreList(list, "--cores");
    if (cores.length < workers) throw new UsageError(`--cores ${list} names ${cores.length} cores for ${workers} workers: give one per worker`);
    return cores.slice(0, workers);
  }
  const near = sim || first.address.startsWith("vhost-user:") ? onlineCores() : [...deviceCpus(first.address)];
  return Array.from({ length: workers }, (_, i) => near[i % near.length]!);
}

/** ", virtio rings packed/split": the virtqueue layout each virtio port negotiated (DeviceOptions.ring). */
function virtioRings(...devices: NicDevice[]): string {
  const rings = devices.map((d) => (d as { readonly ring?: string }).ring ?? "-");
  return rings.some((r) => r !== "-") ? `, virtio rings ${rings.join("/")}` : "";
}

// fwd --workers starts its workers from this module (see fwd-workers.ts, ForwardWorkersOptions.entry).
if (!isMainThread && (workerData as Record<string, unknown> | null)?.[FWD_WORKER] === true) await import("./lib/fwd-worker.ts");
else await runMain(main);
