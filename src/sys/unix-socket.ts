/**
 * Unix stream sockets that carry file descriptors (SCM_RIGHTS), as vhost-user needs: the driver
 * hands its packet memory (memfds) and its kick/call eventfds to the backend this way.
 *
 * Stream semantics apply: a send may be received in pieces, or together with others. The fds of
 * a send come with the receive that reads its first byte; that receive may hold bytes of earlier
 * sends, but nothing beyond the send with the fds (so two sends' fds never arrive together).
 * A reader that receives one message header at a time therefore gets a message's fds with its
 * header. Received fds are close-on-exec and belong to the caller, who must close them.
 *
 * Everything is synchronous. A socket created or switched to nonblocking mode returns WOULD_BLOCK
 * where a blocking one would wait, so that a backend model in the same thread can be polled.
 */
import { SyscallError } from "../errors.ts";
import {
  AF_UNIX,
  close,
  connect,
  describeErrno,
  ERRNO,
  F_GETFL,
  F_SETFL,
  fcntl,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_NOSIGNAL,
  O_NONBLOCK,
  recvmsg,
  sendmsg,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  socket,
  socketpair,
  WOULD_BLOCK,
} from "./libc.ts";
import { MAX_FDS, MessageHeader, sockaddrUn } from "./socket-structs.ts";

export { MAX_FDS } from "./socket-structs.ts";
export { WOULD_BLOCK } from "./libc.ts";

export interface UnixSocketOptions {
  /** Return WOULD_BLOCK instead of waiting (default false). */
  readonly nonBlocking?: boolean;
}

export interface ReceivedMessage {
  /** Bytes placed at the start of the buffer; 0 at end of stream (the peer closed); or WOULD_BLOCK. */
  readonly bytes: number;
  /** The fds that came with them; empty unless bytes > 0. */
  readonly fds: readonly number[];
}

const NOTHING: ReceivedMessage = { bytes: WOULD_BLOCK, fds: [] };
const END: ReceivedMessage = { bytes: 0, fds: [] };

// One msghdr for every socket of this thread: the calls are synchronous and never re-entered,
// and a worker thread loads its own copy of this module.
const header = new MessageHeader();

/** Two connected unix stream sockets (socketpair), close-on-exec. */
export function unixSocketPair(options: UnixSocketOptions = {}): [number, number] {
  return socketpair(AF_UNIX, SOCK_STREAM | (options.nonBlocking ? SOCK_NONBLOCK : 0), 0, "unix socket pair");
}

/**
 * A unix stream socket connected to the one listening at `path` (a vhost-user backend's socket),
 * close-on-exec. `context` names the user in errors.
 */
export function connectUnixSocket(path: string, options: UnixSocketOptions = {}, context = "unix socket"): number {
  const { addr, length } = sockaddrUn(path);
  const fd = socket(AF_UNIX, SOCK_STREAM | (options.nonBlocking ? SOCK_NONBLOCK : 0), 0, context);
  try {
    connect(fd, addr, length, `${context}: connecting to ${path}`);
  } catch (e) {
    close(fd);
    if (e instanceof SyscallError && (e.errno === ERRNO.ENOENT || e.errno === ERRNO.ECONNREFUSED)) {
      const { text } = describeErrno(e.errno);
      throw new SyscallError(
        e.call,
        e.errno,
        e.code,
        `${text}; nothing listens on ${path}: start the backend first, or check the path`,
        `${context}: connecting to ${path}`,
      );
    }
    throw e;
  }
  return fd;
}

/** Switches O_NONBLOCK on or off (e.g. after a blocking connect). */
export function setNonBlocking(fd: number, on: boolean, context?: string): void {
  const flags = fcntl(fd, F_GETFL, 0, context);
  fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK, context);
}

/**
 * Sends `data` and, with its first byte, `fds` (up to MAX_FDS; they stay open here, the peer
 * gets its own copies). Returns the bytes sent — fewer than data.length only on a nonblocking
 * socket whose buffer filled up; the rest must go in a later send, without the fds — or
 * WOULD_BLOCK when nothing could be sent. A closed peer is a SyscallError (EPIPE), never a
 * SIGPIPE.
 */
export function sendWithFds(fd: number, data: Uint8Array, fds: readonly number[] = [], context = "unix socket"): number {
  // A stream socket sends nothing for an empty send, not even the control message.
  if (data.length === 0 && fds.length > 0) throw new RangeError(`${context}: file descriptors need at least one byte of data to go with`);
  header.prepareSend(data, fds);
  try {
    return sendmsg(fd, header.bytes, MSG_NOSIGNAL, context);
  } finally {
    header.release();
  }
}

/**
 * Receives up to buf.length bytes into `buf`, and the fds that came with them. See
 * ReceivedMessage for end of stream and WOULD_BLOCK. More than MAX_FDS fds in one message is a
 * SyscallError (EMSGSIZE) after closing those received: the stream is then out of step, so
 * close the socket.
 */
export function receiveWithFds(fd: number, buf: Uint8Array, context = "unix socket"): ReceivedMessage {
  if (buf.length === 0) throw new RangeError(`${context}: receive buffer is empty (a 0-byte receive cannot tell data from end of stream)`);
  header.prepareReceive(buf);
  let bytes: number;
  try {
    bytes = recvmsg(fd, header.bytes, MSG_CMSG_CLOEXEC, context);
  } finally {
    header.release();
  }
  if (bytes === WOULD_BLOCK) return NOTHING;
  if (bytes === 0) return END;
  const fds = header.receivedFds();
  if ((header.flags & MSG_CTRUNC) !== 0) {
    for (const received of fds) close(received);
    throw new SyscallError(
      "recvmsg",
      ERRNO.EMSGSIZE,
      "EMSGSIZE",
      `the peer sent more than ${MAX_FDS} file descriptors in one message; those received were closed, close the socket`,
      context,
    );
  }
  return { bytes, fds };
}
