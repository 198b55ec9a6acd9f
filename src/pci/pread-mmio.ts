/**
 * Mmio over a file descriptor: each access is one pread/pwrite of the register's width at
 * `base + offset`. VFIO exposes PCI configuration space and I/O-port BARs this way (they cannot
 * be mmapped). A system call per access: fine at init and for the odd notification, far too slow
 * for anything per packet.
 */
import { pread, pwrite } from "../sys/libc.ts";
import { checkAccess, type Mmio } from "./mmio.ts";
import type { SharedMmio } from "./shared-mmio.ts";

export class PreadMmio implements Mmio {
  readonly name: string;
  readonly size: number;
  /** Accesses run code here, so there are no plain words to store into. */
  readonly words16 = null;
  readonly words32 = null;
  readonly #fd: number;
  readonly #base: number;
  readonly #scratch = new ArrayBuffer(4);
  readonly #b1 = new Uint8Array(this.#scratch, 0, 1);
  readonly #b2 = new Uint8Array(this.#scratch, 0, 2);
  readonly #b4 = new Uint8Array(this.#scratch, 0, 4);
  readonly #u8 = new Uint8Array(this.#scratch);
  readonly #u16 = new Uint16Array(this.#scratch);
  readonly #u32 = new Uint32Array(this.#scratch);

  constructor(name: string, fd: number, base: number, size: number) {
    this.name = name;
    this.#fd = fd;
    this.#base = base;
    this.size = size;
  }

  /** For a worker thread: the descriptor is the process's, so it makes the same pwrite calls. */
  share(_offsets: readonly number[]): SharedMmio {
    return { kind: "fd", name: this.name, fd: this.#fd, base: this.#base, size: this.size };
  }

  read8(offset: number): number {
    checkAccess(this, offset, 1);
    pread(this.#fd, this.#b1, this.#base + offset, this.name);
    return this.#u8[0]!;
  }
  read16(offset: number): number {
    checkAccess(this, offset, 2);
    pread(this.#fd, this.#b2, this.#base + offset, this.name);
    return this.#u16[0]!;
  }
  read32(offset: number): number {
    checkAccess(this, offset, 4);
    pread(this.#fd, this.#b4, this.#base + offset, this.name);
    return this.#u32[0]!;
  }
  write8(offset: number, value: number): void {
    checkAccess(this, offset, 1);
    this.#u8[0] = value;
    pwrite(this.#fd, this.#b1, this.#base + offset, this.name);
  }
  write16(offset: number, value: number): void {
    checkAccess(this, offset, 2);
    this.#u16[0] = value;
    pwrite(this.#fd, this.#b2, this.#base + offset, this.name);
  }
  write32(offset: number, value: number): void {
    checkAccess(this, offset, 4);
    this.#u32[0] = value;
    pwrite(this.#fd, this.#b4, this.#base + offset, this.name);
  }
}
