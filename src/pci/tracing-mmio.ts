/**
 * TracingMmio: wraps another Mmio and reports every register access to a sink, then (for a
 * write) does it on the window it wraps. It is the one tracing wrapper of the project: trace
 * mode (src/pci/register-trace.ts) gives it a sink that names and decodes the registers, and
 * tests give it one that records the accesses of an init sequence step by step.
 *
 * The sink gets the access as plain arguments — an op from MmioOp and three numbers — so that
 * the wrapper itself builds nothing per access: a sink that wants a record or a line makes it,
 * one that only counts does not pay for it. Still, every access is a function call more than
 * without the wrapper: not for benchmarks (the driver wraps nothing when trace is off).
 */
import type { Mmio } from "./mmio.ts";
import { shareMmio, type ShareableMmio, type SharedMmio } from "./shared-mmio.ts";

/** What an access did: constants, so that passing one to the sink allocates nothing. */
export const MmioOp = { read: "read", write: "write" } as const;
export type MmioOp = (typeof MmioOp)[keyof typeof MmioOp];

/**
 * Receives each access: a read after the inner window answered (`value` is what it returned), a
 * write before the inner window gets it (so the report comes first even if the write throws or
 * its side effects print). `value` is unsigned and cut to `width` bytes.
 */
export type MmioAccessSink = (op: MmioOp, offset: number, width: 1 | 2 | 4, value: number) => void;

/** One access as a record, for a sink that collects them (tests compare lists of these). */
export interface RegisterAccess {
  readonly op: MmioOp;
  readonly offset: number;
  readonly width: 1 | 2 | 4;
  readonly value: number;
}

export class TracingMmio implements ShareableMmio {
  readonly name: string;
  readonly size: number;
  /** Accesses run code here, so there are no plain words to store into: hot loops take write32/write16. */
  readonly words16 = null;
  readonly words32 = null;
  readonly #inner: Mmio;
  readonly #sink: MmioAccessSink;

  constructor(inner: Mmio, sink: MmioAccessSink) {
    this.#inner = inner;
    this.#sink = sink;
    this.name = inner.name;
    this.size = inner.size;
  }

  // Reads hand back exactly what the inner window returned: tracing must not change what the
  // driver sees, only the report is normalised.
  read8(offset: number): number {
    const value = this.#inner.read8(offset);
    this.#sink(MmioOp.read, offset, 1, value & 0xff);
    return value;
  }
  read16(offset: number): number {
    const value = this.#inner.read16(offset);
    this.#sink(MmioOp.read, offset, 2, value & 0xffff);
    return value;
  }
  read32(offset: number): number {
    const value = this.#inner.read32(offset);
    this.#sink(MmioOp.read, offset, 4, value >>> 0);
    return value;
  }
  write8(offset: number, value: number): void {
    this.#sink(MmioOp.write, offset, 1, value & 0xff);
    this.#inner.write8(offset, value);
  }
  write16(offset: number, value: number): void {
    this.#sink(MmioOp.write, offset, 2, value & 0xffff);
    this.#inner.write16(offset, value);
  }
  write32(offset: number, value: number): void {
    this.#sink(MmioOp.write, offset, 4, value >>> 0);
    this.#inner.write32(offset, value);
  }

  /**
   * A worker thread (shareQueuePair) gets the window this one wraps, not the wrapper: the sink is
   * a function of this thread and cannot run in another, so the worker's doorbell writes are not
   * traced (docs/trace.md). Throws, naming the inner window, where that one cannot be shared.
   */
  share(offsets: readonly number[]): SharedMmio {
    return shareMmio(this.#inner, offsets);
  }
}
