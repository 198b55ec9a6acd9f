/** Test worker: frees a buffer of a pool it has not attached, then one of a pool it has; posts what happened. */
import { parentPort, workerData } from "node:worker_threads";
import { attachPool, freeBuffer, type SharedPool } from "../../../src/mem/mempool.ts";

const { buf, pool } = workerData as { buf: number; pool: SharedPool };
const result: { foreign?: string; attached?: string } = {};
try {
  freeBuffer(buf);
  result.foreign = "no error";
} catch (e) {
  result.foreign = `${(e as Error).name}: ${(e as Error).message}`;
}
const attached = attachPool(pool);
freeBuffer(buf);
result.attached = `available ${attached.available}`;
attached.close();
parentPort!.postMessage(result);
