/**
 * Issue 12.6 and 12.3 on openDevice, with a fake sysfs tree and /dev/vfio (the host has no VFIO):
 * a transitional (legacy) virtio device, whose DMA bypasses the IOMMU, opens only with
 * unsafeNoIommu: true, which warns; and a device whose sysfs entry vanishes while it is being
 * opened is a DeviceNotFoundError that says so, not a raw ENOENT.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceNotFoundError, NotSupportedError, SyscallError } from "../../src/errors.ts";
import { openDevice } from "../../src/open-device.ts";

let root: string;
let sysfs: string;
let devVfio: string;

function fakeDevice(address: string, vendor: number, device: number, group: number, files = true): void {
  const dir = path.join(sysfs, "bus/pci/devices", address);
  fs.mkdirSync(dir, { recursive: true });
  if (files) {
    fs.writeFileSync(path.join(dir, "vendor"), `0x${vendor.toString(16).padStart(4, "0")}\n`);
    fs.writeFileSync(path.join(dir, "device"), `0x${device.toString(16).padStart(4, "0")}\n`);
    fs.writeFileSync(path.join(dir, "class"), "0x020000\n");
  }
  fs.mkdirSync(path.join(sysfs, "bus/pci/drivers/vfio-pci"), { recursive: true });
  fs.symlinkSync(path.join(sysfs, "bus/pci/drivers/vfio-pci"), path.join(dir, "driver"));
  const g = path.join(sysfs, "kernel/iommu_groups", String(group));
  fs.mkdirSync(path.join(g, "devices"), { recursive: true });
  fs.symlinkSync(g, path.join(dir, "iommu_group"));
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-iommu-first-"));
  sysfs = path.join(root, "sys");
  devVfio = path.join(root, "dev-vfio");
  fakeDevice("0000:05:00.0", 0x1af4, 0x1000, 21); // transitional virtio-net
  fakeDevice("0000:06:00.0", 0x1af4, 0x1041, 22, false); // its entry is going away: no files left
  fs.mkdirSync(devVfio);
  fs.writeFileSync(path.join(devVfio, "vfio"), ""); // a plain file: the VFIO ioctls fail
});

afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe("IOMMU first", () => {
  it("refuses a legacy virtio device without unsafeNoIommu, saying why and what to do", () => {
    const open = () => openDevice("0000:05:00.0", { sysfsRoot: sysfs, devVfio });
    expect(open).toThrow(NotSupportedError);
    expect(open).toThrow(/0000:05:00\.0 is a transitional \(legacy\) virtio-net device.*bypasses the IOMMU.*any memory.*disable-legacy=on,iommu_platform=on.*unsafeNoIommu: true.*--unsafe-no-iommu/);
  });

  it("with unsafeNoIommu: true goes on (to VFIO, absent here) and warns", async () => {
    const warnings: string[] = [];
    const listener = (w: Error & { code?: string }) => warnings.push(`${w.code}: ${w.message}`);
    process.on("warning", listener);
    try {
      expect(() => openDevice("0000:05:00.0", { sysfsRoot: sysfs, devVfio, unsafeNoIommu: true })).toThrow(SyscallError); // the fake container is a plain file
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    } finally {
      process.off("warning", listener);
    }
    expect(warnings).toEqual([expect.stringMatching(/^IXY_UNSAFE_NO_IOMMU: 0000:05:00\.0: DMA without an IOMMU/)]);
  });

  it("refuses unsafeNoIommu that is not a boolean", () => {
    expect(() => openDevice("0000:05:00.0", { sysfsRoot: sysfs, devVfio, unsafeNoIommu: "yes" as never })).toThrow(
      /0000:05:00\.0: unsafeNoIommu must be true or false, got the string "yes"/,
    );
  });
});

describe("sysfs vanishing mid-open", () => {
  it("is a DeviceNotFoundError that says the device vanished, not a raw ENOENT", () => {
    const open = () => openDevice("0000:06:00.0", { sysfsRoot: sysfs, devVfio });
    expect(open).toThrow(DeviceNotFoundError);
    expect(open).toThrow(/0000:06:00\.0: the device vanished while it was being opened \(.*vendor: ENOENT\).*ixy-devbind --status/);
  });
});
