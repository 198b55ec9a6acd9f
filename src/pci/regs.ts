/**
 * ixy-style register helpers on an Mmio. JavaScript's bitwise operators yield signed 32-bit
 * integers, so every result that is a register value is finished with `>>> 0`.
 *
 * The wait helpers poll with a timeout (ixy's waits spin forever) and throw a DeviceTimeoutError
 * naming the register, the mask and the last value read. They block the thread — drivers run
 * their init synchronously, as the C original does. pollUntil is the loop behind them, for
 * drivers' other waits on a device step (a virtio reset, a control-queue answer, the link).
 */
import { DeviceTimeoutError } from "../errors.ts";
import type { Mmio } from "./mmio.ts";

export function setReg32(mmio: Mmio, reg: number, value: number): void {
  mmio.write32(reg, value >>> 0);
}

export function getReg32(mmio: Mmio, reg: number): number {
  return mmio.read32(reg) >>> 0;
}

export function setFlags32(mmio: Mmio, reg: number, flags: number): void {
  mmio.write32(reg, (mmio.read32(reg) | flags) >>> 0);
}

export function clearFlags32(mmio: Mmio, reg: number, flags: number): void {
  mmio.write32(reg, (mmio.read32(reg) & ~flags) >>> 0);
}

export interface WaitOptions {
  /** Register name for the error message, e.g. "EEC". */
  readonly name?: string;
  /** Give up after this many milliseconds (default 1000). */
  readonly timeoutMs?: number;
  /** Sleep between polls in milliseconds (default 1). */
  readonly pollMs?: number;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for `ms` milliseconds without spinning. */
export function sleepMs(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

export interface PollOptions {
  /** Give up after this many milliseconds. */
  readonly timeoutMs: number;
  /** Sleep between polls in milliseconds; 0 spins (for a step the device finishes in microseconds). */
  readonly pollMs: number;
  /** The error to throw at the deadline (the caller's own type and message, with what it saw last). */
  readonly onTimeout: () => Error;
}

/**
 * Calls `probe` until it returns true, sleeping `pollMs` between calls; once `timeoutMs` have
 * passed without it, throws `onTimeout()`. An error `probe` throws goes straight through (a
 * probe may check that the device is still usable, not just whether it is done).
 *
 * The clock is read before the probe: a thread descheduled past the deadline (a loaded machine)
 * probes once more before it gives up, so a step that did finish is not reported as timed out.
 */
export function pollUntil(probe: () => boolean, options: PollOptions): void {
  const deadline = performance.now() + options.timeoutMs;
  for (;;) {
    const late = performance.now() >= deadline;
    if (probe()) return;
    if (late) throw options.onTimeout();
    sleepMs(options.pollMs);
  }
}

function hex(v: number): string {
  return "0x" + (v >>> 0).toString(16).padStart(8, "0");
}

function waitReg32(mmio: Mmio, reg: number, mask: number, wantSet: boolean, options: WaitOptions): number {
  const timeoutMs = options.timeoutMs ?? 1000;
  const pollMs = options.pollMs ?? 1;
  let value = 0;
  pollUntil(() => {
    value = mmio.read32(reg) >>> 0;
    const bits = (value & mask) >>> 0;
    return wantSet ? bits === mask >>> 0 : bits === 0;
  }, {
    timeoutMs,
    pollMs,
    onTimeout: () => {
      const what = options.name ? `${options.name} (${hex(reg)})` : `register ${hex(reg)}`;
      return new DeviceTimeoutError(
        `${mmio.name}: timed out after ${timeoutMs} ms waiting for ${what} to have bits ${hex(mask)} ` +
          `${wantSet ? "set" : "cleared"}; last value ${hex(value)}`,
      );
    },
  });
  return value;
}

/** Waits until all bits of `mask` are set in `reg`; returns the last value read. */
export function waitSetReg32(mmio: Mmio, reg: number, mask: number, options: WaitOptions = {}): number {
  return waitReg32(mmio, reg, mask, true, options);
}

/** Waits until all bits of `mask` are clear in `reg`; returns the last value read. */
export function waitClearReg32(mmio: Mmio, reg: number, mask: number, options: WaitOptions = {}): number {
  return waitReg32(mmio, reg, mask, false, options);
}
