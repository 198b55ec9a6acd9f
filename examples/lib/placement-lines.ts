/** The apps' start lines that say where each PCI device and its DMA memory are (NUMA). */
import type { NicDevice } from "../../src/device.ts";
import { devicePlacement } from "../../src/open-device.ts";

/**
 * "<app>: <address> NUMA node N (CPUs ...), DMA memory on node N": one line per PCI device, for
 * the start of an app (after its pools exist, so that their memory is counted). Nothing for
 * devices openDevice() did not open on a PCI address (device models, vhost-user).
 */
export function placementLines(app: string, devices: readonly NicDevice[]): string {
  let out = "";
  for (const d of devices) {
    const p = devicePlacement(d.address);
    if (p === null) continue;
    const node = p.node === null ? `no NUMA node${p.deviceNode < 0 ? " (sysfs numa_node -1)" : " (one node)"}` : `NUMA node ${p.node}`;
    const memory = p.memoryNodes.length === 0 ? "none yet" : `on node ${p.memoryNodes.join(", ")}`;
    const bound = p.memoryBoundTo === null ? " (no policy)" : "";
    out += `${app}: ${d.address} ${node}, CPUs ${compactList(p.cpus)}, DMA memory ${memory}${bound}\n`;
  }
  return out;
}

/** [0,1,2,3,8] as "0-3,8", the kernel's cpulist notation. */
function compactList(list: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < list.length; ) {
    let j = i;
    while (j + 1 < list.length && list[j + 1] === list[j]! + 1) j++;
    parts.push(j === i ? `${list[i]}` : `${list[i]}-${list[j]}`);
    i = j + 1;
  }
  return parts.length === 0 ? "?" : parts.join(",");
}
