/**
 * What Linux's sysfs says about a PCI device: identity, bound driver, IOMMU group, NUMA node.
 * The root is a parameter so tests can point it at a tree of their own.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DeviceNotFoundError } from "../errors.ts";
import type { PciAddress } from "./pci-address.ts";

export interface PciSysfsInfo {
  readonly address: string;
  readonly vendorId: number;
  readonly deviceId: number;
  /** 24-bit class code, e.g. 0x020000 for an Ethernet controller. */
  readonly classCode: number;
  /** Name of the bound kernel driver, or null if none. */
  readonly driver: string | null;
  /** IOMMU group number, or null when the device has none (no IOMMU). */
  readonly iommuGroup: number | null;
  /** NUMA node, -1 when unknown. */
  readonly numaNode: number;
}

function readHex(file: string): number {
  return parseInt(fs.readFileSync(file, "utf8").trim(), 16);
}

function linkName(file: string): string | null {
  try {
    return path.basename(fs.readlinkSync(file));
  } catch {
    return null;
  }
}

export function pciDevicePath(address: PciAddress | string, sysfsRoot = "/sys"): string {
  return path.join(sysfsRoot, "bus/pci/devices", String(address));
}

/** Reads the device's sysfs entries; DeviceNotFoundError when there is no such device. */
export function readPciSysfs(address: PciAddress, sysfsRoot = "/sys"): PciSysfsInfo {
  const dir = pciDevicePath(address, sysfsRoot);
  if (!fs.existsSync(dir)) {
    throw new DeviceNotFoundError(`no PCI device at ${address} (${dir} does not exist): ixy-devbind --status lists the network devices`);
  }
  const group = linkName(path.join(dir, "iommu_group"));
  let numaNode = -1;
  try {
    numaNode = parseInt(fs.readFileSync(path.join(dir, "numa_node"), "utf8").trim(), 10);
  } catch {
    // Not every platform has NUMA information.
  }
  try {
    return {
      address: String(address),
      vendorId: readHex(path.join(dir, "vendor")),
      deviceId: readHex(path.join(dir, "device")),
      classCode: readHex(path.join(dir, "class")),
      driver: linkName(path.join(dir, "driver")),
      iommuGroup: group === null ? null : parseInt(group, 10),
      numaNode,
    };
  } catch (e) {
    // The directory was there a moment ago: the device went away while we read it (hot
    // unplug, a remove through sysfs, a VF disabled).
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENODEV" || code === "ENOTDIR") {
      throw new DeviceNotFoundError(
        `${address}: the device vanished while it was being opened (${(e as NodeJS.ErrnoException).path ?? dir}: ${code}): ` +
          `was it unplugged or removed? Check ixy-devbind --status, then open it again`,
      );
    }
    throw e;
  }
}

/** The devices of an IOMMU group and their drivers (for "group not viable" errors). */
export function iommuGroupDevices(group: number, sysfsRoot = "/sys"): { address: string; driver: string | null }[] {
  const dir = path.join(sysfsRoot, "kernel/iommu_groups", String(group), "devices");
  let names: string[];
  try {
    names = fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
  return names.map((address) => ({ address, driver: linkName(path.join(dir, address, "driver")) }));
}
