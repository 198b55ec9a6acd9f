/**
 * The examples' main loop: run to completion in slices of a few milliseconds, yielding to Node's
 * event loop between slices so that signal handlers and timers get their turn (a busy loop that
 * never returns would never see SIGINT). Once a second it calls `everySecond` (statistics).
 */
import { onStopSignal } from "./cli.ts";

export interface PollLoopOptions {
  /** Stop after this many seconds (0: run until a signal or until `step` says stop). */
  readonly seconds?: number;
  readonly everySecond?: () => void;
  /** Milliseconds of work before yielding (default 5). */
  readonly sliceMs?: number;
}

/** Calls `step` until it returns true, SIGINT/SIGTERM arrives, or the time is up. */
export function pollLoop(step: () => boolean, options: PollLoopOptions = {}): Promise<void> {
  const seconds = options.seconds ?? 0;
  const sliceMs = options.sliceMs ?? 5;
  let stop = false;
  onStopSignal(() => {
    stop = true;
  });
  const start = performance.now();
  let nextSecond = start + 1000;
  return new Promise<void>((resolve) => {
    const slice = () => {
      const end = performance.now() + sliceMs;
      let now: number;
      do {
        // Several steps per clock read: performance.now() costs more than a forwarding batch.
        for (let k = 0; k < 16 && !stop; k++) stop = step();
        now = performance.now();
      } while (!stop && now < end);
      if (now >= nextSecond) {
        options.everySecond?.();
        nextSecond += 1000;
      }
      if (seconds > 0 && now - start >= seconds * 1000) stop = true;
      if (stop) resolve();
      else setImmediate(slice);
    };
    setImmediate(slice);
  });
}
