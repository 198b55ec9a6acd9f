/**
 * The pipeline's two stages (examples/pipeline.ts), as plain functions over a state object so
 * that the app's workers, the tests and a benchmark run the very same code:
 *
 *   receive stage (its thread owns the receive pool)     process stage (another thread)
 *   collectReturns()  <------ return ring ------------  frees: TX reclaim, dropped frames
 *   rxBatch -> enqueue ------- ring of received ------>  dequeue -> processFrame -> txBatch
 *
 * Neither allocates or locks: batches are Int32Arrays made once, the rings are SpscRings, and
 * every free in the process stage's thread goes into the return ring because that thread
 * attached the pool for returns (src/mem/pool-returns.ts).
 */
import { bufDataOffset, bufLength, bufPool, poolBytes } from "../../src/mem/buffer-table.ts";
import { freeBuffers, type Mempool } from "../../src/mem/mempool.ts";
import type { SpscRing } from "../../src/threads/spsc-ring.ts";

const ETH_HLEN = 14;
/** Offsets in the IPv4 header (RFC 791, 3.1). */
const IP_TTL = 8;
const IP_CHECKSUM = 10;

/**
 * RFC 1624, eqn. 3: the new header checksum HC' = ~(~HC + ~m + m') after one 16-bit word of
 * the header changed from m to m', in ones'-complement arithmetic (end-around carry). Unlike
 * RFC 1141's HC' = HC + m + ~m' (RFC 1624, section 3), it gives what a full recomputation gives,
 * 0x0000 included, and never the 0xFFFF that a full recomputation cannot give.
 */
export function updateChecksum(hc: number, m: number, m2: number): number {
  let sum = (~hc & 0xffff) + (~m & 0xffff) + m2;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16); // the first fold can carry once more
  return ~sum & 0xffff;
}

/**
 * What a router does to a frame it forwards, in place, on bytes[offset .. offset + length): for
 * an IPv4 frame (EtherType 0x0800, version 4, a header that fits) whose TTL is above 1, swaps
 * the destination and source MAC addresses, decrements the TTL and updates the header checksum
 * incrementally; returns true: send it. Returns false, and changes nothing, for anything else
 * (a TTL of 0 or 1 would expire here, RFC 1812 5.3.1): drop it. The checksum is not verified
 * first: an incremental update keeps a wrong one wrong, as a router that does not verify does.
 */
export function processFrame(bytes: Uint8Array, offset: number, length: number): boolean {
  if (length < ETH_HLEN + 20 || bytes[offset + 12] !== 0x08 || bytes[offset + 13] !== 0x00) return false;
  const ip = offset + ETH_HLEN;
  const versionIhl = bytes[ip]!;
  const ihl = versionIhl & 0x0f;
  if (versionIhl >>> 4 !== 4 || ihl < 5 || ETH_HLEN + ihl * 4 > length) return false;
  const ttl = bytes[ip + IP_TTL]!;
  if (ttl <= 1) return false;
  for (let i = 0; i < 6; i++) {
    const t = bytes[offset + i]!;
    bytes[offset + i] = bytes[offset + 6 + i]!;
    bytes[offset + 6 + i] = t;
  }
  // The TTL is the high byte of the header's fifth 16-bit word (the protocol its low byte).
  const m = (ttl << 8) | bytes[ip + IP_TTL + 1]!;
  bytes[ip + IP_TTL] = ttl - 1;
  const hc = (bytes[ip + IP_CHECKSUM]! << 8) | bytes[ip + IP_CHECKSUM + 1]!;
  const next = updateChecksum(hc, m, m - 0x100);
  bytes[ip + IP_CHECKSUM] = next >>> 8;
  bytes[ip + IP_CHECKSUM + 1] = next & 0xff;
  return true;
}

/** A receive queue: a device's (queueEnd in forward.ts) or a worker's (attachReceiveHalf). */
export interface ReceiveQueue {
  rxBatch(bufs: Int32Array, max: number): number;
}

/** A transmit queue: a device's or a worker's (attachTransmitHalf). */
export interface TransmitQueue {
  txBatch(bufs: Int32Array, count: number): number;
}

export interface ReceiveStage {
  readonly rx: ReceiveQueue;
  /** The receive queue's pool, in the thread that allocates from it (it collects the returns). */
  readonly pool: Mempool;
  /** To the process stage. */
  readonly ring: SpscRing;
  readonly bufs: Int32Array;
  readonly batch: number;
  /** Frames received, and of them dropped because the ring was full. */
  received: number;
  dropped: number;
}

export function newReceiveStage(rx: ReceiveQueue, pool: Mempool, ring: SpscRing, batch: number): ReceiveStage {
  return { rx, pool, ring, bufs: new Int32Array(batch), batch, received: 0, dropped: 0 };
}

/**
 * One round of the receive stage: takes back what the process stage returned (first, so that
 * the receive queue's refill finds it), receives a batch and hands it on; what the ring has
 * no room for is freed (the stage must not block) and counted as dropped. Returns the frames
 * received.
 */
export function receiveStep(s: ReceiveStage): number {
  s.pool.collectReturns();
  const n = s.rx.rxBatch(s.bufs, s.batch);
  if (n === 0) return 0;
  const k = s.ring.enqueue(s.bufs, 0, n);
  if (k !== n) {
    s.pool.freeBatch(s.bufs, n - k, k);
    s.dropped += n - k;
  }
  s.received += n;
  return n;
}

export interface ProcessStage {
  readonly tx: TransmitQueue;
  /** From the receive stage. */
  readonly ring: SpscRing;
  readonly batch: number;
  /** Rounds a batch the TX ring did not take in full is tried again before the rest is dropped. */
  readonly txRetries: number;
  readonly inBufs: Int32Array;
  /** The batch to send: out[0 .. pending) are still to be sent. */
  readonly out: Int32Array;
  readonly drop: Int32Array;
  pending: number;
  tries: number;
  /** Frames taken from the ring; of them: sent, dropped by processFrame, dropped for want of TX descriptors. */
  processed: number;
  sent: number;
  filtered: number;
  dropped: number;
}

export function newProcessStage(tx: TransmitQueue, ring: SpscRing, batch: number, txRetries: number): ProcessStage {
  return {
    tx, ring, batch, txRetries,
    inBufs: new Int32Array(batch), out: new Int32Array(batch), drop: new Int32Array(batch),
    pending: 0, tries: 0, processed: 0, sent: 0, filtered: 0, dropped: 0,
  };
}

/**
 * One round of the process stage: first the rest of the last batch, if the TX ring did not
 * take all of it (frames stay in order: nothing new is taken before it is gone); then a batch
 * from the ring, each frame through processFrame, the dropped ones freed (into the return
 * ring), the others sent. Returns the frames taken from the ring.
 */
export function processStep(s: ProcessStage): number {
  if (s.pending !== 0) {
    sendPending(s);
    if (s.pending !== 0) return 0;
  }
  const n = s.ring.dequeue(s.inBufs, 0, s.batch);
  if (n === 0) return 0;
  const inBufs = s.inBufs;
  const out = s.out;
  const drop = s.drop;
  let kept = 0;
  let dropped = 0;
  for (let i = 0; i < n; i++) {
    const buf = inBufs[i]!;
    if (processFrame(poolBytes[bufPool[buf]!]!, bufDataOffset[buf]!, bufLength[buf]!)) out[kept++] = buf;
    else drop[dropped++] = buf;
  }
  if (dropped !== 0) freeBuffers(drop, 0, dropped);
  s.processed += n;
  s.filtered += dropped;
  s.pending = kept;
  s.tries = 0;
  if (kept !== 0) sendPending(s);
  return n;
}

/** Sends out[0 .. pending); keeps the unsent at the front, or frees them after txRetries tries. */
function sendPending(s: ProcessStage): void {
  const sent = s.tx.txBatch(s.out, s.pending); // out[0 .. sent) now belong to the TX queue
  s.sent += sent;
  const rest = s.pending - sent;
  if (rest === 0) {
    s.pending = 0;
    return;
  }
  if (sent !== 0) s.out.copyWithin(0, sent, s.pending); // txBatch takes a prefix
  s.pending = rest;
  if (s.tries++ >= s.txRetries) dropPending(s);
}

/** Frees what is still to be sent (at the end, or after txRetries). */
export function dropPending(s: ProcessStage): void {
  if (s.pending === 0) return;
  freeBuffers(s.out, 0, s.pending);
  s.dropped += s.pending;
  s.pending = 0;
}
