/**
 * Mmio: a window of device registers addressed by byte offset, little-endian, with an explicit
 * access width — the shape of DataView, but never implemented with DataView.
 *
 * Why not DataView or Buffer.readUInt32LE? V8 implements those in its interpreter and baseline
 * tiers as one-byte loads (getUint32 becomes four 8-bit reads); only TurboFan-optimized code
 * does a single 32-bit access, and code may deoptimize at any moment. A device register is not
 * memory: reading the four bytes of a 32-bit register separately can return a torn value, and a
 * clear-on-read statistics counter is cleared by the first byte read. Typed-array element access
 * (Uint8Array, Uint16Array, Uint32Array) is one naturally aligned access of the element width in
 * every tier, so that is what every implementation here uses.
 */
import { shareView } from "../threads/shared-view.ts";
import type { SharedMmio } from "./shared-mmio.ts";

export interface Mmio {
  /** Names the window in error messages, e.g. "0000:01:00.0 BAR0". */
  readonly name: string;
  /** Size of the window in bytes. */
  readonly size: number;
  read8(offset: number): number;
  read16(offset: number): number;
  read32(offset: number): number;
  write8(offset: number, value: number): void;
  write16(offset: number, value: number): void;
  write32(offset: number, value: number): void;
  /**
   * The window as 16- and 32-bit words when every access is a plain memory access (a mapped
   * BAR), so that a hot loop can store a doorbell (a ring's tail) straight into it; null when
   * accesses need code to run (device models, pread/pwrite I/O BARs, tracing).
   */
  readonly words16: Uint16Array | null;
  readonly words32: Uint32Array | null;
}

/** Throws a RangeError unless [offset, offset + width) lies inside the window and is aligned. */
export function checkAccess(mmio: Mmio, offset: number, width: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + width > mmio.size || offset % width !== 0) {
    throw new RangeError(
      `${mmio.name}: ${width * 8}-bit access at offset 0x${Number(offset).toString(16)} is outside the ` +
        `0x${mmio.size.toString(16)}-byte window or not aligned to ${width} bytes`,
    );
  }
}

/**
 * Mmio over memory: a memory-mapped BAR (through a koffi view of the mmap) or any ArrayBuffer.
 * Every access is one typed-array element access of the register's width.
 */
export class TypedArrayMmio implements Mmio {
  readonly name: string;
  readonly size: number;
  readonly #u8: Uint8Array;
  readonly #u16: Uint16Array;
  readonly #u32: Uint32Array;

  constructor(name: string, buffer: ArrayBufferLike, byteOffset = 0, size = buffer.byteLength - byteOffset) {
    if (byteOffset % 4 !== 0) throw new RangeError(`${name}: register window must start 4-byte aligned`);
    this.name = name;
    this.size = size;
    this.#u8 = new Uint8Array(buffer, byteOffset, size);
    this.#u16 = new Uint16Array(buffer, byteOffset, size >>> 1);
    this.#u32 = new Uint32Array(buffer, byteOffset, size >>> 2);
  }

  /**
   * For a worker thread that stores doorbells: it gets its own view of the same memory (a mapped
   * BAR, or a SharedArrayBuffer). `offsets` need no mailbox here: any store reaches the device.
   */
  share(_offsets: readonly number[]): SharedMmio {
    return { kind: "memory", name: this.name, bytes: shareView(this.#u8, this.name) };
  }

  /** Plain memory: a subclass that gives register accesses a meaning must return null here. */
  get words16(): Uint16Array | null {
    return this.#u16;
  }
  get words32(): Uint32Array | null {
    return this.#u32;
  }

  read8(offset: number): number {
    if (offset >= this.size || offset < 0) checkAccess(this, offset, 1);
    return this.#u8[offset]!;
  }
  read16(offset: number): number {
    if ((offset & 1) !== 0 || offset + 2 > this.size || offset < 0) checkAccess(this, offset, 2);
    return this.#u16[offset >>> 1]!;
  }
  read32(offset: number): number {
    if ((offset & 3) !== 0 || offset + 4 > this.size || offset < 0) checkAccess(this, offset, 4);
    return this.#u32[offset >>> 2]!;
  }
  write8(offset: number, value: number): void {
    if (offset >= this.size || offset < 0) checkAccess(this, offset, 1);
    this.#u8[offset] = value;
  }
  write16(offset: number, value: number): void {
    if ((offset & 1) !== 0 || offset + 2 > this.size || offset < 0) checkAccess(this, offset, 2);
    this.#u16[offset >>> 1] = value;
  }
  write32(offset: number, value: number): void {
    if ((offset & 3) !== 0 || offset + 4 > this.size || offset < 0) checkAccess(this, offset, 4);
    this.#u32[offset >>> 2] = value;
  }
}
