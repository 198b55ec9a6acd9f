/**
 * NUMA for real: a guest with two nodes (vCPU and half the memory each, hugepages split between
 * them) and NIC1 behind a PCIe expander bridge on node 1 (qemu pxb-pcie numa_node=1, which works
 * under TCG). The guest program opens each NIC and reports, from move_pages, where its DMA
 * memory's hugepages are.
 */
import { describe, expect, it } from "vitest";
import { guestJsPath } from "./compile.ts";
import { runVm } from "./vm.ts";
import { NUMA_NIC_ADDRESSES } from "./wires.ts";

interface Line {
  case: string;
  address?: string;
  placement?: { node: number | null; cpus: number[]; deviceNode: number; memoryNodes: number[]; memoryBoundTo: number | null };
  error?: string;
  dmaError?: boolean;
  nodes?: { id: number; cpus: number[]; hugepages: { total: number; free: number } | null }[];
  cpus0?: number[];
  cpus1?: number[];
}

describe("NUMA placement in a guest with two nodes", () => {
  it("finds the device's node and puts its DMA memory there, or where the option says", async () => {
    const vm = await runVm({
      mode: "modern",
      numa: true,
      // Then the examples' start-up lines: pktgen on NIC1 alone, fwd on both (each device's
      // memory from its own node's allocator).
      command:
        `node --enable-source-maps ${guestJsPath("test/vm/guest/numa.ts")} $IXY_NIC0 $IXY_NIC1 && ` +
        `node ${guestJsPath("examples/pktgen.ts")} $IXY_NIC1 --count 100 && ` +
        `node ${guestJsPath("examples/fwd.ts")} $IXY_NIC1 $IXY_NIC0 --seconds 1`,
      timeoutMs: 150_000,
    });
    expect(vm.exitCode, vm.output.slice(-3000)).toBe(0);
    expect(vm.guestNics.map((n) => n.bdf)).toEqual([...NUMA_NIC_ADDRESSES]);
    const lines = new Map<string, Line>();
    for (const l of vm.commandOutput.split("\n")) {
      if (l.startsWith('{"case"')) {
        const line = JSON.parse(l) as Line;
        lines.set(line.case, line);
      }
    }
    const get = (name: string): Line => {
      const line = lines.get(name);
      expect(line, `${name} missing in:\n${vm.commandOutput}`).toBeDefined();
      return line!;
    };

    // sysfs: two nodes of one CPU each, hugepages on both; NIC1 is near CPU 1, NIC0 near any.
    const topo = get("topology");
    expect(topo.nodes!.map((n) => [n.id, n.cpus])).toEqual([[0, [0]], [1, [1]]]);
    for (const n of topo.nodes!) expect(n.hugepages!.total).toBeGreaterThan(16);
    expect(topo.cpus0).toEqual([0, 1]);
    expect(topo.cpus1).toEqual([1]);

    // By default: the device's own node.
    expect(get("nic1-default").placement).toEqual({ node: 1, cpus: [1], deviceNode: 1, memoryNodes: [1], memoryBoundTo: 1 });
    // numa_node -1: no policy, as before (the pages are wherever the kernel put them).
    const nic0 = get("nic0-default").placement!;
    expect([nic0.node, nic0.deviceNode, nic0.cpus, nic0.memoryBoundTo]).toEqual([null, -1, [0, 1], null]);
    expect(nic0.memoryNodes.length).toBeGreaterThan(0);
    // The option overrides the device's node, in both directions.
    expect(get("nic0-on-node1").placement).toEqual({ node: 1, cpus: [1], deviceNode: -1, memoryNodes: [1], memoryBoundTo: 1 });
    expect(get("nic1-on-node0").placement).toEqual({ node: 0, cpus: [0], deviceNode: 1, memoryNodes: [0], memoryBoundTo: 0 });
    expect(get("nic1-no-policy").placement!.node).toBeNull();
    expect(get("nic1-no-policy").placement!.memoryBoundTo).toBeNull();
    // More than node 1 has: a DmaError naming the node and the file to write.
    const big = get("nic1-too-big");
    expect(big.dmaError).toBe(true);
    expect(big.error).toMatch(/NUMA node 1 has \d+ free 2 MiB hugepages of \d+, 48 are needed/);
    expect(big.error).toContain("/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages");
    // Two devices on two nodes in one process: each has memory of its own node (an allocator per
    // node), in one address space, so a buffer of one is sent on the other.
    const two = get("two-nodes") as Line & { warnings: string[]; first: Line["placement"]; sentAcross: number; sameSpace: boolean };
    expect(two.placement).toMatchObject({ node: 1, memoryBoundTo: 1, memoryNodes: [1] });
    expect(two.first).toMatchObject({ node: 0, memoryBoundTo: 0, memoryNodes: [0] });
    expect(two.warnings).toEqual([]);
    expect([two.sentAcross, two.sameSpace]).toEqual([1, true]);
    // What the examples print at start: node, its CPUs, where the DMA memory is.
    expect(vm.commandOutput).toContain("pktgen: 0000:21:00.0 NUMA node 1, CPUs 1, DMA memory on node 1\n");
    expect(vm.commandOutput).toContain("fwd: 0000:21:00.0 NUMA node 1, CPUs 1, DMA memory on node 1\n");
    // NIC0 (node -1) has the allocator of no policy: its pages are wherever the kernel put them.
    expect(vm.commandOutput).toMatch(/fwd: 0000:00:01\.0 no NUMA node \(sysfs numa_node -1\), CPUs 0-1, DMA memory on node [\d, ]+ \(no policy\)\n/);
    expect(vm.dmarFaults).toBe(0);
  }, 200_000);
});
