/**
 * npm run test:hw -- <pci-a> <pci-b> [vitest arguments]
 *
 * Runs the NicDevice contract on two real ports (any pair openDevice() opens: 82599/X520 or
 * virtio-net bound to vfio-pci) cabled to each other, port A's TX to port B's RX and back. With
 * no ports given it prints why it skips and exits 0. Needs root (VFIO, hugepages) like any
 * openDevice() use; README "Running on a real NIC" has the checklist.
 */
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// vitest's own entry run by this node binary, not `npx vitest`: the qemu testbed's guest (which
// runs this suite on its virtio NICs) has node but no npm.
const PROJECT_ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
const VITEST = join(PROJECT_ROOT, "node_modules", "vitest", "vitest.mjs");

const args = process.argv.slice(2);
const ports = args.filter((a) => !a.startsWith("-")).slice(0, 2);
const rest = args.filter((a) => !ports.includes(a));

if (ports.length < 2) {
  console.log(
    "test:hw skipped: no ports given. Run `npm run test:hw -- <pci-a> <pci-b>` with two ports bound to vfio-pci " +
      "(npx ixy-devbind --bind) and cabled to each other, e.g. `npm run test:hw -- 0000:03:00.0 0000:03:00.1`.",
  );
  process.exit(0);
}

const result = spawnSync(process.execPath, [VITEST, "run", "--configLoader", "runner", "--config", join(PROJECT_ROOT, "test/hw/vitest.hw.config.ts"), ...rest], {
  stdio: "inherit",
  cwd: PROJECT_ROOT,
  env: { ...process.env, IXY_HW_PORTS: ports.join(",") },
});
process.exit(result.status ?? 1);
