/**
 * Issue 12.6: the forwarder without root, on modern virtio NICs behind the emulated IOMMU. Root
 * prepares what the README lists (the NICs' /dev/vfio/<group> nodes owned by the user,
 * RLIMIT_MEMLOCK raised; the hugepages are reserved by the guest's kernel command line), then
 * fwd runs as uid 1000 (test/vm/guest/as-user.mjs drops root before the program loads) and must
 * forward every frame byte-exact and in order. Before that, one piece at a time is missing, and
 * each gives the clear error that names it: the group nodes still root's (PermissionError), a
 * memlock limit of 64 KiB (DmaError naming RLIMIT_MEMLOCK).
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { guestJsPath } from "./compile.ts";
import { runTrafficSession } from "./session.ts";

const fwd = guestJsPath("examples/fwd.ts");
const asUser = fileURLToPath(new URL("./guest/as-user.mjs", import.meta.url));
const RATE = 1000;

describe("fwd as an unprivileged user", () => {
  it("fails with an error naming each missing piece, then forwards once root has prepared everything", async () => {
    const run = `node --import ${asUser} ${fwd} $IXY_NIC0 $IXY_NIC1`;
    const command = [
      'G0=$(basename "$(readlink /sys/bus/pci/devices/$IXY_NIC0/iommu_group)")',
      'G1=$(basename "$(readlink /sys/bus/pci/devices/$IXY_NIC1/iommu_group)")',
      // Missing: the group nodes (memlock already raised, so that only the nodes are missing).
      "ulimit -l unlimited",
      `${run} --seconds 1; echo "case=no-chown exit=$?"`,
      "chown 1000:1000 /dev/vfio/$G0 /dev/vfio/$G1",
      // Missing: the memlock limit (the nodes are the user's now).
      `(ulimit -l 64; ${run} --seconds 1; echo "case=memlock exit=$?")`,
      'echo "case=prepared"; ls -ln /dev/vfio',
      run,
    ].join("\n");
    const s = await runTrafficSession({
      mode: "modern",
      command,
      timeoutMs: 240_000,
      traffic: { rate: RATE, durationMs: 5000, drainMs: 5000, size: "random", seed: 7 },
    });
    const out = s.vm.commandOutput;
    expect(out).toMatch(/error: PermissionError: 0000:00:01\.0: no permission to open \/dev\/vfio\/\d+ \(VFIO group \d+, EACCES\).*chown <user> \/dev\/vfio\/\d+/);
    expect(out).toMatch(/case=no-chown exit=1/);
    expect(out).toMatch(/error: DmaError: .*locking \d+ bytes failed: .*RLIMIT_MEMLOCK \(now 65536 bytes\).*limits\.conf/);
    expect(out).toMatch(/case=memlock exit=1/);
    expect(s.trafficError, `${String(s.trafficError)}\n${out}`).toBeUndefined();
    expect(s.vm.exitCode, s.vm.output.slice(-3000)).toBe(0);
    expect(s.vm.dmarFaults, s.vm.dmarLines.join("\n")).toBe(0);
    const t = s.traffic!;
    for (const st of t.streams) {
      expect(st.sent).toBe(RATE * 5);
      expect(st.received, JSON.stringify(t.streams)).toBe(st.sent);
      expect(st.lost + st.corrupted + st.reordered + st.duplicated).toBe(0);
    }
    expect(t.ok).toBe(true);
  });
});
