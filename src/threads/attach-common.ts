/**
 * What a worker needs to drive shared queues, whether it takes a whole pair (queue-pair.ts) or
 * one half of one (queue-halves.ts): the loop of each queue kind, compiled in this thread, and
 * the error for a pair the owning thread has stopped.
 */
import { DeviceClosedError, DeviceProtocolError, QueueSharedError } from "../errors.ts";
import { attachIxgbeReceive } from "../drivers/ixgbe/ixgbe-rx-queue.ts";
import { attachIxgbeSend } from "../drivers/ixgbe/ixgbe-tx-queue.ts";
import { PairStatus, STATUS } from "../drivers/queue-sharing.ts";
import { SharedQueueKind, type SharedQueue } from "../drivers/queue-handoff.ts";
import type { HotPathMode } from "../drivers/specialize.ts";
import { attachPackedReceive } from "../drivers/virtio/packed-rx-queue.ts";
import { attachPackedSend } from "../drivers/virtio/packed-tx-queue.ts";
import { attachVirtioReceive, type ReceiveLoop } from "../drivers/virtio/virtio-rx-queue.ts";
import { attachVirtioSend, type SendLoop } from "../drivers/virtio/virtio-tx-queue.ts";

/** The receive loop of a shared queue, compiled in this thread by its driver's attach function. */
export function receiveLoopOf(q: SharedQueue, hotPath: HotPathMode | undefined): ReceiveLoop {
  switch (q.kind) {
    case SharedQueueKind.ixgbeRx: return attachIxgbeReceive(q, hotPath);
    case SharedQueueKind.virtioRx: return attachVirtioReceive(q, hotPath);
    case SharedQueueKind.packedRx: return attachPackedReceive(q, hotPath);
    default: throw new TypeError(`${q.label}: a ${q.kind} queue is not a receive queue`);
  }
}

/** The transmit loop of a shared queue, compiled in this thread. */
export function sendLoopOf(q: SharedQueue, hotPath: HotPathMode | undefined): SendLoop {
  switch (q.kind) {
    case SharedQueueKind.ixgbeTx: return attachIxgbeSend(q, hotPath);
    case SharedQueueKind.virtioTx: return attachVirtioSend(q, hotPath);
    case SharedQueueKind.packedTx: return attachPackedSend(q, hotPath);
    default: throw new TypeError(`${q.label}: a ${q.kind} queue is not a transmit queue`);
  }
}

/** Throws unless the pair's control word says RUNNING: the error for `call` on a stopped pair. */
export function checkPairStatus(control: Int32Array, device: string, queue: number, call: string): void {
  switch (Atomics.load(control, STATUS)) {
    case PairStatus.running:
      return;
    case PairStatus.broken:
      throw new DeviceProtocolError(
        `${device}: ${call}() on queue pair ${queue}: the thread that opened the device found it broken ` +
          `(reset behind the driver's back, or it needs a reset); that thread's readStats() says why: stop this worker`,
      );
    case PairStatus.reclaimed:
      throw new QueueSharedError(`${device}: ${call}() on queue pair ${queue}, which the thread that opened the device has taken back`);
    default:
      throw new DeviceClosedError(`${device}: ${call}() on queue pair ${queue} of a closed device`);
  }
}
