/**
 * ixy-pktgen as a user runs it (child processes through tsx) on the device models: the frames it
 * generates (captured from the model with --sim-capture, read with the pcap reader), pcap replay,
 * the latency mode through two wired models, and its usage errors.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readPcap } from "../../examples/lib/pcap-reader.ts";
import { PcapWriter } from "../../examples/lib/pcap-writer.ts";
import { hasStamp } from "../../examples/lib/latency-stamp.ts";
import { getSequence, ipv4Checksum, writeUdpFrame } from "../../examples/lib/udp-frame.ts";

const root = new URL("../..", import.meta.url).pathname;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pktgen-test-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "examples/pktgen.ts", ...args], { cwd: root, encoding: "utf8", timeout: 90_000 });
}

const u16 = (f: Uint8Array, at: number) => (f[at]! << 8) | f[at + 1]!;
const hex = (f: Uint8Array, from: number, to: number) => [...f.subarray(from, to)].map((b) => b.toString(16).padStart(2, "0")).join(":");

describe("ixy-pktgen", { timeout: 120_000 }, () => {
  it("--flows 4 --size 64-128: each frame's flow, size, headers and sequence number are right", () => {
    const cap = path.join(dir, "flows.pcap");
    const r = run([
      "--sim", "--count", "40", "--flows", "4", "--size", "64-128", "--sim-capture", cap,
      "--dst-mac", "0a:0b:0c:0d:0e:0f", "--src-ip", "192.168.1.254", "--dst-ip", "172.16.0.9", "--src-port", "65534", "--dst-port", "4789",
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/64-128-byte frames, 4 flows/);
    const frames = readPcap(cap).frames;
    expect(frames.length).toBe(40);
    const sizes = new Set<number>();
    frames.forEach((f, seq) => {
      const flow = seq % 4;
      expect(f.length).toBeGreaterThanOrEqual(64);
      expect(f.length).toBeLessThanOrEqual(128);
      sizes.add(f.length);
      expect(hex(f, 0, 6)).toBe("0a:0b:0c:0d:0e:0f");
      expect(hex(f, 6, 12)).toBe("02:00:00:00:82:00"); // the model's MAC: --src-mac's default
      expect(u16(f, 12)).toBe(0x0800);
      expect(u16(f, 16)).toBe(f.length - 14); // IPv4 total length
      expect(ipv4Checksum(f.subarray(14, 34))).toBe(0);
      // Flow i: source address and port + i (wrapping 192.168.1.254 -> .255 -> 192.168.2.0, 65535 -> 1).
      expect([...f.subarray(26, 30)]).toEqual([[192, 168, 1, 254], [192, 168, 1, 255], [192, 168, 2, 0], [192, 168, 2, 1]][flow]);
      expect([...f.subarray(30, 34)]).toEqual([172, 16, 0, 9]);
      expect(u16(f, 34)).toBe([65534, 65535, 1, 2][flow]);
      expect(u16(f, 36)).toBe(4789);
      expect(u16(f, 38)).toBe(f.length - 34); // UDP length
      expect(getSequence(f)).toBe(seq);
      expect(hasStamp(f, 0, f.length)).toBe(false);
    });
    // Sizes change every 4 frames (one per run of flows): 10 draws, not all the same.
    expect(sizes.size).toBeGreaterThan(1);
  });

  it("--size 64,512,1514 sends the mix in turn; --latency stamps every frame", () => {
    const cap = path.join(dir, "mix.pcap");
    const r = run(["--sim", "--count", "6", "--size", "64,512,1514", "--latency", "--sim-capture", cap]);
    expect(r.status, r.stderr).toBe(0);
    const frames = readPcap(cap).frames;
    expect(frames.map((f) => f.length)).toEqual([64, 512, 1514, 64, 512, 1514]);
    expect(frames.every((f) => hasStamp(f, 0, f.length))).toBe(true);
    expect(frames.map((f) => getSequence(f))).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("--pcap replays a 3-frame file in a loop up to --count, and --pcap-loop 2 plays it twice", () => {
    const file = path.join(dir, "three.pcap");
    const w = new PcapWriter(file);
    const originals = [60, 300, 1000].map((size, i) => {
      const f = new Uint8Array(size);
      writeUdpFrame(f, size, { srcPort: 7000 + i });
      f[size - 1] = 0xa5 + i; // a mark of its own
      w.write(f, 0, size, Date.now());
      return f;
    });
    w.close();
    const cap = path.join(dir, "replay.pcap");
    let r = run(["--sim", "--pcap", file, "--pcap-loop", "0", "--count", "7", "--sim-capture", cap]);
    expect(r.status, r.stderr).toBe(0);
    expect(readPcap(cap).frames).toEqual([0, 1, 2, 0, 1, 2, 0].map((i) => originals[i]));
    r = run(["--sim", "--pcap", file, "--pcap-loop", "2", "--sim-capture", cap]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/sent 6 frames/);
    expect(readPcap(cap).frames.length).toBe(6);
  });

  it.each(["ixgbe", "virtio"])("--latency --rx-port (%s): two wired models, every frame comes back, latency percentiles in the JSON totals", (nic) => {
    const r = run(["--sim", "--sim-nic", nic, "--rx-port", "b", "--latency", "--count", "20000", "--json", "--flows", "8"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    const lat = lines.find((l) => l.latency && l.latency.sent !== undefined).latency;
    expect(lat.sent).toBe(20000);
    expect(lat.received).toBe(20000);
    expect(lat.lost).toBe(0);
    expect(lat.reordered).toBe(0);
    expect(lat.duplicates).toBe(0);
    expect(lat.unstamped).toBe(0);
    const us = lat.latencyUs;
    expect(us.min).toBeGreaterThan(0);
    expect(us.p50).toBeGreaterThanOrEqual(us.min);
    expect(us.p99).toBeGreaterThanOrEqual(us.p50);
    expect(us.p999).toBeGreaterThanOrEqual(us.p99);
    expect(us.max).toBeGreaterThanOrEqual(us.p999);
    expect(us.max).toBeLessThan(60e6); // under a minute: the clocks agree
    const totals = lines.find((l) => l.type === "totals");
    expect(totals.ports[1].total.rxPackets).toBe(20000);
  });

  it("text mode prints the latency line at the end", () => {
    const r = run(["--sim", "--rx-port", "b", "--latency", "--count", "1000"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^latency: sent 1000, received 1000, lost 0, reordered 0, duplicates 0; latency us min \S+ p50 \S+ p99 \S+ p99\.9 \S+ max \S+$/m);
  });

  it("--rate-mbit paces by the wire size", () => {
    // 100-byte frames cost 124 bytes on the wire: 1 Mbit/s is 1008 frames/s.
    const r = run(["--sim", "--rate-mbit", "1", "--size", "100", "--seconds", "2"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/1 Mbit\/s \(1008 frames\/s\)/);
    const sent = Number(/sent (\d+) frames/.exec(r.stderr)![1]);
    expect(sent).toBeGreaterThan(1500);
    expect(sent).toBeLessThan(2300);
  });

  it("usage errors exit 2, a bad pcap file exits 1 with a typed one-line error", () => {
    let r = run(["--sim", "--rate", "10", "--rate-mbit", "10"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--rate and --rate-mbit exclude each other/);
    r = run(["--sim", "--size", "100-60"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/MIN is more than MAX/);
    r = run(["--sim", "--src-ip", "10.0.0.256"]);
    expect(r.status).toBe(2);
    r = run(["--sim", "--flows", "0"]);
    expect(r.status).toBe(2);
    const bad = path.join(dir, "bad.pcap");
    fs.writeFileSync(bad, "not a pcap file, just some text");
    r = run(["--sim", "--pcap", bad]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^error: PcapFormatError: .*bad\.pcap: not a pcap file \(magic 0x6e6f7420\)$/);
  });

  it("ixy-fwd --latency reports per port (the models' own traffic carries no stamp) and refuses --workers", () => {
    const fwd = (args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "examples/fwd.ts", ...args], { cwd: root, encoding: "utf8", timeout: 90_000 });
    let r = fwd(["--sim", "--seconds", "1", "--latency"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^latency sim:ixgbe0: no stamped frames \(\d+ others\)$/m);
    expect(r.stdout).toMatch(/^latency sim:ixgbe1: no stamped frames/m);
    r = fwd(["--sim", "--seconds", "1", "--latency", "--workers", "2"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--latency does not go with --workers/);
  });
});
