/**
 * A queue's hot loop as it is handed to a worker thread: which driver's factory to compile
 * there, and the factory's data (SharedEnv). Made by each queue class's share(), compiled in the
 * worker by its attach function (src/threads/queue-pair.ts picks it by `kind`).
 */
import type { SharedEnv } from "../threads/shared-env.ts";

export const SharedQueueKind = {
  ixgbeRx: "ixgbe-rx",
  ixgbeTx: "ixgbe-tx",
  virtioRx: "virtio-rx",
  virtioTx: "virtio-tx",
  packedRx: "virtio-packed-rx",
  packedTx: "virtio-packed-tx",
} as const;
export type SharedQueueKind = (typeof SharedQueueKind)[keyof typeof SharedQueueKind];

/** What an error about a buffer of another address space names (batch-args.ts badTxBuffer). */
export interface DmaSpace {
  readonly name: string;
  readonly space: number;
}

export interface SharedQueue {
  readonly kind: SharedQueueKind;
  /** Names the queue in the worker's stack traces and errors. */
  readonly label: string;
  readonly env: SharedEnv;
  /** Transmit queues: how txBatch errors begin, and the device's address space. */
  readonly what?: string;
  readonly dma?: DmaSpace;
  /** virtio: the queue's index (the virtqueue number), for its protocol errors. */
  readonly queueIndex?: number;
  readonly capacity?: number;
}
