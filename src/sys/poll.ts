/**
 * poll(2) on one file descriptor: wait, with a timeout, until a socket is readable or writable,
 * or learn without waiting that its peer hung up. The vhost-user channel needs it to bound every
 * wait for a backend's reply.
 *
 * struct pollfd on Linux: { int fd; short events; short revents; }, 8 bytes, written and read
 * through Int32Array/Int16Array views of one private buffer.
 */
import { INTERRUPTED, poll } from "./libc.ts";

export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
/** The peer shut down its writing side (or closed the socket): stream sockets only. */
export const POLLRDHUP = 0x2000;

const pollfd = new ArrayBuffer(8);
const pollBytes = new Uint8Array(pollfd);
const pollFd = new Int32Array(pollfd, 0, 1);
const pollEvents = new Int16Array(pollfd, 4, 2); // [0] events, [1] revents

/**
 * Waits up to `timeoutMs` (0: do not wait) for any of `events` on `fd`. Returns the revents —
 * which may also hold POLLERR, POLLHUP or POLLNVAL, never asked for — or 0 after the timeout.
 * Interrupted waits (EINTR) resume with the time that is left.
 */
export function pollOne(fd: number, events: number, timeoutMs: number, context?: string): number {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    pollFd[0] = fd;
    pollEvents[0] = events;
    pollEvents[1] = 0;
    const left = Math.max(0, Math.ceil(deadline - performance.now()));
    const n = poll(pollBytes, 1, Math.min(left, 0x7fffffff), context);
    if (n === INTERRUPTED) continue;
    return n > 0 ? pollEvents[1]! & 0xffff : 0;
  }
}
