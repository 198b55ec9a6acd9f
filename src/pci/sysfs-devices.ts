/**
 * The PCI network devices of the machine as sysfs and /proc show them: ids, bound driver, kernel
 * interfaces, and whether an interface is in use (up, addresses, routes). ixy-devbind lists them
 * with it, and openDevice() asks it, cheaply, whether the device it was told to use is the one the
 * machine talks through (so that its error does not send the user to cut off their SSH session).
 *
 * Only files are read (sysfs, /proc/net/*): no netlink, no lspci. Both roots are parameters so
 * tests can point them at a tree of their own.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { findIxgbeDeviceId } from "../drivers/ixgbe/ixgbe-ids.ts";
import { findVirtioDeviceId } from "../drivers/virtio/virtio-ids.ts";

/** Where the kernel's files are: "/sys" and "/proc" on a real machine. */
export interface SysRoots {
  readonly sysfsRoot?: string;
  readonly procRoot?: string;
}

export interface NetInterfaceState {
  readonly name: string;
  /** operstate "up", or IFF_UP in flags when operstate says "unknown" (virtual links do). */
  readonly up: boolean;
  readonly operstate: string;
  /** IPv6 addresses other than link-local (fe80::/10), from /proc/net/if_inet6. */
  readonly ipv6: readonly string[];
  /** IPv4 addresses: only known when a caller supplies them (ip -j addr); [] otherwise. */
  readonly ipv4: readonly string[];
  /** IPv4 and IPv6 routes through the interface (destination/prefix). */
  readonly routes: readonly string[];
  /** A default route (0.0.0.0/0 or ::/0) goes through it. */
  readonly defaultRoute: boolean;
}

export interface PciNetDevice {
  readonly address: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  /** From ixy.ts's own id tables, else "network device". */
  readonly name: string;
  readonly driver: string | null;
  /** driver_override's content, null when none is set. */
  readonly driverOverride: string | null;
  readonly iommuGroup: number | null;
  readonly interfaces: readonly NetInterfaceState[];
}

const PCI_CLASS_NETWORK = 0x02;

function sysfs(roots: SysRoots): string {
  return roots.sysfsRoot ?? "/sys";
}
function proc(roots: SysRoots): string {
  return roots.procRoot ?? "/proc";
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return null;
  }
}

function linkName(file: string): string | null {
  try {
    return path.basename(fs.readlinkSync(file));
  } catch {
    return null;
  }
}

function listDir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}

export function hex4(n: number): string {
  return n.toString(16).padStart(4, "0");
}

/** A name for the ids, from the tables of the drivers ixy.ts has (no pci.ids). */
export function deviceName(vendorId: number, deviceId: number): string {
  const ixgbe = findIxgbeDeviceId(vendorId, deviceId);
  if (ixgbe) return `Intel ${ixgbe.name}`;
  const virtio = findVirtioDeviceId(vendorId, deviceId);
  if (virtio) return virtio.name;
  return "network device";
}

/**
 * The kernel interfaces of a PCI device: <dev>/net/* for most drivers; virtio puts them one level
 * down, under <dev>/virtioN/net/*.
 */
export function pciInterfaceNames(address: string, roots: SysRoots = {}): string[] {
  const dir = path.join(sysfs(roots), "bus/pci/devices", address);
  const names = listDir(path.join(dir, "net"));
  for (const sub of listDir(dir)) {
    if (/^virtio\d+$/.test(sub)) names.push(...listDir(path.join(dir, sub, "net")));
  }
  return names;
}

interface RouteTable {
  readonly byInterface: Map<string, string[]>;
  readonly defaults: Set<string>;
}

function hexIpv4(le: string): string {
  // /proc/net/route prints addresses as the host's u32 in hex: little-endian on x86 and arm.
  const n = parseInt(le, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join(".");
}

function prefixLength(maskLe: string): number {
  let n = parseInt(maskLe, 16) >>> 0;
  let bits = 0;
  while (n) {
    bits += n & 1;
    n >>>= 1;
  }
  return bits;
}

function ipv6Text(hex32: string): string {
  const groups = hex32.match(/.{4}/g) ?? [];
  return groups.map((g) => parseInt(g, 16).toString(16)).join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}

/** /proc/net/route and /proc/net/ipv6_route, by interface. */
function readRoutes(roots: SysRoots): RouteTable {
  const byInterface = new Map<string, string[]>();
  const defaults = new Set<string>();
  const add = (iface: string, route: string, isDefault: boolean) => {
    if (!byInterface.has(iface)) byInterface.set(iface, []);
    byInterface.get(iface)!.push(route);
    if (isDefault) defaults.add(iface);
  };
  const v4 = readText(path.join(proc(roots), "net/route"));
  for (const line of (v4 ?? "").split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, , flags, , , , mask] = f as [string, string, string, string, string, string, string, string];
    if ((parseInt(flags, 16) & 1) === 0) continue; // RTF_UP
    const len = prefixLength(mask);
    add(iface, len === 0 ? "default" : `${hexIpv4(dest)}/${len}`, len === 0);
  }
  const v6 = readText(path.join(proc(roots), "net/ipv6_route"));
  for (const line of (v6 ?? "").split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const dest = f[0]!;
    const len = parseInt(f[1]!, 16);
    const iface = f[9]!;
    if (iface === "lo") continue;
    // The kernel's own fe80::/64 and multicast ff00::/8 routes exist on every up interface: not use.
    if (dest.startsWith("fe80") || dest.startsWith("ff")) continue;
    // Local address routes (RTF_LOCAL, 0x80000000) are in the local table and shown on lo, mostly.
    if ((parseInt(f[8]!, 16) & 0x80000000) !== 0) continue;
    add(iface, len === 0 ? "::/0" : `${ipv6Text(dest)}/${len}`, len === 0);
  }
  return { byInterface, defaults };
}

/** Global and site IPv6 addresses by interface (/proc/net/if_inet6); link-local ones left out. */
function readIpv6Addresses(roots: SysRoots): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of (readText(path.join(proc(roots), "net/if_inet6")) ?? "").split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const [addr, , len, scope, , iface] = f as [string, string, string, string, string, string];
    if (scope === "20" || addr.startsWith("fe80")) continue; // link-local
    if (!out.has(iface)) out.set(iface, []);
    out.get(iface)!.push(`${ipv6Text(addr)}/${parseInt(len, 16)}`);
  }
  return out;
}

/**
 * The state of each named interface. `ipv4`, when given, maps interface names to their IPv4
 * addresses (from `ip -j addr`); without it an IPv4 address still shows as its subnet's route.
 */
export function interfaceStates(names: readonly string[], roots: SysRoots = {}, ipv4?: ReadonlyMap<string, readonly string[]>): NetInterfaceState[] {
  if (names.length === 0) return [];
  const routes = readRoutes(roots);
  const v6 = readIpv6Addresses(roots);
  return names.map((name) => {
    const dir = path.join(sysfs(roots), "class/net", name);
    const operstate = readText(path.join(dir, "operstate")) ?? "unknown";
    const flags = parseInt(readText(path.join(dir, "flags")) ?? "0", 16);
    return {
      name,
      operstate,
      up: operstate === "up" || (operstate === "unknown" && (flags & 1) !== 0),
      ipv6: v6.get(name) ?? [],
      ipv4: ipv4?.get(name) ?? [],
      routes: routes.byInterface.get(name) ?? [],
      defaultRoute: routes.defaults.has(name),
    };
  });
}

/** Why the interface counts as in use, or null: a route through it, or up with addresses. */
export function activeReason(i: NetInterfaceState): string | null {
  if (i.defaultRoute) return `${i.name} carries the default route`;
  if (i.routes.length > 0) return `${i.name} carries routes (${i.routes.join(", ")})`;
  const addrs = [...i.ipv4, ...i.ipv6];
  if (i.up && addrs.length > 0) return `${i.name} is up with address${addrs.length > 1 ? "es" : ""} ${addrs.join(", ")}`;
  return null;
}

/** Reads one PCI device; null when there is none at `address`. */
export function readPciNetDevice(address: string, roots: SysRoots = {}, ipv4?: ReadonlyMap<string, readonly string[]>): PciNetDevice | null {
  const dir = path.join(sysfs(roots), "bus/pci/devices", address);
  const vendor = readText(path.join(dir, "vendor"));
  const device = readText(path.join(dir, "device"));
  if (vendor === null || device === null) return null;
  const vendorId = parseInt(vendor, 16);
  const deviceId = parseInt(device, 16);
  const override = readText(path.join(dir, "driver_override"));
  const group = linkName(path.join(dir, "iommu_group"));
  return {
    address,
    vendorId,
    deviceId,
    classCode: parseInt(readText(path.join(dir, "class")) ?? "0", 16),
    name: deviceName(vendorId, deviceId),
    driver: linkName(path.join(dir, "driver")),
    driverOverride: override === null || override === "" || override === "(null)" ? null : override,
    iommuGroup: group === null ? null : parseInt(group, 10),
    interfaces: interfaceStates(pciInterfaceNames(address, roots), roots, ipv4),
  };
}

/** Every PCI device of class 0x02 (network controller), by address. */
export function listPciNetDevices(roots: SysRoots = {}, ipv4?: ReadonlyMap<string, readonly string[]>): PciNetDevice[] {
  const out: PciNetDevice[] = [];
  for (const address of listDir(path.join(sysfs(roots), "bus/pci/devices"))) {
    const cls = readText(path.join(sysfs(roots), "bus/pci/devices", address, "class"));
    if (cls === null || parseInt(cls, 16) >>> 16 !== PCI_CLASS_NETWORK) continue;
    const dev = readPciNetDevice(address, roots, ipv4);
    if (dev) out.push(dev);
  }
  return out;
}

/**
 * The procfs that goes with a sysfs root: /proc for the real one (or none given), else the "proc"
 * beside it (a test's tree has <root>/sys and <root>/proc), so a constructed sysfs is never read
 * together with this machine's routes.
 */
export function procRootBeside(sysfsRoot: string | undefined): string {
  return sysfsRoot === undefined || path.resolve(sysfsRoot) === "/sys" ? "/proc" : path.join(path.dirname(path.resolve(sysfsRoot)), "proc");
}

/**
 * For openDevice()'s "bind it" error: what binding `address` to vfio-pci would take away, as
 * "0000:00:03.0 is eth0, which carries the default route: binding it to vfio-pci cuts this
 * machine off; ...", or null when none of its interfaces is in use. Reads a few files only.
 */
export function activeInterfaceWarning(address: string, roots: SysRoots = {}): string | null {
  const reasons = interfaceStates(pciInterfaceNames(address, roots), roots)
    .map((i) => ({ i, why: activeReason(i) }))
    .filter((r) => r.why !== null);
  if (reasons.length === 0) return null;
  const first = reasons[0]!;
  const what = first.why!.slice(first.i.name.length + 1); // "carries the default route", ...
  const consequence = first.i.defaultRoute ? "cuts this machine off (an SSH session through it ends)" : `takes ${first.i.name} away from the kernel`;
  return `${address} is ${first.i.name}, which ${what}: binding it to vfio-pci ${consequence}; ` +
    `use another port, or ixy-devbind --bind --force ${address} if you mean it`;
}
