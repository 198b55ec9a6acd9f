/**
 * bench:irq --target vhost-idle: examples/fwd.ts on two vhost-user ports of a DPDK testpmd backend
 * (two net_vhost ports, io forwarding, no traffic: nothing is ever sent), once per --irq mode; the
 * forwarder's CPU use while idle from its own once-a-second "cpu" line (the median of the last
 * seconds). The backend is another process: the figure is fwd's alone. Needs dpdk-testpmd and
 * hugepages (test/dpdk/setup.sh).
 *
 *   node --import tsx bench/irq/vhost-idle.ts [--seconds 6]
 */
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { startTestpmd } from "../../test/dpdk/testpmd.ts";

const { values } = parseArgs({ options: { seconds: { type: "string" } } });
const seconds = Number(values.seconds ?? 6);
const sockets = ["/tmp/ixy-irq-v0", "/tmp/ixy-irq-v1"];
const root = new URL("../..", import.meta.url).pathname;

for (const mode of ["poll", "irq", "adaptive"]) {
  const be = await startTestpmd({
    role: "backend", sockets, lcores: "0@0,1@0", filePrefix: "bench-irq-be", forwardMode: "io", totalNumMbufs: 16384,
  });
  await be.ready;
  const r = spawnSync(process.execPath, [
    "--import", "tsx", "examples/fwd.ts", `vhost-user:${sockets[0]}`, `vhost-user:${sockets[1]}`, "--irq", mode, "--seconds", String(seconds),
  ], { cwd: root, encoding: "utf8", timeout: 120_000 });
  await be.stop();
  const cpu = [...r.stderr.matchAll(/fwd: cpu ([\d.]+)% of one core, forwarded 0/g)].map((m) => Number(m[1])).slice(2).sort((a, b) => a - b);
  const median = cpu.length === 0 ? NaN : cpu[Math.floor(cpu.length / 2)]!;
  process.stdout.write(`${JSON.stringify({ target: "vhost-user (testpmd backend)", mode, idleCpuPct: median, seconds: cpu.length, exit: r.status })}\n`);
  if (r.status !== 0) process.stderr.write(r.stderr.slice(-2000));
}
