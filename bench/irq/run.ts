/**
 * bench:irq: what each --irq mode (poll, irq, adaptive; docs/adaptive-polling.md) costs and
 * gives: CPU use while idle (% of one core), round-trip latency through the forwarder at a low
 * rate (p50/p99) and throughput at a high rate.
 *
 *   npm run bench:irq [-- --quick] [--target sim|vhost] [--rate 1000] [--json]
 *
 * Targets:
 * - sim (default): fwd's loop between two 82599 models in a child process per mode
 *   (bench/irq/sim-fwd.ts); the traffic source shares that process.
 * - vhost: idle CPU only, of examples/fwd.ts on two vhost-user ports of a DPDK testpmd backend in
 *   another process (bench/irq/vhost-idle.ts: the figure is the forwarder's alone). Throughput over
 *   vhost-user per mode: npm run bench:vhost -- --quick --peers ixy --ixy-cmd
 *   "node --import tsx examples/fwd.ts vhost-user:{s0} vhost-user:{s1} --seconds {seconds} --irq MODE".
 * --quick: short phases (CI). The qemu testbed's figures come from test/vm/irq-modes.vm.test.ts.
 */
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { quick: { type: "boolean" }, target: { type: "string" }, rate: { type: "string" }, json: { type: "boolean" } },
});
const quick = values.quick === true;
const target = values.target ?? "sim";
if (target !== "sim" && target !== "vhost") throw new RangeError(`--target takes sim or vhost, got ${target}`);
const rate = values.rate ?? "1000";
const phases = quick ? ["--idle-s", "1", "--lat-s", "1", "--tput-s", "1"] : ["--idle-s", "3", "--lat-s", "3", "--tput-s", "3"];
const script = new URL("./sim-fwd.ts", import.meta.url).pathname;
if (target === "vhost") {
  const r = spawnSync(process.execPath, ["--import", "tsx", new URL("./vhost-idle.ts", import.meta.url).pathname, "--seconds", quick ? "4" : "8"], {
    encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 300_000,
  });
  process.stdout.write(r.stdout);
  process.exit(r.status ?? 1);
}

interface Row {
  target: string;
  mode: string;
  idleCpuPct: number;
  latency: { frames: number; p50us: number; p99us: number };
  throughputMpps: number;
  parks: number;
  wakeups: number;
}

const rows: Row[] = [];
for (const mode of ["poll", "irq", "adaptive"]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", script, "--mode", mode, "--rate", rate, ...phases], {
    encoding: "utf8", timeout: 180_000,
  });
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    throw new Error(`bench:irq: ${target} --mode ${mode} exited with ${r.status ?? r.signal}`);
  }
  const line = r.stdout.trim().split("\n").at(-1)!;
  rows.push(JSON.parse(line) as Row);
}

if (values.json === true) {
  for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
} else {
  const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "-");
  process.stdout.write(`bench:irq ${target}${quick ? " (quick)" : ""}: idle CPU, latency at ${rate} frames/s, throughput\n`);
  process.stdout.write("mode      idle CPU  latency p50   p99       throughput  sleeps (woken by irq)\n");
  for (const r of rows) {
    process.stdout.write(
      `${r.mode.padEnd(9)} ${`${f(r.idleCpuPct)}%`.padStart(8)}  ${`${f(r.latency.p50us, 0)} us`.padStart(11)}  ` +
        `${`${f(r.latency.p99us, 0)} us`.padEnd(9)} ${`${f(r.throughputMpps, 3)} Mpps`.padStart(11)}  ${r.parks} (${r.wakeups})\n`,
    );
  }
}
