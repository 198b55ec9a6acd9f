/**
 * The latency stamp pktgen --latency writes into the UDP payload of each frame, read by its
 * receivers (pktgen --rx-port, ixy-fwd --latency). All fields big-endian:
 *
 *   frame offset 42  u32  sequence number (0, 1, 2 ...; the same place as without --latency)
 *                46  u32  magic 0x49585954 ("IXYT")
 *                50  u32  send time, ns, high 32 bits  } CLOCK_MONOTONIC (process.hrtime),
 *                54  u32  send time, ns, low 32 bits   } comparable only on the same host
 *
 * The clock: Node's performance.now() runs on CLOCK_MONOTONIC (uv_hrtime) from the process's
 * time origin; adding the offset to process.hrtime.bigint() measured once at start gives
 * system-wide CLOCK_MONOTONIC nanoseconds without allocating a BigInt per frame. Sender and
 * receiver must run on one host (or in one process) for the difference to mean anything.
 */
import { SEQ_OFFSET } from "./udp-frame.ts";

export const STAMP_MAGIC = 0x49585954;
export const MAGIC_OFFSET = SEQ_OFFSET + 4;
export const TIME_OFFSET = SEQ_OFFSET + 8;
/** The smallest frame that carries the whole stamp. */
export const STAMP_END = SEQ_OFFSET + 16;

const TWO32 = 2 ** 32;

/** CLOCK_MONOTONIC in ns, as a double (exact to the ns for the first 104 days of uptime). */
export function monotonicClock(): () => number {
  const offsetNs = Number(process.hrtime.bigint()) - performance.now() * 1e6;
  return () => offsetNs + performance.now() * 1e6;
}

/** Writes the magic (once per buffer: it stays there). */
export function writeMagic(bytes: Uint8Array, start: number): void {
  const at = start + MAGIC_OFFSET;
  bytes[at] = STAMP_MAGIC >>> 24;
  bytes[at + 1] = (STAMP_MAGIC >>> 16) & 0xff;
  bytes[at + 2] = (STAMP_MAGIC >>> 8) & 0xff;
  bytes[at + 3] = STAMP_MAGIC & 0xff;
}

/** Writes the send time (ns) of the frame that starts at bytes[start]. */
export function writeTime(bytes: Uint8Array, start: number, ns: number): void {
  const hi = Math.floor(ns / TWO32);
  const lo = (ns - hi * TWO32) >>> 0;
  const at = start + TIME_OFFSET;
  bytes[at] = hi >>> 24;
  bytes[at + 1] = (hi >>> 16) & 0xff;
  bytes[at + 2] = (hi >>> 8) & 0xff;
  bytes[at + 3] = hi & 0xff;
  bytes[at + 4] = lo >>> 24;
  bytes[at + 5] = (lo >>> 16) & 0xff;
  bytes[at + 6] = (lo >>> 8) & 0xff;
  bytes[at + 7] = lo & 0xff;
}

/** True if the frame of `length` bytes at bytes[start] is an IPv4 frame carrying a stamp. */
export function hasStamp(bytes: Uint8Array, start: number, length: number): boolean {
  if (length < STAMP_END || bytes[start + 12] !== 0x08 || bytes[start + 13] !== 0x00) return false;
  const at = start + MAGIC_OFFSET;
  return (
    bytes[at] === STAMP_MAGIC >>> 24 &&
    bytes[at + 1] === ((STAMP_MAGIC >>> 16) & 0xff) &&
    bytes[at + 2] === ((STAMP_MAGIC >>> 8) & 0xff) &&
    bytes[at + 3] === (STAMP_MAGIC & 0xff)
  );
}

/** The send time (ns) of a stamped frame. */
export function readTime(bytes: Uint8Array, start: number): number {
  const at = start + TIME_OFFSET;
  const hi = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
  const lo = ((bytes[at + 4]! << 24) | (bytes[at + 5]! << 16) | (bytes[at + 6]! << 8) | bytes[at + 7]!) >>> 0;
  return hi * TWO32 + lo;
}
