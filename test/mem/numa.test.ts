/**
 * NUMA placement: the sysfs logic on fake trees (one node, two nodes, a device on node -1,
 * missing files, a node without free hugepages), and the real mbind/move_pages path on this
 * host's node 0 (skipped without free hugepages). Two real nodes: test/vm/numa.vm.test.ts.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DmaError, SyscallError } from "../../src/errors.ts";
import { HugepageArena } from "../../src/mem/hugepage-arena.ts";
import { hugepageCounts, HugepageMapping, HUGEPAGE_SIZE } from "../../src/mem/hugepages.ts";
import {
  checkNodeHugepages,
  deviceCpus,
  mappingNodes,
  nodeHugepagesFile,
  numaPlacement,
  parseCpuList,
  readNumaTopology,
} from "../../src/mem/numa.ts";

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

/** A fake sysfs: `nodes` maps a node id to its cpulist and hugepages (omitted: no such file). */
function fakeSysfs(
  nodes: Record<number, { cpulist?: string; nr?: number; free?: number }> | null,
  devices: Record<string, number | null> = {},
  cpuOnline = "0-3",
): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-numa-"));
  roots.push(root);
  const write = (rel: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text + "\n");
  };
  write("devices/system/cpu/online", cpuOnline);
  if (nodes !== null) {
    const ids = Object.keys(nodes).map(Number);
    write("devices/system/node/online", ids.length === 1 ? `${ids[0]}` : `${ids[0]}-${ids[ids.length - 1]}`);
    for (const [id, n] of Object.entries(nodes)) {
      fs.mkdirSync(path.join(root, `devices/system/node/node${id}`), { recursive: true });
      if (n.cpulist !== undefined) write(`devices/system/node/node${id}/cpulist`, n.cpulist);
      if (n.nr !== undefined) write(`devices/system/node/node${id}/hugepages/hugepages-2048kB/nr_hugepages`, String(n.nr));
      if (n.free !== undefined) write(`devices/system/node/node${id}/hugepages/hugepages-2048kB/free_hugepages`, String(n.free));
    }
  }
  for (const [address, node] of Object.entries(devices)) {
    fs.mkdirSync(path.join(root, "bus/pci/devices", address), { recursive: true });
    if (node !== null) write(`bus/pci/devices/${address}/numa_node`, String(node));
  }
  return root;
}

describe("parseCpuList", () => {
  it("reads ranges and single CPUs", () => {
    expect(parseCpuList("0-3,8,10-11\n")).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList("5")).toEqual([5]);
    expect(parseCpuList("\n")).toEqual([]);
  });
  it("refuses what is not a list", () => {
    expect(() => parseCpuList("0-")).toThrow(RangeError);
    expect(() => parseCpuList("3-1")).toThrow(RangeError);
    expect(() => parseCpuList("a")).toThrow(RangeError);
  });
});

describe("NUMA placement from a fake sysfs", () => {
  it("one node: no memory policy, every CPU", () => {
    const root = fakeSysfs({ 0: { cpulist: "0-3", nr: 512, free: 510 } }, { "0000:01:00.0": 0 });
    const topo = readNumaTopology(root);
    expect(topo.nodes).toEqual([{ id: 0, cpus: [0, 1, 2, 3], hugepages: { total: 512, free: 510 } }]);
    expect(numaPlacement(0, topo, "dev")).toEqual({ node: null, cpus: [0, 1, 2, 3] });
    expect(deviceCpus("0000:01:00.0", root)).toEqual([0, 1, 2, 3]);
  });

  it("two nodes: the device's node and its CPUs", () => {
    const root = fakeSysfs(
      { 0: { cpulist: "0-1,4-5", nr: 64, free: 64 }, 1: { cpulist: "2-3,6-7", nr: 64, free: 10 } },
      { "0000:01:00.0": 1, "0000:81:00.0": 0 },
    );
    const topo = readNumaTopology(root);
    expect(topo.nodes.map((n) => n.id)).toEqual([0, 1]);
    expect(numaPlacement(1, topo, "dev")).toEqual({ node: 1, cpus: [2, 3, 6, 7] });
    expect(numaPlacement(0, topo, "dev")).toEqual({ node: 0, cpus: [0, 1, 4, 5] });
    expect(deviceCpus("0000:01:00.0", root)).toEqual([2, 3, 6, 7]);
    expect(deviceCpus("0000:81:00.0", root)).toEqual([0, 1, 4, 5]);
  });

  it("a device on node -1 (or without numa_node) works as without NUMA", () => {
    const root = fakeSysfs({ 0: { cpulist: "0-1" }, 1: { cpulist: "2-3" } }, { "0000:01:00.0": -1, "0000:02:00.0": null });
    const topo = readNumaTopology(root);
    expect(numaPlacement(-1, topo, "dev")).toEqual({ node: null, cpus: [0, 1, 2, 3] });
    expect(deviceCpus("0000:01:00.0", root)).toEqual([0, 1, 2, 3]);
    expect(deviceCpus("0000:02:00.0", root)).toEqual([0, 1, 2, 3]);
  });

  it("the numaNode option overrides the device's node, and must be a node of the machine", () => {
    const root = fakeSysfs({ 0: { cpulist: "0-1" }, 1: { cpulist: "2-3" } });
    const topo = readNumaTopology(root);
    expect(numaPlacement(1, topo, "dev", 0)).toEqual({ node: 0, cpus: [0, 1] });
    expect(numaPlacement(-1, topo, "dev", 1)).toEqual({ node: 1, cpus: [2, 3] });
    expect(() => numaPlacement(0, topo, "0000:01:00.0", 2)).toThrow(/0000:01:00.0: numaNode 2 is not a node of this machine \(nodes: 0, 1\)/);
    // One node: asked for, it is bound (this is how the real mbind path runs on one node).
    expect(numaPlacement(0, readNumaTopology(fakeSysfs({ 0: { cpulist: "0" } })), "dev", 0)).toEqual({ node: 0, cpus: [0] });
  });

  it("missing files: no node directory is one node; no cpulist or hugepage counts are empty/unknown", () => {
    const flat = readNumaTopology(fakeSysfs(null, {}, "0-2"));
    expect(flat.nodes).toEqual([{ id: 0, cpus: [0, 1, 2], hugepages: null }]);
    expect(numaPlacement(0, flat, "dev")).toEqual({ node: null, cpus: [0, 1, 2] });
    const root = fakeSysfs({ 0: { cpulist: "0-1" }, 1: {} });
    const topo = readNumaTopology(root);
    expect(topo.nodes[1]).toEqual({ id: 1, cpus: [], hugepages: null });
    // A memory-only node: every CPU is as far as another.
    expect(numaPlacement(1, topo, "dev")).toEqual({ node: 1, cpus: [0, 1] });
    // No counts: nothing to check (the mapping itself would fail).
    expect(() => checkNodeHugepages(1, 4, "dev", root)).not.toThrow();
    // A device naming a node that sysfs does not list (offline): as if unknown.
    expect(numaPlacement(3, topo, "dev")).toEqual({ node: null, cpus: [0, 1] });
    // No device directory at all: node unknown.
    expect(deviceCpus("0000:09:00.0", root)).toEqual([0, 1]);
  });

  it("a node without enough free hugepages: a DmaError naming the node and the file to write", () => {
    const root = fakeSysfs({ 0: { cpulist: "0", nr: 64, free: 64 }, 1: { cpulist: "1", nr: 8, free: 0 } });
    expect(() => checkNodeHugepages(0, 4, "VFIO DMA memory", root)).not.toThrow();
    let err: unknown;
    try {
      checkNodeHugepages(1, 4, "VFIO DMA memory", root);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DmaError);
    const msg = (err as Error).message;
    expect(msg).toContain("VFIO DMA memory: NUMA node 1 has 0 free 2 MiB hugepages of 8, 4 are needed");
    expect(msg).toContain(`echo 512 > ${nodeHugepagesFile(1)}`);
    expect(nodeHugepagesFile(1)).toBe("/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages");
  });
});

// The real path: mbind(MPOL_BIND) to node 0 before the first touch, move_pages to check.
const counts = hugepageCounts();
const hostReason = counts.free < 4 ? `only ${counts.free} free hugepages (need 4)` : null;
if (hostReason) console.warn(`skipping host NUMA tests: ${hostReason}`);

describe.skipIf(hostReason !== null)("mbind on this host's node 0", () => {
  it("a mapping bound to node 0 is on node 0, page by page", () => {
    const m = HugepageMapping.map(2 * HUGEPAGE_SIZE, "test", 0);
    try {
      expect(mappingNodes(m.ptr, m.size, HUGEPAGE_SIZE, "test")).toEqual([0, 0]);
      new Uint8Array(m.buffer).fill(0xa5); // usable as ever
      expect(new Uint8Array(m.buffer)[m.size - 1]).toBe(0xa5);
    } finally {
      m.unmap();
    }
  });

  it("an arena bound to node 0 reports where its pages are", () => {
    const arena = new HugepageArena("test arena", { attach() {}, iovaOf: () => 0, detach() {} }, 0);
    try {
      arena.allocate(4096, 64, false);
      arena.allocate(HUGEPAGE_SIZE + 1, 64, false);
      expect(arena.numaNode).toBe(0);
      expect(arena.pageNodes()).toEqual([0, 0, 0]);
    } finally {
      arena.close();
    }
  });

  it("a node the machine does not have: mbind's EINVAL, and no hugepage kept", () => {
    const missing = readNumaTopology().nodes.length; // one past the last node
    const before = hugepageCounts().free;
    expect(() => HugepageMapping.map(HUGEPAGE_SIZE, "test", missing)).toThrow(SyscallError);
    expect(() => HugepageMapping.map(HUGEPAGE_SIZE, "test", missing)).toThrow(/test: binding DMA memory to NUMA node \d+: mbind\(\) failed: EINVAL/);
    expect(hugepageCounts().free).toBe(before);
  });

  it("without a node (as before NUMA support) the pages land on the only node", () => {
    const m = HugepageMapping.map(HUGEPAGE_SIZE, "test");
    try {
      expect(mappingNodes(m.ptr, m.size, HUGEPAGE_SIZE, "test")).toEqual([0]);
    } finally {
      m.unmap();
    }
  });
});
