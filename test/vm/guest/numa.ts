/**
 * Guest program for the NUMA test (a guest with two nodes, NIC1 behind an expander bridge on
 * node 1): prints one JSON line per case with what sysfs says and where the DMA memory of the
 * device really is (move_pages), for the host test to check.
 *   node numa.js <nic on no node> <nic on node 1>
 */
import { DmaError } from "../../../src/errors.ts";
import { Mempool } from "../../../src/mem/mempool.ts";
import { writeFrame } from "../../../src/mem/packet.ts";
import { deviceCpus, readNumaTopology } from "../../../src/mem/numa.ts";
import { devicePlacement, openDevice, type OpenOptions } from "../../../src/open-device.ts";

const [nic0, nic1] = process.argv.slice(2) as [string, string];

console.log(JSON.stringify({ case: "topology", nodes: readNumaTopology().nodes, cpus0: deviceCpus(nic0), cpus1: deviceCpus(nic1) }));

/** Opens `address`, makes a pool of `count` buffers on its memory, reports the placement. */
function report(name: string, address: string, options: OpenOptions, count = 4096): void {
  const dev = openDevice(address, options);
  try {
    const pool = new Mempool(dev.dma, { count, name: `numa test pool on ${address}` });
    const placement = devicePlacement(address);
    console.log(JSON.stringify({ case: name, address, placement, poolBuffers: pool.count }));
  } catch (e) {
    console.log(JSON.stringify({ case: name, address, error: (e as Error).message, dmaError: e instanceof DmaError }));
  } finally {
    dev.close();
  }
}

// The device's own node by default.
report("nic1-default", nic1, {});
// No node in sysfs: no policy (as before NUMA support).
report("nic0-default", nic0, {});
// The option overrides: memory of either node for either device.
report("nic0-on-node1", nic0, { numaNode: 1 });
report("nic1-on-node0", nic1, { numaNode: 0 });
report("nic1-no-policy", nic1, { numaNode: -1 });
// More hugepages than node 1 has (it has half the guest's): a clear error, not memory elsewhere.
report("nic1-too-big", nic1, {}, 48 * 1024);

// Two devices on two nodes, opened together: each gets memory of its own node (an allocator per
// node in the one container), and a buffer of one can be sent on the other.
const warnings: string[] = [];
process.on("warning", (w) => warnings.push(`${(w as { code?: string }).code}: ${w.message}`));
const first = openDevice(nic0, { numaNode: 0 });
const second = openDevice(nic1);
await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
// A frame from the node-0 device's address space sent on the node-1 device: same container, same space.
const pool = new Mempool(first.dma, { count: 8, name: "node-0 pool" });
const bufs = new Int32Array(1);
pool.allocBatch(bufs, 1);
writeFrame(bufs[0]!, new Uint8Array(60).fill(0x5a));
const sentAcross = second.txBatch(0, bufs, 1);
console.log(JSON.stringify({
  case: "two-nodes", warnings, placement: devicePlacement(nic1), first: devicePlacement(nic0), sentAcross,
  sameSpace: first.dma.space === second.dma.space,
}));
second.close();
first.close();
