/**
 * npm run bench:offload as a user runs it, tiny: it runs to completion, checks its own frames
 * (it throws if a checksum it computed, or a frame the driver sent, does not verify) and reports
 * every case. No timing is asserted (the project's rule): only that every case was measured.
 */
import { spawnSync } from "node:child_process";
import { expect, it } from "vitest";

const root = new URL("../..", import.meta.url).pathname;

it("bench:offload --json runs and measures every case", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "bench/offload/run.ts", "--frames", "5000", "--rounds", "1", "--json"], {
    cwd: root, encoding: "utf8", timeout: 120_000,
  });
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout) as { frame: number; rows: Record<string, number | string>[] };
  expect(out.frame).toBe(1514);
  expect(out.rows.map((row) => row.l4)).toEqual(["udp", "tcp"]);
  for (const row of out.rows) {
    for (const key of ["txSw", "txOff", "rxSw", "rxDev", "drvSw", "drvOff", "drvNone"]) expect(row[key]).toBeGreaterThan(0);
  }
}, 120_000);
