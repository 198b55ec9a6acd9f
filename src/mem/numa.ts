/**
 * NUMA: which memory and which cores are near a device. On a machine with more than one node a
 * PCI device hangs off one of them (sysfs numa_node); its DMA memory and the cores that poll it
 * should be on that node too, or every descriptor and every packet crosses the interconnect.
 *
 * Everything here reads sysfs under a root that is a parameter, so tests use a tree of their own:
 *   <root>/devices/system/node/online                 the nodes, a list like "0-1"
 *   <root>/devices/system/node/nodeN/cpulist          that node's CPUs, "0-3,8-11"
 *   <root>/devices/system/node/nodeN/hugepages/hugepages-2048kB/{nr,free}_hugepages
 * A machine without that directory (no CONFIG_NUMA) counts as one node.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DmaError } from "../errors.ts";
import { pageNodes } from "../sys/libc.ts";

export interface NumaNode {
  readonly id: number;
  /** The node's CPUs (may be empty: a memory-only node). */
  readonly cpus: readonly number[];
  /** Its pool of 2 MiB hugepages, null when sysfs does not say. */
  readonly hugepages: { readonly total: number; readonly free: number } | null;
}

export interface NumaTopology {
  readonly nodes: readonly NumaNode[];
}

/**
 * Where a device's memory comes from and which cores are near it. `node` is null when NUMA does
 * not matter: the device's node is unknown (-1) or the machine has one node; then no memory
 * policy is set, as before NUMA support, and `cpus` are all CPUs of the machine.
 */
export interface NumaPlacement {
  readonly node: number | null;
  readonly cpus: readonly number[];
}

export function nodeDir(node: number, sysfsRoot = "/sys"): string {
  return path.join(sysfsRoot, "devices/system/node", `node${node}`);
}

/** The sysfs file that holds a node's number of 2 MiB hugepages (write it as root to reserve). */
export function nodeHugepagesFile(node: number, sysfsRoot = "/sys", which: "nr" | "free" = "nr"): string {
  return path.join(nodeDir(node, sysfsRoot), "hugepages/hugepages-2048kB", `${which}_hugepages`);
}

/** Parses a kernel CPU or node list ("0-3,8,10-11"; "" is empty). RangeError for anything else. */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  const s = text.trim();
  if (s === "") return out;
  for (const part of s.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m === null) throw new RangeError(`not a CPU/node list: ${JSON.stringify(text)}`);
    const lo = parseInt(m[1]!, 10);
    const hi = m[2] === undefined ? lo : parseInt(m[2], 10);
    if (hi < lo) throw new RangeError(`not a CPU/node list: ${JSON.stringify(text)}`);
    for (let i = lo; i <= hi; i++) out.push(i);
  }
  return out;
}

function readOptional(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
}

function readCount(file: string): number | null {
  const text = readOptional(file);
  if (text === null) return null;
  const n = parseInt(text.trim(), 10);
  return Number.isInteger(n) ? n : null;
}

/** The machine's NUMA nodes from sysfs; one node 0 with every online CPU where sysfs has none. */
export function readNumaTopology(sysfsRoot = "/sys"): NumaTopology {
  const online = readOptional(path.join(sysfsRoot, "devices/system/node/online"));
  if (online === null) {
    const cpus = readOptional(path.join(sysfsRoot, "devices/system/cpu/online"));
    return { nodes: [{ id: 0, cpus: cpus === null ? [] : parseCpuList(cpus), hugepages: null }] };
  }
  const nodes = parseCpuList(online).map((id): NumaNode => {
    const cpulist = readOptional(path.join(nodeDir(id, sysfsRoot), "cpulist"));
    const total = readCount(nodeHugepagesFile(id, sysfsRoot, "nr"));
    const free = readCount(nodeHugepagesFile(id, sysfsRoot, "free"));
    return {
      id,
      cpus: cpulist === null ? [] : parseCpuList(cpulist),
      hugepages: total === null || free === null ? null : { total, free },
    };
  });
  return { nodes };
}

/**
 * The placement for a device on `deviceNode` (sysfs numa_node, -1 when unknown), or on
 * `override` when given (an option: must be one of the machine's nodes).
 */
export function numaPlacement(deviceNode: number, topology: NumaTopology, owner: string, override?: number): NumaPlacement {
  const all = topology.nodes.flatMap((n) => n.cpus).sort((a, b) => a - b);
  if (override !== undefined) {
    const node = topology.nodes.find((n) => n.id === override);
    if (node === undefined) {
      throw new RangeError(
        `${owner}: numaNode ${override} is not a node of this machine (nodes: ${topology.nodes.map((n) => n.id).join(", ")})`,
      );
    }
    return { node: node.id, cpus: node.cpus.length > 0 ? node.cpus : all };
  }
  if (deviceNode < 0 || topology.nodes.length <= 1) return { node: null, cpus: all };
  const node = topology.nodes.find((n) => n.id === deviceNode);
  // A node the device names but sysfs does not list (offline): behave as if unknown.
  if (node === undefined) return { node: null, cpus: all };
  // A memory-only node has no CPUs: then any CPU is as near as another.
  return { node: node.id, cpus: node.cpus.length > 0 ? node.cpus : all };
}

/**
 * The CPUs near the PCI device at `address` (its node's cpulist; all CPUs when NUMA does not
 * matter): the default set to pin the device's workers to.
 */
export function deviceCpus(address: string, sysfsRoot = "/sys"): readonly number[] {
  const text = readOptional(path.join(sysfsRoot, "bus/pci/devices", address, "numa_node"));
  const node = text === null ? -1 : parseInt(text.trim(), 10);
  return numaPlacement(Number.isInteger(node) ? node : -1, readNumaTopology(sysfsRoot), address).cpus;
}

/**
 * Throws DmaError unless node `node` has `pages` free 2 MiB hugepages, naming the node and the
 * file to write. Does nothing when sysfs does not say (the mapping itself fails then).
 */
export function checkNodeHugepages(node: number, pages: number, owner: string, sysfsRoot = "/sys"): void {
  const total = readCount(nodeHugepagesFile(node, sysfsRoot, "nr"));
  const free = readCount(nodeHugepagesFile(node, sysfsRoot, "free"));
  if (total === null || free === null || free >= pages) return;
  throw new DmaError(
    `${owner}: NUMA node ${node} has ${free} free 2 MiB hugepages of ${total}, ${pages} are needed for DMA memory ` +
      `on the device's node: reserve them there as root: echo ${Math.max(512, total + pages)} > ` +
      `${nodeHugepagesFile(node, "/sys", "nr")} (or choose another node with the option numaNode)`,
  );
}

/**
 * The NUMA node of each hugepage of the mapping [ptr, ptr+size), by move_pages(2); a negative
 * errno for a page that is not faulted in.
 */
export function mappingNodes(ptr: bigint, size: number, pageSize: number, owner: string): number[] {
  const addrs: bigint[] = [];
  for (let off = 0; off < size; off += pageSize) addrs.push(ptr + BigInt(off));
  return pageNodes(addrs, `${owner}: asking where its pages are`);
}

/** Throws DmaError when a page of the mapping is not on `node` (mbind should make that impossible). */
export function checkMappingNode(ptr: bigint, size: number, pageSize: number, node: number, owner: string): void {
  const nodes = mappingNodes(ptr, size, pageSize, owner);
  const wrong = nodes.findIndex((n) => n !== node);
  if (wrong < 0) return;
  throw new DmaError(
    `${owner}: hugepage ${wrong} of a DMA mapping is on ${nodes[wrong]! < 0 ? `no node (errno ${-nodes[wrong]!})` : `node ${nodes[wrong]}`}, ` +
      `not on NUMA node ${node} as bound with mbind: the kernel did not honour the memory policy; ` +
      `check ${nodeHugepagesFile(node, "/sys", "free")} and open the device without the option numaNode to skip it`,
  );
}
