/**
 * The only place that calls koffi: the libc functions ixy.ts needs, declared with fixed
 * prototypes, and errno turned into a SyscallError. Each call costs 25-50 ns plus the system
 * call, so none of these belong on the per-packet path — drivers call them at init only.
 *
 * Pointers (mmap results) are BigInts, as koffi returns them for `void *`.
 */
import { createRequire } from "node:module";
import * as os from "node:os";
import * as util from "node:util";
import { SyscallError } from "../errors.ts";

const require = createRequire(import.meta.url);
const koffi = require("koffi") as typeof import("koffi");
const libc = koffi.load("libc.so.6");

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_LOCKED = 0x2000;
export const MAP_POPULATE = 0x8000;
export const MAP_HUGETLB = 0x40000;
export const MAP_FAILED = 0xffffffffffffffffn;
export const _SC_PAGESIZE = 30;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NONBLOCK = 0o4000;
export const F_GETFD = 1;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;
/** File seals (memfds only): F_ADD_SEALS/F_GET_SEALS and the F_SEAL_* bits. */
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
export const F_SEAL_SEAL = 1;
export const F_SEAL_SHRINK = 2;
export const F_SEAL_GROW = 4;
export const F_SEAL_WRITE = 8;
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const EFD_SEMAPHORE = 1;
export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;
export const MFD_CLOEXEC = 1;
export const MFD_ALLOW_SEALING = 2;
export const MFD_HUGETLB = 4;
/** MFD_HUGETLB with an explicit page size: log2(2 MiB) = 21 in bits 26..31. */
export const MFD_HUGE_2MB = 21 << 26;
/** struct stat (x86-64): only st_size is read. */
export const stat_layout = { st_size: 48, SIZE: 144 } as const;

/**
 * What the nonblocking paths (recvmsg, sendmsg, read, write) return instead of throwing when the
 * call would block (EAGAIN): no data yet is the normal case for a polled socket or eventfd.
 */
export const WOULD_BLOCK = -1;

const c = {
  open: libc.func("int open(const char *path, int flags)"),
  close: libc.func("int close(int fd)"),
  mmap: libc.func("void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)"),
  munmap: libc.func("int munmap(void *addr, size_t length)"),
  mlock: libc.func("int mlock(void *addr, size_t length)"),
  munlock: libc.func("int munlock(void *addr, size_t length)"),
  pread: libc.func("int64_t pread(int fd, _Out_ uint8_t *buf, size_t count, int64_t offset)"),
  pwrite: libc.func("int64_t pwrite(int fd, const uint8_t *buf, size_t count, int64_t offset)"),
  sysconf: libc.func("long sysconf(int name)"),
  geteuid: libc.func("uint32_t geteuid()"),
  schedSetaffinity: libc.func("int sched_setaffinity(int pid, size_t cpusetsize, const uint8_t *mask)"),
  schedGetaffinity: libc.func("int sched_getaffinity(int pid, size_t cpusetsize, _Out_ uint8_t *mask)"),
  gettid: libc.func("int gettid()"),
  // ioctl is variadic; fixed prototypes per argument shape are faster and pass the argument the
  // same way on x86-64 and arm64 (integer or pointer in a register).
  ioctlNone: libc.func("ioctl", "int", ["int", "unsigned long"]),
  ioctlInt: libc.func("ioctl", "int", ["int", "unsigned long", "unsigned long"]),
  ioctlBytes: libc.func("ioctl", "int", ["int", "unsigned long", "_Inout_ uint8_t *"]),
  ioctlString: libc.func("ioctl", "int", ["int", "unsigned long", "const char *"]),
  // open and fcntl are variadic too: the same fixed-prototype approach as ioctl.
  openMode: libc.func("open", "int", ["const char *", "int", "uint32_t"]),
  fcntl: libc.func("fcntl", "int", ["int", "int", "int"]),
  read: libc.func("int64_t read(int fd, _Out_ uint8_t *buf, size_t count)"),
  write: libc.func("int64_t write(int fd, const uint8_t *buf, size_t count)"),
  ftruncate: libc.func("int ftruncate(int fd, int64_t length)"),
  fstat: libc.func("int fstat(int fd, _Out_ uint8_t *statbuf)"),
  memfdCreate: libc.func("int memfd_create(const char *name, uint32_t flags)"),
  eventfd: libc.func("int eventfd(uint32_t initval, int flags)"),
  socket: libc.func("int socket(int domain, int type, int protocol)"),
  socketpair: libc.func("int socketpair(int domain, int type, int protocol, _Out_ int32_t *sv)"),
  connect: libc.func("int connect(int fd, const uint8_t *addr, uint32_t addrlen)"),
  bind: libc.func("int bind(int fd, const uint8_t *addr, uint32_t addrlen)"),
  setsockopt: libc.func("int setsockopt(int fd, int level, int name, const uint8_t *value, uint32_t length)"),
  listen: libc.func("int listen(int fd, int backlog)"),
  accept4: libc.func("int accept4(int fd, void *addr, void *addrlen, int flags)"),
  poll: libc.func("int poll(_Inout_ uint8_t *fds, uint64_t nfds, int timeout)"),
  epollCreate1: libc.func("int epoll_create1(int flags)"),
  epollCtl: libc.func("int epoll_ctl(int epfd, int op, int fd, const uint8_t *event)"),
  // Called with .async only (src/irq/irq-poller.ts): it blocks a libuv threadpool thread.
  epollWait: libc.func("int epoll_wait(int epfd, _Out_ uint8_t *events, int maxevents, int timeout)"),
  // The msghdr's own fields point to other buffers (iovec, data, control): see addressOf().
  sendmsg: libc.func("int64_t sendmsg(int fd, const uint8_t *msg, int flags)"),
  recvmsg: libc.func("int64_t recvmsg(int fd, _Inout_ uint8_t *msg, int flags)"),
  // mbind and move_pages live in libnuma, not libc: glibc has only the raw syscall(2), variadic,
  // declared here with the fixed argument shapes of those two calls (as ioctl above).
  syscallMbind: libc.func("syscall", "long", ["long", "void *", "uint64_t", "int", "const uint8_t *", "uint64_t", "uint32_t"]),
  syscallMovePages: libc.func("syscall", "long", ["long", "int", "uint64_t", "const uint8_t *", "void *", "_Out_ uint8_t *", "int"]),
};

const errnoMap = util.getSystemErrorMap();

/** errno's symbolic name ("ENOENT") and text ("no such file or directory"). */
export function describeErrno(errno: number): { code: string; text: string } {
  const entry = errnoMap.get(-errno);
  return entry ? { code: entry[0], text: entry[1] } : { code: `E${errno}`, text: `errno ${errno}` };
}

export const ERRNO = os.constants.errno;

function fail(call: string, context?: string): never {
  const errno = koffi.errno();
  const { code, text } = describeErrno(errno);
  throw new SyscallError(call, errno, code, text, context);
}

/** open(2); throws SyscallError. `context` prefixes the message ("0000:01:00.0: opening ..."). */
export function open(path: string, flags: number, context?: string): number {
  const fd = c.open(path, flags | O_CLOEXEC) as number;
  if (fd < 0) fail(`open ${path}`, context);
  return fd;
}

export function close(fd: number): void {
  if ((c.close(fd) as number) < 0) fail("close");
}

/** open(path, flags | O_CLOEXEC, mode): for O_CREAT. */
export function openMode(path: string, flags: number, mode: number, context?: string): number {
  const fd = c.openMode(path, flags | O_CLOEXEC, mode) as number;
  if (fd < 0) fail(`open ${path}`, context);
  return fd;
}

/** fcntl(fd, cmd, arg) with an integer argument; returns the (non-negative) result. */
export function fcntl(fd: number, cmd: number, arg = 0, context?: string): number {
  const r = c.fcntl(fd, cmd, arg) as number;
  if (r < 0) fail(`fcntl ${cmd}`, context);
  return r;
}

export function ftruncate(fd: number, length: number, context?: string): void {
  if ((c.ftruncate(fd, length) as number) < 0) fail("ftruncate", context);
}

/** st_size of fstat(2). */
export function fstatSize(fd: number, context?: string): number {
  const buf = new Uint8Array(stat_layout.SIZE);
  if ((c.fstat(fd, buf) as number) < 0) fail("fstat", context);
  const size = new BigInt64Array(buf.buffer, stat_layout.st_size, 1)[0]!;
  return Number(size);
}

/** memfd_create(2): an anonymous file, gone when its last fd and mapping are. */
export function memfdCreate(name: string, flags: number, context?: string): number {
  const fd = c.memfdCreate(name, flags) as number;
  if (fd < 0) fail("memfd_create", context);
  return fd;
}

/** eventfd(2). The counter is read and written as 8 bytes: see src/sys/eventfd.ts. */
export function eventfd(initval: number, flags: number, context?: string): number {
  const fd = c.eventfd(initval, flags) as number;
  if (fd < 0) fail("eventfd", context);
  return fd;
}

/**
 * Repeats a call that returns a count while it fails with EINTR (a signal arrived, as Node's own
 * handlers can make happen any time); EAGAIN becomes WOULD_BLOCK.
 */
function countOrWouldBlock(call: () => number, name: string, context?: string): number {
  for (;;) {
    const n = call();
    if (n >= 0) return n;
    const errno = koffi.errno();
    if (errno === ERRNO.EINTR) continue;
    if (errno === ERRNO.EAGAIN || errno === ERRNO.EWOULDBLOCK) return WOULD_BLOCK;
    const { code, text } = describeErrno(errno);
    throw new SyscallError(name, errno, code, text, context);
  }
}

/** read(2) into buf: the byte count (0 at end of file), or WOULD_BLOCK. */
export function read(fd: number, buf: Uint8Array, context?: string): number {
  return countOrWouldBlock(() => Number(c.read(fd, buf, buf.length)), "read", context);
}

/** write(2) of buf: the byte count written, or WOULD_BLOCK. */
export function write(fd: number, buf: Uint8Array, context?: string): number {
  return countOrWouldBlock(() => Number(c.write(fd, buf, buf.length)), "write", context);
}

/** socket(2), always close-on-exec. */
export function socket(domain: number, type: number, protocol: number, context?: string): number {
  const fd = c.socket(domain, type | SOCK_CLOEXEC, protocol) as number;
  if (fd < 0) fail("socket", context);
  return fd;
}

/** socketpair(2), always close-on-exec: two connected sockets. */
export function socketpair(domain: number, type: number, protocol: number, context?: string): [number, number] {
  const sv = new Int32Array(2);
  if ((c.socketpair(domain, type | SOCK_CLOEXEC, protocol, sv) as number) < 0) fail("socketpair", context);
  return [sv[0]!, sv[1]!];
}

/** connect(2) to the socket address in `addr` (e.g. a struct sockaddr_un). */
export function connect(fd: number, addr: Uint8Array, addrlen: number, context?: string): void {
  // Not retried on EINTR: an interrupted connect goes on in the background (unix sockets connect
  // at once, so this does not happen in practice).
  if ((c.connect(fd, addr, addrlen) as number) < 0) fail("connect", context);
}

/** bind(2) to the socket address in `addr` (e.g. a struct sockaddr_un). */
export function bind(fd: number, addr: Uint8Array, addrlen: number, context?: string): void {
  if ((c.bind(fd, addr, addrlen) as number) < 0) fail("bind", context);
}

/** setsockopt(2) with an option value of bytes. */
export function setsockopt(fd: number, level: number, name: number, value: Uint8Array, context?: string): void {
  if ((c.setsockopt(fd, level, name, value, value.length) as number) < 0) fail("setsockopt", context);
}

/** listen(2). */
export function listen(fd: number, backlog: number, context?: string): void {
  if ((c.listen(fd, backlog) as number) < 0) fail("listen", context);
}

/**
 * accept4(2) without the peer's address: a new socket with `flags` (SOCK_CLOEXEC, SOCK_NONBLOCK),
 * or WOULD_BLOCK when none is waiting on a nonblocking socket. Retried when a signal interrupted
 * it (EINTR) or the peer gave up before it was accepted (ECONNABORTED).
 */
export function accept4(fd: number, flags: number, context?: string): number {
  for (;;) {
    const r = c.accept4(fd, null, null, flags) as number;
    if (r >= 0) return r;
    const errno = koffi.errno();
    if (errno === ERRNO.EINTR || errno === ERRNO.ECONNABORTED) continue;
    if (errno === ERRNO.EAGAIN || errno === ERRNO.EWOULDBLOCK) return WOULD_BLOCK;
    const { code, text } = describeErrno(errno);
    throw new SyscallError("accept4", errno, code, text, context);
  }
}

/** What poll() returns when a signal interrupted it (EINTR): the caller waits again. */
export const INTERRUPTED = -2;

/** poll(2) on the `nfds` struct pollfd in `fds`: how many are ready (0: timeout), or INTERRUPTED. */
export function poll(fds: Uint8Array, nfds: number, timeoutMs: number, context?: string): number {
  const n = c.poll(fds, nfds, timeoutMs) as number;
  if (n >= 0) return n;
  if (koffi.errno() === ERRNO.EINTR) return INTERRUPTED;
  fail("poll", context);
}

export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x1;
/**
 * struct epoll_event on x86-64: { uint32_t events; uint64_t data; }, packed (12 bytes; other
 * architectures pad it to 16). data is ours: the fd, in its low 32 bits.
 */
export const epoll_event = { events: 0, data: 4, SIZE: 12 } as const;

/** epoll_create1(2). */
export function epollCreate1(flags: number, context?: string): number {
  const fd = c.epollCreate1(flags) as number;
  if (fd < 0) fail("epoll_create1", context);
  return fd;
}

/** epoll_ctl(2) with the struct epoll_event in `event` (ignored by EPOLL_CTL_DEL). */
export function epollCtl(epfd: number, op: number, fd: number, event: Uint8Array, context?: string): void {
  if ((c.epollCtl(epfd, op, fd, event) as number) < 0) fail("epoll_ctl", context);
}

/**
 * epoll_wait(2) on a libuv threadpool thread: `done` runs on this thread's event loop with the
 * number of ready events written to `events`, 0 after the timeout, or -1 when the call failed
 * (errno is the worker thread's and is not carried over; EINTR is the only failure a valid
 * epoll fd can have). The thread is held for the whole wait: see src/irq/irq-poller.ts.
 */
export function epollWaitAsync(epfd: number, events: Uint8Array, maxEvents: number, timeoutMs: number, done: (n: number) => void): void {
  c.epollWait.async(epfd, events, maxEvents, timeoutMs, (err: unknown, n: number) => {
    if (err) throw err;
    done(n < 0 ? -1 : n);
  });
}

/**
 * sendmsg(2) of the struct msghdr in `msg`: the byte count sent (a stream socket may send fewer
 * than asked when nonblocking), or WOULD_BLOCK. Pass MSG_NOSIGNAL in `flags` so that a closed
 * peer is an EPIPE error rather than a SIGPIPE.
 */
export function sendmsg(fd: number, msg: Uint8Array, flags: number, context?: string): number {
  return countOrWouldBlock(() => Number(c.sendmsg(fd, msg, flags)), "sendmsg", context);
}

/** recvmsg(2) into the struct msghdr in `msg`: the byte count (0 at end of stream), or WOULD_BLOCK. */
export function recvmsg(fd: number, msg: Uint8Array, flags: number, context?: string): number {
  return countOrWouldBlock(() => Number(c.recvmsg(fd, msg, flags)), "recvmsg", context);
}

export function mmap(length: number, prot: number, flags: number, fd: number, offset: number, context?: string): bigint {
  const ptr = c.mmap(null, length, prot, flags, fd, offset) as bigint;
  if (ptr === MAP_FAILED || ptr === -1n) fail("mmap", context);
  return ptr;
}

/**
 * mmap(2) of `length` bytes of file `fd` from offset 0, readable, writable and MAP_SHARED: the
 * memory other processes mapping the same file (a vhost-user backend) see too. `extraFlags`:
 * MAP_POPULATE to fault every page in now.
 */
export function mmapShared(fd: number, length: number, extraFlags = 0, context?: string): bigint {
  return mmap(length, PROT_READ | PROT_WRITE, MAP_SHARED | extraFlags, fd, 0, context);
}

export function munmap(addr: bigint, length: number): void {
  if ((c.munmap(addr, length) as number) < 0) fail("munmap");
}

export function mlock(addr: bigint, length: number, context?: string): void {
  if ((c.mlock(addr, length) as number) < 0) fail("mlock", context);
}

export function munlock(addr: bigint, length: number): void {
  if ((c.munlock(addr, length) as number) < 0) fail("munlock");
}

/** pread(2) of exactly buf.length bytes; a short read is an error. */
export function pread(fd: number, buf: Uint8Array, offset: number, context?: string): void {
  const n = Number(c.pread(fd, buf, buf.length, offset));
  if (n < 0) fail("pread", context);
  if (n !== buf.length) throw new SyscallError("pread", 0, "EIO", `short read: ${n} of ${buf.length} bytes`, context);
}

/** pwrite(2) of exactly buf.length bytes; a short write is an error. */
export function pwrite(fd: number, buf: Uint8Array, offset: number, context?: string): void {
  const n = Number(c.pwrite(fd, buf, buf.length, offset));
  if (n < 0) fail("pwrite", context);
  if (n !== buf.length) throw new SyscallError("pwrite", 0, "EIO", `short write: ${n} of ${buf.length} bytes`, context);
}

export function pageSize(): number {
  return Number(c.sysconf(_SC_PAGESIZE));
}

export function geteuid(): number {
  return c.geteuid() as number;
}

/** cpu_set_t's size in glibc: 1024 bits. */
export const CPU_SETSIZE = 1024;

/** Pins the calling thread (pid 0) to the given CPUs. */
export function schedSetaffinity(cpus: readonly number[], context?: string): void {
  const mask = new Uint8Array(CPU_SETSIZE / 8);
  for (const cpu of cpus) {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= CPU_SETSIZE) throw new RangeError(`CPU number must be 0..1023, got ${cpu}`);
    mask[cpu >>> 3]! |= 1 << (cpu & 7);
  }
  if ((c.schedSetaffinity(0, mask.length, mask) as number) < 0) fail("sched_setaffinity", context);
}

/** The CPUs the calling thread (pid 0) may run on, ascending. */
export function schedGetaffinity(context?: string): number[] {
  const mask = new Uint8Array(CPU_SETSIZE / 8);
  if ((c.schedGetaffinity(0, mask.length, mask) as number) < 0) fail("sched_getaffinity", context);
  const cpus: number[] = [];
  for (let cpu = 0; cpu < CPU_SETSIZE; cpu++) if (mask[cpu >>> 3]! & (1 << (cpu & 7))) cpus.push(cpu);
  return cpus;
}

/** gettid(2): the calling thread's id (the pid for the main thread), as in /proc/self/task/<tid>. */
export function gettid(): number {
  return c.gettid() as number;
}

/** x86-64 system call numbers (asm/unistd_64.h) and the constants of mbind(2) / move_pages(2). */
export const SYS_mbind = 237;
export const SYS_move_pages = 279;
export const MPOL_BIND = 2;
export const MPOL_MF_STRICT = 1;

/**
 * mbind(2): memory of [addr, addr+length) comes from NUMA node `node` only (MPOL_BIND) when it is
 * first touched. Must be called before the pages are faulted in; a nodemask of 1024 bits.
 */
export function mbindNode(addr: bigint, length: number, node: number, context?: string): void {
  if (!Number.isInteger(node) || node < 0 || node >= 1024) throw new RangeError(`NUMA node must be 0..1023, got ${node}`);
  const mask = new Uint8Array(128);
  mask[node >>> 3]! |= 1 << (node & 7);
  if (Number(c.syscallMbind(SYS_mbind, addr, length, MPOL_BIND, mask, mask.length * 8, 0)) < 0) fail("mbind", context);
}

/**
 * move_pages(2) with nodes = NULL: moves nothing, returns for each page address the NUMA node it
 * is on (or a negative errno for that page, e.g. -ENOENT when it is not faulted in).
 */
export function pageNodes(addrs: readonly bigint[], context?: string): number[] {
  const pages = new BigUint64Array(addrs);
  const status = new Int32Array(addrs.length);
  const r = Number(c.syscallMovePages(SYS_move_pages, 0, addrs.length, new Uint8Array(pages.buffer), null, new Uint8Array(status.buffer), 0));
  if (r < 0) fail("move_pages", context);
  return [...status];
}

/** ioctl(fd, request) with no argument; returns the (non-negative) result. */
export function ioctl(fd: number, request: number, context?: string): number {
  const r = c.ioctlNone(fd, request) as number;
  if (r < 0) fail(`ioctl 0x${request.toString(16)}`, context);
  return r;
}

/** ioctl(fd, request, integer argument). */
export function ioctlInt(fd: number, request: number, arg: number, context?: string): number {
  const r = c.ioctlInt(fd, request, arg) as number;
  if (r < 0) fail(`ioctl 0x${request.toString(16)}`, context);
  return r;
}

/** ioctl(fd, request, pointer to a struct in `buf`), which the kernel may read and write. */
export function ioctlBytes(fd: number, request: number, buf: Uint8Array, context?: string): number {
  const r = c.ioctlBytes(fd, request, buf) as number;
  if (r < 0) fail(`ioctl 0x${request.toString(16)}`, context);
  return r;
}

/** ioctl(fd, request, NUL-terminated string). */
export function ioctlString(fd: number, request: number, arg: string, context?: string): number {
  const r = c.ioctlString(fd, request, arg) as number;
  if (r < 0) fail(`ioctl 0x${request.toString(16)}`, context);
  return r;
}

/**
 * The address of a typed array's first byte, for struct fields that point to other buffers (a
 * msghdr's iovec and control buffer, an iovec's data). koffi.address() returns the address of the
 * backing store, the same one koffi passes when the array itself is an argument. V8 never moves
 * a backing store; the only typed arrays it keeps inside the (moving) JS heap are small ones
 * without a backing store yet, and asking for the address gives them one first. So the address
 * stays valid for as long as the array is alive: the caller must hold a reference to it until the
 * call that uses the address returns (a local that is no longer used may be dropped by optimized
 * code, so keep it in an object that outlives the call).
 *
 * (koffi.alloc() memory would be stable as well, but must be freed by hand and filled through a
 * view; buffers owned by the garbage collector cannot leak.)
 */
export function addressOf(array: ArrayBufferView): bigint {
  return koffi.address(array);
}

/**
 * An ArrayBuffer aliasing [ptr, ptr + length) — no copy. It does not own the memory: touching
 * it after munmap kills the process (SIGSEGV), so views are created once and dropped before the
 * mapping goes.
 */
export function view(ptr: bigint, length: number): ArrayBuffer {
  const buffer = koffi.view(ptr, length);
  mappedAt.set(buffer, ptr);
  return buffer;
}

/**
 * Where each view() buffer starts, so that another thread of the process can make its own view of
 * the same memory (src/threads/shared-view.ts): an ArrayBuffer that aliases foreign memory cannot
 * be sent to a worker, but its address can, and the address means the same memory in every
 * thread of the process.
 */
const mappedAt = new WeakMap<ArrayBuffer, bigint>();

/** The address of byte 0 of a buffer made by view(), or null for any other buffer. */
export function mappedAddress(buffer: ArrayBufferLike): bigint | null {
  return mappedAt.get(buffer as ArrayBuffer) ?? null;
}
