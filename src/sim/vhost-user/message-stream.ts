/**
 * vhost-user messages over one accepted (nonblocking) unix stream socket: requests read whole,
 * header then payload, each receive asking for exactly the bytes still missing, so that one
 * receive never reaches into the next message and the file descriptors that came with a request
 * are attributed to it (they arrive with the receive that reads its first byte); and replies.
 */
import { close } from "../../sys/libc.ts";
import { receiveWithFds, sendWithFds, WOULD_BLOCK } from "../../sys/unix-socket.ts";
import { FrontEndViolation } from "./errors.ts";
import { Flags, HEADER_SIZE, MAX_PAYLOAD, requestName } from "./messages.ts";

export interface Message {
  readonly request: number;
  readonly flags: number;
  /** The payload, in an ArrayBuffer of its own (aligned for typed-array views). */
  readonly payload: Uint8Array;
  /** File descriptors that came with it: the receiver closes those it does not keep. */
  readonly fds: number[];
}

/** What receive() returns when the front-end closed its end. */
export const END = "end";

export class MessageStream {
  readonly fd: number;
  readonly #context: string;
  readonly #header = new Uint32Array(HEADER_SIZE / 4);
  readonly #headerBytes = new Uint8Array(this.#header.buffer);
  #payload: Uint8Array | null = null;
  #got = 0;
  #fds: number[] = [];
  #closed = false;

  /** Takes ownership of `fd`, a connected nonblocking socket. `context` names the backend in errors. */
  constructor(fd: number, context: string) {
    this.fd = fd;
    this.#context = context;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The next request if it has arrived whole, null if not yet, END when the front-end hung up.
   * A header that makes no sense (wrong version, a reply, a payload too large to be a request)
   * is a FrontEndViolation: the stream is then out of step, and the caller must close it.
   */
  receive(): Message | null | typeof END {
    for (;;) {
      const target = this.#payload ?? this.#headerBytes;
      if (this.#got === target.length) {
        if (this.#payload === null) {
          this.#payload = this.#startPayload();
          this.#got = 0;
          continue;
        }
        return this.#finish();
      }
      const got = receiveWithFds(this.fd, target.subarray(this.#got), this.#context);
      if (got.bytes === WOULD_BLOCK) return null;
      if (got.bytes === 0) return END;
      this.#fds.push(...got.fds);
      this.#got += got.bytes;
    }
  }

  /** vhost-user: Header: a reply carries the request's type, the version and the reply flag. */
  reply(request: number, payload: Uint8Array): void {
    const bytes = new Uint8Array(HEADER_SIZE + payload.length);
    const header = new Uint32Array(bytes.buffer, 0, 3);
    header[0] = request;
    header[1] = Flags.VERSION | Flags.REPLY;
    header[2] = payload.length;
    bytes.set(payload, HEADER_SIZE);
    const sent = sendWithFds(this.fd, bytes, [], this.#context);
    if (sent !== bytes.length) {
      throw new FrontEndViolation(`the reply to ${requestName(request)} did not fit in the socket (${sent === WOULD_BLOCK ? 0 : sent} of ${bytes.length} bytes sent): the front-end must read the replies it asks for`);
    }
  }

  /** Closes the socket and any fds of a request that never arrived whole. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#fds.splice(0)) closeQuietly(fd);
    closeQuietly(this.fd);
  }

  #startPayload(): Uint8Array {
    const [request, flags, size] = this.#header as unknown as [number, number, number];
    const name = requestName(request);
    if ((flags & Flags.VERSION_MASK) !== Flags.VERSION) {
      throw new FrontEndViolation(`${name}: header flags 0x${flags.toString(16)} say version ${flags & Flags.VERSION_MASK}; vhost-user messages are version 1`);
    }
    if ((flags & Flags.REPLY) !== 0) throw new FrontEndViolation(`${name}: the front-end sent a message with the reply flag (0x4), which only back-end replies carry`);
    if (size > MAX_PAYLOAD) throw new FrontEndViolation(`${name}: a ${size}-byte payload; no request takes more than ${MAX_PAYLOAD}`);
    return new Uint8Array(size);
  }

  #finish(): Message {
    const message: Message = { request: this.#header[0]!, flags: this.#header[1]!, payload: this.#payload!, fds: this.#fds };
    this.#payload = null;
    this.#got = 0;
    this.#fds = [];
    return message;
  }
}

function closeQuietly(fd: number): void {
  try {
    close(fd);
  } catch {
    // already closed
  }
}
