/**
 * Measures a rate at a testpmd from its periodic statistics: skips a warm-up, then takes the
 * counters of the first block after it and of the first block at least `seconds` later, and
 * divides by the time between the two blocks' arrival (testpmd flushes each block as it prints
 * it, so arrival is within a few ms of printing).
 */
import { readFileSync } from "node:fs";
import type { StatsSnapshot, Testpmd } from "./testpmd.ts";
import { windowRates, type WindowRates } from "./testpmd-output.ts";

export interface Measurement extends WindowRates {
  /** Warm-up actually skipped: from `from` to the first block of the window, in s. */
  warmupSeconds: number;
  first: StatsSnapshot;
  last: StatsSnapshot;
}

export interface MeasureOptions {
  /** Seconds to skip from `from` on. */
  warmup: number;
  /** Length of the window, at least; it ends at the first block this long after its start. */
  seconds: number;
  /** Start of the warm-up on performance.now()'s clock; default now. */
  from?: number;
  /** Called with the block that opens the window. */
  onWindowStart?: (s: StatsSnapshot) => void;
  /** Called with every later block in the window (the last one closes it). */
  onSnapshot?: (s: StatsSnapshot) => void;
  /** Returns an Error to give up early (the peer died): the measurement rejects with it. */
  abort?: () => Error | null;
}

export async function measure(t: Testpmd, o: MeasureOptions): Promise<Measurement> {
  const from = o.from ?? performance.now();
  // A block takes about statsPeriod + 1 s; wait at most a few of those for each.
  const perBlockMs = ((t.options.statsPeriod ?? 1) + 1) * 1000 * 3 + 2000;
  const next = async (): Promise<StatsSnapshot> => {
    const why = o.abort?.();
    if (why) throw why;
    const s = await t.nextStats(perBlockMs);
    const why2 = o.abort?.();
    if (why2) throw why2;
    return s;
  };
  let first = await next();
  while (first.at < from + o.warmup * 1000) first = await next();
  o.onWindowStart?.(first);
  let last = first;
  // 50 ms of slack: blocks come every ~2 s and a 10 s window should not become 12 s by jitter.
  while (last.at < first.at + o.seconds * 1000 - 50) {
    last = await next();
    o.onSnapshot?.(last);
  }
  return { ...windowRates(first, last), warmupSeconds: (first.at - from) / 1000, first, last };
}

/**
 * CPU time (user + system, all threads) a process has used so far, in seconds, from
 * /proc/<pid>/stat; null if it is gone. Two readings a window apart show whether it had its CPU
 * to itself (about 1.0 s per s for a busy-polling forwarder) or shared it with other work.
 */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name, field 2, is in parentheses and may hold spaces: count from after it.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS; // fields 14 (utime) and 15 (stime)
  } catch {
    return null;
  }
}

const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK): 100 on every Linux this runs on
