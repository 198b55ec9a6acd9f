/**
 * The broken-queue state of a virtio queue's hot loop in a worker thread. In the thread that
 * opened the device it lives on the queue object (breakWith, broken); a worker has only the
 * loop, so it keeps the error that broke the queue here. The queue's state word 3 is shared: a
 * queue the worker breaks is broken for the owning thread too, and a queue the owning thread
 * breaks (a device that needs a reset, noticed in readStats) stops the worker's loop, which then
 * throws an error that says where to look.
 */
import { DeviceProtocolError } from "../../errors.ts";
import type { SharedQueue } from "../queue-handoff.ts";

export interface WorkerBreaker {
  /** The loop's throwBroken. */
  readonly throwBroken: () => never;
  /** Breaks the queue with `error` (the first one stays); returns the error that broke it. */
  readonly breakWith: (error: DeviceProtocolError) => DeviceProtocolError;
}

/** `state`: the queue's shared state, whose word `brokenWord` is non-zero once the queue is broken. */
export function workerBreaker(shared: SharedQueue, state: Int32Array, brokenWord: number): WorkerBreaker {
  let broken: DeviceProtocolError | null = null;
  return {
    throwBroken: () => {
      throw broken ?? new DeviceProtocolError(
        `${shared.label}: the thread that opened the device found it broken (its readStats() or close() says why): ` +
          `stop this worker; that thread must close the device and open it again`,
      );
    },
    breakWith: (error) => {
      broken ??= error;
      state[brokenWord] = 1;
      return broken;
    },
  };
}
