/**
 * What the scaling harness (harness.ts) and its workers (worker.ts) send each other. Each worker
 * drives queue pair i of both ports and runs the instant device's side of that pair in its own
 * loop; between runs it waits in its event loop for the next command.
 */
import type { SharedQueuePair } from "../../src/drivers/queue-sharing.ts";
import type { IxgbeQueueData } from "../instant/ixgbe.ts";
import type { VirtioQueueData } from "../instant/virtio.ts";

export type DeviceQueueData = IxgbeQueueData | VirtioQueueData;

/** Device-side counters per worker: a 128-byte block each, so that no two workers write one line. */
export const COUNTER_STRIDE = 16;
export const Counter = {
  /** Frames the device side put into the receive rings (both ports). */
  deviceReceived: 0,
  /** Frames the device side took from the transmit rings (both ports). */
  deviceSent: 1,
  /** Frames the forwarder got from rxBatch. */
  forwarded: 2,
  /** Frames txBatch did not take (freed). */
  dropped: 3,
} as const;

export interface WorkerData {
  readonly index: number;
  /** The core it pins itself to (null: not pinned). */
  readonly core: number | null;
  readonly batch: number;
  /** Port A's and port B's pair `index`. */
  readonly pairs: readonly [SharedQueuePair, SharedQueuePair];
  /** The device side of those two pairs. */
  readonly devices: readonly [DeviceQueueData, DeviceQueueData];
  /** [0]: workers that finished their warm-up in the current run (the start line). */
  readonly barrier: Int32Array;
  /** All workers' counters (COUNTER_STRIDE Float64s each). */
  readonly counters: Float64Array;
  /** This worker's latency histogram (bench/lib/histogram.ts), cleared at the start of each timed run. */
  readonly latency: Float64Array;
  /** Stamp one receive batch in this many (a power of two) per port. */
  readonly sampleEvery: number;
}

export type Command =
  | {
      readonly kind: "run";
      readonly frames: number;
      readonly warmup: number;
      /** Workers in this run: each waits at the start line for all of them. */
      readonly active: number;
      readonly latency: boolean;
    }
  | { readonly kind: "stop" };

export interface RunReport {
  readonly kind: "done";
  readonly index: number;
  /** Frames forwarded in the timed part. */
  readonly frames: number;
  /** performance.timeOrigin + performance.now() at the start and end of the timed part (ms). */
  readonly startMs: number;
  readonly endMs: number;
  /** V8 collections in this worker during the timed part, and its heap growth over it. */
  readonly gcs: number;
  readonly heapGrowthKiB: number;
  /** Frames whose latency was recorded. */
  readonly timed: number;
  /** CPU time of the worker's thread over the timed part, in clock ticks (NaN: unknown). */
  readonly cpuTicks: number;
}

export type Report =
  | { readonly kind: "ready"; readonly index: number }
  | RunReport
  | { readonly kind: "stopped"; readonly index: number }
  | { readonly kind: "failed"; readonly index: number; readonly name: string; readonly message: string };
