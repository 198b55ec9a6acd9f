import { constants, PerformanceObserver, performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

// vitest runs tests without --expose-gc: set the flag now and take gc from a fresh context.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

// A major collection reports itself as up to three entries: the incremental marking steps
// (INCREMENTAL), the weak callbacks (WEAKCB) and the collection itself (MAJOR). Only MINOR and
// MAJOR are collections; counting every entry made one collection look like two.
const COLLECTIONS = new Set<number>([constants.NODE_PERFORMANCE_GC_MINOR, constants.NODE_PERFORMANCE_GC_MAJOR]);

/**
 * Runs `fn` (synchronously) and counts the garbage collections that started meanwhile. A loop
 * that allocates even a few bytes per iteration fills V8's young generation (a few MB) many times
 * over in a million iterations; one that allocates nothing triggers none. A full collection first
 * takes away the one that earlier garbage (an earlier test's) would otherwise make due inside the
 * window; "at most one" in the tests is the margin for what V8 itself does meanwhile.
 */
export async function countGcs(fn: () => void): Promise<number> {
  let count = 0;
  let start = Infinity;
  let end = Infinity;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as { detail?: { kind?: number } }).detail?.kind ?? -1;
      if (COLLECTIONS.has(kind) && e.startTime >= start && e.startTime <= end) count++;
    }
  });
  obs.observe({ entryTypes: ["gc"] });
  gc();
  // GC entries are delivered asynchronously: let the forced collection's go by.
  await new Promise((r) => setTimeout(r, 10));
  start = performance.now();
  fn();
  end = performance.now();
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return count;
}

/**
 * Runs `fn` in up to `windows` measured windows and stops at the first with at most one
 * collection. Why more than one window: on a loaded machine (CI runs two test files at once on two
 * cores) V8's optimizing compiler, which works on a background thread, may not have finished the
 * hot loop when the warm-up ends; until the optimized code is installed, the baseline tiers box
 * doubles on the heap and the first window can see a collection or two. A loop that really
 * allocates collects in every window, so the fewest count still tells the two apart.
 */
export async function fewestGcs(fn: () => void, windows = 3): Promise<{ fewest: number; counts: number[] }> {
  const counts: number[] = [];
  while (counts.length < windows) {
    counts.push(await countGcs(fn));
    if (counts[counts.length - 1]! <= 1) break;
  }
  return { fewest: Math.min(...counts), counts };
}
