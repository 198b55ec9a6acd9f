/**
 * The short soak in npm test (npm run soak runs 100 million frames): 200,000 frames through
 * six lanes of model ports of both drivers (two of them on the models' asynchronous modes) with
 * random faults of every mode in FAULTS, 20,000 more over vhost-user (the model backend in a
 * child process), checked pools, byte-exact samples, order within each stream, every device
 * error detected and recovered from, and every buffer back in its pool at the end.
 */
import { describe, expect, it } from "vitest";
import { FAULTS, faultTable, runSoak, summary } from "./soak.ts";

describe("soak (short)", () => {
  it("200k frames of mixed sizes with faults of every mode (and 20k over vhost-user): nothing lost, reordered or corrupted, every device error detected and recovered, 0 buffers lost", async () => {
    const r = await runSoak({ frames: 200_000, seed: 12, faultRate: 0.06, vhostUserFrames: 20_000 });
    console.log(summary(r));
    console.log(faultTable(r));
    expect(r.problems).toEqual([]);
    expect(r.buffersLost).toBe(0);
    expect(r.buffersTotal).toBeGreaterThan(0);
    // The faults really happened, of every mode; the errors were all seen and recovered from,
    // the others all ridden through.
    for (const f of FAULTS) {
      const c = r.faultsByMode[f.name]!;
      expect(c.injected, f.name).toBeGreaterThan(0);
      expect(c.recovered, f.name).toBe(c.injected);
      expect(c.detected, f.name).toBe(f.kind === "error" ? c.injected : 0);
    }
    expect(r.reopens).toBeGreaterThan(0);
    expect(r.received + r.discarded).toBe(r.forwarded - (r.vhostUser?.sent ?? 0) + (r.vhostUser?.received ?? 0));
    expect(r.received).toBeGreaterThan(r.offered / 2);
    expect(r.checkedBytes).toBeGreaterThan(0);
    if (r.vhostUser?.skipped) console.warn(`vhost-user lane skipped: ${r.vhostUser.skipped}`);
    else expect(r.vhostUser?.received).toBe(20_000);
  }, 120_000);

  it("a fault of the wrong kind fails the run: a device error declared as ridden through is a problem", async () => {
    // The soak's checks can fail: a mode that breaks the device, passed off as harmless, must
    // be reported (a DeviceProtocolError with no error fault injected), not absorbed.
    const broken = FAULTS.find((f) => f.name === "virtio device error (NEEDS_RESET)")!;
    const faults = [{ ...broken, kind: "ride" as const }];
    const r = await runSoak({ frames: 20_000, seed: 5, faultRate: 0.1, faults, vhostUserFrames: 0 });
    expect(r.faultsByMode[broken.name]!.injected).toBeGreaterThan(0);
    expect(r.problems.some((p) => p.includes("a DeviceProtocolError with no device error injected"))).toBe(true);
    expect(r.buffersLost).toBe(0);
  }, 120_000);
});
