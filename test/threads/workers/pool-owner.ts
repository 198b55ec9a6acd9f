// A test thread that owns a pool: allocates `total` buffers in random batches and hands them to
// the returner thread through `ring` (what does not fit: freed here), collecting what comes back
// through `returns` (null: the returner frees straight onto the stack, the race the return path
// removes). Posts its counts, or the error that stopped it.
import { parentPort, workerData } from "node:worker_threads";
import { attachPool, type SharedPool } from "../../../src/mem/mempool.ts";
import { SpscRing, type SharedRing } from "../../../src/threads/spsc-ring.ts";
import { prng, randInt } from "../../helpers/prng.ts";

const { pool: shared, ring: ringShared, returns, total, control, seed } = workerData as {
  pool: SharedPool; ring: SharedRing; returns: SharedRing | null; total: number; control: Int32Array; seed: number;
};
const rand = prng(seed);
const bufs = new Int32Array(64);
let allocated = 0;
let handed = 0;
let starved = false;
try {
  const pool = attachPool(shared);
  if (returns !== null) pool.acceptReturns(returns);
  const ring = SpscRing.fromShared(ringShared);
  while (Atomics.load(control, 2) === 0); // the returner is attached and in its loop
  let emptySpins = 0;
  while (allocated < total) {
    pool.collectReturns();
    const got = pool.allocBatch(bufs, Math.min(randInt(rand, 1, 64), total - allocated));
    if (got === 0) {
      // Without the return path buffers can get lost for good: do not wait for them forever.
      if (++emptySpins > 20_000_000) {
        starved = true;
        break;
      }
      continue;
    }
    allocated += got;
    // Mostly into the ring, waiting for room; now and then what does not fit is freed here, so
    // that local frees and collected returns meet on the stack too.
    let k = ring.enqueue(bufs, 0, got);
    const wait = rand() < 0.95;
    while (k < got && wait && Atomics.load(control, 1) === 0) { // (the returner may have failed)
      pool.collectReturns();
      k += ring.enqueue(bufs, k, got - k);
    }
    if (k < got) pool.freeBatch(bufs, got - k, k);
    handed += k;
  }
  Atomics.store(control, 0, 1); // every enqueue above happens-before the returner's load of this
  while (Atomics.load(control, 1) === 0) pool.collectReturns();
  pool.collectReturns();
  parentPort!.postMessage({ allocated, handed, starved });
  pool.close();
} catch (e) {
  Atomics.store(control, 0, 1);
  const error = e as Error;
  parentPort!.postMessage({ allocated, handed, starved, error: { name: error.name, message: error.message } });
}
