/**
 * ixy-pcap as a user runs it (child processes through tsx, --sim): file errors are one line and
 * touch no device, each frame has its own microsecond timestamp, a live line once a second.
 * PcapWriter's record format in-process.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PcapFileError, PcapWriter } from "../../examples/lib/pcap-writer.ts";

const root = new URL("../..", import.meta.url).pathname;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-pcap-test-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function run(args: string[], options: { uid?: number; gid?: number } = {}) {
  return spawnSync(process.execPath, ["--import", "tsx", "examples/pcap.ts", ...args], { cwd: root, encoding: "utf8", timeout: 90_000, ...options });
}

/** The records of a classic pcap file: [seconds, microseconds, captured length]. */
function records(file: string): [number, number, number][] {
  const data = fs.readFileSync(file);
  expect(data.readUInt32LE(0)).toBe(0xa1b2c3d4);
  const out: [number, number, number][] = [];
  for (let at = 24; at < data.length; ) {
    const len = data.readUInt32LE(at + 8);
    out.push([data.readUInt32LE(at), data.readUInt32LE(at + 4), len]);
    at += 16 + len;
  }
  return out;
}

describe("ixy-pcap file errors: one line, exit 1, before the port is opened", () => {
  const cases: [string, string, RegExp][] = [
    ["a missing directory", path.join(tmp, "no-such-dir", "x.pcap"), /^error: PcapFileError: cannot create .*x\.pcap: there is no directory .*no-such-dir\n$/],
    ["a directory", tmp, /^error: PcapFileError: cannot write to .*: it is a directory \(give a file name in it\)\n$/],
    ["an empty name", "", /^error: PcapFileError: the output file's name is empty\n$/],
  ];
  it.each(cases)("%s", (_, file, message) => {
    const r = run(["--sim", file, "--count", "5"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/capturing on/);
  });

  // As root (this test machine) permissions do not apply: the child runs as nobody instead.
  it.runIf(process.getuid?.() === 0)("a directory it may not write to", () => {
    const dir = path.join(tmp, "read-only");
    fs.mkdirSync(dir, { mode: 0o555 });
    fs.chmodSync(tmp, 0o755);
    const r = run(["--sim", path.join(dir, "x.pcap"), "--count", "5"], { uid: 65534, gid: 65534 });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^error: PcapFileError: cannot write to .*x\.pcap: permission denied\n$/);
  });
  it("a port that cannot be opened leaves no file behind", () => {
    const file = path.join(tmp, "never.pcap");
    const r = run(["0000:7f:1f.7", file]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: DeviceNotFoundError: no PCI device at 0000:7f:1f\.7/);
    expect(fs.existsSync(file)).toBe(false);
  });
});

describe("ixy-pcap capture", () => {
  it("stamps each frame when it is written, in microseconds, never going back", { timeout: 120_000 }, () => {
    const file = path.join(tmp, "stamps.pcap");
    const before = Date.now() / 1000;
    const r = run(["--sim", file, "--count", "400"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^pcap: wrote 400 frames \(24000 bytes\) to /m);
    const recs = records(file);
    expect(recs.length).toBe(400);
    const t = recs.map(([s, us]) => s * 1e6 + us);
    for (let i = 1; i < t.length; i++) expect(t[i]!).toBeGreaterThanOrEqual(t[i - 1]!);
    expect(t[0]! / 1e6).toBeGreaterThan(before - 1);
    expect(t[t.length - 1]! / 1e6).toBeLessThan(Date.now() / 1000 + 1);
    // Not milliseconds: most stamps are not whole ms, and frames of one receive batch (up to 32,
    // 4 per round of --sim's source) mostly get stamps of their own, apart by a microsecond or so.
    expect(recs.filter(([, us]) => us % 1000 !== 0).length).toBeGreaterThan(300);
    expect(new Set(t).size).toBeGreaterThan(400 / 4);
  });

  it("prints a live line of frames and bytes once a second", { timeout: 120_000 }, () => {
    const file = path.join(tmp, "live.pcap");
    const r = run(["--sim", file, "--seconds", "3", "--sim-pps", "1000"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = [...r.stderr.matchAll(/^pcap: (\d+) frames, (\d+) bytes written in (\d+) s$/gm)];
    expect(lines.length, r.stderr).toBeGreaterThanOrEqual(2);
    for (const m of lines) expect(Number(m[2])).toBe(Number(m[1]) * 60);
  });

  it("--help says what --count 0 and --seconds 0 mean", () => {
    const r = run(["--help"]);
    expect(r.stdout).toMatch(/--count N\n\s+stop after writing N frames \(0: no limit\)/);
    expect(r.stdout).toMatch(/--seconds N\n\s+stop after N seconds \(0: run until SIGINT or SIGTERM\)/);
  });
});

describe("PcapWriter", () => {
  it("writes seconds and microseconds of a fractional millisecond time, per record", () => {
    const file = path.join(tmp, "w.pcap");
    const w = new PcapWriter(file);
    const frame = Uint8Array.from({ length: 60 }, (_, i) => i);
    w.write(frame, 0, 60, 1_700_000_000_123.456);
    w.write(frame, 10, 20, 1_700_000_000_987.6543);
    w.close();
    expect(records(file)).toEqual([[1_700_000_000, 123_456, 60], [1_700_000_000, 987_654, 20]]);
    expect(w.bytes).toBe(80);
    expect(fs.readFileSync(file).subarray(24 + 16 + 60 + 16)).toEqual(Buffer.from(frame.subarray(10, 30)));
  });

  it("throws PcapFileError for a path it cannot create", () => {
    expect(() => new PcapWriter(path.join(tmp, "missing", "x.pcap"))).toThrow(PcapFileError);
  });
});
