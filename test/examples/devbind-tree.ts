/**
 * A constructed sysfs + procfs tree for ixy-devbind's tests: <root>/sys and <root>/proc, laid
 * out as Linux lays them out (devices, driver links, iommu groups, class/net, /proc/net/route,
 * if_inet6). Writes to "unbind", "bind", "drivers_probe" only land in plain files here: the
 * kernel's reaction to them (the driver link moving) is not simulated unless a test moves it.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface FakeDevice {
  readonly address: string;
  readonly vendor: number;
  readonly device: number;
  readonly classCode?: number;
  readonly driver: string | null;
  readonly group: number | null;
  /** Interfaces: under <dev>/net, or <dev>/virtio0/net when `virtio`. */
  readonly interfaces?: readonly { name: string; operstate: string; flags: number }[];
  readonly virtio?: boolean;
}

export class FakeTree {
  readonly root: string;
  readonly sys: string;
  readonly proc: string;
  readonly state: string;

  constructor() {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-devbind-"));
    this.sys = path.join(this.root, "sys");
    this.proc = path.join(this.root, "proc");
    this.state = path.join(this.root, "run-ixy-devbind");
    fs.mkdirSync(path.join(this.sys, "bus/pci/devices"), { recursive: true });
    fs.mkdirSync(path.join(this.sys, "kernel/iommu_groups"), { recursive: true });
    fs.mkdirSync(path.join(this.proc, "net"), { recursive: true });
    fs.writeFileSync(path.join(this.sys, "bus/pci/drivers_probe"), "");
    this.routes([]);
    fs.writeFileSync(path.join(this.proc, "net/if_inet6"), "");
  }

  devDir(address: string): string {
    return path.join(this.sys, "bus/pci/devices", address);
  }

  driverDir(driver: string): string {
    const d = path.join(this.sys, "bus/pci/drivers", driver);
    if (!fs.existsSync(d)) {
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, "bind"), "");
      fs.writeFileSync(path.join(d, "unbind"), "");
    }
    return d;
  }

  /** Points the device's driver link at `driver` (what the kernel does after a bind). */
  setDriver(address: string, driver: string | null): void {
    const link = path.join(this.devDir(address), "driver");
    fs.rmSync(link, { force: true });
    if (driver !== null) fs.symlinkSync(this.driverDir(driver), link);
  }

  add(d: FakeDevice): void {
    const dir = this.devDir(d.address);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, "vendor"), `0x${d.vendor.toString(16).padStart(4, "0")}\n`);
    fs.writeFileSync(path.join(dir, "device"), `0x${d.device.toString(16).padStart(4, "0")}\n`);
    fs.writeFileSync(path.join(dir, "class"), `0x${(d.classCode ?? 0x020000).toString(16).padStart(6, "0")}\n`);
    fs.writeFileSync(path.join(dir, "driver_override"), "(null)\n");
    this.setDriver(d.address, d.driver);
    if (d.group !== null) {
      const g = path.join(this.sys, "kernel/iommu_groups", String(d.group));
      fs.mkdirSync(path.join(g, "devices"), { recursive: true });
      fs.symlinkSync(g, path.join(dir, "iommu_group"));
      fs.symlinkSync(dir, path.join(g, "devices", d.address));
    }
    for (const i of d.interfaces ?? []) {
      const netDir = path.join(dir, d.virtio ? "virtio0/net" : "net", i.name);
      fs.mkdirSync(netDir, { recursive: true });
      fs.writeFileSync(path.join(netDir, "operstate"), `${i.operstate}\n`);
      fs.writeFileSync(path.join(netDir, "flags"), `0x${i.flags.toString(16)}\n`);
      fs.mkdirSync(path.join(this.sys, "class/net"), { recursive: true });
      fs.symlinkSync(netDir, path.join(this.sys, "class/net", i.name));
    }
  }

  /** /proc/net/route lines: [iface, dest hex, gateway hex, mask hex]. */
  routes(rows: readonly [string, string, string, string][]): void {
    const header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT";
    const lines = rows.map(([i, d, g, m]) => `${i}\t${d}\t${g}\t${g === "00000000" ? "0001" : "0003"}\t0\t0\t0\t${m}\t0\t0\t0`);
    fs.writeFileSync(path.join(this.proc, "net/route"), [header, ...lines].join("\n") + "\n");
  }

  inet6(lines: readonly string[]): void {
    fs.writeFileSync(path.join(this.proc, "net/if_inet6"), lines.join("\n") + "\n");
  }

  read(file: string): string {
    return fs.readFileSync(path.join(this.sys, file), "utf8");
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** The tree the devbind tests share: an active 82599, a virtio-net on vfio-pci, a driverless 82599. */
export function standardTree(): FakeTree {
  const t = new FakeTree();
  t.add({ address: "0000:01:00.0", vendor: 0x8086, device: 0x10fb, driver: "ixgbe", group: 7, interfaces: [{ name: "eth1", operstate: "up", flags: 0x1003 }] });
  t.add({ address: "0000:01:00.1", vendor: 0x8086, device: 0x10fb, driver: "ixgbe", group: 8, interfaces: [{ name: "eth2", operstate: "down", flags: 0x1002 }] });
  t.add({ address: "0000:02:00.0", vendor: 0x1af4, device: 0x1041, driver: "vfio-pci", group: 11 });
  t.add({ address: "0000:03:00.0", vendor: 0x8086, device: 0x10fb, driver: null, group: 12 });
  t.add({ address: "0000:00:1f.0", vendor: 0x8086, device: 0xa304, classCode: 0x060100, driver: "lpc_ich", group: 1 }); // not a NIC
  // default via 10.0.0.1 dev eth1; 10.0.0.0/24 dev eth1
  t.routes([
    ["eth1", "00000000", "0100000A", "00000000"],
    ["eth1", "0000000A", "00000000", "00FFFFFF"],
  ]);
  t.inet6(["20010db8000000000000000000000001 05 40 00 80     eth1", "fe800000000000000000000000000002 05 40 20 80     eth1"]);
  return t;
}
