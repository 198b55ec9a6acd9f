/**
 * mulberry32: a small seeded generator of numbers in [0, 1), for the models' asynchronous modes
 * and the tests that drive them, so that a failing run reproduces from its seed. Not for
 * anything that needs real randomness (the RSS key, say).
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
