/**
 * The listening side of a unix stream socket (socket, bind, listen, accept4), for a vhost-user
 * backend that waits for its front-end: the counterpart of connectUnixSocket() in
 * unix-socket.ts, whose sendWithFds/receiveWithFds work on the accepted sockets.
 *
 * The system calls are libc.ts's; nonblocking sockets return WOULD_BLOCK where a blocking one
 * would wait, so that a backend can poll for its front-end from the event loop.
 */
import * as fs from "node:fs";
import { SyscallError } from "../errors.ts";
import { accept4, AF_UNIX, bind, close, describeErrno, ERRNO, listen, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, socket } from "./libc.ts";
import { sockaddrUn } from "./socket-structs.ts";
import { connectUnixSocket } from "./unix-socket.ts";

export { WOULD_BLOCK } from "./libc.ts";

function syscallError(call: string, errno: number, context?: string, advice?: string): SyscallError {
  const { code, text } = describeErrno(errno);
  return new SyscallError(call, errno, code, advice === undefined ? text : `${text}; ${advice}`, context);
}

export interface ListenOptions {
  /** Connections the kernel queues before accept (default 1: one front-end at a time). */
  readonly backlog?: number;
  /** accept() returns WOULD_BLOCK instead of waiting (default false). */
  readonly nonBlocking?: boolean;
}

/**
 * A unix stream socket bound to `path` and listening, close-on-exec. A socket file left behind
 * by a process that died (nothing accepts on it) is replaced; a live one, or a file that is not
 * a socket, is an error that says so. The caller unlinks `path` when done (closing the socket
 * does not). `context` names the user in errors.
 */
export function listenUnixSocket(path: string, options: ListenOptions = {}, context = "unix socket"): number {
  const backlog = options.backlog ?? 1;
  if (!Number.isInteger(backlog) || backlog < 1) throw new RangeError(`${context}: listen backlog must be a positive integer, got ${backlog}`);
  const { addr, length } = sockaddrUn(path);
  const fd = socket(AF_UNIX, SOCK_STREAM | (options.nonBlocking ? SOCK_NONBLOCK : 0), 0, context);
  try {
    try {
      bind(fd, addr, length, `${context}: binding ${path}`);
    } catch (e) {
      if (!(e instanceof SyscallError) || e.errno !== ERRNO.EADDRINUSE) throw e;
      removeStaleSocket(path, context);
      bind(fd, addr, length, `${context}: binding ${path}`);
    }
    listen(fd, backlog, `${context}: listening on ${path}`);
  } catch (e) {
    close(fd);
    throw e;
  }
  return fd;
}

/** Unlinks `path` if it is a socket nobody listens on; throws if it is anything else. */
function removeStaleSocket(path: string, context: string): void {
  const where = `${context}: binding ${path}`;
  let isSocket = false;
  try {
    isSocket = fs.lstatSync(path).isSocket();
  } catch {
    return; // gone meanwhile: the second bind will tell
  }
  if (!isSocket) throw syscallError("bind", ERRNO.EADDRINUSE, where, `${path} exists and is not a socket: remove it, or choose another path`);
  let probe: number;
  try {
    probe = connectUnixSocket(path, {}, context);
  } catch (e) {
    if (e instanceof SyscallError && e.errno === ERRNO.ECONNREFUSED) {
      fs.rmSync(path, { force: true }); // left behind by a process that is gone
      return;
    }
    throw e;
  }
  close(probe);
  throw syscallError("bind", ERRNO.EADDRINUSE, where, `another process listens on ${path}: stop it, or choose another path`);
}

export interface AcceptOptions {
  /** Make the accepted socket nonblocking (default false). */
  readonly nonBlocking?: boolean;
}

/**
 * The next connection on listening socket `fd`: a close-on-exec socket, or WOULD_BLOCK when none
 * is waiting and `fd` is nonblocking.
 */
export function acceptUnixConnection(fd: number, options: AcceptOptions = {}, context = "unix socket"): number {
  return accept4(fd, SOCK_CLOEXEC | (options.nonBlocking ? SOCK_NONBLOCK : 0), context);
}
