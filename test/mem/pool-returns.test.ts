/**
 * Remote frees through a return ring (src/mem/pool-returns.ts), in one thread: the per-thread
 * table is set by hand (setReturnPath), as attachPool(shared, { returns }) sets it in a worker,
 * and the same thread plays the owner that collects. test/threads/pool-returns-threads.test.ts
 * runs two real threads.
 */
import { afterEach, describe, expect, it } from "vitest";
import { BufferOwnershipError, IxyError } from "../../src/errors.ts";
import { BUF_RETURNING, bufHome, poolStacks, poolTop } from "../../src/mem/buffer-table.ts";
import { freeBuffer, freeBuffers, Mempool } from "../../src/mem/mempool.ts";
import { clearReturnPath, poolReturns, returnRing, returnRingCapacity, setReturnPath } from "../../src/mem/pool-returns.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { SpscRing } from "../../src/threads/spsc-ring.ts";

const opened: Mempool[] = [];
/** Pools a test broke on purpose (a double free): they cannot close cleanly; their DMA goes with the test. */
const broken = new Set<Mempool>();

afterEach(() => {
  for (const p of opened.splice(0)) {
    clearReturnPath(p.id);
    if (!broken.delete(p)) p.close();
  }
});

/** A pool whose frees in this thread go into a return ring it has accepted. */
function returningPool(count: number, checked: boolean): { pool: Mempool; ring: SpscRing } {
  const pool = new Mempool(new SimDma(), { count, checked, name: `returns test pool (${checked ? "checked" : "unchecked"})` });
  opened.push(pool);
  const ring = pool.acceptReturns(returnRing(pool));
  setReturnPath(pool.id, ring, pool.name, checked);
  return { pool, ring };
}

function freeStack(pool: Mempool): number[] {
  return Array.from(poolStacks[pool.id]!.subarray(0, poolTop[pool.id]!));
}

describe("remote frees through a return ring", () => {
  it("sizes return rings for every buffer of the pool", () => {
    expect([1, 2, 3, 4, 5, 64, 65, 4096].map(returnRingCapacity)).toEqual([2, 2, 4, 4, 8, 64, 128, 4096]);
  });

  for (const checked of [false, true]) {
    it(`${checked ? "checked" : "unchecked"}: frees go into the ring, untouched stack, until collectReturns puts them on it`, () => {
      const { pool, ring } = returningPool(64, checked);
      const bufs = new Int32Array(64);
      expect(pool.allocBatch(bufs, 40)).toBe(40);
      freeBuffer(bufs[0]!);
      freeBuffers(bufs, 1, 30);
      pool.freeBatch(bufs, 5, 31);
      pool.free(bufs[36]!);
      expect(pool.available).toBe(24); // nothing reached the stack
      expect(ring.count).toBe(37);
      if (checked) {
        expect(bufHome[bufs[0]!]).toBe(BUF_RETURNING);
        expect(bufHome[bufs[37]!]).toBe(0);
      }
      expect(pool.collectReturns()).toBe(37);
      expect(pool.collectReturns()).toBe(0);
      expect(pool.available).toBe(61);
      expect(ring.count).toBe(0);
      // Onto the stack in the order they were freed, after what was there.
      expect(freeStack(pool).slice(24)).toEqual(Array.from(bufs.subarray(0, 37)));
      if (checked) expect(bufHome[bufs[0]!]).toBe(1);
      // The stack hands them out again.
      expect(pool.alloc()).toBe(bufs[36]);
      freeBuffers(bufs, 36, 4);
      expect(pool.collectReturns()).toBe(4);
      expect(pool.available).toBe(64);
      expect(new Set(freeStack(pool)).size).toBe(64);
    });
  }

  it("freeBuffers splits a mixed batch: a local pool's buffers onto its stack, the returning pool's runs into its ring", () => {
    const { pool, ring } = returningPool(16, true);
    const local = new Mempool(new SimDma(), { count: 16, checked: true, name: "local pool" });
    opened.push(local);
    const r = [pool.alloc(), pool.alloc(), pool.alloc(), pool.alloc()];
    const l = [local.alloc(), local.alloc(), local.alloc()];
    const mixed = Int32Array.of(l[0]!, r[0]!, r[1]!, l[1]!, l[2]!, r[2]!, r[3]!);
    freeBuffers(mixed, 0, mixed.length);
    expect(local.available).toBe(16);
    expect(pool.available).toBe(12);
    const out = new Int32Array(8);
    // (peek: take them out of the ring as the owner would, in order)
    expect(ring.dequeue(out, 0, 8)).toBe(4);
    expect(Array.from(out.subarray(0, 4))).toEqual(r);
    ring.enqueue(out, 0, 4);
    expect(pool.collectReturns()).toBe(4);
    expect(pool.available).toBe(16);
  });

  it("checked: a double free is caught in the freeing thread, whether the buffer is in the ring or already collected", () => {
    const { pool } = returningPool(8, true);
    broken.add(pool);
    const a = pool.alloc();
    const b = pool.alloc();
    freeBuffer(a);
    // Again while it is on its way back: caught by the returning thread.
    expect(() => freeBuffer(a)).toThrow(BufferOwnershipError);
    expect(() => freeBuffer(a)).toThrow(/freed twice \(it is on its way back to the pool, in returns to /);
    expect(() => freeBuffers(Int32Array.of(a), 0, 1)).toThrow(/buffer \d+ freed twice \(it is on its way back/);
    expect(pool.collectReturns()).toBe(1);
    expect(bufHome[a]).toBe(1);
    // Again once the owner collected it: caught too.
    expect(() => freeBuffer(a)).toThrow(/freed twice \(it is already in the pool\)/);
    expect(() => freeBuffers(Int32Array.of(b, a), 0, 2)).toThrow(/freed twice \(it is already in the pool\)/);
  });

  it("checked: the owner's own free of a buffer that is in the return ring is a double free", () => {
    const { pool } = returningPool(8, true);
    const a = pool.alloc();
    freeBuffer(a); // returned by "the other thread"
    clearReturnPath(pool.id); // now this thread frees as the owner
    expect(() => freeBuffer(a)).toThrow(/freed twice \(another thread returned it already: it is in a return ring\)/);
    pool.collectReturns();
    expect(pool.available).toBe(8);
  });

  it("checked: collectReturns refuses a buffer in the ring that nobody returned", () => {
    const { pool, ring } = returningPool(8, true);
    broken.add(pool);
    const a = pool.alloc();
    ring.enqueue(Int32Array.of(a), 0, 1); // into the ring without freeBuffer: bufHome still 0
    expect(() => pool.collectReturns()).toThrow(/came back through returns to .* but was not in it as a returned buffer/);
  });

  it("unchecked: a double free overflows a full ring in the freeing thread, or the stack in collectReturns", () => {
    // count 8: the ring holds exactly 8, a ninth return cannot be right.
    const { pool } = returningPool(8, false);
    broken.add(pool);
    const bufs = new Int32Array(8);
    pool.allocBatch(bufs, 8);
    freeBuffers(bufs, 0, 8);
    expect(() => freeBuffer(bufs[0]!)).toThrow(/its return ring returns to .* is full at buffer \d+: .* a buffer was freed twice/);
    // count 6: a ring of 8 takes a seventh; the owner finds it has no room for it.
    const other = returningPool(6, false).pool;
    broken.add(other);
    const six = new Int32Array(6);
    other.allocBatch(six, 6);
    freeBuffers(six, 0, 6);
    freeBuffer(six[0]!);
    expect(() => other.collectReturns()).toThrow(/freed into a pool of 6|was freed or sent twice/);
  });

  it("refuses a ring that could fill, and a second role: returning and accepting", () => {
    const pool = new Mempool(new SimDma(), { count: 100, name: "small ring pool" });
    opened.push(pool);
    expect(() => pool.acceptReturns(SpscRing.create(64, { name: "too small" }))).toThrow(RangeError);
    expect(() => pool.acceptReturns(SpscRing.create(64, { name: "too small" }))).toThrow(/too small of 64 slots, fewer than the pool's 100 buffers/);
    expect(pool.acceptReturns(returnRing(pool).shared()).capacity).toBe(128);
  });

  it("close() collects what came back first: a checked pool closes with its buffers in the ring", () => {
    const { pool } = returningPool(4, true);
    const a = pool.alloc();
    freeBuffer(a);
    clearReturnPath(pool.id);
    pool.close();
    expect(pool.dead).toBe(true);
    expect(() => pool.collectReturns()).toThrow(IxyError);
  });
});
