/**
 * Counting V8's garbage collections over a stretch of synchronous code: the benchmarks report it
 * next to their timings, and the tests that say a hot loop allocates nothing assert on it
 * (test/helpers/gc.ts).
 */
import { constants, PerformanceObserver, performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * V8's gc() without --expose-gc on the command line (worker threads and vitest's workers get none):
 * the flag set at run time takes effect for contexts made afterwards, so a fresh context has gc.
 */
export function exposedGc(): (options?: { type: "minor" | "major" }) => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as (options?: { type: "minor" | "major" }) => void;
}

// A major collection reports itself as up to three "gc" entries: the incremental marking steps
// (INCREMENTAL), the weak callbacks (WEAKCB) and the collection itself (MAJOR). Only MINOR and
// MAJOR entries are collections; counting every entry made one collection look like two.
const COLLECTIONS = new Set<number>([constants.NODE_PERFORMANCE_GC_MINOR, constants.NODE_PERFORMANCE_GC_MAJOR]);

/**
 * Counts the collections that start between open() and close(). The entries arrive
 * asynchronously, after the code ran, mixed with those of a warm-up and of the idle moments
 * around it (when V8 likes to collect): their start times tell them apart. Read `collections`
 * once the event loop has had a turn after close().
 */
export class GcWindow {
  #collections = 0;
  #start = Infinity;
  #end = Infinity;
  readonly #observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as { detail?: { kind?: number } }).detail?.kind ?? -1;
      if (COLLECTIONS.has(kind) && e.startTime >= this.#start && e.startTime <= this.#end) this.#collections++;
    }
  });

  constructor() {
    this.#observer.observe({ entryTypes: ["gc"] });
  }

  /** Starts a window (and forgets the last one's count); returns its start, performance.now(). */
  open(): number {
    this.#collections = 0;
    this.#end = Infinity;
    this.#start = performance.now();
    return this.#start;
  }

  /** Ends the window; returns its end, performance.now(). */
  close(): number {
    this.#end = performance.now();
    return this.#end;
  }

  get collections(): number {
    return this.#collections;
  }

  disconnect(): void {
    this.#observer.disconnect();
  }
}
