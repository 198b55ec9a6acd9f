// A test consumer thread: dequeues `total` items in batches of random size and checks that they
// are 0, 1, 2, ... in that order (nothing lost, nothing duplicated, nothing reordered). Reports
// the first mismatch rather than throwing in the loop, so that the test can show it.
import { parentPort, workerData } from "node:worker_threads";
import { SpscRing, type SharedRing } from "../../../src/threads/spsc-ring.ts";
import { prng, randInt } from "../../helpers/prng.ts";

const { ring: shared, total, maxBatch, seed } = workerData as { ring: SharedRing; total: number; maxBatch: number; seed: number };
const ring = SpscRing.fromShared(shared);
const rand = prng(seed);
const out = new Int32Array(maxBatch);
let expected = 0;
let mismatch: { at: number; got: number } | null = null;
let emptySpins = 0;
while (expected < total && mismatch === null) {
  const n = ring.dequeue(out, 0, randInt(rand, 1, maxBatch));
  if (n === 0) emptySpins++;
  for (let i = 0; i < n; i++) {
    if (out[i] !== expected) {
      mismatch = { at: expected, got: out[i]! };
      break;
    }
    expected++;
  }
}
parentPort!.postMessage({ received: expected, mismatch, emptySpins, left: ring.count });
