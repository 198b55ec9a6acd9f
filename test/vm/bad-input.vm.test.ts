/**
 * openDevice() on bad input on a real VFIO system (the qemu guest): each case gives a clear,
 * typed error and leaves no file descriptor or hugepage behind; the same device opens once the
 * cause is gone.
 */
import { describe, expect, it } from "vitest";
import { guestJsPath } from "./compile.ts";
import { runVm } from "./vm.ts";

describe("openDevice() in the guest", () => {
  it("gives typed errors that say what to do, and leaks nothing", async () => {
    const vm = await runVm({
      mode: "modern",
      command: `node ${guestJsPath("test/vm/guest/bad-input.ts")} $IXY_NIC0 $IXY_NIC1`,
      timeoutMs: 120_000,
    });
    expect(vm.exitCode, vm.output.slice(-3000)).toBe(0);
    const cases = new Map<string, Record<string, unknown>>();
    for (const line of vm.commandOutput.split("\n")) {
      if (line.startsWith('{"case"')) {
        const c = JSON.parse(line) as Record<string, unknown>;
        cases.set(c.case as string, c);
      }
    }
    const expectCase = (name: string, error: string | null, message: RegExp | null) => {
      const c = cases.get(name);
      expect(c, `case ${name} in:\n${vm.commandOutput}`).toBeDefined();
      if (error) {
        expect(c!.error, JSON.stringify(c)).toBe(error);
        expect(c!.message).toMatch(message!);
      } else {
        expect(c!.opened, JSON.stringify(c)).toBe("virtio");
      }
      expect(c!.leakedFds, JSON.stringify(c)).toBe(0);
      expect(c!.leakedHugepages, JSON.stringify(c)).toBe(0);
    };
    expectCase("malformed address", "TypeError", /malformed PCI address "00:01".*0000:01:00\.0/);
    expectCase("no such device", "DeviceNotFoundError", /no PCI device at 0000:00:1f\.6/);
    expectCase("wrong device", "NotSupportedError", /1af4:1009.*not supported/);
    expectCase("no hugepages", "DmaError", /^0000:00:01\.0: .*no free hugepages.*echo \d+ > \/proc\/sys\/vm\/nr_hugepages/);
    expectCase("hugepages back", null, null);
    expectCase("already open", "VfioError", /^0000:00:01\.0 is already open in this process: close\(\) it before opening it again$/);
    expectCase("open again after close", null, null);
    expectCase("not bound to vfio-pci", "VfioError", /0000:00:02\.0 is not bound to any driver, not vfio-pci: bind it with npx ixy-devbind --bind 0000:00:02\.0/);
    expect(vm.dmarFaults).toBe(0);
  });
});
