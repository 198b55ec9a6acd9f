/**
 * The front-end's end of a vhost-user connection: a unix stream socket to the backend, strictly
 * request then reply, one message at a time (vhost-user: "Communication").
 *
 * - `query()` sends a request that has a reply of its own (GET_FEATURES, GET_VRING_BASE, ...)
 *   and checks the reply's header: the same request code, version 1 with the REPLY flag, the
 *   payload size the request defines.
 * - `command()` sends a request without a reply. Once VHOST_USER_PROTOCOL_F_REPLY_ACK is
 *   negotiated it sets NEED_REPLY and waits for the u64 ack: 0 is success (vhost-user:
 *   "VHOST_USER_PROTOCOL_F_REPLY_ACK").
 *
 * Every wait is bounded (poll with a timeout). After any failure — the backend closed the
 * connection, a malformed reply, no reply in time — the stream is out of step, so the channel
 * refuses further requests with an error that says what went wrong first (vhost-user: "If
 * front-end is unable to send the full message or receives a wrong reply it will close the
 * connection").
 */
import { DeviceProtocolError, DeviceTimeoutError, IxyError, SyscallError } from "../../../errors.ts";
import { sleepMs } from "../../../pci/regs.ts";
import { close, ERRNO } from "../../../sys/libc.ts";
import { POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLRDHUP, pollOne } from "../../../sys/poll.ts";
import { connectUnixSocket, receiveWithFds, sendWithFds, setNonBlocking, WOULD_BLOCK } from "../../../sys/unix-socket.ts";
import { VhostUserBackendNotFoundError, VhostUserDisconnectedError } from "./errors.ts";
import { MessageBuffer } from "./message.ts";
import { describeRequest } from "./message-trace.ts";
import { NO_TRACE, type DriverTrace } from "../../../pci/register-trace.ts";
import { HEADER_SIZE, PAYLOAD_MAX_SIZE, PayloadSize, requestName, VhostUserFlag, type VhostUserRequest } from "./protocol.ts";

/** Encodes a request into the channel's buffer with the header flags given; returns its bytes. */
export type Encoder = (m: MessageBuffer, flags: number) => Uint8Array;

/** How often connect() is retried while the backend is not listening yet. */
const CONNECT_RETRY_MS = 20;

export class VhostUserChannel {
  /** Names the device in errors: "vhost-user:/run/vhost.sock". */
  readonly name: string;
  readonly path: string;
  readonly #msg = new MessageBuffer();
  readonly #timeoutMs: number;
  #fd: number;
  #replyAck = false;
  /** The first failure; the channel is unusable from then on. */
  #broken: IxyError | null = null;
  /** The timeout of the exchange under way (for messages). */
  #waitMs = 0;
  /** Trace mode: every request sent is noted here (NO_TRACE when off). */
  trace: DriverTrace = NO_TRACE;

  private constructor(fd: number, path: string, name: string, timeoutMs: number) {
    this.#fd = fd;
    this.path = path;
    this.name = name;
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Connects to the backend listening at `path`, retrying while nothing listens there yet
   * (ENOENT, ECONNREFUSED: a backend still starting) for up to `timeoutMs`, which also bounds
   * every later wait for a reply.
   */
  static connect(path: string, name: string, timeoutMs: number): VhostUserChannel {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      let fd: number;
      try {
        fd = connectUnixSocket(path, {}, name);
      } catch (e) {
        const absent = e instanceof SyscallError && (e.errno === ERRNO.ENOENT || e.errno === ERRNO.ECONNREFUSED);
        if (!absent) throw e;
        if (performance.now() < deadline) {
          sleepMs(CONNECT_RETRY_MS);
          continue;
        }
        throw new VhostUserBackendNotFoundError(
          `${name}: no vhost-user backend listens on ${path} (${e.code} for ${timeoutMs} ms): start the backend ` +
            `first — e.g. dpdk-testpmd --vdev 'net_vhost0,iface=${path}' -- -i — or check the path`,
          path,
        );
      }
      try {
        setNonBlocking(fd, true, name);
      } catch (e) {
        close(fd);
        throw e;
      }
      return new VhostUserChannel(fd, path, name, timeoutMs);
    }
  }

  /** From now on, requests without a reply of their own ask for an ack (NEED_REPLY). */
  enableReplyAck(): void {
    this.#replyAck = true;
  }

  get replyAck(): boolean {
    return this.#replyAck;
  }

  /** The failure that made the channel unusable, or null. */
  get broken(): IxyError | null {
    return this.#broken;
  }

  /**
   * Sends a request that has a reply of its own and returns the buffer holding the checked reply
   * (valid until the next request). `replySize` is the payload size the request defines.
   */
  query(request: VhostUserRequest, encode: Encoder, replySize: number, timeoutMs = this.#timeoutMs): MessageBuffer {
    return this.#guard(request, timeoutMs, (deadline) => {
      this.#send(request, encode(this.#msg, VhostUserFlag.VERSION), [], deadline);
      this.#receiveReply(request, replySize, deadline);
      return this.#msg;
    });
  }

  /**
   * Sends a request without a reply (with `fds`, if any). With REPLY_ACK, waits for the ack and
   * returns it: 0 is success, anything else a refusal. Without REPLY_ACK, returns 0 at once.
   */
  commandAck(request: VhostUserRequest, encode: Encoder, fds: readonly number[] = [], timeoutMs = this.#timeoutMs): bigint {
    return this.#guard(request, timeoutMs, (deadline) => {
      const flags = VhostUserFlag.VERSION | (this.#replyAck ? VhostUserFlag.NEED_REPLY : 0);
      this.#send(request, encode(this.#msg, flags), fds, deadline);
      if (!this.#replyAck) return 0n;
      this.#receiveReply(request, PayloadSize.u64, deadline);
      return this.#msg.payloadU64;
    });
  }

  /** commandAck(), and a refusal is a DeviceProtocolError (`what` details the request, `advice` what to do). */
  command(request: VhostUserRequest, encode: Encoder, fds: readonly number[] = [], what = "", advice = "see the backend's log"): void {
    const ack = this.commandAck(request, encode, fds);
    if (ack !== 0n) {
      throw new DeviceProtocolError(`${this.name}: the backend refused ${requestName(request)}${what ? ` (${what})` : ""} (ack ${ack}): ${advice}`);
    }
  }

  /**
   * Throws a VhostUserDisconnectedError when the backend has closed its end (it died), and the
   * first failure when the channel broke earlier. Costs one poll(2) that does not wait.
   */
  checkConnected(what: string): void {
    if (this.#broken === null && this.#fd >= 0) {
      const revents = pollOne(this.#fd, POLLRDHUP, 0, this.name);
      if ((revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) !== 0) {
        this.#broken = this.#disconnected(`(noticed at ${what}; it died or ended the session)`);
        throw this.#broken;
      }
    }
    if (this.#broken !== null) throw this.#unusable(what);
  }

  /** Closes the socket (the backend then drops the session). Idempotent; never throws. */
  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    this.#broken ??= new VhostUserDisconnectedError(`${this.name}: the connection to the backend was closed`);
    try {
      close(fd);
    } catch {
      // Nothing can be done about a failing close; the fd is gone either way.
    }
  }

  /** Runs one request/reply exchange; a failure on the way breaks the channel. */
  #guard<T>(request: VhostUserRequest, timeoutMs: number, exchange: (deadline: number) => T): T {
    if (this.#broken !== null) throw this.#unusable(requestName(request));
    this.#waitMs = timeoutMs;
    try {
      return exchange(performance.now() + timeoutMs);
    } catch (e) {
      // Typed errors come from the socket or the reply: the stream is out of step from here on.
      if (e instanceof IxyError) this.#broken = e;
      throw e;
    }
  }

  /** Sends all of `bytes`, the fds with the first byte (unix-socket.ts: a short send is resumed). */
  #send(request: VhostUserRequest, bytes: Uint8Array, fds: readonly number[], deadline: number): void {
    const what = requestName(request);
    if (this.trace.on) this.trace.note(describeRequest(bytes));
    let sent = 0;
    while (sent < bytes.length) {
      let n: number;
      try {
        n = sendWithFds(this.#fd, bytes.subarray(sent), sent === 0 ? fds : [], `${this.name}: sending ${what}`);
      } catch (e) {
        if (e instanceof SyscallError && (e.errno === ERRNO.EPIPE || e.errno === ERRNO.ECONNRESET)) {
          throw this.#disconnected(`before ${what} could be sent (it refused an earlier request, or it died)`);
        }
        throw e;
      }
      if (n === WOULD_BLOCK) this.#wait(POLLOUT, deadline, `sending ${what}`);
      else sent += n;
    }
  }

  /** Receives the reply to `request` into the buffer and checks its header (vhost-user: "Header"). */
  #receiveReply(request: VhostUserRequest, size: number, deadline: number): void {
    const what = requestName(request);
    const m = this.#msg;
    this.#receive(m.bytes.subarray(0, HEADER_SIZE), what, deadline);
    if (m.request !== request) {
      throw new DeviceProtocolError(
        `${this.name}: ${what}: the backend replied with ${requestName(m.request)} (flags 0x${m.flags.toString(16)}, ` +
          `${m.size} bytes): it does not speak vhost-user as this front-end does; see the backend's log`,
      );
    }
    if ((m.flags & VhostUserFlag.VERSION_MASK) !== VhostUserFlag.VERSION || (m.flags & VhostUserFlag.REPLY) === 0) {
      throw new DeviceProtocolError(
        `${this.name}: ${what}: the reply has flags 0x${m.flags.toString(16)}, not version 1 with the REPLY bit (0x5): ` +
          `the backend speaks another version of vhost-user`,
      );
    }
    if (m.size !== size) {
      throw new DeviceProtocolError(
        `${this.name}: ${what}: the reply carries ${m.size} payload bytes where the request defines ${size}: ` +
          `the backend is broken or speaks another version of vhost-user`,
      );
    }
    if (size > PAYLOAD_MAX_SIZE) throw new RangeError(`${this.name}: ${what}: a ${size}-byte reply does not fit the buffer`);
    if (size > 0) this.#receive(m.bytes.subarray(HEADER_SIZE, HEADER_SIZE + size), what, deadline);
  }

  /** Fills `into` from the stream, waiting (until `deadline`) as long as nothing is there. */
  #receive(into: Uint8Array, what: string, deadline: number): void {
    let got = 0;
    while (got < into.length) {
      let r;
      try {
        r = receiveWithFds(this.#fd, into.subarray(got), `${this.name}: receiving the reply to ${what}`);
      } catch (e) {
        if (e instanceof SyscallError && e.errno === ERRNO.ECONNRESET) throw this.#disconnected(`while ${what} waited for its reply (it refused the request, or it died)`);
        throw e;
      }
      if (r.fds.length > 0) {
        for (const fd of r.fds) close(fd);
        throw new DeviceProtocolError(`${this.name}: ${what}: the backend sent ${r.fds.length} file descriptor(s) with its reply, which has none`);
      }
      if (r.bytes === WOULD_BLOCK) this.#wait(POLLIN, deadline, `waiting for the reply to ${what}`);
      else if (r.bytes === 0) throw this.#disconnected(`while ${what} waited for its reply (it refused the request, or it died)`);
      else got += r.bytes;
    }
  }

  /** Waits until the socket is ready for `events` (or hung up); a DeviceTimeoutError at `deadline`. */
  #wait(events: number, deadline: number, what: string): void {
    const left = deadline - performance.now();
    if (left > 0 && pollOne(this.#fd, events, left, this.name) !== 0) return;
    throw new DeviceTimeoutError(
      `${this.name}: ${what}: no answer from the backend within ${this.#waitMs} ms: it hangs or does not ` +
        `read its socket; see its log, restart it and open the device again`,
    );
  }

  #disconnected(when: string): VhostUserDisconnectedError {
    return new VhostUserDisconnectedError(
      `${this.name}: the backend closed the connection ${when}: see the backend's log, start it again and ` +
        `open the device again`,
    );
  }

  #unusable(what: string): VhostUserDisconnectedError {
    const first = this.#broken!.message;
    const reason = first.startsWith(`${this.name}: `) ? first.slice(this.name.length + 2) : first;
    return new VhostUserDisconnectedError(`${this.name}: ${what}: the connection to the backend is unusable since an earlier failure: ${reason}`);
  }
}
