// A test thread that frees another thread's buffers: takes them from `ring` in random batches and
// frees them with freeBuffers or one by one with freeBuffer, until the owner is done and the ring
// is empty. With `returns` it attached the pool for returns (the frees go into that ring); with
// null it frees straight onto the owner's stack. Posts its count, or the error that stopped it.
import { parentPort, workerData } from "node:worker_threads";
import { attachPool, freeBuffer, freeBuffers, type SharedPool } from "../../../src/mem/mempool.ts";
import { SpscRing, type SharedRing } from "../../../src/threads/spsc-ring.ts";
import { prng, randInt } from "../../helpers/prng.ts";

const { pool: shared, ring: ringShared, returns, control, seed } = workerData as {
  pool: SharedPool; ring: SharedRing; returns: SharedRing | null; control: Int32Array; seed: number;
};
const rand = prng(seed);
const out = new Int32Array(64);
let freed = 0;
let allocRefused = false;
try {
  const pool = attachPool(shared, returns === null ? {} : { returns });
  if (returns !== null) {
    try {
      pool.alloc();
    } catch {
      allocRefused = true; // attached for returns: the stack is the owner's
    }
  }
  const ring = SpscRing.fromShared(ringShared);
  Atomics.store(control, 2, 1); // ready
  for (;;) {
    const ownerDone = Atomics.load(control, 0) !== 0; // before the dequeue: see pool-owner.ts
    const n = ring.dequeue(out, 0, randInt(rand, 1, 64));
    if (n === 0) {
      if (ownerDone) break;
      continue;
    }
    if (rand() < 0.25) for (let i = 0; i < n; i++) freeBuffer(out[i]!);
    else freeBuffers(out, 0, n);
    freed += n;
  }
  pool.close();
  parentPort!.postMessage({ freed, allocRefused });
} catch (e) {
  Atomics.store(control, 2, 1);
  const error = e as Error;
  parentPort!.postMessage({ freed, allocRefused, error: { name: error.name, message: error.message } });
} finally {
  Atomics.store(control, 1, 1); // after the last free: the owner collects everything after loading this
}
