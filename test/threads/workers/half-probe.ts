// Test worker: the claims of queue halves on one shared pair (src/threads/queue-halves.ts), in
// order; posts what each attempt did: "ok" or the error's name.
import { parentPort, workerData } from "node:worker_threads";
import type { SharedQueuePair } from "../../../src/drivers/queue-sharing.ts";
import { attachQueuePair } from "../../../src/threads/queue-pair.ts";
import { attachReceiveHalf, attachTransmitHalf } from "../../../src/threads/queue-halves.ts";

const { pair } = workerData as { pair: SharedQueuePair };
const steps: [string, string][] = [];
function attempt<T>(what: string, f: () => T): T | null {
  try {
    const r = f();
    steps.push([what, "ok"]);
    return r;
  } catch (e) {
    steps.push([what, (e as Error).name]);
    return null;
  }
}
const rx = attempt("receive half", () => attachReceiveHalf(pair));
attempt("receive half again", () => attachReceiveHalf(pair));
attempt("whole pair while a half is out", () => attachQueuePair(pair));
const tx = attempt("transmit half", () => attachTransmitHalf(pair));
attempt("transmit half again", () => attachTransmitHalf(pair));
attempt("rxBatch", () => rx!.rxBatch(new Int32Array(4), 4));
attempt("txBatch of nothing", () => tx!.txBatch(new Int32Array(1), 0));
rx?.detach();
attempt("whole pair with the transmit half out", () => attachQueuePair(pair));
tx?.detach();
attempt("rxBatch after detach", () => rx!.rxBatch(new Int32Array(4), 4));
const whole = attempt("whole pair after both detached", () => attachQueuePair(pair));
attempt("a half while the whole pair is out", () => attachTransmitHalf(pair));
whole?.detach();
parentPort!.postMessage(steps);
