// One side of the SPSC ring benchmark (bench/spsc/run.ts): pins itself if told to, warms the
// ring code up on a private ring, says "ready", waits for the go flag, then either enqueues the
// sequence numbers 0..items-1 (producer) or dequeues and checks them (consumer) in batches of
// `batch`, spinning whenever the ring is full or empty. Reports the time from go to its last item.
import { parentPort, workerData } from "node:worker_threads";
import { getAffinity, pinThread } from "../../src/threads/affinity.ts";
import { SpscRing, type SharedRing } from "../../src/threads/spsc-ring.ts";

interface Job {
  role: "producer" | "consumer";
  ring: SharedRing;
  control: Int32Array; // [0]: go flag
  items: number;
  batch: number;
  core: number | null;
}

const job = workerData as Job;
if (job.core !== null) pinThread(job.core, `spsc bench ${job.role}`);
const ring = SpscRing.fromShared(job.ring);
const bufs = new Int32Array(job.batch);

function warmUp(): void {
  const local = SpscRing.create(1024);
  for (let i = 0; i < 200_000; i++) {
    local.enqueue(bufs, 0, job.batch);
    local.dequeue(bufs, 0, job.batch);
  }
}

function produce(items: number, batch: number): number {
  let next = 0;
  let spins = 0;
  while (next < items) {
    const n = batch < items - next ? batch : items - next;
    for (let i = 0; i < n; i++) bufs[i] = next + i;
    let done = 0;
    while (done < n) {
      const k = ring.enqueue(bufs, done, n - done);
      if (k === 0) spins++;
      done += k;
    }
    next += n;
  }
  return spins;
}

function consume(items: number, batch: number): number {
  let expected = 0;
  let spins = 0;
  while (expected < items) {
    const n = ring.dequeue(bufs, 0, batch);
    if (n === 0) spins++;
    for (let i = 0; i < n; i++) {
      if (bufs[i] !== expected) throw new Error(`spsc bench: item ${expected} arrived as ${bufs[i]}`);
      expected++;
    }
  }
  return spins;
}

warmUp();
parentPort!.postMessage({ ready: true });
Atomics.wait(job.control, 0, 0);
const t0 = process.hrtime.bigint();
const spins = job.role === "producer" ? produce(job.items, job.batch) : consume(job.items, job.batch);
const ns = Number(process.hrtime.bigint() - t0);
parentPort!.postMessage({ ns, spins, affinity: getAffinity() });
