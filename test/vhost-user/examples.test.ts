/**
 * The example apps on vhost-user ports ("vhost-user:<socket>"), as a user runs them (child
 * processes through tsx), against model backends in child processes of their own.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startModelBackend, type ModelBackend } from "../../src/sim/vhost-user/backend-process.ts";
import { hugepagesMissing } from "./helpers.ts";
import { socketPath } from "./scripted-backend.ts";

const root = new URL("../..", import.meta.url).pathname;
// An example opens its ports with the default 32 MiB of shared memory.
const why = hugepagesMissing(20);
if (why) console.warn(`test/vhost-user/examples: skipped: ${why}`);

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: root });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const backends: ModelBackend[] = [];
async function backend(mode: "loopback" | "sink", queuePairs = 1): Promise<ModelBackend> {
  const b = startModelBackend({ socket: socketPath(), mode, queuePairs });
  backends.push(b);
  await b.ready;
  return b;
}
afterEach(async () => {
  for (const b of backends.splice(0)) {
    await b.stop();
    fs.rmSync(path.dirname(b.socket), { recursive: true, force: true });
  }
});

describe.skipIf(why !== null)("examples on vhost-user ports", () => {
  it("fwd --tx-first between two loopback backends: the 32 frames of each port circulate both ways", async () => {
    const [a, b] = [await backend("loopback"), await backend("loopback")];
    const r = await run(["examples/fwd.ts", `vhost-user:${a.socket}`, `vhost-user:${b.socket}`, "--tx-first", "--seconds", "2", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/sent 32 frames on each port first/);
    const totals = r.stdout.trim().split("\n").map((l) => JSON.parse(l)).find((l) => l.type === "totals").ports;
    const [ta, tb] = totals.map((p: { total: Record<string, number> }) => p.total);
    expect(ta.rxPackets).toBeGreaterThan(100);
    expect(tb.rxPackets).toBeGreaterThan(100);
    // What one port received, the other sent (give or take the frames in flight at the end).
    expect(Math.abs(tb.txPackets - ta.rxPackets)).toBeLessThanOrEqual(64);
    expect((await a.stats()).violations).toEqual([]);
  });

  it("fwd --workers 2 --tx-first over two queue pairs per port: each worker's frames circulate on its own pair", async () => {
    const [a, b] = [await backend("loopback", 2), await backend("loopback", 2)];
    const r = await run(["examples/fwd.ts", `vhost-user:${a.socket}`, `vhost-user:${b.socket}`, "--tx-first", "--workers", "2", "--seconds", "3", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/sent 32 frames on each queue of each port first/);
    const workers = [...r.stderr.matchAll(/worker (\d) \(core \d\): forwarded (\d+) frames, [\d.]+ Mpps, dropped (\d+)/g)];
    expect(workers.length).toBe(2);
    for (const w of workers) {
      expect(Number(w[2])).toBeGreaterThan(100);
      expect(Number(w[3])).toBe(0);
    }
    const totals = r.stdout.trim().split("\n").map((l) => JSON.parse(l)).find((l) => l.type === "totals").ports;
    const [ta, tb] = totals.map((p: { total: Record<string, number> }) => p.total);
    // What one port received, the other sent (give or take the 2 x 2 x 32 frames in flight at the end).
    expect(Math.abs(tb.txPackets - ta.rxPackets)).toBeLessThanOrEqual(128);
    for (const x of [a, b]) expect((await x.stats()).violations).toEqual([]);
  });

  it("pktgen sends exactly --count frames with the --mac source address", async () => {
    const b = await backend("sink");
    const r = await run(["examples/pktgen.ts", `vhost-user:${b.socket}`, "--count", "3000", "--size", "128", "--mac", "02:12:34:56:78:9a"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/sent 3000 frames/);
    const stats = await b.waitFor((s) => s.transmitted >= 3000);
    expect([stats.transmitted, stats.transmittedBytes]).toEqual([3000, 3000 * 128]);
    const last = (await b.transmitted()).at(-1)!;
    expect(Array.from(last.subarray(6, 12))).toEqual([0x02, 0x12, 0x34, 0x56, 0x78, 0x9a]);
  });

  it("pcap writes what the backend sends to the port", async () => {
    const b = await backend("sink");
    const file = path.join(path.dirname(b.socket), "cap.pcap");
    const capture = run(["examples/pcap.ts", `vhost-user:${b.socket}`, file, "--count", "10"]);
    await b.waitFor((s) => s.session?.running === true, 20_000);
    const frame = new Uint8Array(60).fill(0xab);
    for (let i = 0; i < 10; i++) await b.inject(frame);
    const r = await capture;
    expect(r.status, r.stderr).toBe(0);
    const data = fs.readFileSync(file);
    expect(data.length).toBe(24 + 10 * (16 + 60));
    expect(data[24 + 16]).toBe(0xab);
  });

  it("a bad --mac is a usage error; a missing backend an error naming the socket", async () => {
    const bad = await run(["examples/pktgen.ts", "vhost-user:/nonexistent.sock", "--mac", "02:00:00"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--mac takes six hex bytes/);
    const nowhere = socketPath();
    const missing = await run(["examples/pktgen.ts", `vhost-user:${nowhere}`, "--count", "1"]);
    fs.rmSync(path.dirname(nowhere), { recursive: true });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/VhostUserBackendNotFoundError: .*no vhost-user backend listens on/);
  });
});
