/**
 * `npm run test:hw` on the testbed: the real-port contract suite (test/hw/nic-pair.hw-test.ts)
 * through openDevice() on the guest's two modern virtio NICs behind the emulated IOMMU, cabled to
 * each other (VmOptions.crossCabled). The suite is written for two 82599 ports on a cable; this
 * run is what shows that the command and the suite work, end to end through VFIO, for the first
 * person who runs it on real hardware.
 */
import { expect, it } from "vitest";
import { runVm } from "./vm.ts";

it("npm run test:hw -- <nic0> <nic1> passes on two cabled virtio NICs", async () => {
  const vm = await runVm({
    mode: "modern",
    crossCabled: true,
    // Not npm (the guest has node only): the same entry `npm run test:hw` runs, through tsx.
    command: "node node_modules/tsx/dist/cli.mjs test/hw/run.ts $IXY_NIC0 $IXY_NIC1",
    timeoutMs: 420_000,
    memMiB: 3072,
  });
  const tail = vm.output.slice(-6000);
  expect(vm.exitCode, tail).toBe(0);
  expect(vm.commandOutput, tail).toMatch(/Tests\s+\d+ passed/);
  expect(vm.commandOutput, tail).not.toMatch(/skipped, IXY_HW_PORTS/);
  expect(vm.dmarFaults, vm.dmarLines.join("\n")).toBe(0);
}, 480_000);
