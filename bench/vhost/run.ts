// bench/vhost: ixy.ts's forwarder against DPDK's (testpmd with net_virtio_user) over vhost-user,
// both driven by one DPDK vhost backend (testpmd with two net_vhost ports) on the other CPU, the
// rate measured at the backend. See bench/vhost/README.md.
//
//   npm run bench:vhost                 3 interleaved runs of 10 s per peer and frame size
//   npm run bench:vhost -- --quick      1 run of 3 s per peer and frame size
//   npm run bench:vhost -- --queues 2   2 queue pairs per port on every side (one core each all the same)
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { busyPercent } from "../lib/machine.ts";
import { cpuSeconds, measure } from "../../test/dpdk/measure.ts";
import { startTestpmd, stopAll, TestpmdError, type Testpmd } from "../../test/dpdk/testpmd.ts";
import { DEFAULT_IXY_CMD, DEFAULT_IXY_MQ_CMD, startIxyPeer, startTestpmdPeer, type Peer, type PeerName, type PeerStart, type Traffic } from "./peers.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const DEFAULT_SOCKETS = "/tmp/ixy-v0,/tmp/ixy-v1";
const DEFAULT_TESTPMD_VDEV = "mrg_rxbuf=0,in_order=0";
const BACKEND_CPU = 0;
const PEER_CPU = 1;
const STATS_PERIOD = 1; // testpmd then prints a block every 2 s

const USAGE = `usage: npm run bench:vhost -- [options]
  --quick               1 run of 3 s per peer and frame size (default: 3 runs of 10 s)
  --runs N              interleaved runs per peer and frame size
  --seconds N           length of the measured window, at least (it ends on a statistics block)
  --warmup N            seconds skipped after the backend sees the peer connected (default 5, quick 3)
  --sizes 60,1514       frame sizes in bytes
  --peers ixy,testpmd   which forwarders
  --traffic flowgen|tx-first
                        flowgen (default): the backend generates frames on both ports as fast as it can
                        and counts what comes back; tx-first: the peer sends a first burst that circulates
  --ixy-cmd CMD         the ixy.ts forwarder's command line (also $IXY_CMD); placeholders {s0} {s1}
                        {seconds} {frameSize} {batch}; default for flowgen:
                          ${DEFAULT_IXY_CMD.flowgen}
                        for tx-first:
                          ${DEFAULT_IXY_CMD["tx-first"]}
  --testpmd-vdev ARGS   appended to the testpmd peer's net_virtio_user --vdev arguments (default
                        ${DEFAULT_TESTPMD_VDEV}: the virtio features ixy.ts negotiates, VERSION_1
                        and no more; "" for testpmd's own choice: MRG_RXBUF, INDIRECT_DESC, IN_ORDER)
  --batches 1,32,256    run the ixy peer once per batch size, passing --batch N (the testpmd peer's burst stays 32)
  --strict              exit 1 if any run failed or a peer was unavailable (default: only if no testpmd run worked)
  --verbose             print the last lines of every peer's output after its run
  --queues N            queue pairs per port (default 1): the backend's net_vhost ports get queues=N and
                        --rxq=N --txq=N, the testpmd peer virtio-user queues=N and --rxq=N --txq=N, the
                        ixy.ts peer bench/vhost/mq-fwd.ts --queues N (flowgen only, unless --ixy-cmd);
                        every forwarder still has one core, the backend the other
  --ring split|packed   the virtqueue layout of both peers: ixy.ts gets --ring, the testpmd peer packed_vq=1
                        for packed (default split, the driver's default)
  --sockets A,B         the two vhost-user socket paths (default ${DEFAULT_SOCKETS})
  --no-write            print the table only
  --out-dir DIR         where the results go (default bench/results)`;

class UsageError extends Error {}
class BackendError extends Error {}

interface Options {
  quick: boolean;
  runs: number;
  seconds: number;
  warmup: number;
  sizes: number[];
  peers: PeerName[];
  traffic: Traffic;
  ixyCmd: string;
  batches: number[] | null;
  verbose: boolean;
  strict: boolean;
  sockets: [string, string];
  testpmdVdev: string;
  queues: number;
  write: boolean;
  outDir: string;
}

function intList(name: string, v: string, min: number, max: number): number[] {
  const out = v.split(",").map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < min || n > max)) throw new UsageError(`--${name} ${v}: whole numbers ${min}..${max}, comma-separated`);
  return out;
}

function int(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const l = intList(name, v, min, max);
  if (l.length !== 1) throw new UsageError(`--${name} ${v}: one number`);
  return l[0]!;
}

function socketPair(v: string): [string, string] {
  const l = v.split(",").map((s) => s.trim());
  if (l.length !== 2 || l.some((s) => s === "") || l[0] === l[1]) throw new UsageError(`--sockets ${v}: two different paths, comma-separated`);
  return [resolve(l[0]!), resolve(l[1]!)];
}

function parseOptions(argv: string[]): Options {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: "boolean" },
      runs: { type: "string" },
      seconds: { type: "string" },
      warmup: { type: "string" },
      sizes: { type: "string" },
      peers: { type: "string" },
      traffic: { type: "string" },
      "ixy-cmd": { type: "string" },
      batches: { type: "string" },
      "no-write": { type: "boolean" },
      verbose: { type: "boolean" },
      strict: { type: "boolean" },
      sockets: { type: "string" },
      "testpmd-vdev": { type: "string" },
      ring: { type: "string" },
      queues: { type: "string" },
      "out-dir": { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (positionals.length) throw new UsageError(`unexpected ${positionals.join(" ")}`);
  const quick = values.quick ?? false;
  const traffic = (values.traffic ?? "flowgen") as Traffic;
  if (traffic !== "flowgen" && traffic !== "tx-first") throw new UsageError(`--traffic ${values.traffic}: flowgen or tx-first`);
  const ring = values.ring ?? "split";
  if (ring !== "split" && ring !== "packed") throw new UsageError(`--ring ${ring}: split or packed`);
  const peers = (values.peers ?? "ixy,testpmd").split(",").map((s) => s.trim());
  for (const p of peers) if (p !== "ixy" && p !== "testpmd") throw new UsageError(`--peers: ixy and/or testpmd, not ${p}`);
  const queues = int("queues", values.queues, 1, 1, 16);
  const ixyCmdGiven = values["ixy-cmd"] ?? process.env.IXY_CMD;
  if (queues > 1 && traffic === "tx-first" && ixyCmdGiven === undefined && peers.includes("ixy")) {
    throw new UsageError("--queues with --traffic tx-first: the multiqueue ixy.ts peer (bench/vhost/mq-fwd.ts) has no --tx-first; use flowgen, or give --ixy-cmd");
  }
  return {
    quick,
    runs: int("runs", values.runs, quick ? 1 : 3, 1, 100),
    seconds: int("seconds", values.seconds, quick ? 3 : 10, 1, 3600),
    warmup: int("warmup", values.warmup, quick ? 3 : 5, 0, 600),
    sizes: values.sizes ? intList("sizes", values.sizes, 60, 1514) : [60, 1514],
    peers: [...new Set(peers)] as PeerName[],
    traffic,
    ixyCmd: `${ixyCmdGiven ?? (queues > 1 ? DEFAULT_IXY_MQ_CMD : DEFAULT_IXY_CMD[traffic])}${ring === "packed" ? " --ring packed" : ""}`,
    batches: values.batches ? intList("batches", values.batches, 1, 512) : null,
    verbose: values.verbose ?? false,
    strict: values.strict ?? false,
    sockets: socketPair(values.sockets ?? DEFAULT_SOCKETS),
    testpmdVdev: [values["testpmd-vdev"] ?? DEFAULT_TESTPMD_VDEV, ring === "packed" ? "packed_vq=1" : ""].filter((a) => a !== "").join(","),
    queues,
    write: !(values["no-write"] ?? false),
    outDir: resolve(values["out-dir"] ?? join(ROOT, "bench/results")),
  };
}

// ---------------------------------------------------------------------------------------------

interface RunResult {
  run: number;
  size: number;
  peer: PeerName;
  batch: number | null;
  ok: boolean;
  error?: string;
  command?: string;
  /** Frames per second the backend received back (both ports), in millions. */
  mpps?: number;
  /** Per backend port (port 0 = what the peer sent on socket 0). */
  portMpps?: number[];
  windowSeconds?: number;
  warmupSeconds?: number;
  /** RX-bytes / RX-packets at the backend over the window: the frame size that really went round. */
  meanFrameBytes?: number;
  /** The backend's port counters in the window: RX-missed + RX-errors + TX-errors. */
  backendPortDrops?: number;
  /** flowgen: frames the backend generated but could not enqueue (the peer's RX ring was full). */
  backendUnsent?: number;
  /** What the peer says it dropped (testpmd's forward statistics), null if it does not say. */
  peerDropped?: number | null;
  /**
   * CPU seconds per second the backend and the peer used in the window (/proc/<pid>/stat): about
   * 1.0 each when each had its CPU to itself; less means other work took some.
   */
  backendCpu?: number | null;
  peerCpu?: number | null;
  /**
   * The virtio features the peer negotiated with the backend (socket 0), as the vhost library
   * logged them: they choose the backend's copy paths, so two peers that negotiate differently
   * cost the backend differently per frame.
   */
  features?: string | null;
  featureNames?: string[];
  /** The last lines the peer printed (with --verbose). */
  peerOutput?: string;
}

const log = (s: string): void => void process.stdout.write(`${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function firstLines(s: string, n: number): string {
  const l = s.split("\n");
  return l.length <= n ? s : [...l.slice(0, n), `    ... (${l.length - n} more lines)`].join("\n");
}

async function oneRun(o: Options, run: number, size: number, peerName: PeerName, batch: number | null): Promise<RunResult> {
  const base: RunResult = { run, size, peer: peerName, batch, ok: false };
  let be: Testpmd | null = null;
  let peer: Peer | null = null;
  try {
    try {
      be = await startTestpmd({
        role: "backend",
        sockets: [...o.sockets],
        lcores: `0@${PEER_CPU},1@${BACKEND_CPU}`,
        filePrefix: "bench-vhost-be",
        forwardMode: o.traffic === "flowgen" ? "flowgen" : "io",
        // flowgen sends --txpkts minus 4 bytes (it leaves room for an FCS); tx-first sends --txpkts.
        frameSize: o.traffic === "flowgen" ? size + 4 : size,
        totalNumMbufs: 32768,
        statsPeriod: STATS_PERIOD,
        // N queue pairs a port; flowgen then generates on every transmit queue, io forwards q to q.
        ...(o.queues > 1 ? { vdevArgs: `queues=${o.queues}`, extraArgs: [`--rxq=${o.queues}`, `--txq=${o.queues}`] } : {}),
      });
      await be.ready;
    } catch (e) {
      // Not the peer's fault, and the next run would fail the same way.
      await be?.stop().catch(() => {});
      be = null;
      throw new BackendError(`the backend did not start: ${(e as Error).message}`);
    }
    const start: PeerStart = {
      sockets: o.sockets,
      cpu: PEER_CPU,
      otherCpu: BACKEND_CPU,
      traffic: o.traffic,
      frameSize: size,
      seconds: Math.ceil(o.warmup + o.seconds + 4 * (STATS_PERIOD + 1) + 15),
      batch,
      vdevArgs: o.testpmdVdev,
      queues: o.queues,
    };
    peer = peerName === "testpmd" ? await startTestpmdPeer(start) : startIxyPeer(o.ixyCmd, start, ROOT);
    base.command = peer.command;
    const p = peer;
    await Promise.race([
      be.connected(30_000),
      p.exited.then(() => {
        throw p.failure() ?? new Error(`${peerName} peer exited before the backend saw it connected`);
      }),
    ]);
    const from = performance.now();
    const beT = be;
    let cpu0: [number | null, number | null, number] = [null, null, 0];
    let cpu1: [number | null, number | null, number] = [null, null, 0];
    const sample = (): [number | null, number | null, number] => [cpuSeconds(beT.pid), cpuSeconds(p.pid), performance.now()];
    const m = await measure(be, {
      warmup: o.warmup, seconds: o.seconds, from, abort: () => p.failure(),
      onWindowStart: () => (cpu0 = sample()),
      onSnapshot: () => (cpu1 = sample()),
    });
    const share = (i: 0 | 1): number | null => {
      const a = cpu0[i], b = cpu1[i];
      return a === null || b === null ? null : (b - a) / ((cpu1[2] - cpu0[2]) / 1000);
    };
    const peerStop = await p.stop();
    peer = null;
    if (o.verbose) base.peerOutput = p.output();
    const features = be.negotiatedFeatures();
    const beStop = await be.stop();
    be = null;
    const rxBytes = m.last.ports.reduce((s, q) => s + q.rxBytes, 0) - m.first.ports.reduce((s, q) => s + q.rxBytes, 0);
    if (m.rxPackets <= 0) throw new Error(`the backend received nothing back from the ${peerName} peer in ${m.seconds.toFixed(1)} s`);
    return {
      ...base,
      ok: true,
      mpps: m.rxMpps,
      portMpps: m.ports.map((q) => q.rxMpps),
      windowSeconds: m.seconds,
      warmupSeconds: m.warmupSeconds,
      meanFrameBytes: rxBytes / m.rxPackets,
      backendPortDrops: m.drops,
      backendUnsent: o.traffic === "flowgen" ? beStop.forwardStats.reduce((s, q) => s + q.txDropped, 0) : 0,
      peerDropped: peerStop.dropped,
      backendCpu: share(0),
      peerCpu: share(1),
      features: Object.values(features)[0] ?? null,
      featureNames: describeFeatures(Object.values(features)[0] ?? null),
    };
  } catch (e) {
    if (e instanceof BackendError) throw e;
    return { ...base, ok: false, error: (e as Error).message };
  } finally {
    await peer?.stop().catch(() => {});
    await be?.stop().catch(() => {});
  }
}

// Virtio feature bits (virtio 1.2, 5.1.3 and 6) by number, for the names in the results.
const FEATURE_BITS: Record<number, string> = {
  0: "CSUM", 1: "GUEST_CSUM", 5: "MAC", 6: "GSO", 7: "GUEST_TSO4", 8: "GUEST_TSO6", 10: "GUEST_UFO",
  11: "HOST_TSO4", 12: "HOST_TSO6", 14: "HOST_UFO", 15: "MRG_RXBUF", 16: "STATUS", 17: "CTRL_VQ",
  18: "CTRL_RX", 19: "CTRL_VLAN", 21: "GUEST_ANNOUNCE", 22: "MQ", 23: "CTRL_MAC_ADDR",
  28: "RING_INDIRECT_DESC", 29: "RING_EVENT_IDX", 30: "PROTOCOL_FEATURES (vhost-user)",
  32: "VERSION_1", 33: "ACCESS_PLATFORM", 34: "RING_PACKED", 35: "IN_ORDER", 36: "ORDER_PLATFORM",
  37: "SR_IOV", 38: "NOTIFICATION_DATA",
};

function describeFeatures(hex: string | null): string[] {
  if (hex === null) return [];
  const v = BigInt(hex);
  const out: string[] = [];
  for (let b = 0; b < 64; b++) if ((v >> BigInt(b)) & 1n) out.push(FEATURE_BITS[b] ?? `bit ${b}`);
  return out;
}

// ---------------------------------------------------------------------------------------------

interface Summary {
  size: number;
  peer: PeerName;
  batch: number | null;
  runs: number;
  mppsPerRun: number[];
  mppsMedian: number;
  spreadPct: number;
  meanFrameBytes: number;
  drops: { backendPort: number; backendUnsent: number; peer: number | null };
  /** The least CPU s/s the backend and the peer had in any run (about 1.0 = undisturbed). */
  cpuMin: { backend: number | null; peer: number | null };
  /** ixy only: ixy Mpps / testpmd Mpps of the same run and frame size, median over runs. */
  ratioVsTestpmd: { perRun: number[]; median: number } | null;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

function minOrNull(xs: (number | null | undefined)[]): number | null {
  const v = xs.filter((x): x is number => typeof x === "number");
  return v.length ? Math.min(...v) : null;
}

function summarize(results: RunResult[]): Summary[] {
  const keys = new Map<string, RunResult[]>();
  for (const r of results.filter((r) => r.ok)) {
    const k = `${r.size}/${r.peer}/${r.batch}`;
    keys.set(k, [...(keys.get(k) ?? []), r]);
  }
  const out: Summary[] = [];
  for (const rs of keys.values()) {
    const r0 = rs[0]!;
    const mpps = rs.map((r) => r.mpps!);
    const med = median(mpps);
    let ratio: Summary["ratioVsTestpmd"] = null;
    if (r0.peer === "ixy") {
      const perRun = rs.flatMap((r) => {
        const t = results.find((q) => q.ok && q.peer === "testpmd" && q.run === r.run && q.size === r.size);
        return t ? [r.mpps! / t.mpps!] : [];
      });
      if (perRun.length) ratio = { perRun, median: median(perRun) };
    }
    const peerDrops = rs.map((r) => r.peerDropped ?? null);
    out.push({
      size: r0.size,
      peer: r0.peer,
      batch: r0.batch,
      runs: rs.length,
      mppsPerRun: mpps,
      mppsMedian: med,
      spreadPct: med > 0 ? ((Math.max(...mpps) - Math.min(...mpps)) / 2 / med) * 100 : 0,
      meanFrameBytes: median(rs.map((r) => r.meanFrameBytes!)),
      drops: {
        backendPort: rs.reduce((s, r) => s + (r.backendPortDrops ?? 0), 0),
        backendUnsent: rs.reduce((s, r) => s + (r.backendUnsent ?? 0), 0),
        peer: peerDrops.every((d) => d === null) ? null : peerDrops.reduce<number>((s, d) => s + (d ?? 0), 0),
      },
      ratioVsTestpmd: ratio,
      cpuMin: { backend: minOrNull(rs.map((r) => r.backendCpu)), peer: minOrNull(rs.map((r) => r.peerCpu)) },
    });
  }
  return out.sort((a, b) => a.size - b.size || (a.peer === b.peer ? (a.batch ?? 0) - (b.batch ?? 0) : a.peer === "testpmd" ? -1 : 1));
}

function table(rows: Summary[], traffic: Traffic): string {
  const head = ["frame B", "peer", "batch", "runs", "Mpps", "±%", "per run", "B/frame", "drops at backend", traffic === "flowgen" ? "unsent (overload)" : "", "peer drops", "CPU be/peer", "ixy/testpmd"];
  const body = rows.map((r) => [
    String(r.size),
    r.peer === "ixy" ? "ixy.ts" : "testpmd",
    r.batch === null ? (r.peer === "testpmd" ? "32" : "-") : String(r.batch),
    String(r.runs),
    r.mppsMedian.toFixed(3),
    r.spreadPct.toFixed(1),
    r.mppsPerRun.map((x) => x.toFixed(2)).join(" "),
    r.meanFrameBytes.toFixed(0),
    String(r.drops.backendPort),
    traffic === "flowgen" ? String(r.drops.backendUnsent) : "",
    r.drops.peer === null ? "-" : String(r.drops.peer),
    `${r.cpuMin.backend?.toFixed(2) ?? "?"}/${r.cpuMin.peer?.toFixed(2) ?? "?"}`,
    r.ratioVsTestpmd ? `${r.ratioVsTestpmd.median.toFixed(3)} (${r.ratioVsTestpmd.perRun.map((x) => x.toFixed(2)).join(" ")})` : "",
  ]);
  const cols = head.map((_, i) => i).filter((i) => head[i] !== "");
  const width = cols.map((i) => Math.max(head[i]!.length, ...body.map((b) => b[i]!.length)));
  const fmt = (cells: string[]): string => cols.map((i, j) => (j < 3 ? cells[i]!.padEnd(width[j]!) : cells[i]!.padStart(width[j]!))).join("  ");
  return [fmt(head), cols.map((_, j) => "-".repeat(width[j]!)).join("  "), ...body.map(fmt)].join("\n");
}

// ---------------------------------------------------------------------------------------------

interface MachineFacts {
  cpu: string;
  cpus: number;
  os: string;
  kernel: string;
  node: string;
  dpdk: string;
  hugepagesFree: number;
}

function machine(): MachineFacts {
  const read = (p: string): string => {
    try {
      return readFileSync(p, "utf8");
    } catch {
      return "";
    }
  };
  const dpdk = spawnSync("dpkg-query", ["-W", "-f=${Version}", "dpdk-dev"], { encoding: "utf8" });
  return {
    cpu: read("/proc/cpuinfo").match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown",
    cpus: cpus().length,
    os: read("/etc/os-release").match(/^PRETTY_NAME="?([^"\n]*)"?$/m)?.[1] ?? "unknown",
    kernel: release(),
    node: process.version,
    dpdk: dpdk.status === 0 ? `dpdk-dev ${dpdk.stdout.trim()}` : "unknown",
    hugepagesFree: Number(read("/proc/meminfo").match(/^HugePages_Free:\s+(\d+)/m)?.[1] ?? 0),
  };
}

/**
 * What two busy loops, one pinned to each CPU, get for 2 s: CPU s/s each, the worse one. On a
 * virtual machine whose host is busy this is well under 1.0 even with nothing else running in
 * the guest (one loop alone still gets ~1.0): the forwarders will get no more than this.
 */
async function bothCpusShare(ms = 2000): Promise<number | null> {
  const loops = [BACKEND_CPU, PEER_CPU].map((c) => spawn("taskset", ["-c", String(c), "sh", "-c", "while :; do :; done"], { stdio: "ignore" }));
  try {
    await sleep(200);
    const t0 = performance.now();
    const a = loops.map((l) => cpuSeconds(l.pid));
    await sleep(ms);
    const b = loops.map((l) => cpuSeconds(l.pid));
    const dt = (performance.now() - t0) / 1000;
    const shares = a.map((x, i) => (x === null || b[i] === null ? null : (b[i]! - x) / dt));
    return shares.some((x) => x === null) ? null : Math.min(...(shares as number[]));
  } finally {
    for (const l of loops) l.kill("SIGKILL");
  }
}

function preflight(): void {
  const problems: string[] = [];
  if (process.getuid?.() !== 0) problems.push("run as root (DPDK needs hugepages and /var/run/dpdk)");
  if (spawnSync("sh", ["-c", "command -v ${DPDK_TESTPMD:-dpdk-testpmd}"]).status !== 0) problems.push("no dpdk-testpmd on PATH");
  const mem = existsSync("/proc/meminfo") ? readFileSync("/proc/meminfo", "utf8") : "";
  const free = Number(mem.match(/^HugePages_Free:\s+(\d+)/m)?.[1] ?? 0);
  if (free < 256) problems.push(`only ${free} free hugepages (the backend and a peer need about 200 x 2 MiB)`);
  if (!readFileSync("/proc/mounts", "utf8").split("\n").some((l) => l.split(" ")[2] === "hugetlbfs")) problems.push("no hugetlbfs mounted");
  if (problems.length) throw new Error(`${problems.join("; ")}: as root, bash test/dpdk/setup.sh`);
  if (cpus().length < 2) throw new Error("needs 2 CPUs: the backend and the forwarder on the same one time-share it (about 30 kpps)");
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const o = parseOptions(argv);
  preflight();
  process.chdir(ROOT);
  process.once("SIGINT", () => {
    log("interrupted: stopping testpmd");
    void stopAll().finally(() => process.exit(130));
  });
  const busy = await busyPercent(1000);
  const both = await bothCpusShare();
  const started = new Date();
  const m = { ...machine(), busyAtStartPct: busy ?? -1, bothCpusBusyShare: both ?? -1 };
  log("ixy.ts bench:vhost: forwarders over vhost-user against one DPDK vhost backend");
  log(`machine  ${m.cpu}, ${m.cpus} CPUs, ${m.os}, Linux ${m.kernel}; node ${m.node}; ${m.dpdk}`);
  log(`pinning  backend forwarding lcore on CPU ${BACKEND_CPU}, the forwarder under test on CPU ${PEER_CPU}`);
  log(`traffic  ${o.traffic === "flowgen" ? "backend flowgen (open loop: generates on both ports, counts what comes back)" : "peer --tx-first, everything io-forwarded (closed loop)"}`);
  if (o.queues > 1) log(`queues   ${o.queues} queue pairs per port on the backend and on both peers; still one core per forwarder`);
  log(`plan     ${o.runs} run${o.runs === 1 ? "" : "s"} x sizes ${o.sizes.join(",")} x peers ${o.peers.join(",")}${o.batches ? ` (ixy batches ${o.batches.join(",")})` : ""}; warm-up ${o.warmup} s, window >= ${o.seconds} s`);
  if (o.peers.includes("ixy")) log(`ixy cmd  ${o.ixyCmd}`);
  if ((busy ?? 0) >= 10) log(`warning  other work is using ${busy}% of the CPUs: every peer will look slower, and the runs will disagree`);
  log(`cpus     two busy loops, one per CPU, got ${both?.toFixed(2) ?? "?"} CPU s/s each (1.00 = the CPUs are all ours)`);
  if ((both ?? 1) < 0.9) log("warning  both CPUs busy at once get less than a whole CPU each (the host is busy): expect low, scattered rates");

  const results: RunResult[] = [];
  let ixyUnavailable: string | null = null;
  const shownFeatures = new Set<string>();
  for (let run = 1; run <= o.runs; run++) {
    for (const size of o.sizes) {
      const order = run % 2 === 1 ? o.peers : [...o.peers].reverse();
      for (const peer of order) {
        for (const batch of peer === "ixy" ? (o.batches ?? [null]) : [null]) {
          if (peer === "ixy" && ixyUnavailable !== null) continue;
          const label = `run ${run}/${o.runs}  ${String(size).padStart(4)} B  ${peer === "ixy" ? "ixy.ts " : "testpmd"}${batch !== null ? ` batch ${batch}` : ""}`;
          const r = await oneRun(o, run, size, peer, batch);
          results.push(r);
          if (r.ok) {
            const c = (x: number | null | undefined): string => (x == null ? "?" : x.toFixed(2));
            log(`${label}: ${r.mpps!.toFixed(3)} Mpps (${r.portMpps!.map((x) => x.toFixed(3)).join(" + ")}) over ${r.windowSeconds!.toFixed(1)} s, ${r.meanFrameBytes!.toFixed(0)} B/frame, backend drops ${r.backendPortDrops}; CPU s/s backend ${c(r.backendCpu)}, peer ${c(r.peerCpu)}`);
            if ((r.backendCpu ?? 1) < 0.9 || (r.peerCpu ?? 1) < 0.9) log("  warning: a forwarder did not have its CPU to itself: other work ran on it");
            if (Math.abs(r.meanFrameBytes! - size) > 1) log(`  warning: ${r.meanFrameBytes!.toFixed(1)} bytes a frame came back, not ${size}`);
            if (r.peerOutput) log(`  ${peer} peer's output, last lines:\n${r.peerOutput}`);
            const key = `${peer}:${r.features}`;
            if (!shownFeatures.has(key)) {
              shownFeatures.add(key);
              log(`  ${peer} negotiated ${r.features ?? "?"}: ${r.featureNames?.join(" ") ?? ""}`);
            }
          } else {
            log(`${label}: FAILED\n${firstLines(r.error!.replace(/^/gm, "    "), 40)}`);
            // The first failure of the ixy peer before any success: it is not there yet.
            if (peer === "ixy" && !results.some((q) => q.ok && q.peer === "ixy")) {
              ixyUnavailable = r.error!;
              log("  the ixy.ts peer is unavailable: its remaining runs are skipped");
            }
          }
          await sleep(200);
        }
      }
    }
  }

  const summary = summarize(results);
  const featureSets = new Map<PeerName, Set<string>>();
  for (const r of results) if (r.ok && r.features) featureSets.set(r.peer, (featureSets.get(r.peer) ?? new Set()).add(r.features));
  const fi = [...(featureSets.get("ixy") ?? [])].join(","), ft = [...(featureSets.get("testpmd") ?? [])].join(",");
  if (fi && ft && fi !== ft) {
    log(`\nwarning: the peers negotiated different virtio features (ixy.ts ${fi}, testpmd ${ft}): the backend's work per frame differs between them (--testpmd-vdev)`);
  }
  log("");
  log(summary.length ? table(summary, o.traffic) : "no run succeeded");
  if (ixyUnavailable !== null) log(`\nixy.ts peer: unavailable:\n${firstLines(ixyUnavailable.replace(/^/gm, "    "), 25)}`);
  const durationS = (Date.now() - started.getTime()) / 1000;
  log(`\n${results.filter((r) => r.ok).length} of ${results.length} runs succeeded in ${durationS.toFixed(0)} s`);

  if (o.write) {
    const day = started.toISOString().slice(0, 10);
    mkdirSync(o.outDir, { recursive: true });
    const file = join(o.outDir, `vhost-${day}${o.queues > 1 ? `-queues${o.queues}` : ""}${o.quick ? "-quick" : ""}.json`);
    const data = {
      schema: "ixy.ts/bench-vhost/1",
      date: started.toISOString(),
      command: `npm run bench:vhost${argv.length ? ` -- ${argv.join(" ")}` : ""}`,
      machine: m,
      config: {
        traffic: o.traffic, sizes: o.sizes, runs: o.runs, seconds: o.seconds, warmup: o.warmup, batches: o.batches,
        sockets: o.sockets, testpmdVdev: o.testpmdVdev, queues: o.queues, backendCpu: BACKEND_CPU, peerCpu: PEER_CPU, statsPeriod: STATS_PERIOD, ixyCmd: o.ixyCmd,
      },
      durationS,
      unavailable: ixyUnavailable !== null ? { ixy: ixyUnavailable } : {},
      summary,
      runs: results,
    };
    writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
    log(`results  ${relative(ROOT, file) || file}`);
  }
  if (o.strict) return results.length > 0 && results.every((r) => r.ok) && ixyUnavailable === null ? 0 : 1;
  const testpmdOk = !o.peers.includes("testpmd") || results.some((r) => r.ok && r.peer === "testpmd");
  return testpmdOk ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench:vhost: ${err instanceof TestpmdError ? `${err.code}: ` : ""}${err.message}\n`);
    if (err instanceof UsageError) process.stderr.write(`${USAGE}\n`);
    void stopAll().finally(() => process.exit(err instanceof UsageError ? 2 : 1));
  },
);
