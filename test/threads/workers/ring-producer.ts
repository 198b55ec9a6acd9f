// A test producer thread: enqueues the sequence numbers 0..total-1 into the ring, in batches of
// random size (1..maxBatch) from a seeded PRNG, spinning while the ring is full.
import { parentPort, workerData } from "node:worker_threads";
import { SpscRing, type SharedRing } from "../../../src/threads/spsc-ring.ts";
import { prng, randInt } from "../../helpers/prng.ts";

const { ring: shared, total, maxBatch, seed } = workerData as { ring: SharedRing; total: number; maxBatch: number; seed: number };
const ring = SpscRing.fromShared(shared);
const rand = prng(seed);
const batch = new Int32Array(maxBatch);
let next = 0;
let fullSpins = 0;
while (next < total) {
  const n = Math.min(randInt(rand, 1, maxBatch), total - next);
  for (let i = 0; i < n; i++) batch[i] = next + i;
  let done = 0;
  while (done < n) {
    const k = ring.enqueue(batch, done, n - done);
    if (k === 0) fullSpins++;
    done += k;
  }
  next += n;
}
parentPort!.postMessage({ sent: next, fullSpins });
