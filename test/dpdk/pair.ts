/**
 * pair: DPDK against DPDK over vhost-user, no ixy.ts involved: a testpmd vhost backend (two
 * net_vhost ports) and a testpmd virtio-user forwarder (two net_virtio_user ports on the same
 * sockets), each pinned to its own CPU. Checks that the DPDK side of the vhost-user tests works
 * on this machine and shows what DPDK's own virtio driver reaches, the yardstick of bench/vhost.
 *
 *   tsx test/dpdk/pair.ts [--seconds 10] [--warmup 3] [--frame-size 60] [--backend-mode io|flowgen] [--json]
 *                         [--backend-args '--record-burst-stats'] [--forwarder-args '...']
 *
 * (--*-args: more testpmd arguments, split at spaces; lines testpmd prints about bursts and
 * cycles when it stops, e.g. with --record-burst-stats or --record-core-cycles, are shown.)
 *
 * --backend-mode io (default): the forwarder sends one burst per port first (--tx-first) and
 * both sides io-forward: a fixed set of frames circulates. flowgen: the backend generates frames
 * on both ports as fast as it can (open loop) and drops what comes back, counting it as RX; the
 * forwarder io-forwards port 0 <-> port 1.
 *
 * Exits 1 if the backend received nothing in the window (or anything fails). Root, hugepages and
 * dpdk-testpmd needed: bash test/dpdk/setup.sh.
 */
import { parseArgs } from "node:util";
import { measure, type Measurement } from "./measure.ts";
import { startTestpmd, stopAll, type StopResult, type Testpmd } from "./testpmd.ts";

const USAGE =
  "usage: tsx test/dpdk/pair.ts [--seconds 10] [--warmup 3] [--frame-size 60] [--backend-mode io|flowgen] [--json]\n" +
  "                            [--backend-args 'testpmd args'] [--forwarder-args 'testpmd args']";

function num(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} ${v}: a whole number ${min}..${max}\n${USAGE}`);
  return n;
}

const f3 = (x: number): string => x.toFixed(3);

function describe(name: string, m: Measurement): string {
  const ports = m.ports
    .map((p) => `port ${p.port} rx ${f3(p.rxMpps)} tx ${f3(p.txMpps)} Mpps (missed ${p.rxMissed}, rx-err ${p.rxErrors}, tx-err ${p.txErrors})`)
    .join("; ");
  return `${name}: ${f3(m.rxMpps)} Mpps rx, ${f3(m.txMpps)} Mpps tx over ${m.seconds.toFixed(2)} s after ${m.warmupSeconds.toFixed(1)} s warm-up; ${ports}`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string" },
      warmup: { type: "string" },
      "frame-size": { type: "string" },
      "backend-mode": { type: "string" },
      json: { type: "boolean" },
      "backend-args": { type: "string" },
      "forwarder-args": { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const seconds = num("seconds", values.seconds, 10, 1, 3600);
  const warmup = num("warmup", values.warmup, 3, 0, 600);
  const frameSize = num("frame-size", values["frame-size"], 60, 60, 1514);
  const mode = values["backend-mode"] ?? "io";
  if (mode !== "io" && mode !== "flowgen") throw new Error(`--backend-mode ${mode}: io or flowgen\n${USAGE}`);
  const sockets = ["/tmp/dpdk-pair-v0", "/tmp/dpdk-pair-v1"];
  const log = (s: string): void => void process.stderr.write(`pair: ${s}\n`);
  const split = (v: string | undefined): string[] => (v ?? "").split(" ").filter(Boolean);
  const notes: string[] = [];
  const noteLine = (who: string) => (stream: "stdout" | "stderr", line: string): void => {
    if (stream === "stdout" && /bursts|cycles/i.test(line)) notes.push(`${who}: ${line.trim()}`);
  };

  process.once("SIGINT", () => void stopAll().then(() => process.exit(130)));
  let be: Testpmd | null = null;
  let fe: Testpmd | null = null;
  try {
    be = await startTestpmd({
      role: "backend", sockets, lcores: "0@1,1@0", filePrefix: "pair-be", forwardMode: mode,
      ...(mode === "flowgen" ? { frameSize } : {}),
      extraArgs: split(values["backend-args"]), onLine: noteLine("backend"),
    });
    log(`backend   ${be.commandLine}`);
    await be.ready;
    fe = await startTestpmd({
      role: "virtio-user", sockets, lcores: "0@0,1@1", filePrefix: "pair-fe", forwardMode: "io",
      txFirst: mode === "io", frameSize,
      extraArgs: split(values["forwarder-args"]), onLine: noteLine("forwarder"),
    });
    log(`forwarder ${fe.commandLine}`);
    await fe.ready;
    await be.connected();
    const from = performance.now();
    log(`connected; warm-up ${warmup} s, then at least ${seconds} s measured`);
    const [mb, mf] = await Promise.all([measure(be, { warmup, seconds, from }), measure(fe, { warmup, seconds, from })]);
    const feStop: StopResult = await fe.stop();
    const beStop: StopResult = await be.stop();
    const fwdDrops = (s: StopResult): number => s.forwardStats.reduce((a, p) => a + p.rxDropped + p.txDropped, 0);
    const out = {
      backendMode: mode,
      frameSize,
      backend: { rxMpps: mb.rxMpps, txMpps: mb.txMpps, seconds: mb.seconds, drops: mb.drops, ports: mb.ports, forwardStats: beStop.forwardStats },
      forwarder: { rxMpps: mf.rxMpps, txMpps: mf.txMpps, seconds: mf.seconds, drops: mf.drops, ports: mf.ports, forwardStats: feStop.forwardStats },
    };
    if (values.json) console.log(JSON.stringify(out));
    else {
      console.log(`backend ${mode}, ${frameSize}-byte frames`);
      console.log(describe("  at the backend ", mb));
      console.log(describe("  at the forwarder", mf));
      console.log(`  forward-engine drops at exit: backend ${fwdDrops(beStop)}, forwarder ${fwdDrops(feStop)}`);
      for (const n of notes) console.log(`  ${n}`);
    }
    if (mb.rxPackets <= 0) {
      log("the backend received nothing in the window");
      return 1;
    }
    return 0;
  } finally {
    await Promise.allSettled([fe?.stop(), be?.stop()]);
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`pair: ${err.message}\n`);
    void stopAll().finally(() => process.exit(1));
  },
);
