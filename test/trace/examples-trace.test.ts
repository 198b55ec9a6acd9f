/** --trace in the example apps (child processes through tsx, on the device models). */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

const root = new URL("../..", import.meta.url).pathname;

function run(args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
}

describe("--trace in the examples", () => {
  it("fwd --sim --trace prints the init's register lines and the hot-path summary to stderr", () => {
    const r = run(["examples/fwd.ts", "--sim", "--trace", "--seconds", "1", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain("sim:ixgbe0 write CTRL         = 0x0400000c [GIO_DIS LNK_RST RST]  4.6.3.2 global reset");
    expect(r.stderr).toMatch(/^sim:ixgbe1 write RXCTRL +?= 0x00000001 \[RXEN\]  4\.6\.7 receive on/m);
    expect(r.stderr).toMatch(/^sim:ixgbe0 hot path, last 1 s: write (RDT|TDT)\(0\) x\d+$/m);
    // Stdout stays the app's: the --json totals, no trace.
    expect(r.stdout).not.toContain("4.6.3.2");
  });

  it("pktgen --sim --sim-nic virtio --trace-each prints the handshake and each notification", () => {
    const r = run(["examples/pktgen.ts", "--sim", "--sim-nic", "virtio", "--trace-each", "--count", "100"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^sim:virtio0 features: device offers .*VERSION_1.*; driver accepts .*VERSION_1/m);
    expect(r.stderr).toMatch(/^sim:virtio0 write queue_notify = 0x0001  hot path$/m);
  });
});
