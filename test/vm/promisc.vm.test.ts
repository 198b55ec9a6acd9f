/**
 * Promiscuous mode through the virtio control queue (VIRTIO_NET_CTRL_RX_PROMISC) on qemu's
 * device: with it off, qemu delivers only frames for the NIC's own MAC (and broadcast); with it on,
 * frames for any address. The host sends both kinds throughout.
 */
import { describe, expect, it } from "vitest";
import { guestJsPath } from "./compile.ts";
import { sendUntilGuestExits } from "./host-sender.ts";
import { buildFrame } from "./traffic.ts";
import { runVm } from "./vm.ts";
import { NIC_MACS } from "./wires.ts";

describe("setPromisc() on a modern virtio device", () => {
  it("turns qemu's unicast filter off and on through the control queue", async () => {
    const vm = await runVm({
      mode: "modern",
      command: `node ${guestJsPath("test/vm/guest/promisc.ts")} $IXY_NIC0 3`,
      timeoutMs: 120_000,
      // Alternately to the NIC's own MAC and to an address nobody has.
      onGuestReady: (h) =>
        sendUntilGuestExits(h, 0, (seq) =>
          buildFrame({ stream: 0, runId: 7, seq, length: 100, dst: seq % 2 === 0 ? NIC_MACS[0] : "02:00:00:00:00:99" }),
        ),
    });
    expect(vm.exitCode, vm.output.slice(-3000)).toBe(0);
    const phases = vm.commandOutput
      .split("\n")
      .filter((l) => l.startsWith('{"promisc"'))
      .map((l) => JSON.parse(l) as { promisc: boolean; own: number; other: number });
    expect(phases.length, vm.commandOutput).toBe(2);
    const [off, on] = phases as [(typeof phases)[0], (typeof phases)[0]];
    expect(off.promisc).toBe(false);
    expect(off.own).toBeGreaterThan(50);
    expect(off.other).toBe(0);
    expect(on.promisc).toBe(true);
    expect(on.own).toBeGreaterThan(50);
    expect(on.other).toBeGreaterThan(50);
  });
});
