/**
 * The receiving end of pktgen --latency inside another app (ixy-fwd --latency): a QueueEnd that
 * passes every frame through and, for those carrying pktgen's stamp (examples/lib/latency-stamp.ts),
 * records sequence number and one-way latency (sender and receiver on one host: the stamp is
 * CLOCK_MONOTONIC) in a LatencyMeter. One clock reading per received batch; no allocation.
 */
import { bufDataOffset, bufLength, bufPool, poolBytes } from "../../src/mem/buffer-table.ts";
import type { QueueEnd } from "./forward.ts";
import { formatLatency, LatencyMeter } from "./latency-meter.ts";
import { hasStamp, monotonicClock, readTime } from "./latency-stamp.ts";
import { getSequence } from "./udp-frame.ts";

export interface MeasuredRx {
  readonly end: QueueEnd;
  readonly meter: LatencyMeter;
  /** Frames received without a stamp (not measured). */
  readonly unstamped: () => number;
}

export function measureRx(end: QueueEnd, clock: () => number = monotonicClock()): MeasuredRx {
  const meter = new LatencyMeter();
  let unstamped = 0;
  return {
    meter,
    unstamped: () => unstamped,
    end: {
      txBatch: (bufs, count) => end.txBatch(bufs, count),
      rxBatch(bufs, max) {
        const n = end.rxBatch(bufs, max);
        if (n === 0) return 0;
        const now = clock();
        for (let i = 0; i < n; i++) {
          const b = bufs[i]!;
          const bytes = poolBytes[bufPool[b]!]!;
          const off = bufDataOffset[b]!;
          if (hasStamp(bytes, off, bufLength[b]!)) meter.record(getSequence(bytes, off), now - readTime(bytes, off));
          else unstamped++;
        }
        return n;
      },
    },
  };
}

/** The end-of-run report of a port's measurement: a text line, or one JSON line with --json. */
export function latencyReportLine(port: string, m: MeasuredRx, json: boolean): string {
  const r = m.meter.report();
  if (json) return JSON.stringify({ latency: { port, ...r, unstamped: m.unstamped() } });
  return r.received === 0 ? `latency ${port}: no stamped frames (${m.unstamped()} others)` : `latency ${port}: ${formatLatency(r)}`;
}
