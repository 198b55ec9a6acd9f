/**
 * Test worker for offload-worker.test.ts: attaches a shared ixgbe queue pair and sends back every
 * frame it receives with a checksum request (requestChecksum), until control[0] says stop; then
 * frees what it holds, detaches and posts its counts (or { error }).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { SharedQueuePair } from "../../../src/drivers/queue-sharing.ts";
import { requestChecksum } from "../../../src/mem/offload.ts";
import { attachQueuePair } from "../../../src/threads/queue-pair.ts";

const { pair, control } = workerData as { pair: SharedQueuePair; control: Int32Array };
const q = attachQueuePair(pair);
Atomics.store(control, 1, 1);
const bufs = new Int32Array(32);
let received = 0;
let sent = 0;
try {
  let held = 0;
  while (Atomics.load(control, 0) === 0) {
    if (held === 0) {
      held = q.rxBatch(bufs, bufs.length);
      for (let i = 0; i < held; i++) requestChecksum(bufs[i]!);
      received += held;
    }
    if (held > 0) {
      const n = q.txBatch(bufs, held);
      sent += n;
      bufs.copyWithin(0, n, held);
      held -= n;
    }
  }
  q.rxPool.freeBatch(bufs, held);
  q.detach();
  parentPort!.postMessage({ received, sent });
} catch (e) {
  const error = e as Error;
  parentPort!.postMessage({ received, sent, error: { name: error.name, message: error.message } });
}
