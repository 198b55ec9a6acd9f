/**
 * Test worker: attaches a shared queue pair and sends back everything it receives on it, until
 * control[0] says stop (control[1] is 1 once it is attached); then frees what it holds, detaches and posts its counts. A failure is
 * posted as { error } so that the test sees the worker's message and type.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { SharedQueuePair } from "../../../src/drivers/queue-sharing.ts";
import { attachQueuePair } from "../../../src/threads/queue-pair.ts";

const { pair, control } = workerData as { pair: SharedQueuePair; control: Int32Array };
const q = attachQueuePair(pair);
Atomics.store(control, 1, 1); // attached: in the loop from now on
const bufs = new Int32Array(32);
let received = 0;
let sent = 0;
try {
  let held = 0;
  while (Atomics.load(control, 0) === 0) {
    if (held === 0) {
      held = q.rxBatch(bufs, bufs.length);
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
