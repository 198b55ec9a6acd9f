/**
 * The example apps as a user runs them (child processes through tsx), on the device models:
 * exit codes, --json output, and the files they write.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const root = new URL("..", import.meta.url).pathname;

function run(args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
}

describe("examples", () => {
  it("fwd --sim --json forwards both ways and prints per-second and total statistics", () => {
    const r = run(["examples/fwd.ts", "--sim", "--sim-nic", "virtio", "--seconds", "2", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const perSecond = lines.filter((l) => l.type === "interval");
    expect(perSecond.length).toBeGreaterThanOrEqual(1);
    expect(perSecond[0].ports[0].rx.pps).toBeGreaterThan(0);
    const totals = lines.find((l) => l.type === "totals").ports;
    const [a, b] = totals.map((p: { total: Record<string, number> }) => p.total);
    expect(a.rxPackets).toBeGreaterThan(1000);
    // What port a received, port b sent, and the other way round.
    expect(b.txPackets).toBe(a.rxPackets);
    expect(a.txPackets).toBe(b.rxPackets);
    expect(r.stderr).toMatch(/dropped 0 frames/);
  });

  it.each(["ixgbe", "virtio"])("fwd --sim --workers 2 (%s): two pinned worker threads forward a queue pair each, and stop cleanly", (nic) => {
    const r = run(["examples/fwd.ts", "--sim", "--sim-nic", nic, "--seconds", "3", "--json", "--workers", "2", "--cores", "0,1"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/2 worker threads, queue pair i on core 0:0 1:1/);
    const workers = [...r.stderr.matchAll(/worker (\d) \(core (\d)\): forwarded (\d+) frames/g)].map((m) => Number(m[3]));
    // The models spread the source's 16 flows over both queues: both workers forwarded.
    expect(workers.length).toBe(2);
    for (const n of workers) expect(n).toBeGreaterThan(100);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    // Once a second, each worker's rate from its shared counters.
    const perSecond = lines.filter((l) => l.workers);
    expect(perSecond.length).toBeGreaterThanOrEqual(1);
    expect(perSecond.at(-1).workers.map((w: { worker: number; core: number }) => [w.worker, w.core])).toEqual([[0, 0], [1, 1]]);
    const [a, b] = lines.find((l) => l.type === "totals").ports.map((p: { total: Record<string, number> }) => p.total);
    // What the workers forwarded is what the ports sent; with what they dropped, no more than the
    // ports received (frames still in a receive ring at the stop were received but not forwarded).
    const dropped = Number(/dropped (\d+) frames for lack/.exec(r.stderr)![1]);
    expect(workers[0]! + workers[1]!).toBe(a.txPackets + b.txPackets);
    expect(a.txPackets + b.txPackets + dropped).toBeLessThanOrEqual(a.rxPackets + b.rxPackets);
    expect(a.txPackets + b.txPackets + dropped).toBeGreaterThan(a.rxPackets + b.rxPackets - 4 * 512);
  }, 60_000);

  it("pipeline --sim runs its two workers, rewrites and sends what it receives, and accounts for every frame", () => {
    const r = run(["examples/pipeline.ts", "--sim", "--seconds", "2", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const port = lines.find((l) => l.type === "totals").ports[0].total;
    const m = /received (\d+), sent (\d+) .*dropped (\d+) for a full ring, (\d+) not IPv4 or TTL expired, (\d+) for lack of TX descriptors/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const [received, sent, ringDropped, filtered, txDropped] = m!.slice(1).map(Number) as [number, number, number, number, number];
    expect(received).toBeGreaterThan(0);
    // The app lets the receive worker empty the ring before the stop word: what the NIC took
    // from the wire, what it counted and what the pipeline received are one number.
    const taken = Number(/taken by the NIC (\d+)/.exec(r.stderr)![1]);
    expect(received).toBe(taken);
    expect(received).toBe(port.rxPackets);
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBe(port.txPackets);
    expect(filtered).toBe(0); // the simulated source sends IPv4 with TTL 64
    expect(sent + ringDropped + filtered + txDropped).toBe(received);
    expect(r.stderr).toMatch(/receive worker on core \d+, process worker on core \d+/);
  });

  it("pipeline: a worker's failure stops the app with its message", () => {
    // Core 1000 is not online here: the process worker's pinThread throws, in the worker.
    const r = run(["examples/pipeline.ts", "--sim", "--seconds", "30", "--cores", "0,1000"]);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^error: IxyError: pipeline process worker \(core 1000\): RangeError: .*1000/m);
  });

  it("pktgen --sim sends exactly --count frames", () => {
    const r = run(["examples/pktgen.ts", "--sim", "--count", "5000", "--size", "128"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/sent 5000 frames/);
    expect(r.stdout).toMatch(/total tx 5000 packets 640000 bytes/ /* 128-byte frames, FCS not counted */);
  });

  it("pcap --sim writes a pcap file with --count frames", () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ixy-pcap-")), "cap.pcap");
    const r = run(["examples/pcap.ts", "--sim", file, "--count", "10"]);
    expect(r.status, r.stderr).toBe(0);
    const data = fs.readFileSync(file);
    expect(data.readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect(data.length).toBe(24 + 10 * (16 + 60));
    fs.rmSync(path.dirname(file), { recursive: true });
  });

  it("exit with code 2 and the usage on bad arguments", () => {
    const r = run(["examples/fwd.ts", "0000:01:00.0"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^ixy-fwd: needs two ports \(PCI addresses or vhost-user:<socket>\), got 1\nusage: ixy-fwd /);
    expect(run(["examples/pktgen.ts", "--sim", "--size", "20"]).stderr).toMatch(/--size must be an integer from 60 to 1514/);
  });

  it("exit with code 1 and a typed error naming the device when it cannot be opened", () => {
    const r = run(["examples/fwd.ts", "0000:7f:1f.7", "0000:7f:1f.6"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: DeviceNotFoundError: no PCI device at 0000:7f:1f\.7/);
  });
});
