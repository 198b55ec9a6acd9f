/**
 * eventfds: a 64-bit counter behind a file descriptor, which vhost-user uses for notifications
 * (the driver writes a queue's kick fd, the backend its call fd). A write adds to the counter;
 * a read returns it and resets it to 0.
 */
import { EFD_CLOEXEC, EFD_NONBLOCK, eventfd, read, write, WOULD_BLOCK } from "./libc.ts";

// The 8-byte counter passed to read/write; one for the thread, as the calls are synchronous.
const counterBuffer = new ArrayBuffer(8);
const counterBytes = new Uint8Array(counterBuffer);
const counter = new BigUint64Array(counterBuffer);

/** A nonblocking, close-on-exec eventfd with the counter at 0. */
export function createEventFd(context = "eventfd"): number {
  return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC, context);
}

/**
 * Adds `value` (default 1) to the counter. Returns false, having added nothing, when that would
 * overflow it (only after about 2^64 unread signals) on a nonblocking eventfd.
 */
export function eventfdWrite(fd: number, value = 1, context = "eventfd"): boolean {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${context}: eventfd value must be a positive safe integer, got ${value}`);
  counter[0] = BigInt(value);
  return write(fd, counterBytes, context) !== WOULD_BLOCK;
}

/**
 * The counter, which goes back to 0; 0 when it already was 0 (a nonblocking eventfd; a blocking
 * one would wait). A count above 2^53 loses precision (it is a count of notifications).
 */
export function eventfdRead(fd: number, context = "eventfd"): number {
  if (read(fd, counterBytes, context) === WOULD_BLOCK) return 0;
  return Number(counter[0]!);
}
