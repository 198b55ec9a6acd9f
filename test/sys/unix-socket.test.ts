/**
 * Real round trips through unix sockets: data with file descriptors (a memfd and an eventfd, as
 * vhost-user sends memory and notifications), would-block, end of stream, EPIPE without SIGPIPE,
 * and connect() to a listening socket.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SyscallError } from "../../src/errors.ts";
import { createEventFd, eventfdRead, eventfdWrite } from "../../src/sys/eventfd.ts";
import {
  close,
  F_GETFD,
  FD_CLOEXEC,
  fcntl,
  addressOf,
  fstatSize,
  ftruncate,
  memfdCreate,
  MFD_CLOEXEC,
  mmapShared,
  MSG_NOSIGNAL,
  munmap,
  pread,
  pwrite,
  SCM_RIGHTS,
  sendmsg,
  SOL_SOCKET,
  view,
} from "../../src/sys/libc.ts";
import { CMSG_DATA_OFFSET, cmsghdr, cmsgLen, cmsgSpace, iovec, MessageHeader, msghdr } from "../../src/sys/socket-structs.ts";
import {
  connectUnixSocket,
  receiveWithFds,
  sendWithFds,
  setNonBlocking,
  unixSocketPair,
  WOULD_BLOCK,
} from "../../src/sys/unix-socket.ts";

const text = (s: string) => new TextEncoder().encode(s);
const openFds = () => fs.readdirSync("/proc/self/fd").length;

/** fds to close after each test, whatever happened. */
let toClose: number[] = [];
const keep = (...fds: number[]) => {
  toClose.push(...fds);
  return fds;
};
afterEach(() => {
  for (const fd of toClose) {
    try {
      close(fd);
    } catch {
      // closed by the test already
    }
  }
  toClose = [];
});

describe("file descriptors through a socket pair", () => {
  it("3 bytes with a memfd and an eventfd arrive, and the received fds reach the same file and counter", () => {
    const [a, b] = keep(...unixSocketPair());
    const memfd = keep(memfdCreate("test", MFD_CLOEXEC))[0]!;
    ftruncate(memfd, 4096);
    pwrite(memfd, text("hello"), 0);
    const efd = keep(createEventFd())[0]!;

    expect(sendWithFds(a!, text("abc"), [memfd, efd])).toBe(3);
    const buf = new Uint8Array(16);
    const got = receiveWithFds(b!, buf);
    keep(...got.fds);
    expect(got.bytes).toBe(3);
    expect(new TextDecoder().decode(buf.subarray(0, 3))).toBe("abc");
    expect(got.fds).toHaveLength(2);
    const [memfd2, efd2] = got.fds as [number, number];
    expect(memfd2).not.toBe(memfd);
    expect(efd2).not.toBe(efd);
    // MSG_CMSG_CLOEXEC: a child process started later does not inherit them.
    expect(fcntl(memfd2, F_GETFD) & FD_CLOEXEC).toBe(FD_CLOEXEC);
    expect(fcntl(efd2, F_GETFD) & FD_CLOEXEC).toBe(FD_CLOEXEC);

    // The memfd: read through the received fd, and through a shared mapping of it.
    expect(fstatSize(memfd2)).toBe(4096);
    const back = new Uint8Array(5);
    pread(memfd2, back, 0);
    expect(new TextDecoder().decode(back)).toBe("hello");
    const ptr = mmapShared(memfd2, 4096);
    try {
      const mapped = new Uint8Array(view(ptr, 4096));
      expect(new TextDecoder().decode(mapped.subarray(0, 5))).toBe("hello");
      mapped[100] = 42; // and a write through the mapping shows through the original fd
      const one = new Uint8Array(1);
      pread(memfd, one, 100);
      expect(one[0]).toBe(42);
    } finally {
      munmap(ptr, 4096);
    }

    // The eventfd: both fds are one counter.
    expect(eventfdWrite(efd, 5)).toBe(true);
    expect(eventfdRead(efd2)).toBe(5);
    expect(eventfdRead(efd)).toBe(0);
    eventfdWrite(efd2);
    eventfdWrite(efd2, 2);
    expect(eventfdRead(efd)).toBe(3);
  });

  it("data without fds arrives without fds, in the order sent, and a small buffer takes it in pieces", () => {
    const [a, b] = keep(...unixSocketPair());
    sendWithFds(a!, text("one"));
    sendWithFds(a!, text("two"));
    const buf = new Uint8Array(4);
    const first = receiveWithFds(b!, buf);
    expect(first).toEqual({ bytes: 4, fds: [] });
    expect(new TextDecoder().decode(buf)).toBe("onet");
    const rest = receiveWithFds(b!, buf);
    expect(new TextDecoder().decode(buf.subarray(0, rest.bytes))).toBe("wo");
  });

  it("the fds of a send come with the receive that reads its first byte, which stops at the end of that send", () => {
    const [a, b] = keep(...unixSocketPair());
    const [e1, e2] = keep(createEventFd(), createEventFd());
    const buf = new Uint8Array(64);
    // Bytes of an earlier send may come along, but nothing after the send with the fds.
    sendWithFds(a!, text("head"));
    sendWithFds(a!, text("body"), [e1!]);
    sendWithFds(a!, text("tail"));
    const first = receiveWithFds(b!, buf);
    keep(...first.fds);
    expect(first.bytes).toBe(8);
    expect(first.fds).toHaveLength(1);
    expect(receiveWithFds(b!, buf)).toEqual({ bytes: 4, fds: [] });
    // Two sends with fds are never received together.
    sendWithFds(a!, text("1"), [e1!]);
    sendWithFds(a!, text("2"), [e1!, e2!]);
    const one = receiveWithFds(b!, buf);
    const two = receiveWithFds(b!, buf);
    keep(...one.fds, ...two.fds);
    expect([one.bytes, one.fds.length, two.bytes, two.fds.length]).toEqual([1, 1, 1, 2]);
    // A receive smaller than the send gets the fds with its first part.
    sendWithFds(a!, text("longer"), [e2!]);
    const part = receiveWithFds(b!, new Uint8Array(2));
    keep(...part.fds);
    expect([part.bytes, part.fds.length]).toEqual([2, 1]);
    expect(receiveWithFds(b!, buf)).toEqual({ bytes: 4, fds: [] });
  });

  it("8 fds fit in one message; more than 8 is a RangeError before anything is sent", () => {
    const [a, b] = keep(...unixSocketPair({ nonBlocking: true }));
    const efds = keep(...Array.from({ length: 9 }, () => createEventFd()));
    expect(() => sendWithFds(a!, text("x"), efds)).toThrow(RangeError);
    expect(receiveWithFds(b!, new Uint8Array(8)).bytes).toBe(WOULD_BLOCK);
    sendWithFds(a!, text("x"), efds.slice(0, 8));
    const got = receiveWithFds(b!, new Uint8Array(8));
    keep(...got.fds);
    expect(got.fds).toHaveLength(8);
    expect(new Set(got.fds).size).toBe(8);
  });

  it("more than 8 fds from the peer is a SyscallError EMSGSIZE, and those received are closed", () => {
    const [a, b] = keep(...unixSocketPair());
    const efds = keep(...Array.from({ length: 10 }, () => createEventFd()));
    // A msghdr with 10 fds, beyond what MessageHeader sends: laid out by hand.
    const controlAt = msghdr.SIZE + iovec.SIZE;
    const buffer = new ArrayBuffer(controlAt + cmsgSpace(40));
    const bytes = new Uint8Array(buffer);
    const u64 = new BigUint64Array(buffer);
    const u32 = new Uint32Array(buffer);
    const data = text("x");
    const base = addressOf(bytes);
    u64[msghdr.msg_iov / 8] = base + BigInt(msghdr.SIZE);
    u64[msghdr.msg_iovlen / 8] = 1n;
    u64[msghdr.msg_control / 8] = base + BigInt(controlAt);
    u64[msghdr.msg_controllen / 8] = BigInt(cmsgSpace(40));
    u64[(msghdr.SIZE + iovec.iov_base) / 8] = addressOf(data);
    u64[(msghdr.SIZE + iovec.iov_len) / 8] = 1n;
    u64[controlAt / 8] = BigInt(cmsgLen(40));
    u32[(controlAt + cmsghdr.cmsg_level) / 4] = SOL_SOCKET;
    u32[(controlAt + cmsghdr.cmsg_type) / 4] = SCM_RIGHTS;
    new Int32Array(buffer, controlAt + CMSG_DATA_OFFSET, 10).set(efds);
    expect(sendmsg(a!, bytes, MSG_NOSIGNAL)).toBe(1);
    expect(data.length).toBe(1); // keeps `data` referenced until after the call

    const before = openFds();
    expect(() => receiveWithFds(b!, new Uint8Array(8))).toThrow(
      expect.objectContaining({ name: "SyscallError", code: "EMSGSIZE", message: expect.stringMatching(/more than 8 file descriptors/) }),
    );
    expect(openFds()).toBe(before);
  });

  it("fds need a byte of data to travel with, and a receive needs room for one", () => {
    const [a, b] = keep(...unixSocketPair());
    const efd = keep(createEventFd())[0]!;
    expect(() => sendWithFds(a!, new Uint8Array(0), [efd])).toThrow(/at least one byte/);
    expect(() => receiveWithFds(b!, new Uint8Array(0))).toThrow(RangeError);
  });

  it("a receive on an empty nonblocking socket reports WOULD_BLOCK, and one on a closed peer end of stream", () => {
    const [a, b] = keep(...unixSocketPair({ nonBlocking: true }));
    const buf = new Uint8Array(8);
    expect(receiveWithFds(b!, buf)).toEqual({ bytes: WOULD_BLOCK, fds: [] });
    sendWithFds(a!, text("z"));
    close(a!);
    expect(receiveWithFds(b!, buf).bytes).toBe(1);
    expect(receiveWithFds(b!, buf)).toEqual({ bytes: 0, fds: [] });
    expect(receiveWithFds(b!, buf)).toEqual({ bytes: 0, fds: [] });
  });

  it("setNonBlocking switches a blocking socket to WOULD_BLOCK", () => {
    const [, b] = keep(...unixSocketPair());
    setNonBlocking(b!, true);
    expect(receiveWithFds(b!, new Uint8Array(8)).bytes).toBe(WOULD_BLOCK);
  });

  it("a full nonblocking socket sends part of a message, then reports WOULD_BLOCK", () => {
    const [a] = keep(...unixSocketPair({ nonBlocking: true }));
    const big = new Uint8Array(1 << 20);
    let sent = 0;
    let n: number;
    while ((n = sendWithFds(a!, big)) !== WOULD_BLOCK) {
      expect(n).toBeGreaterThan(0);
      sent += n;
    }
    expect(sent).toBeGreaterThan(0);
  });

  it("sending to a closed peer is a SyscallError EPIPE that names the call, and raises no SIGPIPE", async () => {
    let sigpipes = 0;
    const onSigpipe = () => sigpipes++;
    process.on("SIGPIPE", onSigpipe);
    try {
      const [a, b] = keep(...unixSocketPair());
      close(b!);
      let error: unknown;
      try {
        sendWithFds(a!, text("lost"), [], "test socket");
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SyscallError);
      expect((error as SyscallError).code).toBe("EPIPE");
      expect((error as SyscallError).message).toMatch(/^test socket: sendmsg\(\) failed: EPIPE/);
      await new Promise((r) => setTimeout(r, 50)); // signals reach JS asynchronously
      expect(sigpipes).toBe(0);

      // The control: the same send without MSG_NOSIGNAL does raise SIGPIPE (caught here,
      // where it would otherwise have killed a process that does not ignore it).
      const m = new MessageHeader();
      const data = text("lost");
      m.prepareSend(data, []);
      expect(() => sendmsg(a!, m.bytes, 0)).toThrow(/EPIPE/);
      await new Promise((r) => setTimeout(r, 50));
      expect(sigpipes).toBe(1);
    } finally {
      process.off("SIGPIPE", onSigpipe);
    }
  });

  it("closes nothing it was given and leaks no fd", () => {
    const before = openFds();
    const [a, b] = unixSocketPair();
    const efd = createEventFd();
    sendWithFds(a, text("x"), [efd]);
    const got = receiveWithFds(b, new Uint8Array(1));
    expect(fcntl(efd, F_GETFD)).toBeGreaterThanOrEqual(0);
    for (const fd of [a, b, efd, ...got.fds]) close(fd);
    expect(openFds()).toBe(before);
  });
});

describe("connectUnixSocket", () => {
  it("connects to a listening socket and sends to it", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-unix-"));
    const sock = path.join(dir, "backend.sock");
    const received: Buffer[] = [];
    const server = net.createServer((c) => c.on("data", (d) => received.push(d)));
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const fd = connectUnixSocket(sock);
      try {
        expect(sendWithFds(fd, text("ping"))).toBe(4);
        for (let i = 0; i < 100 && Buffer.concat(received).length < 4; i++) await new Promise((r) => setTimeout(r, 10));
        expect(Buffer.concat(received).toString()).toBe("ping");
      } finally {
        close(fd); // server.close() waits for its connections to end
      }
    } finally {
      await new Promise((r) => server.close(r));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a path nobody listens on is a SyscallError that says to start the backend, and leaks no fd", () => {
    const before = openFds();
    const missing = path.join(os.tmpdir(), `ixy-no-such-${process.pid}.sock`);
    let error: unknown;
    try {
      connectUnixSocket(missing, {}, "vhost-user");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SyscallError);
    expect((error as SyscallError).code).toBe("ENOENT");
    expect((error as Error).message).toMatch(/^vhost-user: connecting to .*: connect\(\) failed: ENOENT .*start the backend first/);
    expect(openFds()).toBe(before);
  });

  it("a path too long for sun_path is a RangeError", () => {
    expect(() => connectUnixSocket("/tmp/" + "x".repeat(200))).toThrow(RangeError);
  });
});

describe("eventfd", () => {
  it("reads 0 when nothing was written, and the sum of writes otherwise", () => {
    const efd = keep(createEventFd())[0]!;
    expect(eventfdRead(efd)).toBe(0);
    eventfdWrite(efd);
    eventfdWrite(efd, 41);
    expect(eventfdRead(efd)).toBe(42);
    expect(eventfdRead(efd)).toBe(0);
    expect(() => eventfdWrite(efd, 0)).toThrow(RangeError);
    expect(fcntl(efd, F_GETFD) & FD_CLOEXEC).toBe(FD_CLOEXEC);
  });

  it("a closed eventfd is a SyscallError EBADF", () => {
    const efd = createEventFd();
    close(efd);
    expect(() => eventfdRead(efd)).toThrow(expect.objectContaining({ name: "SyscallError", code: "EBADF" }));
  });
});
