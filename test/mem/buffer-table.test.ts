/**
 * The buffer table (src/mem/buffer-table.ts): one process-wide table whose rows are the packet
 * buffers, handed to mempools in ranges. Every test here closes the pools it makes, so that the
 * next one starts from a table with the same free rows.
 */
import { describe, expect, it } from "vitest";
import { DmaError, PoolClosedError } from "../../src/errors.ts";
import {
  BUFFER_TABLE_ROWS,
  bufPool,
  isBufferNumber,
  MAX_POOLS,
  ownerOf,
  poolTop,
  ROWS_IN_USE,
  tableState,
} from "../../src/mem/buffer-table.ts";
import { DmaAddressing, newAddressSpace, type AllocateOptions, type DmaAllocator, type DmaRegion } from "../../src/mem/dma.ts";
import { Mempool, NO_BUFFER } from "../../src/mem/mempool.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";

/**
 * A DmaAllocator that hands out addresses but almost no memory (every region is 64 bytes long,
 * whatever its size): enough for a mempool, which only computes addresses and keeps views, so
 * that a pool of half a million buffers costs its table rows and nothing more. Its pools'
 * buffers must not be read or written.
 */
class AddressOnlyDma implements DmaAllocator {
  readonly name: string;
  readonly addressing = DmaAddressing.sim;
  readonly space = newAddressSpace("address-only DMA");
  closed = false;
  #next = 2 ** 32;
  constructor(name: string) {
    this.name = name;
  }
  allocate(size: number, options?: AllocateOptions): DmaRegion {
    const align = options?.align ?? 64;
    const iova = Math.ceil(this.#next / align) * align;
    this.#next = iova + size + 4096;
    return { bytes: new Uint8Array(64), size, iova, contiguous: true, iovaOf: (offset) => iova + offset };
  }
  close(): void {
    this.closed = true;
  }
}

/** More than half the table: while one such pool exists, a second cannot be had. */
const HALF_PLUS_ONE = BUFFER_TABLE_ROWS / 2 + 1;

/** Tiny pools on `dma` until the table has no pool id left; returns them. */
function fillPoolIds(dma: SimDma): Mempool[] {
  const pools: Mempool[] = [];
  for (let i = 0; i <= MAX_POOLS; i++) {
    try {
      pools.push(new Mempool(dma, { count: 1, entrySize: 256, name: `tiny ${i}` }));
    } catch (e) {
      expect(e).toBeInstanceOf(DmaError);
      return pools;
    }
  }
  throw new Error(`made ${MAX_POOLS + 1} pools: the table never ran out of ids`);
}

describe("the buffer table", () => {
  it("hands each pool one contiguous range of rows, first .. first + count - 1", () => {
    const dma = new SimDma();
    const a = new Mempool(dma, { count: 10, name: "a" });
    const b = new Mempool(dma, { count: 20, name: "b" });
    expect(a.id).not.toBe(b.id);
    const rowsOf = (p: Mempool) => Array.from({ length: p.count }, (_, i) => p.first + i);
    for (const pool of [a, b]) {
      for (const row of rowsOf(pool)) {
        expect(bufPool[row]).toBe(pool.id);
        expect(ownerOf(row)).toBe(pool);
        expect(pool.owns(row)).toBe(true);
      }
      const got = new Int32Array(pool.count);
      expect(pool.allocBatch(got, pool.count)).toBe(pool.count);
      expect(Array.from(got).sort((x, y) => x - y)).toEqual(rowsOf(pool));
      pool.freeBatch(got, pool.count);
    }
    expect(a.first + a.count <= b.first || b.first + b.count <= a.first).toBe(true); // disjoint
    expect(tableState[ROWS_IN_USE]).toBeGreaterThanOrEqual(Math.max(a.first + a.count, b.first + b.count));
    a.close();
    b.close();
  });

  it("Mempool.close() gives the rows and the id back, and a later pool reuses them", () => {
    const dma = new SimDma();
    const a = new Mempool(dma, { count: 100, name: "a" });
    const { first, id } = a;
    a.close();
    expect(bufPool[first]).toBe(-1);
    expect(isBufferNumber(first)).toBe(false);
    const b = new Mempool(dma, { count: 100, name: "b" });
    expect([b.first, b.id]).toEqual([first, id]);
    expect(ownerOf(first)).toBe(b);
    expect(a.owns(first)).toBe(false);
    b.close();
  });

  it("merges rows given back with their free neighbours, so a larger pool fits where smaller ones were", () => {
    const dma = new SimDma();
    const [a, b, c] = ["a", "b", "c"].map((name) => new Mempool(dma, { count: 100, name, entrySize: 256 }));
    expect([b!.first, c!.first]).toEqual([a!.first + 100, a!.first + 200]);
    b!.close();
    a!.close();
    const d = new Mempool(dma, { count: 200, name: "d", entrySize: 256 });
    expect(d.first).toBe(a!.first);
    c!.close();
    d.close();
  });

  it("gives pools ids whose poolTop entries sit on cache lines of their own (no false sharing between two workers' pools)", () => {
    const dma = new SimDma();
    const pools = Array.from({ length: 8 }, (_, i) => new Mempool(dma, { count: 4, name: `p${i}` }));
    const lines = pools.map((p) => Math.floor((poolTop.byteOffset + p.id * 4) / 128));
    expect(new Set(lines).size).toBe(pools.length);
    for (const p of pools) p.close();
    dma.close();
  });

  it("tells buffer numbers from everything else: isBufferNumber and ownerOf", () => {
    const dma = new SimDma();
    const pool = new Mempool(dma, { count: 4, name: "live" });
    const gone = new Mempool(dma, { count: 4, name: "gone" });
    const freed = gone.first;
    gone.close();
    const held = pool.alloc();
    const home = pool.first + 3; // still in the pool: a buffer all the same
    for (const good of [held, home]) {
      expect(isBufferNumber(good)).toBe(true);
      expect(ownerOf(good)).toBe(pool);
    }
    const rowsInUse = tableState[ROWS_IN_USE]!;
    const bad = [freed, NO_BUFFER, -5, held + 0.5, 1e-9, BUFFER_TABLE_ROWS, rowsInUse, 2 ** 31, 2 ** 53, Infinity, -Infinity, NaN];
    for (const number of bad) {
      expect(isBufferNumber(number), String(number)).toBe(false);
      expect(ownerOf(number), String(number)).toBeNull();
    }
    pool.free(held);
    pool.close();
  });

  it("is full after MAX_POOLS pools, with a DmaError that says what to do, and takes nothing for the failed pool", () => {
    const dma = new SimDma("tiny pools");
    const paper = new AddressOnlyDma("paper");
    const pools = fillPoolIds(dma);
    try {
      expect(pools.length).toBeGreaterThan(MAX_POOLS - 10); // this file keeps no other pools open
      expect(new Set(pools.map((p) => p.id)).size).toBe(pools.length);
      let error: unknown;
      try {
        new Mempool(paper, { count: HALF_PLUS_ONE, entrySize: 256, name: "one too many" });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DmaError);
      expect((error as Error).message).toBe(
        `one too many: the buffer table is full (${MAX_POOLS} pools, ${BUFFER_TABLE_ROWS} buffers in all): ` +
          "close() mempools you no longer need, or make fewer, larger ones",
      );
    } finally {
      for (const p of pools) p.close();
    }
    // The failed pool's rows went back: a pool of more than half the table still fits.
    const big = new Mempool(paper, { count: HALF_PLUS_ONE, entrySize: 256, name: "big" });
    big.close();
    paper.close();
  });

  it("runs out of rows with the same DmaError", () => {
    const paper = new AddressOnlyDma("paper");
    const big = new Mempool(paper, { count: HALF_PLUS_ONE, entrySize: 256, name: "big" });
    expect(() => new Mempool(paper, { count: HALF_PLUS_ONE, entrySize: 256, name: "second" })).toThrow(
      /second: the buffer table is full .*close\(\) mempools you no longer need, or make fewer, larger ones/,
    );
    expect(() => new Mempool(paper, { count: HALF_PLUS_ONE, entrySize: 256, name: "second" })).toThrow(DmaError);
    big.close();
    const again = new Mempool(paper, { count: HALF_PLUS_ONE, entrySize: 256, name: "again" });
    expect(again.first).toBe(big.first);
    again.close();
    paper.close();
  });

  it("reclaims the rows of pools whose DMA allocator was closed when it runs short of rows", () => {
    const first = new AddressOnlyDma("first");
    const second = new AddressOnlyDma("second");
    const old = new Mempool(first, { count: HALF_PLUS_ONE, entrySize: 256, name: "old" });
    expect(() => new Mempool(second, { count: HALF_PLUS_ONE, entrySize: 256, name: "new" })).toThrow(DmaError);
    first.close(); // its memory is gone, and so are its pools
    expect(old.dead).toBe(true);
    expect(ownerOf(old.first)).toBe(old); // not yet: rows are reclaimed only when needed
    const fresh = new Mempool(second, { count: HALF_PLUS_ONE, entrySize: 256, name: "new" });
    expect(fresh.first).toBe(old.first);
    expect(ownerOf(old.first)).toBe(fresh);
    // The reclaimed pool hands out nothing (it says why), and closing it does not touch the pool that took its place.
    expect(old.available).toBe(0);
    expect(() => old.alloc()).toThrow(PoolClosedError);
    expect(() => old.alloc()).toThrow(/old: alloc\(\) on a closed mempool \(its DMA allocator \(first\) was closed\)/);
    expect(old.owns(old.first)).toBe(false);
    old.close();
    expect(ownerOf(fresh.first)).toBe(fresh);
    expect(fresh.available).toBe(HALF_PLUS_ONE);
    fresh.close();
    second.close();
  });

  it("reclaims the ids of pools whose DMA allocator was closed when it runs short of ids", () => {
    const doomed = new SimDma("doomed");
    const early = Array.from({ length: 5 }, (_, i) => new Mempool(doomed, { count: 1, entrySize: 256, name: `doomed ${i}` }));
    const kept = new SimDma("kept");
    const pools = fillPoolIds(kept);
    try {
      doomed.close();
      const late = new Mempool(kept, { count: 1, entrySize: 256, name: "late" });
      pools.push(late);
      expect(early.map((p) => p.id)).toContain(late.id);
      // Every dead pool was reclaimed at once: the ids of the other four are free again.
      for (const p of early) expect(ownerOf(p.first) === p).toBe(false);
      for (let i = 0; i < 4; i++) pools.push(new Mempool(kept, { count: 1, entrySize: 256, name: `late ${i}` }));
      expect(() => new Mempool(kept, { count: 1, entrySize: 256 })).toThrow(DmaError);
      for (const p of early) p.close(); // no-ops now: must not unregister the pools that took their ids
      for (const p of pools) expect(ownerOf(p.first), p.name).toBe(p);
    } finally {
      for (const p of pools) p.close();
    }
  });
});
