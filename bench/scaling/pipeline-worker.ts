/**
 * A worker of the scaling bench's pipeline comparison (pipeline.ts starts it), on one queue pair
 * of one instant port, in one of three roles:
 *
 *   "rtc"   run to completion on one core: the device receives, rxBatch, each frame through
 *           processFrame (examples/lib/pipeline-stages.ts: MAC swap, TTL, checksum), txBatch,
 *           the device sends;
 *   "rx"    the pipeline's receive stage: the device receives, rxBatch, into the SPSC ring; it
 *           owns the receive pool and collects what the process stage returns;
 *   "proc"  the pipeline's process stage: from the ring, processFrame, txBatch, the device
 *           sends; its frees go back through the return ring.
 *
 * The instant device writes no frame bytes, so every receive pool buffer holds an IPv4 frame
 * from the start (pipeline.ts) and the receiving side sets its TTL back to 64 (one byte store per
 * frame, where the forwarding bench's worker increments one), so that processFrame never drops
 * a frame for its TTL. The process stage (or the rtc worker) times `frames` frames after
 * `warmup` and stores the interval in the shared result.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { SharedQueuePair } from "../../src/drivers/queue-sharing.ts";
import { bufDataOffset, bufPool, poolBytes } from "../../src/mem/buffer-table.ts";
import { attachPool, freeBuffers } from "../../src/mem/mempool.ts";
import { pinThread } from "../../src/threads/affinity.ts";
import { attachQueuePair } from "../../src/threads/queue-pair.ts";
import { attachReceiveHalf, attachTransmitHalf } from "../../src/threads/queue-halves.ts";
import { SpscRing, type SharedRing } from "../../src/threads/spsc-ring.ts";
import { dropPending, newProcessStage, processFrame, processStep } from "../../examples/lib/pipeline-stages.ts";
import { InstantIxgbeQueue } from "../instant/ixgbe.ts";
import { InstantVirtioQueue } from "../instant/virtio.ts";
import type { DeviceQueueData } from "./protocol.ts";

export type PipelineRole = "rtc" | "rx" | "proc";

export interface PipelineWorkerData {
  readonly role: PipelineRole;
  readonly core: number | null;
  readonly pair: SharedQueuePair;
  readonly device: DeviceQueueData;
  readonly batch: number;
  readonly frames: number;
  readonly warmup: number;
  readonly ring?: SharedRing;
  readonly returns?: SharedRing;
  /**
   * [0]: workers ready, [1]: go, [2]: stop (the process stage has timed its frames), [3]: the
   * receive stage enqueues no more, [4]: the process stage has freed everything it held.
   */
  readonly control: Int32Array;
  /** [0]: ns of the timed frames, [1]: frames sent in all, [2]: frames dropped (ring full, TX full). */
  readonly result: Float64Array;
}

const d = workerData as PipelineWorkerData;
const TTL_AT = 14 + 8;
const POOL_OF = bufPool;
const DATA_AT = bufDataOffset;
const BYTES = poolBytes;

/** Sets the TTL of bufs[0 .. n) back to 64 (the instant device "received" the frames unchanged). */
function refreshTtl(bufs: Int32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const b = bufs[i]!;
    BYTES[POOL_OF[b]!]![DATA_AT[b]! + TTL_AT] = 64;
  }
}

function ready(): void {
  Atomics.add(d.control, 0, 1);
  Atomics.notify(d.control, 0);
  Atomics.wait(d.control, 1, 0); // until the main thread says go
}

try {
  if (d.core !== null) pinThread(d.core, `pipeline bench ${d.role} worker`);
  const dev = d.device.kind === "ixgbe" ? new InstantIxgbeQueue(d.device) : new InstantVirtioQueue(d.device);
  const batch = d.batch;
  const bufs = new Int32Array(batch);
  const out = new Int32Array(batch);
  const total = d.warmup + d.frames;
  if (d.role === "rtc") {
    const q = attachQueuePair(d.pair);
    ready();
    let sent = 0;
    let dropped = 0;
    let t0 = 0;
    while (sent < total) {
      if (t0 === 0 && sent >= d.warmup) t0 = performance.now();
      dev.receive(batch);
      const n = q.rxBatch(bufs, batch);
      refreshTtl(bufs, n);
      let kept = 0;
      let gone = 0;
      for (let i = 0; i < n; i++) {
        const b = bufs[i]!;
        if (processFrame(BYTES[POOL_OF[b]!]!, DATA_AT[b]!, 60)) out[kept++] = b;
        else bufs[gone++] = b;
      }
      if (gone !== 0) freeBuffers(bufs, 0, gone);
      const s = q.txBatch(out, kept);
      if (s < kept) freeBuffers(out, s, kept - s);
      sent += s;
      dropped += kept - s + gone;
      dev.transmit();
    }
    d.result[0] = (performance.now() - t0) * 1e6;
    d.result[1] = sent;
    d.result[2] = dropped;
    q.rxPool.freeBatch(bufs, 0);
    q.detach();
  } else if (d.role === "rx") {
    const rx = attachReceiveHalf(d.pair);
    const ring = SpscRing.fromShared(d.ring!);
    rx.rxPool.acceptReturns(SpscRing.fromShared(d.returns!));
    ready();
    let dropped = 0;
    while (Atomics.load(d.control, 2) === 0) {
      for (let k = 0; k < 64; k++) {
        rx.rxPool.collectReturns();
        dev.receive(batch);
        const n = rx.rxBatch(bufs, batch);
        if (n === 0) continue;
        refreshTtl(bufs, n);
        const e = ring.enqueue(bufs, 0, n);
        if (e < n) {
          rx.rxPool.freeBatch(bufs, n - e, e);
          dropped += n - e;
        }
      }
    }
    d.result[2] += dropped;
    // Nothing more goes into the ring; once the process stage has freed what it held (into the
    // return ring), collect it all, so that every buffer is home before the pair goes back.
    Atomics.store(d.control, 3, 1);
    Atomics.notify(d.control, 3);
    while (Atomics.load(d.control, 4) === 0) Atomics.wait(d.control, 4, 0, 100);
    rx.detach(); // collects the returns once more
  } else {
    const tx = attachTransmitHalf(d.pair);
    const ring = SpscRing.fromShared(d.ring!);
    const pool = attachPool(d.pair.rxPool, { returns: SpscRing.fromShared(d.returns!) });
    const stage = newProcessStage(tx, ring, batch, 0);
    ready();
    let t0 = 0;
    while (stage.sent < total) {
      if (t0 === 0 && stage.sent >= d.warmup) t0 = performance.now();
      processStep(stage);
      dev.transmit();
    }
    d.result[0] = (performance.now() - t0) * 1e6;
    d.result[1] = stage.sent;
    dropPending(stage); // what the TX ring did not take by now
    Atomics.store(d.control, 2, 1); // the receive stage may stop
    while (Atomics.load(d.control, 3) === 0) Atomics.wait(d.control, 3, 0, 100);
    // What is still in the ring goes back to the pool through the return ring.
    let n: number;
    while ((n = ring.dequeue(bufs, 0, batch)) !== 0) freeBuffers(bufs, 0, n);
    d.result[2] += stage.dropped + stage.filtered;
    tx.detach();
    pool.close();
    Atomics.store(d.control, 4, 1);
    Atomics.notify(d.control, 4);
  }
  parentPort!.postMessage({ ok: true });
} catch (e) {
  for (const w of [2, 3, 4]) {
    Atomics.store(d.control, w, 1);
    Atomics.notify(d.control, w);
  }
  Atomics.add(d.control, 0, 1);
  Atomics.notify(d.control, 0);
  parentPort!.postMessage({ ok: false, error: `${(e as Error).name}: ${(e as Error).message}` });
}
