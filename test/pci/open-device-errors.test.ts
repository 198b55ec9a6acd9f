/**
 * openDevice() on bad input: each case gets a clear, typed error and leaves no file descriptor
 * behind. The sysfs tree and /dev/vfio are fakes in a temporary folder (the host has no VFIO);
 * the real paths are exercised in the qemu testbed.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceNotFoundError, NotSupportedError, SyscallError, VfioError } from "../../src/errors.ts";
import { openDevice } from "../../src/open-device.ts";
import { notViableMessage } from "../../src/pci/vfio.ts";

let root: string;
let sysfs: string;

function fakeDevice(address: string, vendor: number, device: number, driver: string | null, group: number | null): void {
  const dir = path.join(sysfs, "bus/pci/devices", address);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "vendor"), `0x${vendor.toString(16).padStart(4, "0")}\n`);
  fs.writeFileSync(path.join(dir, "device"), `0x${device.toString(16).padStart(4, "0")}\n`);
  fs.writeFileSync(path.join(dir, "class"), "0x020000\n");
  fs.writeFileSync(path.join(dir, "numa_node"), "-1\n");
  if (driver) {
    fs.mkdirSync(path.join(sysfs, "bus/pci/drivers", driver), { recursive: true });
    fs.symlinkSync(path.join(sysfs, "bus/pci/drivers", driver), path.join(dir, "driver"));
  }
  if (group !== null) {
    const g = path.join(sysfs, "kernel/iommu_groups", String(group));
    fs.mkdirSync(path.join(g, "devices"), { recursive: true });
    fs.symlinkSync(g, path.join(dir, "iommu_group"));
    fs.symlinkSync(dir, path.join(g, "devices", address));
  }
}

const openFds = () => fs.readdirSync("/proc/self/fd").length;

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-sysfs-"));
  sysfs = path.join(root, "sys");
  fakeDevice("0000:01:00.0", 0x8086, 0x10fb, "ixgbe", 7); // 82599 still on the kernel driver
  fakeDevice("0000:01:00.1", 0x8086, 0x10fb, "vfio-pci", 7);
  fakeDevice("0000:02:00.0", 0x8086, 0x1533, "igb", 9); // an I210: not ours
  fakeDevice("0000:03:00.0", 0x1af4, 0x1041, "vfio-pci", 11);
  fakeDevice("0000:04:00.0", 0x1af4, 0x1041, "vfio-pci", null);
  fs.mkdirSync(path.join(root, "dev-vfio-fake"));
  fs.writeFileSync(path.join(root, "dev-vfio-fake", "vfio"), ""); // a plain file: ioctls fail
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe("openDevice() on bad input", () => {
  it("rejects a malformed address with a TypeError", () => {
    expect(() => openDevice("01:00", { sysfsRoot: sysfs })).toThrow(TypeError);
  });

  it("reports a missing device with DeviceNotFoundError pointing at ixy-devbind --status", () => {
    expect(() => openDevice("0000:09:00.0", { sysfsRoot: sysfs })).toThrow(DeviceNotFoundError);
    expect(() => openDevice("09:00.0", { sysfsRoot: sysfs })).toThrow(/no PCI device at 0000:09:00.0.*ixy-devbind --status/);
  });

  it("refuses a device no driver handles, naming the ids it found and the ones it supports", () => {
    expect(() => openDevice("0000:02:00.0", { sysfsRoot: sysfs })).toThrow(NotSupportedError);
    expect(() => openDevice("0000:02:00.0", { sysfsRoot: sysfs })).toThrow(/8086:1533.*not supported.*8086:.*10fb.*1af4:/);
  });

  it("says how to bind a device that is still on its kernel driver", () => {
    expect(() => openDevice("0000:01:00.0", { sysfsRoot: sysfs })).toThrow(VfioError);
    expect(() => openDevice("0000:01:00.0", { sysfsRoot: sysfs })).toThrow(
      "0000:01:00.0 is bound to ixgbe, not vfio-pci: bind it with npx ixy-devbind --bind 0000:01:00.0 (as root; ixy-devbind --status lists the devices)",
    );
  });

  it("says to enable the IOMMU when the device has no IOMMU group", () => {
    expect(() => openDevice("0000:04:00.0", { sysfsRoot: sysfs })).toThrow(/no IOMMU group.*intel_iommu=on/);
  });

  it("says how to load VFIO when /dev/vfio is missing, and leaks nothing", () => {
    const fds = openFds();
    const devVfio = path.join(root, "no-such-dir");
    expect(() => openDevice("0000:03:00.0", { sysfsRoot: sysfs, devVfio })).toThrow(VfioError);
    expect(() => openDevice("0000:03:00.0", { sysfsRoot: sysfs, devVfio })).toThrow(/vfio does not exist.*modprobe vfio-pci/);
    expect(openFds()).toBe(fds);
  });

  it("closes the container again when VFIO refuses it", () => {
    const fds = openFds();
    const devVfio = path.join(root, "dev-vfio-fake");
    expect(() => openDevice("0000:03:00.0", { sysfsRoot: sysfs, devVfio })).toThrow(SyscallError);
    expect(() => openDevice("0000:03:00.0", { sysfsRoot: sysfs, devVfio })).toThrow(/ioctl 0x3b64.*ENOTTY/);
    expect(openFds()).toBe(fds);
  });
});

describe("a group that is not viable", () => {
  it("is explained by listing the other devices of the group and their drivers", () => {
    expect(notViableMessage("0000:01:00.1", 7, sysfs)).toBe(
      "0000:01:00.1: IOMMU group 7 is not viable: every device of a group must be bound to vfio-pci " +
        "(or to no driver) before any can be used. Other devices in the group: 0000:01:00.0 (ixgbe). " +
        "Bind each of them with npx ixy-devbind --bind <address> (as root)",
    );
  });
});
