// bench/spsc: items per second through an SpscRing between two worker threads, a producer and a
// consumer, for several batch sizes, with the threads pinned to two different cores and unpinned.
// See bench/README.md ("SPSC ring").
//
//   npm run bench:spsc                                  3 runs of 20,000,000 items per case
//   npm run bench:spsc -- --items 5000000 --runs 1      quicker
import { parseArgs } from "node:util";
import { allowedCores, formatCoreList, parseCoreList } from "../../src/threads/affinity.ts";
import { SpscRing } from "../../src/threads/spsc-ring.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";

const USAGE = `usage: npm run bench:spsc -- [options]
  --items N          items per run (default 20000000)
  --runs N           timed runs per case, the best one reported (default 3)
  --batches LIST     batch sizes (default 1,8,32,256)
  --capacity N       ring slots, a power of two (default 1024)
  --cores A,B        the producer's and the consumer's core when pinned (default: the first two allowed)`;

const { values } = parseArgs({
  options: {
    items: { type: "string", default: "20000000" },
    runs: { type: "string", default: "3" },
    batches: { type: "string", default: "1,8,32,256" },
    capacity: { type: "string", default: "1024" },
    cores: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const items = Number(values.items);
const runs = Number(values.runs);
const capacity = Number(values.capacity);
const batches = values.batches.split(",").map(Number);
const cores = values.cores !== undefined ? parseCoreList(values.cores, "--cores") : allowedCores().slice(0, 2);
if (cores.length !== 2) throw new RangeError(`--cores: needs two cores, one per thread (this process may use ${formatCoreList(allowedCores())})`);
for (const b of batches) if (!(b >= 1 && b <= capacity)) throw new RangeError(`--batches: ${b} must be from 1 to the capacity (${capacity})`);

interface Done {
  ns: number;
  spins: number;
  affinity: number[];
}

async function once(batch: number, pinned: boolean): Promise<{ mItemsPerS: number; producer: Done; consumer: Done }> {
  const ring = SpscRing.create(capacity, { name: "bench" });
  const control = new Int32Array(new SharedArrayBuffer(4));
  const start = (role: "producer" | "consumer", core: number | null) => {
    const worker = startTsWorker(new URL("./worker.ts", import.meta.url), {
      workerData: { role, ring: ring.shared(), control, items, batch, core },
    });
    let readyResolve: () => void = () => {};
    const ready = new Promise<void>((r) => (readyResolve = r));
    const done = new Promise<Done>((resolve, reject) => {
      worker.on("message", (m: { ready?: boolean } & Done) => (m.ready ? readyResolve() : resolve(m)));
      worker.on("error", reject);
      worker.on("exit", (code) => reject(new Error(`${role} exited with ${code}`)));
    });
    return { ready, done };
  };
  const p = start("producer", pinned ? cores[0]! : null);
  const c = start("consumer", pinned ? cores[1]! : null);
  await Promise.all([p.ready, c.ready]);
  Atomics.store(control, 0, 1);
  Atomics.notify(control, 0);
  const [producer, consumer] = await Promise.all([p.done, c.done]);
  return { mItemsPerS: (items / consumer.ns) * 1e3, producer, consumer };
}

console.log(`SpscRing: ${items.toLocaleString("en")} items per run, best of ${runs}, ring of ${capacity} slots; pinned: producer on core ${cores[0]}, consumer on core ${cores[1]}`);
console.log(`${"batch".padStart(6)} | ${"pinned Mitems/s".padStart(16)} | ${"unpinned Mitems/s".padStart(18)} | consumer empty polls per item (pinned / unpinned)`);
for (const batch of batches) {
  const best = { pinned: { rate: 0, spins: 0 }, unpinned: { rate: 0, spins: 0 } };
  for (let r = 0; r < runs; r++) {
    // Interleaved, so that a noisy moment of the machine does not hit one column only.
    for (const pinned of [true, false]) {
      const res = await once(batch, pinned);
      const slot = pinned ? best.pinned : best.unpinned;
      if (res.mItemsPerS > slot.rate) {
        slot.rate = res.mItemsPerS;
        slot.spins = res.consumer.spins / items;
      }
      if (pinned && (res.producer.affinity.join() !== String(cores[0]) || res.consumer.affinity.join() !== String(cores[1]))) {
        throw new Error(`the threads did not stay pinned: producer ${res.producer.affinity}, consumer ${res.consumer.affinity}`);
      }
    }
  }
  console.log(
    `${String(batch).padStart(6)} | ${best.pinned.rate.toFixed(1).padStart(16)} | ${best.unpinned.rate.toFixed(1).padStart(18)} | ` +
      `${best.pinned.spins.toFixed(3)} / ${best.unpinned.spins.toFixed(3)}`,
  );
}
