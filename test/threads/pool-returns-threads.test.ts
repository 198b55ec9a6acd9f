/**
 * Remote frees between two real threads (src/mem/pool-returns.ts): an owner thread allocates a
 * pool's buffers and hands them to a second thread, which frees them, millions of times; at the
 * end every buffer is in the pool exactly once. Without the return path the second thread frees
 * straight onto the owner's free stack while the owner pops it, and buffers are lost or handed
 * out twice: IXY_SHOW_POOL_RACE=1 runs that variant too and expects it to go wrong (it depends on
 * the two threads running at once, so it is not part of the normal run).
 */
import type { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { bufHome, poolStacks, poolTop } from "../../src/mem/buffer-table.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { returnRing } from "../../src/mem/pool-returns.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { SpscRing } from "../../src/threads/spsc-ring.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";

const OWNER = new URL("./workers/pool-owner.ts", import.meta.url);
const RETURNER = new URL("./workers/pool-returner.ts", import.meta.url);

interface Failure {
  error?: { name: string; message: string };
}

function start<T>(entry: URL, workerData: unknown): { worker: Worker; result: Promise<T> } {
  const worker = startTsWorker(entry, { workerData });
  const result = new Promise<T>((resolve, reject) => {
    let message: T | undefined;
    worker.on("message", (m: T) => (message = m));
    worker.on("error", reject);
    worker.on("exit", (code) => (message !== undefined ? resolve(message) : reject(new Error(`${entry.pathname} exited with ${code} and no result`))));
  });
  return { worker, result };
}

/** What is wrong with the pool's free stack once both threads are done (empty: nothing). */
function stackProblems(pool: Mempool): string[] {
  const problems: string[] = [];
  const top = poolTop[pool.id]!;
  if (top !== pool.count) problems.push(`${top} buffers in a stack of ${pool.count}`);
  const seen = new Set<number>();
  const stack = poolStacks[pool.id]!;
  for (let i = 0; i < Math.min(top, pool.count); i++) {
    const b = stack[i]!;
    if (!pool.owns(b)) problems.push(`stack[${i}] = ${b} is not the pool's`);
    else if (seen.has(b)) problems.push(`buffer ${b} is in the stack twice`);
    seen.add(b);
  }
  if (pool.checked) {
    let home = 0;
    for (let b = pool.first; b < pool.first + pool.count; b++) home += bufHome[b] === 1 ? 1 : 0;
    if (home !== pool.count) problems.push(`${home} buffers marked home of ${pool.count}`);
  }
  return problems.slice(0, 5);
}

async function run(total: number, checked: boolean, withReturns: boolean, seed: number) {
  const pool = new Mempool(new SimDma(), { count: 4096, checked, name: `two-thread pool (${checked ? "checked" : "unchecked"})` });
  const ring = SpscRing.create(1024, { name: "owner->returner" });
  const returns = withReturns ? returnRing(pool, "returner->owner") : null;
  const control = new Int32Array(new SharedArrayBuffer(12)); // owner done, returner done, returner ready
  const common = { pool: pool.share(), ring: ring.shared(), returns: returns?.shared() ?? null, control };
  const owner = start<{ allocated: number; handed: number; starved: boolean } & Failure>(OWNER, { ...common, total, seed });
  const returner = start<{ freed: number; allocRefused: boolean } & Failure>(RETURNER, { ...common, seed: seed + 1 });
  const [o, r] = await Promise.all([owner.result, returner.result]);
  return { pool, o, r, problems: stackProblems(pool) };
}

describe("remote frees between two threads", () => {
  for (const checked of [false, true]) {
    it(`${checked ? "checked" : "unchecked"}: millions of buffers freed back through the return ring, none lost, none twice`, async () => {
      const total = checked ? 1_000_000 : 3_000_000;
      const { pool, o, r, problems } = await run(total, checked, true, checked ? 11 : 5);
      expect(o.error).toBeUndefined();
      expect(r.error).toBeUndefined();
      expect(o).toMatchObject({ allocated: total, starved: false });
      expect(r.freed).toBe(o.handed);
      expect(o.handed).toBeGreaterThan(total / 2); // most went through the other thread
      expect(r.allocRefused).toBe(true);
      expect(problems).toEqual([]);
      expect(pool.available).toBe(pool.count);
      pool.close(); // checked: throws if a buffer were missing
    }, 120_000);
  }

  it.runIf(process.env.IXY_SHOW_POOL_RACE === "1")("without the return path, the same run loses or duplicates buffers", async () => {
    for (const checked of [false, true]) {
      const { o, r, problems } = await run(3_000_000, checked, false, 5);
      const wrong = [o.error?.message, r.error?.message, o.starved ? "owner starved" : undefined, ...problems].filter((x) => x !== undefined);
      console.log(`${checked ? "checked" : "unchecked"} pool, no return path:`, wrong);
      expect(wrong.length).toBeGreaterThan(0);
    }
  }, 240_000);
});
