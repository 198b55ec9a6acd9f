/**
 * virtio-net multiqueue in the qemu guest: two vCPUs, each NIC with two queue pairs (qemu
 * -netdev tap,queues=2, virtio-net-pci mq=on,vectors=6), and `fwd --workers 2`: a worker per
 * queue pair, pinned to its vCPU. The host sends IPv4/UDP frames of 16 flows each way through
 * the taps (test/vm/tap-wire.ts); the kernel's tap spreads the flows over its two queues and
 * qemu puts each on the receive queue of that number. Every frame must come out of the other NIC
 * byte-exact, each flow in order, and both workers must have forwarded frames.
 */
import { describe, expect, it } from "vitest";
import { guestJsPath } from "./compile.ts";
import { runFlowTraffic, type FlowTrafficReport } from "./flow-traffic.ts";
import { TapWire, waitForTap } from "./tap-wire.ts";
import { runVm } from "./vm.ts";

const fwd = guestJsPath("examples/fwd.ts");
const RATE = 400;
const COUNT = 2000;
const FLOWS = 16;

describe("fwd --workers 2 on multiqueue virtio NICs, 2 vCPUs", () => {
  it("forwards 16 flows each way over both queue pairs, byte-exact, each flow in order", async () => {
    const names = [`ixyq${process.pid % 10000}a`, `ixyq${process.pid % 10000}b`] as const;
    const wires: TapWire[] = [];
    const vm = await runVm<FlowTrafficReport>({
      mode: "modern",
      smp: 2,
      taps: { names, queues: 2 },
      command: `node --enable-source-maps ${fwd} $IXY_NIC0 $IXY_NIC1 --workers 2 --cores 0,1`,
      timeoutMs: 240_000,
      onGuestReady: async (h) => {
        for (const n of names) await waitForTap(n);
        for (const n of names) wires.push(new TapWire(n));
        return runFlowTraffic({ wires: [wires[0]!, wires[1]!], rate: RATE, count: COUNT, flows: FLOWS, seed: 5, signal: h.signal });
      },
    });
    for (const w of wires) w.close();
    expect(vm.error, vm.output.slice(-3000)).toBeUndefined();
    expect(vm.exitCode, vm.output.slice(-3000)).toBe(0);
    const report = vm.ready!;
    for (const d of report.directions) {
      expect(d).toEqual({ sent: COUNT, received: COUNT, corrupted: 0, reordered: 0, duplicated: 0, flowsSeen: FLOWS });
    }
    expect(vm.commandOutput).toMatch(/2 worker threads, queue pair i on core 0:0 1:1/);
    const workers = [...vm.commandOutput.matchAll(/worker (\d) \(core \d\): forwarded (\d+) frames/g)].map((m) => Number(m[2]));
    expect(workers.length, vm.commandOutput.slice(-2000)).toBe(2);
    // The flows were spread: each queue pair (worker) carried some of them.
    for (const n of workers) expect(n).toBeGreaterThan(COUNT / 8);
    expect(workers[0]! + workers[1]!).toBeGreaterThanOrEqual(2 * COUNT);
  });
});
