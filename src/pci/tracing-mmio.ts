/**
 * TracingMmio: wraps another Mmio and reports every register access to a callback — for tests
 * that check an init sequence step by step, and for anyone who wants to watch a driver talk to
 * its device. Costs a function call per access: not for benchmarks.
 */
import type { Mmio } from "./mmio.ts";

export interface RegisterAccess {
  readonly op: "read" | "write";
  readonly offset: number;
  readonly width: 1 | 2 | 4;
  readonly value: number;
}

export class TracingMmio implements Mmio {
  readonly name: string;
  readonly size: number;
  /** Accesses run code here, so there are no plain words to store into. */
  readonly words16 = null;
  readonly words32 = null;
  readonly #inner: Mmio;
  readonly #sink: (access: RegisterAccess) => void;

  constructor(inner: Mmio, sink: (access: RegisterAccess) => void) {
    this.#inner = inner;
    this.#sink = sink;
    this.name = inner.name;
    this.size = inner.size;
  }

  read8(offset: number): number { return this.#read(offset, 1, this.#inner.read8(offset)); }
  read16(offset: number): number { return this.#read(offset, 2, this.#inner.read16(offset)); }
  read32(offset: number): number { return this.#read(offset, 4, this.#inner.read32(offset)); }
  write8(offset: number, value: number): void { this.#write(offset, 1, value & 0xff); this.#inner.write8(offset, value); }
  write16(offset: number, value: number): void { this.#write(offset, 2, value & 0xffff); this.#inner.write16(offset, value); }
  write32(offset: number, value: number): void { this.#write(offset, 4, value >>> 0); this.#inner.write32(offset, value); }

  #read(offset: number, width: 1 | 2 | 4, value: number): number {
    this.#sink({ op: "read", offset, width, value });
    return value;
  }
  #write(offset: number, width: 1 | 2 | 4, value: number): void {
    this.#sink({ op: "write", offset, width, value });
  }
}
