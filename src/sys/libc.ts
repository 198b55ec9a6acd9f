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
  // ioctl is variadic; fixed prototypes per argument shape are faster and pass the argument the
  // same way on x86-64 and arm64 (integer or pointer in a register).
  ioctlNone: libc.func("ioctl", "int", ["int", "unsigned long"]),
  ioctlInt: libc.func("ioctl", "int", ["int", "unsigned long", "unsigned long"]),
  ioctlBytes: libc.func("ioctl", "int", ["int", "unsigned long", "_Inout_ uint8_t *"]),
  ioctlString: libc.func("ioctl", "int", ["int", "unsigned long", "const char *"]),
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

export function mmap(length: number, prot: number, flags: number, fd: number, offset: number, context?: string): bigint {
  const ptr = c.mmap(null, length, prot, flags, fd, offset) as bigint;
  if (ptr === MAP_FAILED || ptr === -1n) fail("mmap", context);
  return ptr;
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

/** Pins the calling thread (pid 0) to the given CPUs. */
export function schedSetaffinity(cpus: readonly number[]): void {
  const mask = new Uint8Array(128); // cpu_set_t: 1024 bits
  for (const cpu of cpus) {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= 1024) throw new RangeError(`CPU number must be 0..1023, got ${cpu}`);
    mask[cpu >>> 3]! |= 1 << (cpu & 7);
  }
  if ((c.schedSetaffinity(0, mask.length, mask) as number) < 0) fail("sched_setaffinity");
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
 * An ArrayBuffer aliasing [ptr, ptr + length) — no copy. It does not own the memory: touching
 * it after munmap kills the process (SIGSEGV), so views are created once and dropped before the
 * mapping goes.
 */
export function view(ptr: bigint, length: number): ArrayBuffer {
  return koffi.view(ptr, length);
}
