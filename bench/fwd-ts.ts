/**
 * The TypeScript side of `npm run bench`: the two-port forwarder on an instant device, the same
 * loop as bench/ref/ixgbe-fwd.c and virtio-fwd.c. Per iteration, for A->B and then B->A: the
 * device completes up to `batch` receive descriptors, rxBatch takes them, one byte of every frame
 * is touched (data[1]++), txBatch sends them on the other port (what does not fit is freed), and
 * the device completes every transmit descriptor.
 *
 *   node --expose-gc --import tsx bench/fwd-ts.ts --driver ixgbe|virtio|virtio-packed --batches 1,2,...,256 \
 *     --packets N --runs R --warmup W [--hot-path shared]
 *
 * Prints one JSON line per batch size: {"impl":"ts","driver",...,"runsNs":[...],"bestNs",
 * "gcs","heapGrowthKiB"} — gcs counts V8 garbage collections during that batch size's timed
 * runs, heapGrowthKiB the heap used after them minus before.
 */
import { parseArgs } from "node:util";
import type { NicDevice } from "../src/device.ts";
import { bufDataOffset, bufPool, poolBytes } from "../src/mem/buffer-table.ts";
import { freeBuffers } from "../src/mem/mempool.ts";
import { HotPathMode } from "../src/drivers/specialize.ts";
import { SimDma } from "../src/sim/sim-dma.ts";
import { InstantIxgbePort } from "./instant/ixgbe.ts";
import { InstantVirtioPort } from "./instant/virtio.ts";
import { GcWindow } from "./lib/gc-window.ts";

interface Port {
  readonly dev: NicDevice;
  receive(max: number): void;
  transmit(): void;
}

const { values } = parseArgs({
  options: {
    driver: { type: "string" },
    batches: { type: "string", default: "1,2,4,8,16,32,64,128,256" },
    packets: { type: "string", default: "10000000" },
    runs: { type: "string", default: "3" },
    warmup: { type: "string", default: "2000000" },
    "hot-path": { type: "string", default: HotPathMode.specialized },
  },
});
const driver = values.driver;
if (driver !== "ixgbe" && driver !== "virtio" && driver !== "virtio-packed") {
  throw new RangeError(`--driver must be ixgbe, virtio or virtio-packed, got ${driver}`);
}
const hotPath = values["hot-path"] as HotPathMode;
const batches = values.batches.split(",").map(Number);
const packets = Number(values.packets);
const runs = Number(values.runs);
const warmup = Number(values.warmup);

const dma = new SimDma("bench DMA");
const ports: Port[] = driver === "ixgbe"
  ? [new InstantIxgbePort(dma, 0, hotPath), new InstantIxgbePort(dma, 1, hotPath)]
  : [new InstantVirtioPort(dma, 0, hotPath, driver === "virtio-packed"), new InstantVirtioPort(dma, 1, hotPath, driver === "virtio-packed")];

if (!batches.every((b) => Number.isInteger(b) && b >= 1 && b <= 512)) throw new RangeError(`--batches: 1 to 512 each, got ${values.batches}`);
const bufs = new Int32Array(Math.max(...batches));
// The buffer-table columns as module constants: compiled code folds these, while an imported
// binding is read through its module cell at every use.
const POOL_OF = bufPool;
const DATA_AT = bufDataOffset;
const BYTES = poolBytes;

/** One direction of one iteration; returns the frames received. */
function forward(rx: Port, tx: Port, batch: number): number {
  rx.receive(batch);
  const n = rx.dev.rxBatch(0, bufs, batch);
  // Touch one byte of every frame, as an application would (the C does data[1]++).
  let lastPool = -1;
  let bytes = BYTES[0]!;
  for (let i = 0; i < n; i++) {
    const buf = bufs[i]!;
    const pool = POOL_OF[buf]!;
    if (pool !== lastPool) {
      lastPool = pool;
      bytes = BYTES[pool]!;
    }
    bytes[DATA_AT[buf]! + 1]!++;
  }
  const sent = tx.dev.txBatch(0, bufs, n);
  if (sent < n) freeBuffers(bufs, sent, n - sent);
  tx.transmit();
  return n;
}

function run(count: number, batch: number): number {
  const a = ports[0]!;
  const b = ports[1]!;
  let moved = 0;
  while (moved < count) {
    moved += forward(a, b, batch);
    moved += forward(b, a, batch);
  }
  return moved;
}

const gc = (globalThis as { gc?: () => void }).gc;
const gcWindow = new GcWindow(); // the collections that start during a batch size's timed runs
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

for (const batch of batches) {
  run(warmup, batch);
  gc?.();
  await settle(); // GC entries arrive asynchronously: let the forced one go by
  const heapBefore = process.memoryUsage().heapUsed;
  gcWindow.open();
  const runsNs: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = process.hrtime.bigint();
    const moved = run(packets, batch);
    runsNs.push(Number(process.hrtime.bigint() - start) / moved);
  }
  gcWindow.close();
  const heapGrowthKiB = Math.round((process.memoryUsage().heapUsed - heapBefore) / 1024);
  await settle();
  const gcs = gcWindow.collections;
  const line = {
    impl: "ts", driver, batch, packets, runsNs: runsNs.map((ns) => Number(ns.toFixed(3))),
    bestNs: Number(Math.min(...runsNs).toFixed(3)), gcs, heapGrowthKiB,
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
gcWindow.disconnect();
for (const p of ports) p.dev.close();
