/**
 * Trace mode (DeviceOptions.trace, docs/trace.md): every register access of init and of the
 * control operations printed with the register's datasheet name, its value, the names of the
 * bits set, and the datasheet or specification section of the step the driver is in:
 *
 *   sim:ixgbe0 write CTRL         = 0x0400000c [GIO_DIS LNK_RST RST]  4.6.3.2 global reset
 *
 * The driver announces its steps (DriverTrace.step); accesses outside any step are the hot
 * path's (doorbells, the statistics poll of rxBatch/txBatch) and are counted per register and
 * printed once a second, or one by one with hotPath: "each".
 *
 * Free when off: driverTrace() then returns NO_TRACE, whose wrap() hands back the very Mmio it
 * got, so the driver talks to the device as it would without this file, and the hot loops have
 * no trace code at all (they never call the tracer; only the wrapped Mmio knows about it).
 *
 * With trace on, the register window is a TracingMmio (tracing-mmio.ts) whose sink is the
 * trace's access(): this file only names, decodes and summarises what that wrapper reports.
 */
import type { Mmio } from "./mmio.ts";
import { TracingMmio, type MmioOp } from "./tracing-mmio.ts";

/** Where trace lines go (default: stderr, one line each). */
export type TraceSink = (line: string) => void;

/** DeviceOptions.trace as an object. */
export interface TraceOptions {
  /** Receives each line, without its newline (default: written to stderr). */
  readonly sink?: TraceSink;
  /** "summary" (default): hot-path accesses as counts once a second; "each": one line per access. */
  readonly hotPath?: "summary" | "each";
}

/** DeviceOptions.trace: false/undefined off, true = { sink: stderr, hotPath: "summary" }. */
export type TraceOption = boolean | TraceOptions;

/** Names of a device's registers, by byte offset in the window the driver accesses. */
export interface RegisterNames {
  /** The datasheet name of the register at `offset` ("RDT(0)"), or null (printed as its offset). */
  name(offset: number): string | null;
  /** The names of the bits set in `value` of that register, or null where bits mean nothing by name. */
  bits(offset: number, value: number): readonly string[] | null;
}

/** What a driver tells the trace. NO_TRACE does nothing. */
export interface DriverTrace {
  readonly on: boolean;
  /** The accesses from now on belong to datasheet section `section`, step `what`. */
  step(section: string, what: string): void;
  /**
   * A control operation (linkSpeed, readStats, ...) begins: its accesses belong to `section`
   * `what` until leave(), which returns to the step (or the hot path) before it. Nests.
   */
  enter(section: string, what: string): void;
  leave(): void;
  /** The accesses from now on are the hot path's (summarised unless hotPath is "each"). */
  hotPath(): void;
  /** A line of its own (a decoded handshake, a message). */
  note(text: string): void;
  /** `mmio`, traced with `names` (NO_TRACE: `mmio` itself). */
  wrap(mmio: Mmio, names: RegisterNames): Mmio;
  /** Prints what the hot-path summary still holds and stops its timer. */
  close(): void;
}

export const NO_TRACE: DriverTrace = Object.freeze({
  on: false,
  step(): void {},
  enter(): void {},
  leave(): void {},
  hotPath(): void {},
  note(): void {},
  wrap: (mmio: Mmio): Mmio => mmio,
  close(): void {},
});

/** The trace for DeviceOptions.trace of device `device` (NO_TRACE when off). */
export function driverTrace(option: TraceOption | undefined, device: string): DriverTrace {
  if (option === undefined || option === false) return NO_TRACE;
  if (option !== true && (typeof option !== "object" || option === null)) {
    throw new TypeError(`${device}: trace must be a boolean or { sink?, hotPath? }, got ${String(option)}`);
  }
  const o: TraceOptions = option === true ? {} : option;
  if (o.sink !== undefined && typeof o.sink !== "function") throw new TypeError(`${device}: trace.sink must be a function`);
  if (o.hotPath !== undefined && o.hotPath !== "summary" && o.hotPath !== "each") {
    throw new RangeError(`${device}: trace.hotPath must be "summary" or "each", got ${String(o.hotPath)}`);
  }
  return new LineTrace(device, o.sink ?? ((line) => process.stderr.write(line + "\n")), o.hotPath ?? "summary");
}

/** How often the hot-path counts are printed. */
export const SUMMARY_INTERVAL_MS = 1000;

const hex = (value: number, width: number): string => "0x" + (value >>> 0).toString(16).padStart(2 * width, "0");

class LineTrace implements DriverTrace {
  readonly on = true;
  readonly #device: string;
  readonly #sink: TraceSink;
  readonly #each: boolean;
  /** "4.6.3.2 global reset", or null on the hot path. */
  #step: string | null = null;
  /** The steps enter() interrupted. */
  readonly #outer: (string | null)[] = [];
  /** Hot path, summary mode: accesses per "write RDT(0)" since the last summary. */
  readonly #counts = new Map<string, number>();
  #timer: ReturnType<typeof setInterval> | null = null;
  /** The last line printed, and how often it came again since (a poll loop reads one value many times). */
  #last = "";
  #repeats = 0;

  constructor(device: string, sink: TraceSink, hotPath: "summary" | "each") {
    this.#device = device;
    this.#sink = sink;
    this.#each = hotPath === "each";
  }

  step(section: string, what: string): void {
    this.#step = `${section} ${what}`;
  }

  enter(section: string, what: string): void {
    this.#outer.push(this.#step);
    this.#step = `${section} ${what}`;
  }

  leave(): void {
    this.#step = this.#outer.pop() ?? null;
  }

  hotPath(): void {
    this.#step = null;
    this.#outer.length = 0;
  }

  note(text: string): void {
    this.#print(`${this.#device} ${text}`);
  }

  wrap(mmio: Mmio, names: RegisterNames): Mmio {
    // One closure per window, made here, ties the window's register names to its reports: the
    // wrapper passes only numbers, and what access() then builds (a line, or a count's key) is
    // the trace's own doing.
    return new TracingMmio(mmio, (op, offset, width, value) => this.access(op, names, offset, width, value));
  }

  close(): void {
    this.#summarise();
    this.#flushRepeats();
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One access, reported by the TracingMmio of wrap(). */
  access(op: MmioOp, names: RegisterNames, offset: number, width: 1 | 2 | 4, value: number): void {
    const name = names.name(offset) ?? `0x${offset.toString(16).padStart(5, "0")}`;
    if (this.#step === null && !this.#each) {
      const key = `${op} ${name}`;
      this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
      if (this.#timer === null) {
        this.#timer = setInterval(() => this.#summarise(), SUMMARY_INTERVAL_MS);
        this.#timer.unref();
      }
      return;
    }
    const bits = names.bits(offset, value);
    const bitText = bits === null || bits.length === 0 ? "" : ` [${bits.join(" ")}]`;
    const op5 = op === "read" ? "read " : "write";
    this.#print(`${this.#device} ${op5} ${name.padEnd(12)} = ${hex(value, width)}${bitText}  ${this.#step ?? "hot path"}`);
  }

  #summarise(): void {
    if (this.#counts.size === 0) return;
    for (const [key, count] of this.#counts) this.#print(`${this.#device} hot path, last ${SUMMARY_INTERVAL_MS / 1000} s: ${key} x${count}`);
    this.#counts.clear();
  }

  #print(line: string): void {
    if (line === this.#last) {
      this.#repeats++;
      return;
    }
    this.#flushRepeats();
    this.#last = line;
    this.#sink(line);
  }

  #flushRepeats(): void {
    if (this.#repeats > 0) this.#sink(`${this.#device}   (the line above ${this.#repeats} more time${this.#repeats === 1 ? "" : "s"})`);
    this.#repeats = 0;
    this.#last = "";
  }
}

/** Bit names of a register from a table of [mask, name] (single bits or named fields). */
export function bitNames(value: number, table: readonly (readonly [number, string])[]): string[] {
  const names: string[] = [];
  for (const [mask, name] of table) if (((value & mask) >>> 0) === mask >>> 0 && mask !== 0) names.push(name);
  return names;
}
