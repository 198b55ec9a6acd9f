/**
 * ixy-devbind --status: the PCI network devices grouped as dpdk-devbind groups them (bound to
 * vfio-pci, on a kernel driver, on no driver), each with its ids, name, driver, interfaces, whether
 * they are in use, and IOMMU group.
 */
import { spawnSync } from "node:child_process";
import { activeReason, hex4, type PciNetDevice } from "../../src/pci/sysfs-devices.ts";

/**
 * IPv4 addresses by interface from `ip -j addr` (iproute2, on Debian by default); an empty map
 * when ip is missing or says nothing useful: the subnet routes in /proc/net/route still show an
 * addressed interface as in use.
 */
export function ipv4Addresses(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const r = spawnSync("ip", ["-j", "-4", "addr"], { encoding: "utf8", timeout: 5000 });
  if (r.status !== 0 || !r.stdout) return out;
  try {
    for (const link of JSON.parse(r.stdout) as { ifname?: string; addr_info?: { family?: string; local?: string; prefixlen?: number }[] }[]) {
      const addrs = (link.addr_info ?? []).filter((a) => a.family === "inet" && a.local).map((a) => `${a.local}/${a.prefixlen}`);
      if (link.ifname && addrs.length) out.set(link.ifname, addrs);
    }
  } catch {
    // Not JSON (an old iproute2 without -j): leave IPv4 to the routes.
  }
  return out;
}

function describe(dev: PciNetDevice): string {
  const parts = [`${dev.address} '${dev.name}' ${hex4(dev.vendorId)}:${hex4(dev.deviceId)}`];
  if (dev.driver !== null) parts.push(`drv=${dev.driver}`);
  if (dev.driverOverride !== null) parts.push(`override=${dev.driverOverride}`);
  parts.push(dev.iommuGroup === null ? "iommu_group=none" : `iommu_group=${dev.iommuGroup}`);
  const lines = [parts.join(" ")];
  for (const i of dev.interfaces) {
    const why = activeReason(i);
    const addrs = [...i.ipv4, ...i.ipv6];
    lines.push(
      `    if=${i.name} ${i.up ? "up" : `down (${i.operstate})`}` +
        (addrs.length ? ` addr=${addrs.join(",")}` : "") +
        (i.routes.length ? ` routes=${i.routes.join(",")}` : "") +
        (why === null ? "" : i.defaultRoute ? " *Active: DEFAULT ROUTE*" : " *Active*"),
    );
  }
  return lines.join("\n");
}

/** The --status text. */
export function formatStatus(devices: readonly PciNetDevice[]): string {
  const groups: [string, PciNetDevice[]][] = [
    ["Network devices bound to vfio-pci (ixy.ts can use them)", devices.filter((d) => d.driver === "vfio-pci")],
    ["Network devices using a kernel driver", devices.filter((d) => d.driver !== null && d.driver !== "vfio-pci")],
    ["Network devices with no driver", devices.filter((d) => d.driver === null)],
  ];
  const out: string[] = [];
  for (const [title, list] of groups) {
    out.push(title, "=".repeat(title.length));
    out.push(list.length === 0 ? "<none>" : list.map(describe).join("\n"), "");
  }
  if (devices.length === 0) out.push("(no PCI network devices: class 0x02 under /sys/bus/pci/devices)");
  return out.join("\n").trimEnd();
}
