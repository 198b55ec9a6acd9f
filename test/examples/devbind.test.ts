/**
 * ixy-devbind as a user runs it (a child process), on a constructed sysfs/procfs tree: --status
 * groups and marks the devices, --bind refuses the interface that carries the default route and
 * writes nothing, --force writes driver_override, unbind and drivers_probe in that order, and
 * --restore gives the recorded kernel driver back. The tree's "unbind"/"bind" are plain files: the
 * kernel's side of a bind is only exercised on a real machine (not in this suite). Then --status
 * on this host's real sysfs: the interface with the default route is marked in use.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { FakeTree, standardTree } from "./devbind-tree.ts";
import { activeInterfaceWarning } from "../../src/pci/sysfs-devices.ts";
import { openDevice } from "../../src/open-device.ts";
import { VfioError } from "../../src/errors.ts";

const root = new URL("../..", import.meta.url).pathname;
const trees: FakeTree[] = [];
afterEach(() => {
  for (const t of trees.splice(0)) t.remove();
});

function tree(): FakeTree {
  const t = standardTree();
  trees.push(t);
  return t;
}

function devbind(t: FakeTree | null, ...args: string[]) {
  const roots = t ? ["--sysfs-root", t.sys, "--proc-root", t.proc, "--state-dir", t.state] : [];
  const r = spawnSync("npx", ["tsx", "examples/devbind.ts", ...args, ...roots], { cwd: root, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every file of the tree with its content, to check that nothing was written. */
function snapshot(t: FakeTree): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isSymbolicLink()) out.set(p, `-> ${fs.readlinkSync(p)}`);
      else if (e.isDirectory()) walk(p);
      else out.set(p, fs.readFileSync(p, "utf8"));
    }
  };
  walk(t.root);
  return out;
}

describe("ixy-devbind --status on a constructed tree", () => {
  it("groups the devices by driver and marks the default-route interface active", () => {
    const t = tree();
    const r = devbind(t, "--status");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const [vfio, kernel, none] = r.stdout.split(/\n\n/);
    expect(vfio).toMatch(/^Network devices bound to vfio-pci/);
    expect(vfio).toContain("0000:02:00.0 'virtio-net (modern)' 1af4:1041 drv=vfio-pci iommu_group=11");
    expect(kernel).toMatch(/^Network devices using a kernel driver/);
    expect(kernel).toContain("0000:01:00.0 'Intel 82599ES SFP+ (X520)' 8086:10fb drv=ixgbe iommu_group=7");
    expect(kernel).toContain("    if=eth1 up addr=2001:db8::1/64 routes=default,10.0.0.0/24 *Active: DEFAULT ROUTE*");
    expect(kernel).toContain("0000:01:00.1 'Intel 82599ES SFP+ (X520)' 8086:10fb drv=ixgbe iommu_group=8\n    if=eth2 down (down)");
    expect(kernel).not.toMatch(/eth2.*Active/);
    expect(none).toMatch(/^Network devices with no driver/);
    expect(none).toContain("0000:03:00.0 'Intel 82599ES SFP+ (X520)' 8086:10fb iommu_group=12");
    expect(r.stdout).not.toContain("0000:00:1f.0"); // an ISA bridge is not a network device
  }, 90_000);
});

describe("ixy-devbind --status: virtio interfaces and IPv6 routes", () => {
  it("finds a virtio-net's interface under virtio0/net and marks an IPv6-only default route", () => {
    const t = new FakeTree();
    trees.push(t);
    t.add({ address: "0000:04:00.0", vendor: 0x1af4, device: 0x1000, driver: "virtio-pci", group: 3, virtio: true, interfaces: [{ name: "ens4", operstate: "up", flags: 0x1003 }] });
    const z = "0".repeat(32);
    fs.writeFileSync(
      path.join(t.proc, "net/ipv6_route"),
      [
        `${z} 00 ${z} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     ens4`,
        `fe800000000000000000000000000000 40 ${z} 00 ${z} 00000100 00000001 00000000 00000001     ens4`,
      ].join("\n") + "\n",
    );
    const r = devbind(t, "--status");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("0000:04:00.0 'virtio-net (transitional)' 1af4:1000 drv=virtio-pci iommu_group=3\n    if=ens4 up routes=::/0 *Active: DEFAULT ROUTE*");
  }, 90_000);
});

describe("ixy-devbind --bind", () => {
  it("refuses the interface with the default route, exit 1, and writes nothing", () => {
    const t = tree();
    const before = snapshot(t);
    const r = devbind(t, "--bind", "01:00.0");
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("0000:01:00.0 is in use by the kernel: eth1 carries the default route");
    expect(r.stderr).toContain("BINDING IT CUTS THIS MACHINE OFF THE NETWORK");
    expect(r.stderr).toContain("ixy-devbind --bind --force 0000:01:00.0");
    expect(snapshot(t)).toEqual(before);
    expect(fs.existsSync(t.state)).toBe(false);
  }, 90_000);

  it("with --force writes driver_override, unbind, drivers_probe in that order and records the driver", () => {
    const t = tree();
    const r = devbind(t, "--bind", "--force", "--verbose", "0000:01:00.0");
    const writes = r.stderr.split("\n").filter((l) => l.startsWith("  echo "));
    expect(writes).toEqual([
      `  echo vfio-pci > ${t.devDir("0000:01:00.0")}/driver_override`,
      `  echo 0000:01:00.0 > ${t.devDir("0000:01:00.0")}/driver/unbind`,
      `  echo 0000:01:00.0 > ${t.sys}/bus/pci/drivers_probe`,
    ]);
    expect(t.read("bus/pci/devices/0000:01:00.0/driver_override")).toBe("vfio-pci");
    expect(t.read("bus/pci/drivers/ixgbe/unbind")).toBe("0000:01:00.0");
    expect(t.read("bus/pci/drivers_probe")).toBe("0000:01:00.0");
    expect(fs.readFileSync(path.join(t.state, "0000:01:00.0"), "utf8")).toBe("ixgbe\n");
    // No kernel here to move the driver link: the tool sees it still on ixgbe and says so.
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("binding 0000:01:00.0 to vfio-pci failed (driver now: ixgbe); see dmesg");
  }, 90_000);

  it("binds an interface that is down without --force, and a device with no driver without unbinding", () => {
    const t = tree();
    const r = devbind(t, "--bind", "--verbose", "0000:01:00.1", "0000:03:00.0");
    expect(r.stderr).toContain(`echo 0000:01:00.1 > ${t.devDir("0000:01:00.1")}/driver/unbind`);
    expect(r.stderr).not.toContain("in use");
    expect(t.read("bus/pci/drivers/ixgbe/unbind")).toBe("0000:01:00.1");
    expect(t.read("bus/pci/devices/0000:01:00.1/driver_override")).toBe("vfio-pci");
    // Stops at the first device the (absent) kernel did not bind: 03:00.0 is not reached.
    expect(t.read("bus/pci/devices/0000:03:00.0/driver_override")).toBe("(null)\n");
    expect(r.code).toBe(1);
  }, 90_000);

  it("says there is no IOMMU, naming intel_iommu=on and no-IOMMU mode, when the machine has no groups", () => {
    const t = new FakeTree();
    trees.push(t);
    t.add({ address: "0000:05:00.0", vendor: 0x1af4, device: 0x1041, driver: "virtio-pci", group: null });
    const r = devbind(t, "--bind", "0000:05:00.0");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no IOMMU group.*iommu_groups is empty.*intel_iommu=on.*enable_unsafe_noiommu_mode/);
  }, 90_000);

  it("is a usage error (exit 2) with a malformed address or no mode", () => {
    const t = tree();
    expect(devbind(t, "--bind", "1:0.0").code).toBe(1); // TypeError: malformed, as the library's
    const none = devbind(t, "0000:01:00.0");
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("ixy-devbind takes one of --status, --bind, --restore, --unbind");
  }, 90_000);
});

describe("ixy-devbind --restore", () => {
  it("gives the recorded kernel driver back: clears driver_override, unbinds from vfio-pci, binds ixgbe", () => {
    const t = tree();
    devbind(t, "--bind", "--force", "0000:01:00.0");
    t.setDriver("0000:01:00.0", "vfio-pci"); // what the kernel would have done
    const r = devbind(t, "--restore", "--verbose", "0000:01:00.0");
    const writes = r.stderr.split("\n").filter((l) => l.startsWith("  echo "));
    expect(writes).toEqual([
      `  echo '' > ${t.devDir("0000:01:00.0")}/driver_override`,
      `  echo 0000:01:00.0 > ${t.devDir("0000:01:00.0")}/driver/unbind`,
      `  echo 0000:01:00.0 > ${t.sys}/bus/pci/drivers/ixgbe/bind`,
    ]);
    expect(r.code).toBe(0);
    expect(t.read("bus/pci/devices/0000:01:00.0/driver_override")).toBe("\n");
    expect(t.read("bus/pci/drivers/vfio-pci/unbind")).toBe("0000:01:00.0");
    expect(t.read("bus/pci/drivers/ixgbe/bind")).toBe("0000:01:00.0");
    expect(fs.existsSync(path.join(t.state, "0000:01:00.0"))).toBe(false);
  }, 120_000);

  it("without a record lets the kernel pick the driver (drivers_probe)", () => {
    const t = tree();
    const r = devbind(t, "--restore", "--verbose", "0000:02:00.0");
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`echo 0000:02:00.0 > ${t.sys}/bus/pci/drivers_probe`);
    expect(t.read("bus/pci/drivers/vfio-pci/unbind")).toBe("0000:02:00.0");
  }, 90_000);
});

describe("ixy-devbind --unbind", () => {
  it("refuses the default-route interface as --bind does, and leaves a down one with no driver", () => {
    const t = tree();
    const before = snapshot(t);
    const r = devbind(t, "--unbind", "0000:01:00.0");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("UNBINDING IT CUTS THIS MACHINE OFF THE NETWORK");
    expect(r.stderr).toContain("ixy-devbind --unbind --force 0000:01:00.0");
    expect(snapshot(t)).toEqual(before);
    const ok = devbind(t, "--unbind", "--verbose", "0000:01:00.1");
    expect(ok.code).toBe(0);
    expect(t.read("bus/pci/drivers/ixgbe/unbind")).toBe("0000:01:00.1");
    expect(t.read("bus/pci/drivers_probe")).toBe(""); // left with no driver: no probe
  }, 120_000);
});

describe("openDevice()'s hint for an active interface", () => {
  it("names the interface and the default route", () => {
    const t = tree();
    expect(activeInterfaceWarning("0000:01:00.0", { sysfsRoot: t.sys, procRoot: t.proc })).toBe(
      "0000:01:00.0 is eth1, which carries the default route: binding it to vfio-pci cuts this machine off " +
        "(an SSH session through it ends); use another port, or ixy-devbind --bind --force 0000:01:00.0 if you mean it",
    );
    expect(activeInterfaceWarning("0000:01:00.1", { sysfsRoot: t.sys, procRoot: t.proc })).toBeNull();
    expect(activeInterfaceWarning("0000:03:00.0", { sysfsRoot: t.sys, procRoot: t.proc })).toBeNull();
  });

  it("is what openDevice() says instead of 'bind it' (its procfs is the one beside the sysfs root)", () => {
    const t = tree();
    expect(() => openDevice("0000:01:00.0", { sysfsRoot: t.sys })).toThrow(VfioError);
    expect(() => openDevice("0000:01:00.0", { sysfsRoot: t.sys })).toThrow(
      "0000:01:00.0 is bound to ixgbe, not vfio-pci: 0000:01:00.0 is eth1, which carries the default route: binding it to vfio-pci cuts this machine off",
    );
    expect(() => openDevice("0000:01:00.1", { sysfsRoot: t.sys })).toThrow(
      "0000:01:00.1 is bound to ixgbe, not vfio-pci: bind it with npx ixy-devbind --bind 0000:01:00.1 (as root; ixy-devbind --status lists the devices)",
    );
  });
});

/** The interface of this host's IPv4 default route and its PCI address, if it has one. */
function hostDefaultRoute(): { iface: string; address: string } | null {
  let table: string;
  try {
    table = fs.readFileSync("/proc/net/route", "utf8");
  } catch {
    return null;
  }
  const row = table.split("\n").slice(1).map((l) => l.trim().split(/\s+/)).find((f) => f[1] === "00000000" && f[7] === "00000000");
  if (!row) return null;
  const iface = row[0]!;
  const dev = fs.realpathSync(`/sys/class/net/${iface}`);
  const m = [...dev.matchAll(/\/([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])(?=\/)/g)].pop();
  return m ? { iface, address: m[1]! } : null;
}

const host = hostDefaultRoute();

describe("ixy-devbind --status on this host", () => {
  it.skipIf(host === null)(`marks the default-route interface (${host?.iface} at ${host?.address}) active`, () => {
    const r = devbind(null, "--status");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    const at = lines.findIndex((l) => l.startsWith(`${host!.address} `));
    expect(lines[at]).toMatch(new RegExp(`^${host!.address} '.+' [0-9a-f]{4}:[0-9a-f]{4} drv=\\S+`));
    // Its interfaces follow, indented; the default-route one is marked.
    const ifaces = lines.slice(at + 1).filter((_, i, rest) => rest.slice(0, i + 1).every((l) => l.startsWith("    ")));
    expect(ifaces.find((l) => l.startsWith(`    if=${host!.iface} `))).toMatch(/ up .*\*Active: DEFAULT ROUTE\*$/);
  }, 90_000);
});
