/** The trace itself (src/pci/register-trace.ts): steps, nesting, repeats, the once-a-second summary. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { TypedArrayMmio } from "../../src/pci/mmio.ts";
import { driverTrace, SUMMARY_INTERVAL_MS, type RegisterNames } from "../../src/pci/register-trace.ts";

const NAMES: RegisterNames = {
  name: (offset) => (offset === 0 ? "CTRL" : offset === 4 ? "TAIL" : null),
  bits: (offset, value) => (offset === 0 ? (value & 1 ? ["GO"] : []) : null),
};

function setup() {
  const lines: string[] = [];
  const trace = driverTrace({ sink: (l) => lines.push(l) }, "dev");
  const plain = new TypedArrayMmio("test", new ArrayBuffer(16));
  const mmio = trace.wrap(plain, NAMES);
  return { lines, trace, mmio, plain };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("register trace", () => {
  it("labels accesses with the step, restores the step after a control operation, and names unknown offsets by number", () => {
    const { lines, trace, mmio, plain } = setup();
    trace.step("1.2", "init");
    mmio.write32(0, 1);
    trace.enter("3.4", "control");
    mmio.read32(0);
    trace.leave();
    mmio.write16(8, 0xabcd);
    expect(plain.read16(8)).toBe(0xabcd); // the access reached the window
    expect(lines).toEqual([
      "dev write CTRL         = 0x00000001 [GO]  1.2 init",
      "dev read  CTRL         = 0x00000001 [GO]  3.4 control",
      "dev write 0x00008      = 0xabcd  1.2 init",
    ]);
    // The wrapper has no plain words: the hot loops take write32, which is traced.
    expect(mmio.words32).toBeNull();
  });

  it("prints a repeated line once, then how often it came again", () => {
    const { lines, trace, mmio } = setup();
    trace.step("1", "poll");
    for (let i = 0; i < 5; i++) mmio.read32(4);
    mmio.read32(0);
    expect(lines).toEqual([
      "dev read  TAIL         = 0x00000000  1 poll",
      "dev   (the line above 4 more times)",
      "dev read  CTRL         = 0x00000000  1 poll",
    ]);
  });

  it("counts hot-path accesses and prints one line per register once a second", () => {
    vi.useFakeTimers();
    const { lines, trace, mmio } = setup();
    trace.hotPath();
    for (let i = 0; i < 7; i++) mmio.write32(4, i);
    mmio.read32(0);
    expect(lines).toEqual([]);
    vi.advanceTimersByTime(SUMMARY_INTERVAL_MS);
    expect(lines).toEqual(["dev hot path, last 1 s: write TAIL x7", "dev hot path, last 1 s: read CTRL x1"]);
    vi.advanceTimersByTime(SUMMARY_INTERVAL_MS);
    expect(lines).toHaveLength(2); // nothing new, nothing printed
    mmio.write32(4, 9);
    trace.close();
    expect(lines.at(-1)).toBe("dev hot path, last 1 s: write TAIL x1");
    expect(vi.getTimerCount()).toBe(0);
  });
});
