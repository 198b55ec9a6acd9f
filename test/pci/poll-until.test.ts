import { describe, expect, it } from "vitest";
import { DeviceProtocolError, DeviceTimeoutError } from "../../src/errors.ts";
import { pollUntil } from "../../src/pci/regs.ts";

const never = (): Error => new Error("onTimeout should not be called");

describe("pollUntil", () => {
  it("returns as soon as the probe says done", () => {
    let calls = 0;
    pollUntil(() => ++calls === 3, { timeoutMs: 1000, pollMs: 0, onTimeout: never });
    expect(calls).toBe(3);
  });

  it("probes once even with no time at all, and returns if that probe succeeds", () => {
    let calls = 0;
    pollUntil(() => (++calls, true), { timeoutMs: 0, pollMs: 1, onTimeout: never });
    expect(calls).toBe(1);
  });

  it("throws the caller's error once the deadline passed, after a last probe", () => {
    let calls = 0;
    const start = performance.now();
    expect(() =>
      pollUntil(() => (++calls, false), {
        timeoutMs: 20,
        pollMs: 1,
        onTimeout: () => new DeviceTimeoutError(`gave up after ${calls} probes`),
      }),
    ).toThrow(DeviceTimeoutError);
    expect(performance.now() - start).toBeGreaterThanOrEqual(20);
    expect(calls).toBeGreaterThan(1);
  });

  it("sleeps pollMs between probes", () => {
    let calls = 0;
    const start = performance.now();
    expect(() => pollUntil(() => (++calls, false), { timeoutMs: 50, pollMs: 10, onTimeout: () => new DeviceTimeoutError("x") }))
      .toThrow("x");
    // About 6 probes in 50 ms at 10 ms apart (fewer on a loaded machine, never dozens).
    expect(calls).toBeLessThanOrEqual(7);
    expect(performance.now() - start).toBeGreaterThanOrEqual(50);
  });

  it("lets an error from the probe through", () => {
    expect(() =>
      pollUntil(() => {
        throw new DeviceProtocolError("device needs a reset");
      }, { timeoutMs: 1000, pollMs: 1, onTimeout: never }),
    ).toThrow(DeviceProtocolError);
  });
});
