// bench/offload: what a checksum offload saves per 1514-byte frame, in one run, side by side.
//
//   npm run bench:offload               5 interleaved rounds of 1,000,000 frames per case
//   npm run bench:offload -- --quick    3 rounds of 200,000
//   npm run bench:offload -- --json     one JSON object instead of the table
//
// Transmit: a frame whose checksums are requested (requestChecksum) either goes to a device that
// offloads them, where the driver only turns the request into descriptor fields, or to one that
// does not, where the driver completes them in software first (completeChecksums). Receive: the
// device's verdict is a flag in bufRxOffload, or the application verifies the frame itself
// (checkFrameChecksums). bench/README.md ("Offloads") says why these parts alone are measured.
import { parseArgs } from "node:util";
import { bufDataOffset, bufL2Len, bufL3Len, bufLength, bufRxOffload, bufTxOffload, poolBytes, bufPool } from "../../src/mem/buffer-table.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { RX_OFFLOAD, TX_OFFLOAD, requestChecksum } from "../../src/mem/offload.ts";
import { writeFrame } from "../../src/mem/packet.ts";
import { checkFrameChecksums, completeChecksums } from "../../src/net/checksum.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { buildFrame, type L4 } from "./frames.ts";
import { InstantIxgbePort } from "../instant/ixgbe.ts";

const FRAME = 1514;
/** Buffers cycled through: 1.5 MB of frames, more than L2 holds, as a receive ring's worth of pools would be. */
const BUFFERS = 1024;
/** 10 GbE: a 1514-byte frame (+ FCS, preamble, gap: 1538 bytes on the wire) every 1230.4 ns. */
const LINE_RATE_NS = (1538 * 8) / 10;

const USAGE = "usage: npm run bench:offload -- [--quick] [--rounds N] [--frames N] [--json]";

interface Case {
  readonly name: string;
  readonly l4: L4;
  /** Runs the case on n buffers of `bufs` in turn; returns something so that nothing is optimised away. */
  readonly loop: (bufs: Int32Array, n: number) => number;
}

/**
 * One loop per case, each with a call site of its own: a loop shared by all cases would call
 * four functions from one site, which V8 then cannot inline (megamorphic), and the cheap cases
 * would measure the call.
 */
function loopOf(run: (b: number) => number): (bufs: Int32Array, n: number) => number {
  // A fresh function per case (as src/drivers/specialize.ts compiles a loop per queue).
  return new Function("run", "MASK", `return function loop(bufs, n) {
    let sink = 0;
    for (let i = 0; i < n; i++) sink += run(bufs[i & MASK]);
    return sink;
  }`)(run, BUFFERS - 1) as (bufs: Int32Array, n: number) => number;
}

/** The driver's part of an offloaded request: read the columns into context-descriptor fields (82599 7.2.3.2.3). */
const descriptor = new Uint32Array(4);
function offloadedTx(b: number): number {
  requestChecksum(b);
  const flags = bufTxOffload[b]!;
  descriptor[0] = (bufL2Len[b]! << 9) | bufL3Len[b]!; // MACLEN, IPLEN
  descriptor[2] = (flags & TX_OFFLOAD.tcpChecksum) !== 0 ? 0x800 : 0; // L4T
  descriptor[3] = flags;
  return descriptor[0]!;
}

function softwareTx(b: number): number {
  requestChecksum(b);
  completeChecksums(b);
  return bufTxOffload[b]!;
}

function deviceRx(b: number): number {
  // What an application does with the device's verdict: test two bits.
  return (bufRxOffload[b]! & (RX_OFFLOAD.ipChecksumGood | RX_OFFLOAD.l4ChecksumGood)) === (RX_OFFLOAD.ipChecksumGood | RX_OFFLOAD.l4ChecksumGood) ? 1 : 0;
}

function softwareRx(b: number): number {
  const v = checkFrameChecksums(poolBytes[bufPool[b]!]!, bufDataOffset[b]!, bufLength[b]!);
  return v.ip === "good" && v.l4 === "good" ? 1 : 0;
}

const CASES: readonly Case[] = (["udp", "tcp"] as const).flatMap((l4) => [
  { name: "tx software", l4, loop: loopOf(softwareTx) },
  { name: "tx offloaded", l4, loop: loopOf(offloadedTx) },
  { name: "rx software", l4, loop: loopOf(softwareRx) },
  { name: "rx device", l4, loop: loopOf(deviceRx) },
]);

/**
 * Transmit through the ixgbe driver on an instant device (bench/instant/ixgbe.ts), batches of 32
 * from `pool`, each frame with a checksum request (or none): the driver's whole transmit work,
 * the descriptors and the reclaim included, and with txChecksum off its completeChecksums call.
 */
function driverLoop(port: InstantIxgbePort, pool: Mempool, request: boolean): (n: number) => number {
  const bufs = new Int32Array(32);
  const dev = port.dev;
  return new Function("port", "dev", "pool", "bufs", "requestChecksum", "REQUEST", `return function loop(n) {
    let sent = 0;
    while (sent < n) {
      const k = pool.allocBatch(bufs, 32);
      if (REQUEST) for (let i = 0; i < k; i++) requestChecksum(bufs[i]);
      const m = dev.txBatch(0, bufs, k);
      if (m < k) pool.freeBatch(bufs, k - m, m);
      port.transmit();
      sent += m;
    }
    return sent;
  }`)(port, dev, pool, bufs, requestChecksum, request) as (n: number) => number;
}

function main(): number {
  let parsed;
  try {
    parsed = parseArgs({ options: { quick: { type: "boolean" }, rounds: { type: "string" }, frames: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } } });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const rounds = Number(v.rounds ?? (v.quick ? 3 : 5));
  const frames = Number(v.frames ?? (v.quick ? 200_000 : 1_000_000));
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(frames) || frames < 1000) {
    process.stderr.write(`--rounds must be a positive integer and --frames at least 1000\n${USAGE}\n`);
    return 2;
  }

  const dma = new SimDma("bench:offload DMA");
  // Separate buffers for the two directions: a transmit request leaves the frame's checksum
  // fields seeded for the device, which a receive check would rightly call bad.
  const pools = new Map<string, Int32Array>();
  for (const key of ["udp tx", "udp rx", "tcp tx", "tcp rx"]) {
    const l4 = key.slice(0, 3) as L4;
    const pool = new Mempool(dma, { count: BUFFERS, name: `bench:offload ${key}` });
    const bufs = new Int32Array(BUFFERS);
    if (pool.allocBatch(bufs, BUFFERS) !== BUFFERS) throw new Error("bench:offload: the pool is short of buffers");
    for (let i = 0; i < BUFFERS; i++) {
      writeFrame(bufs[i]!, buildFrame(l4, FRAME, i));
      // As a receive path hands them out: the device said both checksums are good.
      bufRxOffload[bufs[i]!] = RX_OFFLOAD.ipChecksumGood | RX_OFFLOAD.l4ChecksumGood;
    }
    pools.set(key, bufs);
  }
  // Every frame verifies before the clock starts (a bench of a wrong checksum would flatter nobody).
  for (const bufs of pools.values()) for (const b of bufs) if (softwareRx(b) !== 1) throw new Error(`bench:offload: buffer ${b} does not verify`);

  // The driver: one port with the device's checksum offload, one without (the driver completes).
  const offloaded = new InstantIxgbePort(dma, 80, undefined, 1, { offloads: { txChecksum: true } });
  const software = new InstantIxgbePort(dma, 81, undefined, 1, { offloads: { txChecksum: false, tso: false } });
  if (!offloaded.dev.offloads.txChecksum || software.dev.offloads.txChecksum) throw new Error("bench:offload: the instant ports' txChecksum is not as asked");
  const driverCases: { name: string; l4: L4; loop: (n: number) => number }[] = [];
  const driverPools: Mempool[] = [];
  for (const l4 of ["udp", "tcp"] as const) {
    const pool = new Mempool(dma, { count: BUFFERS, name: `bench:offload driver ${l4}` });
    const bufs = new Int32Array(BUFFERS);
    pool.allocBatch(bufs, BUFFERS);
    for (let i = 0; i < BUFFERS; i++) writeFrame(bufs[i]!, buildFrame(l4, FRAME, i));
    pool.freeBatch(bufs, BUFFERS);
    driverPools.push(pool);
    driverCases.push(
      { name: "driver software", l4, loop: driverLoop(software, pool, true) },
      { name: "driver offloaded", l4, loop: driverLoop(offloaded, pool, true) },
      { name: "driver no request", l4, loop: driverLoop(offloaded, pool, false) },
    );
  }
  const driverSamples = new Map(driverCases.map((c) => [c, [] as number[]]));
  const timeDriver = (c: (typeof driverCases)[number], n: number): number => {
    const t0 = process.hrtime.bigint();
    const sent = c.loop(n);
    return Number(process.hrtime.bigint() - t0) / sent;
  };
  for (const c of driverCases) timeDriver(c, Math.min(frames, 100_000));

  const samples = new Map<Case, number[]>(CASES.map((c) => [c, []]));
  let sink = 0;
  const time = (c: Case, n: number): number => {
    const bufs = pools.get(`${c.l4} ${c.name.slice(0, 2)}`)!;
    const t0 = process.hrtime.bigint();
    sink += c.loop(bufs, n);
    return Number(process.hrtime.bigint() - t0) / n;
  };
  // Warm-up: every case through the optimising compiler before any round counts.
  for (const c of CASES) time(c, Math.min(frames, 100_000));
  for (let r = 0; r < rounds; r++) {
    // Interleaved: a noisy moment of the machine hits every case of a round alike.
    for (const c of CASES) samples.get(c)!.push(time(c, frames));
    for (const c of driverCases) driverSamples.get(c)!.push(timeDriver(c, frames));
  }
  // What a transmit request left completes to frames that verify, and the received ones still do.
  for (const [key, bufs] of pools) {
    for (const b of bufs) {
      if (key.endsWith("tx")) completeChecksums(b);
      if (softwareRx(b) !== 1) throw new Error(`bench:offload: buffer ${b} (${key}) does not verify after the run`);
    }
  }

  // Every frame the driver sent is still the frame (with the checksums its request asked for).
  for (const pool of driverPools) {
    const bufs = new Int32Array(BUFFERS);
    const n = pool.allocBatch(bufs, BUFFERS);
    for (let i = 0; i < n; i++) {
      if (bufTxOffload[bufs[i]!] !== 0) throw new Error("bench:offload: an allocated buffer carries a request");
      requestChecksum(bufs[i]!);
      completeChecksums(bufs[i]!);
      if (softwareRx(bufs[i]!) !== 1 || bufLength[bufs[i]!] !== FRAME) throw new Error(`bench:offload: driver buffer ${bufs[i]} changed`);
    }
    pool.freeBatch(bufs, n);
  }
  const middle = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const median = (c: Case): number => middle(samples.get(c)!);
  const driverMedian = (name: string, l4: L4): number => middle(driverSamples.get(driverCases.find((c) => c.name === name && c.l4 === l4)!)!);
  const find = (name: string, l4: L4): Case => CASES.find((c) => c.name === name && c.l4 === l4)!;
  const rows = (["udp", "tcp"] as const).map((l4) => {
    const txSw = median(find("tx software", l4));
    const txOff = median(find("tx offloaded", l4));
    const rxSw = median(find("rx software", l4));
    const rxDev = median(find("rx device", l4));
    const drvSw = driverMedian("driver software", l4);
    const drvOff = driverMedian("driver offloaded", l4);
    const drvNone = driverMedian("driver no request", l4);
    return { l4, txSw, txOff, rxSw, rxDev, drvSw, drvOff, drvNone };
  });
  if (v.json) {
    process.stdout.write(`${JSON.stringify({ frame: FRAME, buffers: BUFFERS, frames, rounds, node: process.version, rows, sink: sink & 1 })}\n`);
    return 0;
  }
  const f = (ns: number): string => `${ns.toFixed(1).padStart(7)} ns`;
  const ratio = (a: number, b: number): string => `${(a / b).toFixed(1).padStart(5)}x`;
  const pct = (ns: number): string => `${((100 * ns) / LINE_RATE_NS).toFixed(1).padStart(5)}%`;
  let out = `bench:offload: ${FRAME}-byte frames (IPv4), ${BUFFERS} buffers cycled, ${frames.toLocaleString("en")} frames x ${rounds} ` +
    `interleaved rounds, median per frame; node ${process.version}\n`;
  out += `(% of line rate: of the ${LINE_RATE_NS.toFixed(1)} ns a 1514-byte frame takes at 10 Gbit/s)\n\n`;
  out += `${"".padEnd(38)}${"UDP".padEnd(26)}TCP\n`;
  const line = (label: string, cells: (r: (typeof rows)[number]) => string): void => {
    out += `${label.padEnd(38)}${rows.map((r) => cells(r).padEnd(26)).join("").trimEnd()}\n`;
  };
  out += "transmit, checksums requested\n";
  line("  completed in software", (r) => `${f(r.txSw)} ${pct(r.txSw)}`);
  line("  passed to the device", (r) => `${f(r.txOff)} ${pct(r.txOff)}`);
  line("  saved by the offload", (r) => `${f(r.txSw - r.txOff)} ${ratio(r.txSw, r.txOff)}`);
  out += "transmit through the ixgbe driver (instant device), batches of 32\n";
  line("  txChecksum off: driver completes", (r) => `${f(r.drvSw)} ${pct(r.drvSw)}`);
  line("  txChecksum on: context descriptor", (r) => `${f(r.drvOff)} ${pct(r.drvOff)}`);
  line("  no request (the ring work alone)", (r) => `${f(r.drvNone)} ${pct(r.drvNone)}`);
  line("  saved by the offload", (r) => `${f(r.drvSw - r.drvOff)} ${ratio(r.drvSw, r.drvOff)}`);
  out += "receive, checksums verified\n";
  line("  in software", (r) => `${f(r.rxSw)} ${pct(r.rxSw)}`);
  line("  the device's result", (r) => `${f(r.rxDev)} ${pct(r.rxDev)}`);
  line("  saved by the offload", (r) => `${f(r.rxSw - r.rxDev)} ${ratio(r.rxSw, r.rxDev)}`);
  process.stdout.write(out);
  return sink === -1 ? 1 : 0;
}

process.exitCode = main();
