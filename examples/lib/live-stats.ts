/**
 * Live statistics for the example apps, as testpmd and MoonGen print them (docs/statistics.md):
 * once a second, per port one RX and one TX line (rate, frame and wire Mbit/s, drops), each at
 * most 80 columns, redrawn in place on a terminal; totals at the end under the same names.
 * --json prints every report as one JSON object per line, --csv as comma-separated rows under
 * one header (MoonGen's --csv); both in the schema of docs/statistics.md, the totals in the same
 * shape as the per-second reports.
 */
import { newStats, type DeviceStats, type NicDevice } from "../../src/device.ts";
import { UsageError, type OptionSpecs } from "./cli.ts";
import {
  fitLine,
  formatBitrate,
  formatCount,
  formatMac,
  formatPps,
  frameMbit,
  LINE_WIDTH,
  portLabel,
  wireMbit,
} from "./stats-format.ts";

/** The version of the JSON/CSV schema (docs/statistics.md); bumped on an incompatible change. */
export const STATS_SCHEMA_VERSION = 1;

export const StatsFormat = { text: "text", json: "json", csv: "csv" } as const;
export type StatsFormat = (typeof StatsFormat)[keyof typeof StatsFormat];

/** The apps' statistics options (fwd, pktgen, pipeline): spread into the SPEC's options. */
export const STATS_OPTIONS = {
  json: { type: "boolean", help: "print the statistics as one JSON object per line (schema: docs/statistics.md)" },
  csv: { type: "boolean", help: "print the statistics as CSV, a header and one row per port per second (docs/statistics.md)" },
} as const satisfies OptionSpecs;

/** --json / --csv (or neither: text); both is a UsageError. */
export function statsFormat(values: { readonly json?: boolean; readonly csv?: boolean }): StatsFormat {
  if (values.json && values.csv) throw new UsageError("--json and --csv do not go together: pick one");
  return values.json ? StatsFormat.json : values.csv ? StatsFormat.csv : StatsFormat.text;
}

/** One direction of a port over a report's span. */
export interface DirectionStats {
  packets: number;
  /** Frame bytes as the driver counts them: without the FCS. */
  bytes: number;
  pps: number;
  /** Mbit/s of the counted bytes (testpmd's figure). */
  mbit: number;
  /** Mbit/s on the wire: 24 bytes more per frame (preamble, SFD, FCS, inter-frame gap). */
  wireMbit: number;
}

export interface DropStats {
  /** The device had no receive buffer (DeviceStats.rxMissed). */
  rxMissed: number;
  /** Received with errors, or dropped by the driver as malformed. */
  rxErrors: number;
  /** The driver could not send. */
  txErrors: number;
  /** The app freed them because this port's TX ring was full; null: the app does not count it. */
  txRingFull: number | null;
}

export interface PortReport {
  port: string;
  rx: DirectionStats;
  tx: DirectionStats;
  drops: DropStats;
  /** Since the start (for a totals report: the same as rx/tx/drops). */
  total: { rxPackets: number; rxBytes: number; txPackets: number; txBytes: number; drops: DropStats };
}

export interface StatsReport {
  type: "interval" | "totals";
  version: number;
  time: string;
  /** The span the rates and the rx/tx/drops counts cover: the last interval, or the whole run. */
  seconds: number;
  ports: PortReport[];
  [extra: string]: unknown;
}

/** What LiveStats prints at start: one per port. */
export interface PortInfo {
  port: string;
  driver: string;
  mac: string;
  linkUp: boolean;
  /** Mbit/s as the driver reports it (virtio: a nominal 1000 while up); 0 while down. */
  speedMbit: number;
}

export interface LiveStatsOptions {
  readonly format?: StatsFormat;
  /** Where the reports go (default stdout); the start lines go to `log` (default stderr). */
  readonly out?: NodeJS.WritableStream & { isTTY?: boolean };
  readonly log?: NodeJS.WritableStream;
  /** The app's name, to prefix the start lines ("fwd"). */
  readonly app?: string;
  /**
   * Per port, the frames the app has dropped so far because that port's TX ring was full (fwd
   * frees them, never blocks); called at start and for every report. Omitted: not counted.
   */
  readonly appDrops?: () => readonly number[];
  /** The clock, in ms (default performance.now; tests step their own). */
  readonly clock?: () => number;
}

/** Extra fields for a report: `json` into the JSON object, `text` as more lines (fwd --workers). */
export interface ReportExtra {
  readonly json: Record<string, unknown>;
  readonly text: string;
}

interface Snapshot {
  stats: DeviceStats;
  ringFull: number;
}

export class LiveStats {
  readonly #devices: readonly NicDevice[];
  readonly #format: StatsFormat;
  readonly #out: NodeJS.WritableStream & { isTTY?: boolean };
  readonly #appDrops: (() => readonly number[]) | null;
  readonly #clock: () => number;
  readonly #labels: string[];
  #last: Snapshot[];
  readonly #first: Snapshot[];
  #lastTime: number;
  readonly #startTime: number;
  /** Lines of the block last drawn on the terminal (to move the cursor back over). */
  #drawn = 0;
  #csvHeader = false;

  constructor(devices: readonly NicDevice[], options: LiveStatsOptions = {}) {
    this.#devices = devices;
    this.#format = options.format ?? StatsFormat.text;
    this.#out = options.out ?? process.stdout;
    this.#appDrops = options.appDrops ?? null;
    this.#clock = options.clock ?? (() => performance.now());
    this.#labels = devices.map((d, i) => portLabel(d.address, i));
    this.#first = this.#snapshot();
    this.#last = this.#first;
    this.#startTime = this.#lastTime = this.#clock();
    const info = devices.map(portInfo);
    if (this.#format === StatsFormat.json) {
      this.#out.write(JSON.stringify({ type: "start", version: STATS_SCHEMA_VERSION, time: new Date().toISOString(), ports: info }) + "\n");
    }
    const log = options.log ?? process.stderr;
    const prefix = options.app ? `${options.app}: ` : "";
    info.forEach((p, i) => log.write(fitLine([`${prefix}port ${i} ${p.port}`, ...portInfoSegments(p)], "    ", LINE_WIDTH, " ").join("\n") + "\n"));
  }

  /** Reads every device's counters and prints (and returns) the report since the last call. */
  print(extra?: ReportExtra): StatsReport {
    const t = this.#clock();
    const now = this.#snapshot();
    const report = this.#report("interval", this.#last, now, (t - this.#lastTime) / 1000, extra);
    this.#last = now;
    this.#lastTime = t;
    this.#emit(report, extra);
    return report;
  }

  /** The totals since the start, printed and returned: a report of type "totals". */
  finish(extra?: ReportExtra): StatsReport {
    const report = this.#report("totals", this.#first, this.#snapshot(), (this.#clock() - this.#startTime) / 1000, extra);
    this.#drawn = 0; // the totals go below the last live block
    this.#emit(report, extra);
    return report;
  }

  #snapshot(): Snapshot[] {
    const ringFull = this.#appDrops?.() ?? [];
    return this.#devices.map((d, i) => {
      const stats = newStats();
      d.readStats(stats);
      return { stats, ringFull: ringFull[i] ?? 0 };
    });
  }

  #report(type: StatsReport["type"], from: Snapshot[], to: Snapshot[], seconds: number, extra: ReportExtra | undefined): StatsReport {
    const counted = this.#appDrops !== null;
    const ports = this.#devices.map((d, i): PortReport => {
      const a = from[i]!.stats;
      const b = to[i]!.stats;
      const f = this.#first[i]!;
      const direction = (packets: number, bytes: number): DirectionStats => ({
        packets,
        bytes,
        pps: seconds > 0 ? packets / seconds : 0,
        mbit: frameMbit(bytes, seconds),
        wireMbit: wireMbit(bytes, packets, seconds),
      });
      const drops = (x: DeviceStats, y: DeviceStats, ringFrom: number, ringTo: number): DropStats => ({
        rxMissed: y.rxMissed - x.rxMissed,
        rxErrors: y.rxErrors - x.rxErrors,
        txErrors: y.txErrors - x.txErrors,
        txRingFull: counted ? ringTo - ringFrom : null,
      });
      return {
        port: d.address,
        rx: direction(b.rxPackets - a.rxPackets, b.rxBytes - a.rxBytes),
        tx: direction(b.txPackets - a.txPackets, b.txBytes - a.txBytes),
        drops: drops(a, b, from[i]!.ringFull, to[i]!.ringFull),
        total: {
          rxPackets: b.rxPackets - f.stats.rxPackets,
          rxBytes: b.rxBytes - f.stats.rxBytes,
          txPackets: b.txPackets - f.stats.txPackets,
          txBytes: b.txBytes - f.stats.txBytes,
          drops: drops(f.stats, b, f.ringFull, to[i]!.ringFull),
        },
      };
    });
    return { type, version: STATS_SCHEMA_VERSION, time: new Date().toISOString(), seconds, ports, ...extra?.json };
  }

  #emit(report: StatsReport, extra: ReportExtra | undefined): void {
    if (this.#format === StatsFormat.json) {
      this.#out.write(JSON.stringify(report) + "\n");
      return;
    }
    if (this.#format === StatsFormat.csv) {
      if (!this.#csvHeader) this.#out.write(CSV_COLUMNS.join(",") + "\n");
      this.#csvHeader = true;
      this.#out.write(csvRows(report).join("\n") + "\n");
      return;
    }
    const lines = textLines(report, this.#labels, this.#appDrops !== null);
    if (extra?.text) lines.push(...fitLine(extra.text.split(/(?<=,) /), "  ", LINE_WIDTH, " "));
    if (this.#out.isTTY && report.type === "interval") {
      // Back to the first line of the last block, and each line cleared before it is drawn.
      const up = this.#drawn > 0 ? `\x1b[${this.#drawn}F` : "";
      this.#out.write(up + lines.map((l) => `\x1b[2K${l}\n`).join("") + (this.#drawn > lines.length ? "\x1b[J" : ""));
      this.#drawn = lines.length;
    } else {
      this.#out.write(lines.join("\n") + "\n");
    }
  }
}

function portInfo(dev: NicDevice): PortInfo {
  const speed = dev.linkSpeed();
  return { port: dev.address, driver: dev.driver, mac: formatMac(dev.macAddress()), linkUp: speed > 0, speedMbit: speed };
}

function portInfoSegments(p: PortInfo): string[] {
  const speed = p.linkUp ? `${p.speedMbit >= 1000 ? `${p.speedMbit / 1000} Gbit/s` : `${p.speedMbit} Mbit/s`}${p.driver === "virtio" ? " (nominal)" : ""}` : "";
  return [p.driver, `mac ${p.mac}`, `link ${p.linkUp ? "up" : "down"}`, ...(speed ? [speed] : [])];
}

/**
 * The text of a report: per port an RX line and a TX line, each within 80 columns (a line that
 * would not fit goes on in an indented second line). The totals add the exact counts.
 */
export function textLines(report: StatsReport, labels: readonly string[], ringFull: boolean): string[] {
  const lines: string[] = [];
  const totals = report.type === "totals";
  const count = totals ? String : formatCount;
  report.ports.forEach((p, i) => {
    const label = labels[i] ?? p.port;
    const rate = (d: DirectionStats) => `${formatPps(d.pps).padStart(11)} ${formatBitrate(d.mbit, d.wireMbit).padStart(24)}`;
    // Live: the rates, then the drops. Totals: the exact counts, the drops, then the average rates.
    const dir = (name: string, d: DirectionStats, drops: string[]) =>
      fitLine(
        totals
          ? [`${label} total ${name} ${d.packets} packets ${d.bytes} bytes`, ...drops, `avg ${formatPps(d.pps)} ${formatBitrate(d.mbit, d.wireMbit)}`]
          : [`${label.padEnd(12)} ${name} ${rate(d)}`, ...drops],
        "    ",
      );
    lines.push(...dir("rx", p.rx, [`missed ${count(p.drops.rxMissed)}`, `rx-err ${count(p.drops.rxErrors)}`]));
    lines.push(
      ...dir("tx", p.tx, [
        `tx-err ${count(p.drops.txErrors)}`,
        ...(ringFull && p.drops.txRingFull !== null ? [`ring-full ${count(p.drops.txRingFull)}`] : []),
      ]),
    );
  });
  if (totals) lines.push(`in ${report.seconds.toFixed(1)} s`);
  return lines;
}

/** The CSV columns: the report's fields, flattened (docs/statistics.md). */
export const CSV_COLUMNS = [
  "type", "version", "time", "seconds", "port",
  "rx_packets", "rx_bytes", "rx_pps", "rx_mbit", "rx_wire_mbit",
  "tx_packets", "tx_bytes", "tx_pps", "tx_mbit", "tx_wire_mbit",
  "rx_missed", "rx_errors", "tx_errors", "tx_ring_full",
  "total_rx_packets", "total_rx_bytes", "total_tx_packets", "total_tx_bytes",
  "total_rx_missed", "total_rx_errors", "total_tx_errors", "total_tx_ring_full",
] as const;

/** One CSV row per port. Rates with 6 significant decimals at most; an uncounted drop is empty. */
export function csvRows(report: StatsReport): string[] {
  const n = (x: number | null) => (x === null ? "" : Number.isInteger(x) ? String(x) : String(Number(x.toFixed(6))));
  return report.ports.map((p) => {
    const dir = (d: DirectionStats) => [d.packets, d.bytes, d.pps, d.mbit, d.wireMbit].map(n);
    const drops = (d: DropStats) => [d.rxMissed, d.rxErrors, d.txErrors, d.txRingFull].map(n);
    const t = p.total;
    return [
      report.type, String(report.version), report.time, n(report.seconds), csvField(p.port),
      ...dir(p.rx), ...dir(p.tx), ...drops(p.drops),
      ...[t.rxPackets, t.rxBytes, t.txPackets, t.txBytes].map(n), ...drops(t.drops),
    ].join(",");
  });
}

/** A CSV field, quoted if it holds a comma, quote or newline (a vhost-user socket path might). */
function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
