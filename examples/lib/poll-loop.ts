/**
 * The examples' main loop: run to completion in slices of a few milliseconds, yielding to Node's
 * event loop between slices so that signal handlers and timers get their turn (a busy loop that
 * never returns would never see SIGINT). Once a second it calls `everySecond` (statistics).
 *
 * The step is the app's work alone (fwd: two forward() calls), the same on hardware and on
 * --sim's device models: the models' traffic comes in through `wire`, called before every step,
 * and a stop condition of the app's own (--count) is `until`, checked after every step.
 *
 * With `irq` (the apps' --irq flag, docs/adaptive-polling.md) the loop may also sleep on the
 * receive queues' interrupts (NicDevice.waitForRx) instead of polling:
 * - "poll": never; the loop spins (the default, and the fastest).
 * - "irq": after every step that received nothing, until a queue's interrupt fires.
 * - "adaptive": polls while frames come; once none came for ADAPTIVE_IDLE_MS it sleeps until an
 *   interrupt, then polls again from the first frame on (DPDK l3fwd-power, Linux NAPI).
 * A sleep waits on every source at once (both ports of fwd) and ends at the first interrupt, at
 * SIGINT/SIGTERM, or after PARK_MS (so that the statistics and --seconds keep their clock).
 */
import type { NicDevice } from "../../src/device.ts";
import { intOption, onStopSignal, UsageError, type OptionSpecs } from "./cli.ts";

export const IrqMode = { poll: "poll", irq: "irq", adaptive: "adaptive" } as const;
export type IrqMode = (typeof IrqMode)[keyof typeof IrqMode];

/**
 * Adaptive mode sleeps after this long without a frame. 1 ms: an empty poll costs 0.1-2 us
 * (host, TCG guest), so 1 ms of them is 500-10 000 polls, long enough that a burst's gaps do not
 * put the loop to sleep, short enough that an idle loop burns at most 1 ms per wake-up; a wake-up
 * itself costs ~0.05 ms on the host and ~1 ms under TCG (docs/adaptive-polling.md has the numbers).
 */
export const ADAPTIVE_IDLE_MS = 1;
/** Longest single sleep: the loop wakes at least this often for statistics, --seconds and stops. */
export const PARK_MS = 100;

/** The flags of --irq for parse() (examples/lib/cli.ts): the mode, and --sim's offered rate. */
export const IRQ_OPTIONS = {
  irq: {
    type: "string",
    arg: "poll|irq|adaptive",
    help: "poll: spin on the rings; irq: sleep on the receive interrupt whenever a poll finds nothing; adaptive: poll, and sleep after 1 ms without frames",
    default: "poll",
  },
  "sim-pps": { type: "string", arg: "N", help: "with --sim: frames per second and port the models receive (0: an idle wire)", default: "as fast as the loop runs", unit: "frames/s" },
} as const satisfies OptionSpecs;

/** --irq poll|irq|adaptive (default poll). */
export function irqModeOption(value: string | undefined): IrqMode {
  if (value === undefined) return IrqMode.poll;
  if (value === IrqMode.poll || value === IrqMode.irq || value === IrqMode.adaptive) return value;
  throw new UsageError(`--irq takes poll, irq or adaptive, got ${value}`);
}

/**
 * --sim-pps N: frames per second and port --sim's models receive (SimulatedPorts.traffic), or -1
 * without the flag: a burst per step, as fast as the loop runs.
 */
export function simPpsOption(value: string | undefined): number {
  return intOption("sim-pps", value, -1, 0, 100_000_000);
}

/**
 * The process's CPU use since the last call, in % of one core (process.cpuUsage: user + system
 * time of all its threads, the thread pool's waits included), for the apps' per-second line
 * with --irq: what sleeping on interrupts saves.
 */
export function cpuMeter(): () => number {
  let last = process.cpuUsage();
  let at = performance.now();
  return () => {
    const now = performance.now();
    const used = process.cpuUsage(last);
    last = process.cpuUsage();
    const pct = ((used.user + used.system) / 1000 / (now - at)) * 100;
    at = now;
    return pct;
  };
}

/** A receive queue the loop may sleep on. */
export interface RxSource {
  readonly device: NicDevice;
  readonly queue: number;
}

export interface IrqLoopOptions {
  readonly mode: IrqMode;
  /** The queues whose interrupts end a sleep. */
  readonly sources: readonly RxSource[];
  /**
   * A count that grows whenever a step received something (frames forwarded, dropped, written):
   * a step after which it did not change found nothing.
   */
  readonly activity: () => number;
  /** Adaptive mode: milliseconds without a frame before sleeping (default ADAPTIVE_IDLE_MS). */
  readonly idleMs?: number;
  /**
   * Called every millisecond while asleep (--sim: the device models' traffic keeps coming, and
   * its frames are what wakes the loop): the apps pass the loop's `wire` here too.
   */
  readonly whileParked?: () => void;
  /** Where the loop counts its sleeps as it goes (default: an object of its own); also the result. */
  readonly counts?: { parks: number; wakeups: number };
}

export interface PollLoopOptions {
  /** Stop after this many seconds (0: run until a signal, or until `until` says stop). */
  readonly seconds?: number;
  /**
   * Called before every step: --sim's device models receive their traffic here
   * (SimulatedPorts.traffic), so that the step is the app's work alone, as on hardware.
   */
  readonly wire?: () => void;
  /** Checked after every step: true ends the loop (pcap's --count, pktgen's --count). */
  readonly until?: () => boolean;
  readonly everySecond?: () => void;
  /** Milliseconds of work before yielding (default 5). */
  readonly sliceMs?: number;
  /** Sleep on interrupts when idle (default: poll). */
  readonly irq?: IrqLoopOptions;
}

/** What a run did, for the apps' last lines and the measurements. */
export interface PollLoopResult {
  /** Sleeps on interrupts, and how many of them ended with an interrupt (the rest: timeout, stop). */
  readonly parks: number;
  readonly wakeups: number;
}

/** Calls `wire`, then `step`, until `until` says stop, SIGINT/SIGTERM arrives, or the time is up. */
export function pollLoop(step: () => void, options: PollLoopOptions = {}): Promise<PollLoopResult> {
  const seconds = options.seconds ?? 0;
  const wire = options.wire ?? null;
  const until = options.until ?? null;
  const sliceMs = options.sliceMs ?? 5;
  const irq = options.irq !== undefined && options.irq.mode !== IrqMode.poll ? options.irq : null;
  let stop = false;
  let wakeStop: (() => void) | null = null;
  onStopSignal(() => {
    stop = true;
    wakeStop?.();
  });
  const start = performance.now();
  let nextSecond = start + 1000;
  const result = options.irq?.counts ?? { parks: 0, wakeups: 0 };
  const parker = irq === null ? null : new Parker(irq, result);
  const idleMs = irq?.idleMs ?? ADAPTIVE_IDLE_MS;
  const adaptive = irq?.mode === IrqMode.adaptive;
  let lastActivity = irq?.activity() ?? 0;
  let lastFrameAt = start;
  const stopped = new Promise<void>((resolve) => {
    wakeStop = resolve;
  });
  return new Promise<PollLoopResult>((resolve, reject) => {
    const slice = async () => {
      const end = performance.now() + sliceMs;
      let now: number;
      let park = false;
      if (irq === null) {
        do {
          // Several steps per clock read: performance.now() costs more than a forwarding batch.
          for (let k = 0; k < 16 && !stop; k++) {
            if (wire !== null) wire();
            step();
            if (until !== null && until()) stop = true;
          }
          now = performance.now();
        } while (!stop && now < end);
      } else {
        // One clock read per step: the idle rule needs it, and an idle loop has time to spare.
        do {
          if (wire !== null) wire();
          step();
          // Never `stop = until()`: a SIGINT handled between two slices has set stop already, and
          // overwriting it would lose the signal; the loop then spun with every sleep ending at
          // once on the resolved `stopped` (the qemu testbed's "does not exit", ~75% CPU).
          if (until !== null && until()) stop = true;
          now = performance.now();
          const activity = irq.activity();
          if (activity !== lastActivity) {
            lastActivity = activity;
            lastFrameAt = now;
          } else if (!adaptive || now - lastFrameAt >= idleMs) {
            park = true;
          }
        } while (!stop && !park && now < end);
      }
      if (now >= nextSecond) {
        options.everySecond?.();
        nextSecond += 1000;
      }
      if (seconds > 0 && now - start >= seconds * 1000) stop = true;
      if (!stop && park && parker !== null) {
        const remaining = seconds > 0 ? start + seconds * 1000 - now : PARK_MS;
        // Woken by an interrupt: poll again, with a fresh idle period. Woken by the clock: one
        // step (the statistics, --seconds), then asleep again at once.
        if (await parker.park(Math.max(1, Math.min(PARK_MS, remaining, nextSecond - now)), stopped)) lastFrameAt = performance.now();
      }
      if (stop) {
        // Waits still parked end within PARK_MS (or at once when the devices close): the next
        // loop on these queues must not find them armed.
        await parker?.finish();
        resolve(result);
      } else setImmediate(run);
    };
    // A throwing step or waitForRx ends the loop with its error.
    const run = () => {
      slice().catch(reject);
    };
    setImmediate(run);
  });
}

/**
 * The sleeping half: one waitForRx per source, kept across sleeps (a wait that did not end in
 * one sleep still holds its queue's arming, and a second waitForRx on that queue would have to
 * wait for it anyway), raced against the stop signal and a timer.
 */
class Parker {
  readonly #irq: IrqLoopOptions;
  readonly #result: { parks: number; wakeups: number };
  readonly #pending: (Promise<boolean> | null)[];
  /** Set when a source's wait ended: the sleep is over. */
  #woke: (() => void) | null = null;
  /** A wait ended with its interrupt during the current sleep. */
  #interrupted = false;
  /** A wait that failed (not opened with interrupts, say): the loop ends with it. */
  #error: unknown = null;

  constructor(irq: IrqLoopOptions, result: { parks: number; wakeups: number }) {
    this.#irq = irq;
    this.#result = result;
    this.#pending = irq.sources.map(() => null);
  }

  /** Sleeps until a source's interrupt (true), `stopped`, or `ms` passed (false). */
  async park(ms: number, stopped: Promise<void>): Promise<boolean> {
    this.#result.parks++;
    this.#interrupted = false;
    const woke = new Promise<void>((resolve) => {
      this.#woke = resolve;
    });
    this.#irq.sources.forEach((s, i) => {
      if (this.#pending[i] !== null) return;
      // Each wait's own timeout is the sleep's: a wait left over from an earlier sleep ends at
      // most PARK_MS after it started.
      const p = s.device.waitForRx(s.queue, ms);
      this.#pending[i] = p;
      p.then(
        (fired) => {
          this.#pending[i] = null;
          if (fired) this.#interrupted = true;
          this.#woke?.();
        },
        (e: unknown) => {
          this.#pending[i] = null;
          this.#error ??= e;
          this.#woke?.();
        },
      );
    });
    const source = this.#irq.whileParked;
    const pump = source === undefined ? null : setInterval(source, 1);
    let timer: ReturnType<typeof setTimeout> | null = null;
    await Promise.race([woke, stopped, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    if (timer !== null) clearTimeout(timer);
    if (pump !== null) clearInterval(pump);
    this.#woke = null;
    if (this.#interrupted) this.#result.wakeups++;
    if (this.#error !== null) throw this.#error;
    return this.#interrupted;
  }

  /**
   * The loop ends: lets the waits still parked end (timeout or interrupt, within PARK_MS), but
   * waits no longer than that: the devices' close() ends any that are left.
   */
  async finish(): Promise<void> {
    this.#woke = null;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, PARK_MS + 50)));
    await Promise.race([Promise.allSettled(this.#pending.filter((p) => p !== null)), bound]);
    if (timer !== null) clearTimeout(timer);
  }
}
