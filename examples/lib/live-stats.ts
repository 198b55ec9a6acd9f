/**
 * Live statistics for the example apps: once a second, per port RX/TX Mpps, Mbit/s and drops on
 * one status line that rewrites itself (or one JSON line per second with --json), totals at the end.
 * Mbit/s counts frame bytes plus the 24 bytes of preamble, start delimiter, FCS and inter-frame
 * gap that each frame costs on an Ethernet wire, as ixy does.
 */
import { newStats, type DeviceStats, type NicDevice } from "../../src/device.ts";

const WIRE_OVERHEAD = 24;

export interface PortRates {
  port: string;
  rxMpps: number;
  txMpps: number;
  rxMbit: number;
  txMbit: number;
  rxMissed: number;
  rxErrors: number;
  txErrors: number;
}

export class LiveStats {
  readonly #devices: readonly NicDevice[];
  readonly #json: boolean;
  readonly #out: NodeJS.WriteStream;
  readonly #last: DeviceStats[];
  readonly #now: DeviceStats[];
  readonly #first: DeviceStats[];
  #lastTime: number;
  readonly #startTime: number;
  #printedLine = false;

  constructor(devices: readonly NicDevice[], options: { json?: boolean; out?: NodeJS.WriteStream } = {}) {
    this.#devices = devices;
    this.#json = options.json ?? false;
    this.#out = options.out ?? process.stdout;
    this.#last = devices.map(() => newStats());
    this.#now = devices.map(() => newStats());
    this.#first = devices.map(() => newStats());
    devices.forEach((d, i) => {
      d.readStats(this.#last[i]!);
      Object.assign(this.#first[i]!, this.#last[i]!);
    });
    this.#startTime = this.#lastTime = performance.now();
  }

  /**
   * Reads every device's counters and prints the rates since the last call. `extra` adds to the
   * line: its `json` fields to the JSON object, its `text` to the status line (fwd --workers:
   * each worker's rate).
   */
  print(extra?: { readonly json: Record<string, unknown>; readonly text: string }): PortRates[] {
    const t = performance.now();
    const seconds = (t - this.#lastTime) / 1000;
    const rates = this.#devices.map((d, i) => {
      d.readStats(this.#now[i]!);
      const r = rates_(d.address, this.#last[i]!, this.#now[i]!, seconds);
      Object.assign(this.#last[i]!, this.#now[i]!);
      return r;
    });
    this.#lastTime = t;
    if (this.#json) {
      this.#out.write(JSON.stringify({ time: new Date().toISOString(), ports: rates, ...extra?.json }) + "\n");
    } else {
      const line = rates
        .map((r) => `${r.port} RX ${mpps(r.rxMpps)} Mpps ${r.rxMbit.toFixed(1)} Mbit/s TX ${mpps(r.txMpps)} Mpps ${r.txMbit.toFixed(1)} Mbit/s drops ${r.rxMissed + r.rxErrors + r.txErrors}`)
        .join(" | ") + (extra?.text ?? "");
      if (this.#out.isTTY) this.#out.write(`\r\x1b[2K${line}`);
      else this.#out.write(line + "\n");
      this.#printedLine = this.#out.isTTY;
    }
    return rates;
  }

  /** Totals since the start, printed and returned. */
  finish(): { port: string; totals: DeviceStats; seconds: number }[] {
    const seconds = (performance.now() - this.#startTime) / 1000;
    const result = this.#devices.map((d, i) => {
      const now = newStats();
      d.readStats(now);
      const f = this.#first[i]!;
      const totals = newStats();
      for (const k of Object.keys(totals) as (keyof DeviceStats)[]) totals[k] = now[k] - f[k];
      return { port: d.address, totals, seconds };
    });
    if (this.#printedLine) this.#out.write("\n");
    if (this.#json) this.#out.write(JSON.stringify({ totals: result }) + "\n");
    else {
      for (const r of result) {
        const t = r.totals;
        this.#out.write(
          `${r.port} total: RX ${t.rxPackets} packets ${t.rxBytes} bytes, TX ${t.txPackets} packets ${t.txBytes} bytes, ` +
            `missed ${t.rxMissed}, rx errors ${t.rxErrors}, tx errors ${t.txErrors} in ${r.seconds.toFixed(1)} s\n`,
        );
      }
    }
    return result;
  }
}

/** Three decimals, or four below 0.1 Mpps, so that the slow rates of emulated NICs still show. */
function mpps(x: number): string {
  return x >= 0.1 ? x.toFixed(3) : x.toFixed(4);
}

function rates_(port: string, a: DeviceStats, b: DeviceStats, seconds: number): PortRates {
  const s = seconds > 0 ? seconds : 1;
  const rxP = b.rxPackets - a.rxPackets;
  const txP = b.txPackets - a.txPackets;
  return {
    port,
    rxMpps: rxP / s / 1e6,
    txMpps: txP / s / 1e6,
    rxMbit: ((b.rxBytes - a.rxBytes + rxP * WIRE_OVERHEAD) * 8) / s / 1e6,
    txMbit: ((b.txBytes - a.txBytes + txP * WIRE_OVERHEAD) * 8) / s / 1e6,
    rxMissed: b.rxMissed - a.rxMissed,
    rxErrors: b.rxErrors - a.rxErrors,
    txErrors: b.txErrors - a.txErrors,
  };
}
