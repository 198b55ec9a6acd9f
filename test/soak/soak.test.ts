/**
 * The short soak in npm test (npm run soak runs 100 million frames): 200,000 frames through
 * four lanes of model ports of both drivers with random faults, 20,000 more over vhost-user
 * (the model backend in a child process), checked pools, byte-exact samples, order within each
 * lane, and every buffer back in its pool at the end.
 */
import { describe, expect, it } from "vitest";
import { FAULTS, runSoak, summary } from "./soak.ts";

/** Known to kill virtio RX today (issue 11 item 1): soaked on its own below. */
const BAD_USED_ID = "virtio bad used id";

describe("soak (short)", () => {
  it("200k frames of mixed sizes with faults (and 20k over vhost-user): nothing lost, reordered or corrupted, 0 buffers lost", async () => {
    const faults = FAULTS.filter((f) => f.name !== BAD_USED_ID);
    const r = await runSoak({ frames: 200_000, seed: 12, faultRate: 0.03, faults, vhostUserFrames: 20_000 });
    console.log(summary(r));
    expect(r.problems).toEqual([]);
    expect(r.buffersLost).toBe(0);
    expect(r.buffersTotal).toBeGreaterThan(0);
    // The faults really happened, of every mode, and frames really crossed.
    for (const f of faults) expect(r.faultsByMode[f.name], f.name).toBeGreaterThan(0);
    expect(r.received).toBeGreaterThan(r.offered / 2);
    expect(r.checkedBytes).toBeGreaterThan(0);
    if (r.vhostUser?.skipped) console.warn(`vhost-user lane skipped: ${r.vhostUser.skipped}`);
    else expect(r.vhostUser?.received).toBe(20_000);
  }, 120_000);

  // Used ids out of range strand receive descriptors until RX is dead (issue 11 item 1, the
  // virtio helper's fix). Expected to fail until then; when it passes, drop `.fails` and the
  // filter above.
  it.fails("bad used ids: every lane still works afterwards", async () => {
    const faults = FAULTS.filter((f) => f.name === BAD_USED_ID);
    const r = await runSoak({ frames: 100_000, seed: 3, faultRate: 0.2, faults, vhostUserFrames: 0 });
    expect(r.buffersLost).toBe(0);
    expect(r.problems).toEqual([]);
  }, 120_000);
});
