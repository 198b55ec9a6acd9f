/**
 * The examples' statistics (examples/lib/live-stats.ts, stats-format.ts, docs/statistics.md):
 * units and rates, 80-column text lines, the JSON schema and the CSV rows, on a stub device with
 * known counters and on the device models; and the apps' --json and --csv as child processes.
 */
import { spawnSync } from "node:child_process";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { newStats, type DeviceStats, type NicDevice } from "../../src/device.ts";
import { freeBuffers } from "../../src/mem/mempool.ts";
import { CSV_COLUMNS, LiveStats, STATS_SCHEMA_VERSION, statsFormat, type StatsFormat, type StatsReport } from "../../examples/lib/live-stats.ts";
import { openSimulatedPorts } from "../../examples/lib/sim-ports.ts";
import {
  fitLine,
  formatBitrate,
  formatCount,
  formatMac,
  formatMbit,
  formatPps,
  frameMbit,
  portLabel,
  WIRE_OVERHEAD_BYTES,
  wireMbit,
} from "../../examples/lib/stats-format.ts";
import { UsageError } from "../../examples/lib/cli.ts";

const root = new URL("../..", import.meta.url).pathname;

/** A stream that keeps what is written, as a terminal (isTTY) or a pipe. */
class Capture extends Writable {
  text = "";
  readonly isTTY: boolean;
  constructor(isTTY = false) {
    super();
    this.isTTY = isTTY;
  }
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

/** A device whose counters the test sets. */
function stubDevice(address: string, counters: DeviceStats, speed = 10_000): NicDevice {
  return {
    driver: "ixgbe",
    address,
    readStats: (into: DeviceStats) => Object.assign(into, counters),
    linkSpeed: () => speed,
    macAddress: () => Uint8Array.of(2, 0, 0, 0, 0x82, 1),
  } as unknown as NicDevice;
}

/** LiveStats on a clock the test steps: `tick(s)` moves it on by s seconds. */
function liveStats(devices: NicDevice[], format: StatsFormat, o: { tty?: boolean; appDrops?: () => number[] } = {}) {
  const out = new Capture(o.tty ?? false);
  const log = new Capture();
  let ms = 0;
  const stats = new LiveStats(devices, { format, out, log, app: "test", clock: () => ms, ...(o.appDrops ? { appDrops: o.appDrops } : {}) });
  return { stats, out, log, tick: (seconds = 1) => void (ms += seconds * 1000) };
}

/** Checks a report against the documented shape (docs/statistics.md), field by field. */
function expectSchema(r: StatsReport, type: "interval" | "totals", ringFull: "number" | "null"): void {
  expect(r.type).toBe(type);
  expect(r.version).toBe(STATS_SCHEMA_VERSION);
  expect(new Date(r.time).toISOString()).toBe(r.time);
  expect(r.seconds).toBeGreaterThan(0);
  for (const p of r.ports) {
    expect(Object.keys(p).sort()).toEqual(["drops", "port", "rx", "total", "tx"]);
    for (const d of [p.rx, p.tx]) {
      expect(Object.keys(d).sort()).toEqual(["bytes", "mbit", "packets", "pps", "wireMbit"]);
      for (const v of Object.values(d)) expect(typeof v).toBe("number");
    }
    for (const drops of [p.drops, p.total.drops]) {
      expect(Object.keys(drops).sort()).toEqual(["rxErrors", "rxMissed", "txErrors", "txRingFull"]);
      expect(drops.txRingFull === null ? "null" : typeof drops.txRingFull).toBe(ringFull);
    }
    expect(Object.keys(p.total).sort()).toEqual(["drops", "rxBytes", "rxPackets", "txBytes", "txPackets"]);
  }
}

describe("stats-format", () => {
  it("prints kpps below 1 Mpps and Mpps above, never 0.00x Mpps", () => {
    expect(formatPps(14_880_952)).toBe("14.881 Mpps");
    expect(formatPps(1_000_000)).toBe("1.000 Mpps");
    expect(formatPps(525_000)).toBe("525.0 kpps");
    expect(formatPps(12_345)).toBe("12.3 kpps");
    expect(formatPps(3_000)).toBe("3.00 kpps");
    expect(formatPps(5)).toBe("0.01 kpps");
    expect(formatPps(0)).toBe("0 pps");
  });

  it("counts frame Mbit/s from the counted bytes and wire Mbit/s with 24 bytes more per frame", () => {
    expect(WIRE_OVERHEAD_BYTES).toBe(24); // preamble 7 + SFD 1 + FCS 4 + IFG 12: DeviceStats bytes have no FCS
    // The example: 0.525 Mpps of 60-byte frames for 1 s is testpmd's 252 and ixy's 353 Mbit/s.
    const packets = 525_000;
    expect(frameMbit(packets * 60, 1)).toBeCloseTo(252, 9);
    expect(wireMbit(packets * 60, packets, 1)).toBeCloseTo(352.8, 9);
    expect(formatBitrate(frameMbit(packets * 60, 1), wireMbit(packets * 60, packets, 1))).toBe("252 Mbit/s (353 wire)");
    // 10GbE line rate of 60-byte frames: 14.88 Mpps is 10 Gbit/s on the wire, 7.14 of frame bytes.
    const line = 10e9 / (84 * 8);
    expect(wireMbit(line * 60, line, 1)).toBeCloseTo(10_000, 6);
    expect(frameMbit(line * 60, 1)).toBeCloseTo(10_000 * (60 / 84), 6);
    expect(frameMbit(100, 0)).toBe(0);
  });

  it("formats Mbit/s, counts, MACs and port labels compactly", () => {
    expect([formatMbit(9999.4), formatMbit(252), formatMbit(19.64), formatMbit(0.346)]).toEqual(["9999", "252", "19.6", "0.35"]);
    expect([formatCount(99_999), formatCount(123_456), formatCount(14_880_952), formatCount(99_999_999), formatCount(2e9)]).toEqual(["99999", "123k", "14.9M", "100M", "2000M"]);
    expect(formatMac(Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 1))).toBe("52:54:00:12:34:01");
    expect(portLabel("0000:01:00.0", 0)).toBe("0000:01:00.0");
    expect(portLabel("vhost-user:/tmp/a/very/long/socket", 1)).toBe("port 1");
  });

  it("fits segments into lines of at most 80 columns, indenting the continuation", () => {
    const segs = Array.from({ length: 12 }, (_, i) => `segment-${i}`);
    const lines = fitLine(segs, "    ");
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
    expect(lines.slice(1).every((l) => l.startsWith("    "))).toBe(true);
    expect(lines.join(" ").split(/\s+/).filter(Boolean)).toEqual(segs);
    expect(fitLine(["x".repeat(200)])[0]!.length).toBeLessThanOrEqual(80);
  });

  it("--json and --csv exclude each other", () => {
    expect(statsFormat({})).toBe("text");
    expect(statsFormat({ json: true })).toBe("json");
    expect(statsFormat({ csv: true })).toBe("csv");
    expect(() => statsFormat({ json: true, csv: true })).toThrow(UsageError);
  });
});

describe("LiveStats on a stub device", () => {
  it("reports the interval's counts and rates, and totals since the start in the same shape", () => {
    const c = newStats();
    c.rxPackets = 1000; // before LiveStats: not counted
    c.rxBytes = 60_000;
    const dev = stubDevice("0000:01:00.0", c);
    let ringFull = 7;
    const { stats, out, log, tick } = liveStats([dev], "json", { appDrops: () => [ringFull] });
    expect(log.text).toBe("test: port 0 0000:01:00.0 ixgbe mac 02:00:00:00:82:01 link up 10 Gbit/s\n");
    tick();
    Object.assign(c, { rxPackets: 1000 + 525, rxBytes: 60_000 + 525 * 60, txPackets: 500, txBytes: 500 * 128, rxMissed: 3, rxErrors: 2, txErrors: 1 });
    ringFull = 7 + 4;
    const r = stats.print();
    expectSchema(r, "interval", "number");
    const p = r.ports[0]!;
    expect([p.rx.packets, p.rx.bytes, p.tx.packets, p.tx.bytes]).toEqual([525, 525 * 60, 500, 500 * 128]);
    expect(r.seconds).toBe(1);
    expect(p.rx.pps).toBe(525);
    expect(p.rx.mbit).toBeCloseTo((525 * 60 * 8) / 1e6, 12);
    expect(p.rx.wireMbit / p.rx.mbit).toBeCloseTo(84 / 60, 12);
    expect(p.tx.wireMbit / p.tx.mbit).toBeCloseTo(152 / 128, 12);
    expect(p.drops).toEqual({ rxMissed: 3, rxErrors: 2, txErrors: 1, txRingFull: 4 });
    tick();
    Object.assign(c, { rxPackets: 1000 + 525 + 100, rxBytes: 60_000 + 625 * 60 });
    const r2 = stats.print();
    expect(r2.ports[0]!.rx.packets).toBe(100);
    expect(r2.ports[0]!.drops).toEqual({ rxMissed: 0, rxErrors: 0, txErrors: 0, txRingFull: 0 });
    expect(r2.ports[0]!.total).toEqual({
      rxPackets: 625, rxBytes: 625 * 60, txPackets: 500, txBytes: 500 * 128,
      drops: { rxMissed: 3, rxErrors: 2, txErrors: 1, txRingFull: 4 },
    });
    const t = stats.finish();
    expectSchema(t, "totals", "number");
    expect(t.ports[0]!.rx.packets).toBe(625);
    expect(t.ports[0]!.drops).toEqual(t.ports[0]!.total.drops);
    expect(t.seconds).toBe(2);
    expect(t.ports[0]!.rx.pps).toBe(625 / 2);
    // What was printed: the start line, two intervals, the totals, each a JSON object as returned.
    const lines = out.text.trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.type)).toEqual(["start", "interval", "interval", "totals"]);
    expect(lines[0]).toMatchObject({ version: 1, ports: [{ port: "0000:01:00.0", driver: "ixgbe", mac: "02:00:00:00:82:01", linkUp: true, speedMbit: 10_000 }] });
    expect(lines[1]).toEqual(r);
    expect(lines[3]).toEqual(t);
  });

  it("prints one RX and one TX line per port within 80 columns, with the same names live and in the totals", () => {
    const c = newStats();
    let ringFull = 0;
    const devs = [stubDevice("0000:01:00.0", c), stubDevice("vhost-user:/run/some/rather/long/path/to/a/socket", c, 0)];
    const { stats, out, log, tick } = liveStats(devs, "text", { appDrops: () => [0, ringFull] });
    // The long address pushes the rest onto an indented second line, within 80 columns.
    expect(log.text).toMatch(/^test: port 1 vhost-user:\/run\/\S+ ixgbe\n {4}mac 02:00:00:00:82:01 link down$/m);
    for (const l of log.text.split("\n")) expect(l.length).toBeLessThanOrEqual(80);
    tick();
    // 10GbE line rate (60-byte frames in, 1514-byte frames out) and drop counts of 8 digits.
    Object.assign(c, { rxPackets: 14_880_952, rxBytes: 14_880_952 * 60, txPackets: 812_743, txBytes: 812_743 * 1514, rxMissed: 99_999_999, rxErrors: 12_345_678, txErrors: 5 });
    ringFull = 123_456;
    stats.print();
    const live = out.text.trimEnd().split("\n");
    expect(live).toHaveLength(4); // 2 ports x rx, tx
    for (const l of live) expect(l.length).toBeLessThanOrEqual(80);
    expect(live[0]).toMatch(/^0000:01:00\.0 rx +\d+\.\d{3} Mpps +\d+ Mbit\/s \(\d+ wire\)  missed 100M  rx-err 12\.3M$/);
    expect(live[1]).toMatch(/^0000:01:00\.0 tx +812\.7 kpps +9844 Mbit\/s \(10000 wire\)  tx-err 5  ring-full 0$/);
    expect(live[3]).toMatch(/^port 1       tx .* Mbit\/s \(\d+ wire\)  tx-err 5  ring-full 123k$/);
    out.text = "";
    stats.finish();
    const totals = out.text.trimEnd().split("\n");
    for (const l of totals) expect(l.length).toBeLessThanOrEqual(80);
    expect(totals.join("\n")).toMatch(/^0000:01:00\.0 total rx 14880952 packets 892857120 bytes {2}missed 99999999\s+rx-err 12345678/m);
    expect(totals.join("\n")).toMatch(/^port 1 total tx 812743 packets 1230492902 bytes {2}tx-err 5 {2}ring-full 123456/m);
    expect(totals.at(-1)).toMatch(/^in \d+\.\d s$/);
    // The names of the drop counters are the same in both.
    const names = (ls: string[]) => [...ls.join(" ").matchAll(/(missed|rx-err|tx-err|ring-full) /g)].map((m) => m[1]);
    expect(names(totals)).toEqual(names(live));
  });

  it("leaves ring-full out of the text and null in the JSON when the app does not count it", () => {
    const dev = stubDevice("sim:ixgbe0", newStats());
    const text = liveStats([dev], "text");
    text.tick();
    text.stats.print();
    expect(text.out.text).not.toMatch(/ring-full/);
    const json = liveStats([dev], "json");
    json.tick();
    expectSchema(json.stats.print(), "interval", "null");
  });

  it("on a terminal redraws the block in place: cursor up over the last block, each line cleared", () => {
    const dev = stubDevice("sim:ixgbe0", newStats());
    const { stats, out, tick } = liveStats([dev], "text", { tty: true });
    tick();
    stats.print();
    expect(out.text.startsWith("\x1b[2Ksim:ixgbe0   rx")).toBe(true);
    out.text = "";
    tick();
    stats.print();
    expect(out.text.startsWith("\x1b[2F\x1b[2Ksim:ixgbe0   rx")).toBe(true);
    expect(out.text.split("\n").filter(Boolean)).toHaveLength(2);
    out.text = "";
    stats.finish(); // below the last block, not over it
    expect(out.text).not.toMatch(/\x1b\[\d*F/);
    expect(out.text).toMatch(/^sim:ixgbe0 total rx/);
  });

  it("--csv: one header, then one row per port per report, the totals rows last", () => {
    const c = newStats();
    const { stats, out, tick } = liveStats([stubDevice("sim:ixgbe0", c), stubDevice("sim:ixgbe1", c)], "csv", { appDrops: () => [1, 2] });
    tick();
    Object.assign(c, { rxPackets: 100, rxBytes: 6000 });
    stats.print();
    tick();
    stats.print();
    stats.finish();
    const [header, ...rows] = out.text.trimEnd().split("\n");
    expect(header).toBe(CSV_COLUMNS.join(","));
    expect(rows).toHaveLength(6);
    const table = rows.map((r) => Object.fromEntries(r.split(",").map((v, i) => [CSV_COLUMNS[i]!, v])));
    for (const r of rows) expect(r.split(",")).toHaveLength(CSV_COLUMNS.length);
    expect(table.map((r) => `${r.type} ${r.port}`)).toEqual([
      "interval sim:ixgbe0", "interval sim:ixgbe1", "interval sim:ixgbe0", "interval sim:ixgbe1", "totals sim:ixgbe0", "totals sim:ixgbe1",
    ]);
    expect(table[0]).toMatchObject({ version: "1", rx_packets: "100", rx_bytes: "6000", tx_packets: "0", tx_ring_full: "0", total_rx_packets: "100" });
    expect(Number(table[0]!.rx_wire_mbit) / Number(table[0]!.rx_mbit)).toBeCloseTo(84 / 60, 4);
    expect(table[2]).toMatchObject({ rx_packets: "0", total_rx_packets: "100" });
    expect(table[4]).toMatchObject({ rx_packets: "100", total_rx_packets: "100" });
  });
});

describe("LiveStats on the device models", () => {
  it.each(["ixgbe", "virtio"] as const)("%s: counts what the model received and sent, 60-byte frames at 84/60 on the wire", (sim) => {
    const ports = openSimulatedPorts(sim, 1, { frameSize: 60 });
    try {
      const dev = ports.devices[0]!;
      const { stats, log, tick } = liveStats([dev], "json");
      expect(log.text).toMatch(new RegExp(`^test: port 0 sim:${sim}0 ${sim} mac ([0-9a-f]{2}:){5}[0-9a-f]{2} link up`));
      const bufs = new Int32Array(32);
      let received = 0;
      let sent = 0;
      for (let round = 0; round < 50; round++) {
        ports.pump(32);
        const n = dev.rxBatch(0, bufs, 32);
        received += n;
        const s = dev.txBatch(0, bufs, n);
        sent += s;
        freeBuffers(bufs, s, n - s);
      }
      ports.pump(0);
      tick();
      const t = stats.finish();
      const p = t.ports[0]!;
      expect(received).toBeGreaterThan(100);
      expect(p.rx.packets).toBe(received);
      expect(p.rx.bytes).toBe(received * 60); // the counted bytes have no FCS, with both drivers
      expect(p.rx.wireMbit / p.rx.mbit).toBeCloseTo(84 / 60, 12);
      expect(p.tx.packets).toBeLessThanOrEqual(sent);
      expect(p.tx.bytes).toBe(p.tx.packets * 60);
    } finally {
      ports.close();
    }
  });
});

describe("the apps' --json and --csv", () => {
  const run = (args: string[]) => spawnSync(process.execPath, ["--import", "tsx", ...args], { cwd: root, encoding: "utf8", timeout: 90_000 });

  it("fwd --sim --seconds 2 --json: every line parses, start, intervals and totals in the documented shape", () => {
    const r = run(["examples/fwd.ts", "--sim", "--seconds", "2", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l) as StatsReport);
    expect(lines[0]!.type).toBe("start");
    expect(lines.at(-1)!.type).toBe("totals");
    const intervals = lines.filter((l) => l.type === "interval");
    expect(intervals.length).toBeGreaterThanOrEqual(1);
    for (const l of intervals) expectSchema(l, "interval", "number");
    const totals = lines.at(-1)!;
    expectSchema(totals, "totals", "number");
    const [a, b] = totals.ports;
    expect(a!.rx.packets).toBeGreaterThan(1000);
    expect(b!.tx.packets).toBe(a!.rx.packets);
    expect(a!.rx.bytes).toBe(a!.rx.packets * 60);
    // The intervals add up to the totals (the last interval ends where the totals do, give or take the last moment).
    expect(intervals.at(-1)!.ports[0]!.total.rxPackets).toBeLessThanOrEqual(a!.rx.packets);
    expect(r.stderr).toMatch(/^fwd: port 0 sim:ixgbe0 ixgbe mac 02:00:00:00:82:00 link up 10 Gbit\/s$/m);
  }, 120_000);

  it("fwd --sim --seconds 2 --csv: a header, then rows of the same columns; --json --csv is a usage error", () => {
    const r = run(["examples/fwd.ts", "--sim", "--seconds", "2", "--csv"]);
    expect(r.status, r.stderr).toBe(0);
    const [header, ...rows] = r.stdout.trimEnd().split("\n");
    expect(header).toBe(CSV_COLUMNS.join(","));
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const row of rows) expect(row.split(",")).toHaveLength(CSV_COLUMNS.length);
    expect(rows.slice(-2).map((row) => row.split(",")[0])).toEqual(["totals", "totals"]);
    const both = run(["examples/fwd.ts", "--sim", "--seconds", "1", "--json", "--csv"]);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/--json and --csv/);
  }, 120_000);

  it("fwd --sim text: every line of the statistics within 80 columns", () => {
    const r = run(["examples/fwd.ts", "--sim", "--seconds", "2"]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.some((l) => /^sim:ixgbe0 +rx .* Mbit\/s \(.* wire\)  missed \d+  rx-err \d+$/.test(l))).toBe(true);
    expect(lines.some((l) => /^sim:ixgbe1 +tx .*  tx-err \d+  ring-full \d+$/.test(l))).toBe(true);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(80);
  }, 120_000);
});
