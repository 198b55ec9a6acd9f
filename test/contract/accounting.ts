/**
 * Buffer accounting for the contract suite: every buffer of every mempool on a device's DMA
 * allocator is in its pool, in one of the device's rings, or held by the test, exactly once.
 *
 * The pools are found in the buffer table, not asked of the driver: every live Mempool whose
 * memory lies in the allocator, the driver's receive pools included.
 */
import { expect } from "vitest";
import { bufHome, bufPool, ownerOf, poolStacks, poolTop, ROWS_IN_USE, tableState } from "../../src/mem/buffer-table.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import type { SimDma } from "../../src/sim/sim-dma.ts";

/** Every live mempool whose memory comes from `dma`. */
export function poolsOn(dma: SimDma): Mempool[] {
  const pools: Mempool[] = [];
  const end = tableState[ROWS_IN_USE]!;
  for (let b = 0; b < end;) {
    const owner = ownerOf(b);
    if (owner instanceof Mempool) {
      if (!owner.dead && onMemoryOf(dma, owner)) pools.push(owner);
      b = owner.first + owner.count;
    } else b++;
  }
  return pools;
}

/** Whether the pool's memory is memory of `dma` (IOVAs alone do not tell: every SimDma uses the same ones). */
function onMemoryOf(dma: SimDma, pool: Mempool): boolean {
  const { iova, size, bytes } = pool.region;
  return dma.contains(iova, size) && dma.resolve(iova, size).buffer === bytes.buffer;
}

/** pool.available of every pool on `dma`, by name: for "nothing changed" snapshots. */
export function availability(dma: SimDma): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pool of poolsOn(dma)) out[pool.name] = pool.available;
  return out;
}

export interface InRings {
  /** Buffers known to be in the device's rings. */
  readonly exactly?: number;
  /** Or: at least this many (the receive ring) ... */
  readonly atLeast?: number;
  /** ... and at most this many (plus the transmit ring, whose reclaim the driver may defer). */
  readonly atMost?: number;
}

/**
 * Checks the accounting: the free stack of each pool holds distinct buffers of that pool (and,
 * for a checked pool, exactly those marked home), `held` are distinct buffers of these pools
 * that are not in their pool, and available + held + in rings = the pools' counts.
 * After close(), nothing is in a ring: account(dma, held) with the default `{ exactly: 0 }`.
 */
export function account(dma: SimDma, held: Iterable<number>, inRings: InRings = { exactly: 0 }): void {
  const pools = poolsOn(dma);
  expect(pools.length, "pools on the device's DMA allocator").toBeGreaterThan(0);
  const byId = new Map(pools.map((p) => [p.id, p]));
  const free = new Set<number>();
  let total = 0;
  let available = 0;
  for (const pool of pools) {
    total += pool.count;
    available += pool.available;
    const top = poolTop[pool.id]!;
    expect(top, `${pool.name}: free buffers`).toBeLessThanOrEqual(pool.count);
    const stack = poolStacks[pool.id]!;
    for (let i = 0; i < top; i++) {
      const b = stack[i]!;
      if (!pool.owns(b)) throw new Error(`${pool.name}: its free stack holds ${b}, not one of its buffers`);
      if (free.has(b)) throw new Error(`${pool.name}: buffer ${b} is in its free stack twice`);
      free.add(b);
    }
    if (pool.checked) {
      let home = 0;
      for (let b = pool.first; b < pool.first + pool.count; b++) home += bufHome[b] === 1 ? 1 : 0; // 2: held by a device
      expect(home, `${pool.name}: buffers marked home = buffers in the free stack`).toBe(top);
    }
  }
  const heldSet = new Set<number>();
  for (const b of held) {
    const pool = byId.get(bufPool[b] ?? -1);
    if (pool === undefined || !pool.owns(b)) throw new Error(`held buffer ${b} is not a buffer of a pool on this device's memory`);
    if (heldSet.has(b)) throw new Error(`buffer ${b} is held twice`);
    if (free.has(b)) throw new Error(`held buffer ${b} is also free in ${pool.name}`);
    heldSet.add(b);
  }
  const rings = total - available - heldSet.size;
  if (inRings.exactly !== undefined) {
    expect(rings, `buffers neither free (${available}) nor held (${heldSet.size}), of ${total}`).toBe(inRings.exactly);
  } else {
    expect(rings, "buffers in the rings").toBeGreaterThanOrEqual(inRings.atLeast ?? 0);
    expect(rings, "buffers in the rings").toBeLessThanOrEqual(inRings.atMost ?? Infinity);
  }
}
