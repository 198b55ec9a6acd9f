/**
 * pktgen: sends UDP/IPv4 frames as fast as allowed, each carrying a sequence number; with
 * --latency also a send timestamp, measured by a receiver (--rx-port, or ixy-fwd --latency).
 *
 *   pktgen <port> [--size 60|MIN-MAX|A,B,C] [--flows N] [--rate N | --rate-mbit N] [--count N] ...
 *   pktgen <port> --rx-port <port2> --latency        (loss, reordering, latency through a DUT)
 *   pktgen <port> --pcap FILE [--pcap-loop N]         (replay)
 *   pktgen --sim [--sim-nic ixgbe|virtio] ...
 *
 * Read it next to ixy's ixy-pktgen.c: main() has its three parts, in the same order.
 *   ixy-pktgen.c                               here
 *   dev = ixy_init(argv[1], 1, 1, 0)           openDevice() (--sim: openPktgenSim(), device models of src/sim)
 *   mempool = init_mempool(): every buffer     buildFrames(): the same, from header templates
 *     filled with the frame once
 *   while (true) { alloc_batch;                pollLoop(() => { allocBatch;
 *     seq_num into each frame;                   frames.write(): sequence numbers (lib/pktgen-batch.ts);
 *     ixy_tx_batch_busy_wait; stats }            txBatch, the rest back to the pool })
 * ixy-pktgen.c runs until killed; this loop ends at --count frames, --seconds or a signal, and
 * main() prints the totals (with --rx-port, loss and latency) and closes the ports.
 *
 * As in ixy, every buffer of the generator's mempool is filled with the frame once at start; the
 * pool hands buffers back with their contents intact, so sending costs a 4-byte sequence number
 * store per frame, written straight into the pool's memory at the buffer's data offset (a buffer
 * is a number: docs/packet-api.md). Flows and size mixes copy a precomputed 28-byte header
 * template per frame (examples/lib/pktgen-frames.ts); --latency adds an 8-byte time store.
 * docs/pktgen.md has the options and the stamp's layout.
 */
import type { DeviceOptions, NicDevice } from "../src/device.ts";
import { bufDataOffset, bufLength, bufPool, poolBytes } from "../src/mem/buffer-table.ts";
import { freeBuffers, Mempool } from "../src/mem/mempool.ts";
import { dataOf } from "../src/mem/packet.ts";
import { openDevice, type OpenOptions } from "../src/open-device.ts";
import { checkPortAddresses, intOption, parse, PORTS_HELP, runMain, SECONDS_OPTION, shortUsage, UsageError, type CommandSpec, type OptionSpecs } from "./lib/cli.ts";
import { formatLatency, LatencyMeter } from "./lib/latency-meter.ts";
import { hasStamp, monotonicClock, readTime, writeMagic } from "./lib/latency-stamp.ts";
import { LiveStats, STATS_OPTIONS, statsFormat } from "./lib/live-stats.ts";
import { ringPictures, SHOW_RINGS_OPTION } from "./lib/ring-picture.ts";
import { OFFLOAD_FLAGS, offloadDeviceOptions, offloadLines } from "./lib/offload-options.ts";
import { LINKTYPE_ETHERNET, PcapFormatError, readPcap } from "./lib/pcap-reader.ts";
import { BatchWriter } from "./lib/pktgen-batch.ts";
import { FrameTemplates, ipArg, macArg, MAX_FLOWS, sizeArg } from "./lib/pktgen-frames.ts";
import { openPktgenSim, type PktgenSimPorts } from "./lib/pktgen-sim.ts";
import { pollLoop } from "./lib/poll-loop.ts";
import { placementLines } from "./lib/placement-lines.ts";
import { getSequence, MAX_FRAME, MIN_FRAME } from "./lib/udp-frame.ts";

/** Bytes an Ethernet frame costs on the wire beyond its own: preamble, SFD, FCS, gap. */
const WIRE_OVERHEAD = 24;

const SPEC = {
  name: "ixy-pktgen",
  summary: "sends UDP/IPv4 frames as fast as allowed, each carrying a sequence number; measures loss and latency through a device under test",
  usage: ["<port> [options]", "<port> --rx-port <port> --latency [options]", "<port> --pcap FILE [--pcap-loop N] [options]", "--sim [--sim-nic ixgbe|virtio] [options]"],
  options: {
    size: {
      type: "string",
      arg: "N|MIN-MAX|A,B,C",
      help: "frame size without the FCS, 60 to 1514: one size, a range (sizes drawn uniformly, 256 of them, precomputed and sent in turn), or a mix sent in turn",
      default: "60",
      unit: "bytes",
    },
    flows: { type: "string", arg: "N", help: "flows to send in turn: flow i has source IP --src-ip + i and UDP source port --src-port + i", default: "1" },
    "dst-mac": { type: "string", arg: "MAC", help: "destination MAC", default: "02:00:00:00:00:02" },
    "src-mac": { type: "string", arg: "MAC", help: "source MAC", default: "the port's MAC" },
    "src-ip": { type: "string", arg: "IP", help: "source IPv4 address (of flow 0)", default: "10.0.0.1" },
    "dst-ip": { type: "string", arg: "IP", help: "destination IPv4 address", default: "10.0.0.2" },
    "src-port": { type: "string", arg: "N", help: "UDP source port (of flow 0)", default: "42" },
    "dst-port": { type: "string", arg: "N", help: "UDP destination port", default: "1337" },
    rate: { type: "string", arg: "N", help: "frames per second (0: as fast as the port takes them)", default: "0", unit: "frames/s" },
    "rate-mbit": { type: "string", arg: "N", help: "rate in Mbit/s on the wire (frame + 24 bytes of preamble, FCS and gap, over the mean frame size); not with --rate", unit: "Mbit/s" },
    count: { type: "string", arg: "N", help: "stop after N frames (0: no limit)", default: "0", unit: "frames" },
    ...SECONDS_OPTION,
    batch: { type: "string", arg: "N", help: "frames per send call, 1 to 512", default: "32", unit: "frames" },
    pcap: { type: "string", arg: "FILE", help: "replay the Ethernet frames of a pcap file (sizes from the file, frames shorter than 60 bytes padded, longer than 1514 skipped) instead of generating UDP frames" },
    "pcap-loop": { type: "string", arg: "N", help: "with --pcap: play the file N times (0: forever)", default: "1" },
    latency: {
      type: "boolean",
      help: "stamp a magic and a send time (CLOCK_MONOTONIC) after the sequence number of every frame, for a receiver on the same host: --rx-port, or ixy-fwd --latency",
    },
    "rx-port": {
      type: "string",
      arg: "PORT",
      help: "receive on this port too and report loss, reordering, duplicates and (with --latency) latency of the frames coming back; with --sim a second model wired to the first (the value is then only a label)",
    },
    "sim-capture": { type: "string", arg: "FILE", help: "with --sim: write every frame the model transmits to this pcap file" },
    ...STATS_OPTIONS,
    ...SHOW_RINGS_OPTION,
    ...OFFLOAD_FLAGS,
  },
  details: PORTS_HELP,
} as const satisfies CommandSpec<OptionSpecs>;
const USAGE = shortUsage(SPEC);

/** Buffers of the generator's pool. */
const POOL_SIZE = 4096;

async function main(): Promise<number> {
  const o = pktgenOptions();
  const { batch, total, latency, pcap } = o;

  // The port, and --rx-port's. --sim: device models (src/sim) driven by the same drivers, the
  // second wired back to back to the first (lib/pktgen-sim.ts); otherwise openDevice() on each.
  const sim = o.sim === null ? null : openPktgenSim(o.sim, { loopback: o.rxName !== undefined, capture: o.values["sim-capture"], device: o.device });
  const [dev, rxDev] = sim !== null ? [sim.devices[0]!, sim.devices[1] ?? null] : openTxRx(o.address, o.rxName, { ...o.device, mac: o.mac });
  rxDev?.setPromisc(true);

  // The frames: every buffer of the pool filled with one once, as ixy's init_mempool().
  const { pool, templates } = buildFrames(dev, o);
  const rate = framesPerSecond(o, pcap ? pcap.meanSize : templates.meanSize); // 0: unlimited
  const stats = new LiveStats(rxDev ? [dev, rxDev] : [dev], { format: o.format, app: "pktgen" });
  printStartLines(dev, rxDev, o, templates, rate);

  // The send loop: a batch of buffers from the pool, a sequence number into each, txBatch.
  const bufs = new Int32Array(batch);
  const clock = monotonicClock();
  const frames = new BatchWriter(pool.bytes, templates, pcap?.frames ?? null, latency ? clock : null);
  const returns = rxDev === null ? null : new Returns(rxDev, latency, clock);
  let seq = 0;
  const start = performance.now();
  await pollLoop(
    () => {
      returns?.receive();
      let want = batch;
      if (rate > 0) want = Math.min(want, Math.floor(((performance.now() - start) / 1000) * rate) - seq);
      if (total > 0) want = Math.min(want, total - seq);
      if (want <= 0) return;
      const got = pool.allocBatch(bufs, want);
      frames.write(bufs, got, seq);
      const sent = dev.txBatch(0, bufs, got);
      seq += sent;
      frames.sent(got, sent);
      if (sent < got) pool.freeBatch(bufs, got - sent, sent); // back to the pool, contents intact
      // Again right after sending: what a fast path returns at once is timed now, not after the
      // loop's next yield to the event loop.
      returns?.receive();
    },
    {
      seconds: o.seconds,
      until: total > 0 ? () => seq >= total : undefined,
      everySecond: everySecond(stats, rxDev ? [dev, rxDev] : [dev], o, returns),
    },
  );

  // Give the device a moment to put the last frames on the wire (and the receive port to see
  // them) before the counters are read and the device is reset.
  const drainUntil = performance.now() + 100;
  while (performance.now() < drainUntil) {
    if ((returns?.receive() ?? 0) === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  stats.finish();
  process.stderr.write(`pktgen: sent ${seq} frames\n`);
  if (returns !== null) process.stdout.write(returns.reportLine(seq, o.values.json ?? false));
  if (sim !== null) sim.close();
  else closeTxRx(dev, rxDev);
  return 0;
}

/** pktgen's command line, checked: every usage error comes before a device is opened. */
function pktgenOptions() {
  const { values, positionals, sim, mac, unsafeNoIommu, device } = parse(SPEC);
  if (!sim && positionals.length !== 1) throw new UsageError(`pktgen needs one PCI address or vhost-user:<socket> port\n${USAGE}`);
  const sizes = sizeArg(values.size);
  const flows = intOption("flows", values.flows, 1, 1, MAX_FLOWS);
  const count = intOption("count", values.count, 0, 0, Number.MAX_SAFE_INTEGER); // 0: unlimited
  const seconds = intOption("seconds", values.seconds, 0, 0, 1e9);
  const batch = intOption("batch", values.batch, 32, 1, 512);
  const pcapLoop = intOption("pcap-loop", values["pcap-loop"], 1, 0, 1e9); // 0: forever
  if (values.rate !== undefined && values["rate-mbit"] !== undefined) throw new UsageError(`--rate and --rate-mbit exclude each other\n${USAGE}`);
  const ratePps = intOption("rate", values.rate, 0, 0, 1e9); // 0: unlimited
  const rateMbit = intOption("rate-mbit", values["rate-mbit"], 0, 0, 1e7);
  const latency = values.latency === true;
  const pcapPath = values.pcap;
  if (pcapPath !== undefined && (latency || values.flows !== undefined || values.size !== undefined)) {
    throw new UsageError(`--pcap replays the file's frames as they are: not with --latency, --flows or --size\n${USAGE}`);
  }
  if (values["pcap-loop"] !== undefined && pcapPath === undefined) throw new UsageError("--pcap-loop goes with --pcap");
  if (values["sim-capture"] !== undefined && !sim) throw new UsageError("--sim-capture goes with --sim");
  const rxName = values["rx-port"];
  const frame = {
    dstMac: macArg("dst-mac", values["dst-mac"]) ?? Uint8Array.of(0x02, 0, 0, 0, 0, 0x02),
    srcMac: macArg("src-mac", values["src-mac"]),
    srcIp: ipArg("src-ip", values["src-ip"], [10, 0, 0, 1]),
    dstIp: ipArg("dst-ip", values["dst-ip"], [10, 0, 0, 2]),
    srcPort: intOption("src-port", values["src-port"], 42, 1, 65535),
    dstPort: intOption("dst-port", values["dst-port"], 1337, 1, 65535),
    flows,
  };
  const pcap = pcapPath === undefined ? null : loadPcap(pcapPath);
  const format = statsFormat(values);
  const deviceOptions: DeviceOptions = { ...device, unsafeNoIommu, ...offloadDeviceOptions(values) };
  // Both ports' addresses checked before either is opened: a typo is a usage error (exit 2).
  if (!sim) checkPortAddresses(rxName !== undefined ? [positionals[0]!, rxName] : positionals);
  const limit = pcap && pcapLoop > 0 ? pcap.frames.length * pcapLoop : 0;
  const total = count > 0 && limit > 0 ? Math.min(count, limit) : count || limit; // 0: no limit
  return {
    values, sim, address: positionals[0]!, rxName, mac, device: deviceOptions, format,
    sizes, frame, latency, pcap, pcapPath, pcapLoop, batch, seconds, ratePps, rateMbit, total,
  };
}
type PktgenOptions = ReturnType<typeof pktgenOptions>;

/**
 * The sending port and --rx-port's on hardware (or vhost-user): openDevice() on each, as
 * ixy-pktgen.c's ixy_init(); the first is closed again if the second fails.
 */
function openTxRx(address: string, rxAddress: string | undefined, options: OpenOptions): [NicDevice, NicDevice | null] {
  const dev = openDevice(address, options);
  if (rxAddress === undefined) return [dev, null];
  try {
    return [dev, openDevice(rxAddress, options)];
  } catch (e) {
    dev.close();
    throw e;
  }
}

function closeTxRx(dev: NicDevice, rxDev: NicDevice | null): void {
  dev.close();
  rxDev?.close();
}

/**
 * ixy's init_mempool(): the generator's pool, every buffer filled once with the (largest) frame
 * (and --latency's magic), so that the loop only writes what changes per frame.
 */
function buildFrames(dev: NicDevice, o: PktgenOptions): { pool: Mempool; templates: FrameTemplates } {
  const pool = new Mempool(dev.dma, { count: POOL_SIZE, name: `pktgen pool on ${dev.address}` });
  const templates = new FrameTemplates({ ...o.frame, srcMac: o.frame.srcMac ?? dev.macAddress() }, o.sizes);
  const all = new Int32Array(pool.count);
  const n = pool.allocBatch(all, pool.count);
  for (let i = 0; i < n; i++) {
    const b = all[i]!;
    templates.frame(dataOf(b), templates.maxSize, 0);
    if (o.latency) writeMagic(pool.bytes, bufDataOffset[b]!);
    bufLength[b] = templates.maxSize;
  }
  pool.freeBatch(all, n);
  return { pool, templates };
}

/** Frames per second to send: --rate, or --rate-mbit on the wire over the mean frame size (0: as fast as the port takes them). */
function framesPerSecond(o: PktgenOptions, meanSize: number): number {
  return o.rateMbit > 0 ? (o.rateMbit * 1e6) / 8 / (meanSize + WIRE_OVERHEAD) : o.ratePps;
}

/** "pktgen: <port>: 60-byte frames, unlimited rate ...", then where each PCI device is, and the offloads. */
function printStartLines(dev: NicDevice, rxDev: NicDevice | null, o: PktgenOptions, templates: FrameTemplates, rate: number): void {
  const { sizes, pcap, rateMbit, total } = o;
  const size = templates.lengths[0]!;
  const what = pcap
    ? `${o.pcapPath}: ${pcap.frames.length} frames${o.pcapLoop === 0 ? " in a loop" : o.pcapLoop > 1 ? ` ${o.pcapLoop} times` : ""}`
    : `${sizes.kind === "fixed" ? `${size}-byte` : sizes.kind === "range" ? `${sizes.min}-${sizes.max}-byte` : `${sizes.sizes.join(",")}-byte`} frames` +
      `${o.frame.flows > 1 ? `, ${o.frame.flows} flows` : ""}${o.latency ? ", latency stamps" : ""}`;
  process.stderr.write(
    `pktgen: ${dev.address}: ${what}, ${rate ? `${rateMbit ? `${rateMbit} Mbit/s (${Math.round(rate)} frames/s)` : `${rate} frames/s`}` : "unlimited rate"}` +
      `${total ? `, ${total} frames` : ""}${rxDev ? `, receiving on ${rxDev.address}` : ""}${o.sim ? ` (device model: ${o.sim})` : ""}\n`,
  );
  process.stderr.write(placementLines("pktgen", rxDev ? [dev, rxDev] : [dev]) + offloadLines("pktgen", [dev]));
}

/** Once a second: the statistics, with --rx-port loss, reordering and latency; --show-rings' pictures. */
function everySecond(stats: LiveStats, ports: readonly NicDevice[], o: PktgenOptions, returns: Returns | null): () => void {
  return () => {
    if (o.values["show-rings"]) process.stderr.write(ringPictures(ports));
    if (returns === null) {
      stats.print();
      return;
    }
    const meter = returns.meter;
    const iv = meter.takeInterval();
    const lost = meter.lost();
    const text = ` | lost ${lost} reordered ${meter.report().reordered}` + (iv && o.latency ? ` latency us p50 ${iv.p50.toFixed(1)} p99 ${iv.p99.toFixed(1)} max ${iv.max.toFixed(1)}` : "");
    stats.print({ json: { latency: { received: meter.received, lost, ...(iv && o.latency ? { p50Us: iv.p50, p99Us: iv.p99, maxUs: iv.max } : {}) } }, text });
  };
}

/**
 * --rx-port: the frames coming back, by sequence number (loss, reordering, duplicates) and with
 * --latency by their send time, in a LatencyMeter.
 */
class Returns {
  readonly meter = new LatencyMeter();
  readonly #dev: NicDevice;
  readonly #latency: boolean;
  readonly #clock: () => number;
  readonly #bufs = new Int32Array(512);
  /** Frames that came back without a stamp (--latency) or too short for a sequence number. */
  #unstamped = 0;

  constructor(dev: NicDevice, latency: boolean, clock: () => number) {
    this.#dev = dev;
    this.#latency = latency;
    this.#clock = clock;
  }

  /** Takes what the receive port has; returns the frames received. */
  receive(): number {
    const bufs = this.#bufs;
    const got = this.#dev.rxBatch(0, bufs, bufs.length);
    if (got === 0) return 0;
    const now = this.#clock();
    const meter = this.meter;
    for (let i = 0; i < got; i++) {
      const b = bufs[i]!;
      const rb = poolBytes[bufPool[b]!]!;
      const off = bufDataOffset[b]!;
      if (this.#latency) {
        if (hasStamp(rb, off, bufLength[b]!)) meter.record(getSequence(rb, off), now - readTime(rb, off));
        else this.#unstamped++;
      } else if (bufLength[b]! >= MIN_FRAME) meter.record(getSequence(rb, off), NaN);
      else this.#unstamped++;
    }
    freeBuffers(bufs, 0, got);
    return got;
  }

  /** The end-of-run report on stdout: a text line, or one JSON line with --json. */
  reportLine(sent: number, json: boolean): string {
    const report = this.meter.report(sent);
    const unstamped = this.#unstamped;
    if (json) return JSON.stringify({ latency: { sent, ...report, unstamped } }) + "\n";
    return `latency: sent ${sent}, ${formatLatency(report)}${unstamped ? `, ${unstamped} frames without a stamp` : ""}\n`;
  }
}

/** The frames of a pcap file as pktgen sends them: Ethernet only, padded to 60, at most 1514. */
function loadPcap(path: string): { frames: Uint8Array[]; meanSize: number } {
  const file = readPcap(path);
  if (file.linkType !== LINKTYPE_ETHERNET) throw new PcapFormatError(`${path}: link type ${file.linkType}, pktgen replays Ethernet (1) only`);
  const frames: Uint8Array[] = [];
  let skipped = 0;
  for (const f of file.frames) {
    if (f.length < 14 || f.length > MAX_FRAME) {
      skipped++;
      continue;
    }
    if (f.length >= MIN_FRAME) frames.push(f);
    else {
      const padded = new Uint8Array(MIN_FRAME);
      padded.set(f);
      frames.push(padded);
    }
  }
  if (skipped > 0) process.stderr.write(`pktgen: ${path}: skipped ${skipped} frames shorter than 14 or longer than ${MAX_FRAME} bytes\n`);
  if (frames.length === 0) throw new PcapFormatError(`${path}: no frame to replay (${file.frames.length} records)`);
  return { frames, meanSize: frames.reduce((s, f) => s + f.length, 0) / frames.length };
}

await runMain(main);
