import { PerformanceObserver } from "node:perf_hooks";

/**
 * Runs `fn` (synchronously) and counts the garbage collections that happened meanwhile. A loop
 * that allocates even a few bytes per iteration fills V8's young generation (a few MB) many times
 * over in a million iterations; one that allocates nothing triggers at most the one collection
 * that earlier garbage was already due for.
 */
export async function countGcs(fn: () => void): Promise<number> {
  let count = 0;
  const obs = new PerformanceObserver((list) => {
    count += list.getEntries().length;
  });
  obs.observe({ entryTypes: ["gc"] });
  await new Promise((r) => setTimeout(r, 10));
  count = 0;
  fn();
  // GC entries are delivered asynchronously.
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  return count;
}
