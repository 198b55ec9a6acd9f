import { exposedGc, GcWindow } from "../../bench/lib/gc-window.ts";

const gc = exposedGc();
const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` (synchronously) and counts the garbage collections that started meanwhile (what
 * counts as one: bench/lib/gc-window.ts). A loop that allocates even a few bytes per iteration
 * fills V8's young generation (a few MB) many times over in a million iterations; one that
 * allocates nothing triggers none. A full collection first takes away the one that earlier
 * garbage (an earlier test's) would otherwise make due inside the window; "at most one" in the
 * tests is the margin for what V8 itself does meanwhile.
 */
export async function countGcs(fn: () => void): Promise<number> {
  const window = new GcWindow();
  try {
    gc();
    await settle(10); // let the forced collection's entries go by
    window.open();
    fn();
    window.close();
    await settle(50); // the window's entries are delivered asynchronously
    return window.collections;
  } finally {
    window.disconnect();
  }
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
