/** fwd and pktgen --show-rings: the ring pictures once a second on stderr, beside the live statistics. */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

const root = new URL("../..", import.meta.url).pathname;

function run(args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
}

describe("--show-rings", () => {
  it.each(["ixgbe", "virtio"])("fwd --sim --sim-nic %s --show-rings --seconds 2 draws every RX and TX ring", (nic) => {
    const r = run(["examples/fwd.ts", "--sim", "--sim-nic", nic, "--show-rings", "--seconds", "2"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^rings: D device owns, \* done/m);
    for (const port of [`sim:${nic}0`, `sim:${nic}1`]) {
      for (const kind of ["RX", "TX"]) expect(r.stderr).toMatch(new RegExp(`^${port} ${kind} 0 \\(`, "m"));
    }
    // The ring rows: D, * and . only, within 80 columns.
    const rows = r.stderr.split("\n").filter((l) => /^ {2}[D*.]+$/.test(l));
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const row of rows) expect(row.length).toBeLessThanOrEqual(80);
    expect(r.stderr).toMatch(nic === "ixgbe" ? /RDH=\d+ RDT=\d+ next=\d+ \| device \d+, done \d+, driver \d+/ : /avail\.idx=\d+ used\.idx=\d+ last_used=\d+ \|/);
  });

  it("pktgen --sim --show-rings draws its port's rings", () => {
    const r = run(["examples/pktgen.ts", "--sim", "--show-rings", "--seconds", "2"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^sim:ixgbe0 TX 0 \(ixgbe\): 512 descriptors, 8 per column$/m);
    expect(r.stderr).toMatch(/^ {2}TDH=\d+ TDT=\d+ next=\d+ dd=\d+ \| device \d+, done \d+, driver \d+$/m);
  });

  it.each(["ixgbe", "virtio"])("examples/rings.ts --sim --sim-nic %s draws the rings after each step", (nic) => {
    const r = run(["examples/rings.ts", "--sim", "--sim-nic", nic]);
    expect(r.status, r.stderr).toBe(0);
    const steps = r.stdout.split("\n== ").slice(1);
    expect(steps).toHaveLength(5);
    // The RX ring of step 2 (5 frames received) and the TX ring of the last step (5 sent).
    expect(steps[1]).toMatch(/^ {2}\*{5}D{58}[D.]$/m);
    expect(steps[1]).toMatch(/device (58|59), done 5, driver (1|0)$/m);
    expect(steps[4]).toMatch(/^ {2}\*{5}\.{59}$/m);
    expect(steps[4]).toMatch(/device 0, done 5, driver 59$/m);
  });

  it("examples/rings.ts without --sim is a usage error (exit 2)", () => {
    const r = run(["examples/rings.ts"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/runs on a device model only/);
  });

  it("refuses --show-rings with --workers (exit 2)", () => {
    const r = run(["examples/fwd.ts", "--sim", "--show-rings", "--workers", "2", "--seconds", "1"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--show-rings does not go with --workers/);
  });
});
