/**
 * struct msghdr, struct iovec, struct cmsghdr and struct sockaddr_un as x86-64 Linux lays them
 * out, as byte offsets, and the CMSG_* arithmetic. test/sys/socket-structs.test.ts compiles a C
 * program against the system's headers and compares every number.
 *
 * Structs live in ArrayBuffers read and written through typed-array views (64-bit fields through
 * a BigUint64Array, since pointers are BigInts anyway), never through DataView.
 */
import { addressOf, AF_UNIX, SCM_RIGHTS, SOL_SOCKET } from "./libc.ts";

export const iovec = { iov_base: 0, iov_len: 8, SIZE: 16 } as const;
export const msghdr = {
  msg_name: 0,
  msg_namelen: 8,
  msg_iov: 16,
  msg_iovlen: 24,
  msg_control: 32,
  msg_controllen: 40,
  msg_flags: 48,
  SIZE: 56,
} as const;
export const cmsghdr = { cmsg_len: 0, cmsg_level: 8, cmsg_type: 12, SIZE: 16 } as const;
export const sockaddr_un = { sun_family: 0, sun_path: 2, SIZE: 110 } as const;

/** CMSG_ALIGN: control messages and their data are padded to sizeof(size_t). */
export function cmsgAlign(length: number): number {
  return (length + 7) & ~7;
}

/** CMSG_LEN(n): the cmsg_len of a control message carrying n bytes. */
export function cmsgLen(n: number): number {
  return cmsgAlign(cmsghdr.SIZE) + n;
}

/** CMSG_SPACE(n): the room a control message carrying n bytes takes, padding included. */
export function cmsgSpace(n: number): number {
  return cmsgAlign(cmsghdr.SIZE) + cmsgAlign(n);
}

/** CMSG_DATA(c) - c: where a control message's data starts. */
export const CMSG_DATA_OFFSET = cmsgAlign(cmsghdr.SIZE);

/** File descriptors one message carries at most (vhost-user sends up to 8, one per region). */
export const MAX_FDS = 8;

const IOV_AT = msghdr.SIZE;
const CONTROL_AT = IOV_AT + iovec.SIZE;
const CONTROL_SPACE = cmsgSpace(4 * MAX_FDS);

/**
 * One msghdr with a single iovec and room for one SCM_RIGHTS message of up to MAX_FDS fds, all in
 * one ArrayBuffer: | msghdr | iovec | control |. The msghdr's pointers to its iovec and control
 * part are taken once (the ArrayBuffer never moves); the iovec's pointer to the data is set per
 * call, and the data array is kept referenced here until release(), so that it outlives the
 * system call that writes or reads it (see addressOf()).
 */
export class MessageHeader {
  /** The msghdr (at offset 0) and what it points to: pass this to sendmsg/recvmsg. */
  readonly bytes: Uint8Array;
  readonly #u64: BigUint64Array;
  readonly #u32: Uint32Array;
  readonly #i32: Int32Array;
  readonly #control: Uint8Array;
  readonly #base: bigint;
  /** Only held, never read: keeps the data array alive while the kernel uses its address. */
  #data: Uint8Array | null = null;

  constructor() {
    const buffer = new ArrayBuffer(CONTROL_AT + CONTROL_SPACE);
    this.bytes = new Uint8Array(buffer);
    this.#u64 = new BigUint64Array(buffer);
    this.#u32 = new Uint32Array(buffer);
    this.#i32 = new Int32Array(buffer);
    this.#control = new Uint8Array(buffer, CONTROL_AT, CONTROL_SPACE);
    this.#base = addressOf(this.bytes);
    this.#u64[msghdr.msg_iov / 8] = this.#base + BigInt(IOV_AT);
    this.#u64[msghdr.msg_iovlen / 8] = 1n;
  }

  /** Sets up a sendmsg of `data` with `fds` (none: no control message). */
  prepareSend(data: Uint8Array, fds: readonly number[]): void {
    if (fds.length > MAX_FDS) throw new RangeError(`at most ${MAX_FDS} file descriptors fit in one message, got ${fds.length}`);
    for (const fd of fds) {
      if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fff_ffff) throw new RangeError(`not a file descriptor: ${fd}`);
    }
    this.#setData(data);
    this.#control.fill(0);
    if (fds.length === 0) {
      this.#setControl(0);
      return;
    }
    const c = CONTROL_AT;
    this.#u64[(c + cmsghdr.cmsg_len) / 8] = BigInt(cmsgLen(4 * fds.length));
    this.#u32[(c + cmsghdr.cmsg_level) / 4] = SOL_SOCKET;
    this.#u32[(c + cmsghdr.cmsg_type) / 4] = SCM_RIGHTS;
    this.#i32.set(fds, (c + CMSG_DATA_OFFSET) / 4);
    this.#setControl(cmsgSpace(4 * fds.length));
  }

  /** Sets up a recvmsg into `buf`, with room for MAX_FDS fds. */
  prepareReceive(buf: Uint8Array): void {
    this.#setData(buf);
    this.#control.fill(0);
    this.#setControl(CONTROL_SPACE);
    this.#u32[msghdr.msg_flags / 4] = 0;
  }

  /** msg_flags after recvmsg (MSG_CTRUNC: fds were dropped for want of room). */
  get flags(): number {
    return this.#u32[msghdr.msg_flags / 4]!;
  }

  /** The fds of every SCM_RIGHTS message recvmsg wrote into the control part. */
  receivedFds(): number[] {
    const fds: number[] = [];
    const controlLength = Number(this.#u64[msghdr.msg_controllen / 8]!);
    let off = 0;
    while (off + cmsghdr.SIZE <= controlLength) {
      const at = CONTROL_AT + off;
      const length = Number(this.#u64[(at + cmsghdr.cmsg_len) / 8]!);
      if (length < cmsghdr.SIZE || off + length > controlLength) break; // malformed: stop, as CMSG_NXTHDR does
      if (this.#u32[(at + cmsghdr.cmsg_level) / 4] === SOL_SOCKET && this.#u32[(at + cmsghdr.cmsg_type) / 4] === SCM_RIGHTS) {
        const n = (length - CMSG_DATA_OFFSET) >>> 2;
        for (let i = 0; i < n; i++) fds.push(this.#i32[(at + CMSG_DATA_OFFSET) / 4 + i]!);
      }
      off += cmsgAlign(length);
    }
    return fds;
  }

  /** Drops the reference to the data array once the call is over. */
  release(): void {
    this.#data = null;
    this.#u64[(IOV_AT + iovec.iov_base) / 8] = 0n;
  }

  #setData(data: Uint8Array): void {
    this.#data = data;
    this.#u64[(IOV_AT + iovec.iov_base) / 8] = addressOf(data);
    this.#u64[(IOV_AT + iovec.iov_len) / 8] = BigInt(data.length);
  }

  #setControl(length: number): void {
    this.#u64[msghdr.msg_control / 8] = length === 0 ? 0n : this.#base + BigInt(CONTROL_AT);
    this.#u64[msghdr.msg_controllen / 8] = BigInt(length);
  }
}

/** A struct sockaddr_un for `path`, and the length to pass with it. */
export function sockaddrUn(path: string): { addr: Uint8Array; length: number } {
  const name = new TextEncoder().encode(path);
  const room = sockaddr_un.SIZE - sockaddr_un.sun_path - 1; // keep the terminating NUL
  if (name.length === 0 || name.length > room) {
    throw new RangeError(`unix socket path must be 1 to ${room} bytes long, got ${name.length} (${path}): use a shorter path`);
  }
  if (name.includes(0)) throw new TypeError(`unix socket path contains a NUL byte: ${JSON.stringify(path)}`);
  const buffer = new ArrayBuffer(sockaddr_un.SIZE);
  new Uint16Array(buffer, sockaddr_un.sun_family, 1)[0] = AF_UNIX;
  const addr = new Uint8Array(buffer);
  addr.set(name, sockaddr_un.sun_path);
  return { addr, length: sockaddr_un.sun_path + name.length + 1 };
}
