/**
 * ixy-devbind's writes: moving a PCI device to vfio-pci and back to the kernel driver it had.
 *
 * To vfio-pci: driver_override = "vfio-pci" (so that no other driver takes it meanwhile), unbind
 * from the current driver, drivers_probe (the kernel then binds the override). The driver it had is
 * recorded in a state file (<stateDir>/<address>, /run/ixy-devbind by default: gone at reboot,
 * as the binding is) so that --restore can give it back: clear driver_override, unbind from
 * vfio-pci, bind to the recorded driver (or drivers_probe when none is recorded).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { DeviceNotFoundError, IxyError, VfioError } from "../../src/errors.ts";
import { activeReason, readPciNetDevice, type PciNetDevice, type SysRoots } from "../../src/pci/sysfs-devices.ts";

export class RefusedError extends IxyError {
  override name = "RefusedError";
}

export interface BindOptions extends SysRoots {
  readonly stateDir?: string;
  /** Bind even an interface that is in use. */
  readonly force?: boolean;
  /** Called with each sysfs write, as "echo VALUE > FILE". */
  readonly log?: (line: string) => void;
  /** Runs modprobe (tests replace it); true when it succeeded. */
  readonly modprobe?: (module: string) => boolean;
}

export const DEFAULT_STATE_DIR = "/run/ixy-devbind";
const VFIO = "vfio-pci";

function realModprobe(module: string): boolean {
  return spawnSync("modprobe", [module], { stdio: "ignore" }).status === 0;
}

function sysfs(o: SysRoots): string {
  return o.sysfsRoot ?? "/sys";
}

/** "01:00.0" → "0000:01:00.0"; anything else malformed is a TypeError. */
export function normalizeAddress(addr: string): string {
  if (/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(addr)) return addr.toLowerCase();
  if (/^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(addr)) return `0000:${addr.toLowerCase()}`;
  throw new TypeError(`malformed PCI address '${addr}' (expected 0000:01:00.0; ixy-devbind --status lists the devices)`);
}

function write(file: string, value: string, o: BindOptions): void {
  o.log?.(`echo ${value === "\n" ? "''" : value} > ${file}`);
  try {
    fs.writeFileSync(file, value);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "EACCES" || err.code === "EPERM") throw new IxyError(`cannot write ${file} (${err.code}): run ixy-devbind as root (sudo)`);
    throw new IxyError(`writing '${value.trim()}' to ${file} failed: ${err.code ?? err.message}; see dmesg`);
  }
}

function readDevice(address: string, o: BindOptions): PciNetDevice {
  const dev = readPciNetDevice(address, o);
  if (dev === null) throw new DeviceNotFoundError(`no PCI device at ${address}: ixy-devbind --status lists the network devices`);
  return dev;
}

function currentDriver(address: string, o: BindOptions): string | null {
  try {
    return path.basename(fs.readlinkSync(path.join(sysfs(o), "bus/pci/devices", address, "driver")));
  } catch {
    return null;
  }
}

/** Loads vfio-pci (and the type1 backend, which busybox modprobe's missing softdeps leave out). */
function ensureVfioDriver(o: BindOptions): void {
  const dir = path.join(sysfs(o), "bus/pci/drivers", VFIO);
  if (fs.existsSync(dir)) return;
  const modprobe = o.modprobe ?? realModprobe;
  modprobe("vfio-pci");
  modprobe("vfio_iommu_type1");
  if (!fs.existsSync(dir)) {
    throw new VfioError("the vfio-pci driver is not available: modprobe vfio-pci failed (install your kernel's modules, e.g. linux-modules-extra on Ubuntu, and run as root)");
  }
}

/** Without an IOMMU group vfio-pci cannot take the device: say why and what to do. */
function noIommuMessage(address: string, o: BindOptions): string {
  const groups = (() => {
    try {
      return fs.readdirSync(path.join(sysfs(o), "kernel/iommu_groups"));
    } catch {
      return [];
    }
  })();
  return groups.length === 0
    ? `${address} has no IOMMU group, and this machine has none at all (/sys/kernel/iommu_groups is empty): the IOMMU is off. ` +
        `Enable it on the kernel command line (intel_iommu=on or amd_iommu=on; in a VM, give it a virtual IOMMU, qemu -device intel-iommu) and reboot. ` +
        `Without one, vfio can only run in no-IOMMU mode (modprobe vfio enable_unsafe_noiommu_mode=1: no DMA protection, root only), which ixy.ts does not support`
    : `${address} has no IOMMU group although the machine has an IOMMU: the device is not behind it (check the kernel log: dmesg | grep -i iommu)`;
}

/** The refusal, or null when the device may be bound: an interface of it is in use. */
export function bindRefusal(dev: PciNetDevice, mode: "--bind" | "--unbind" = "--bind"): string | null {
  const reasons = dev.interfaces.map(activeReason).filter((r): r is string => r !== null);
  if (reasons.length === 0) return null;
  const carriesDefault = dev.interfaces.some((i) => i.defaultRoute);
  return (
    `${dev.address} is in use by the kernel: ${reasons.join("; ")}. ` +
    (carriesDefault
      ? `BINDING IT CUTS THIS MACHINE OFF THE NETWORK: the default route goes through it, so an SSH session through it ends and does not come back. Use another port — `
      : `Binding it takes the interface away: its addresses and routes go, and whatever uses them stops. Use another port, ` +
        `or take the interface down and flush its addresses first (ip addr flush dev ${dev.interfaces[0]!.name}; ip link set ${dev.interfaces[0]!.name} down) — `) +
    `or, if you mean it, ixy-devbind ${mode} --force ${dev.address}`
  );
}

export interface BindResult {
  readonly address: string;
  readonly was: string | null;
  readonly group: number | null;
  readonly already: boolean;
}

/** Binds `address` to vfio-pci. Throws RefusedError for an active interface (nothing written). */
export function bindToVfio(address: string, o: BindOptions = {}): BindResult {
  const dev = readDevice(address, o);
  if (dev.driver === VFIO) return { address, was: VFIO, group: dev.iommuGroup, already: true };
  // The refusal first: it is the one that saves the user's session.
  const refusal = bindRefusal(dev);
  if (refusal !== null && !o.force) throw new RefusedError(refusal);
  if (dev.iommuGroup === null) throw new VfioError(noIommuMessage(address, o));
  ensureVfioDriver(o);
  const stateDir = o.stateDir ?? DEFAULT_STATE_DIR;
  try {
    fs.mkdirSync(stateDir, { recursive: true });
    fs.writeFileSync(path.join(stateDir, address), `${dev.driver ?? ""}\n`);
  } catch (e) {
    throw new IxyError(`cannot record ${address}'s driver in ${stateDir} (${(e as NodeJS.ErrnoException).code}): run ixy-devbind as root (sudo)`);
  }
  const devDir = path.join(sysfs(o), "bus/pci/devices", address);
  write(path.join(devDir, "driver_override"), VFIO, o);
  if (dev.driver !== null) write(path.join(devDir, "driver/unbind"), address, o);
  write(path.join(sysfs(o), "bus/pci/drivers_probe"), address, o);
  const now = currentDriver(address, o);
  if (now !== VFIO) {
    throw new VfioError(
      `binding ${address} to vfio-pci failed (driver now: ${now ?? "none"}); see dmesg. ` +
        `ixy-devbind --restore ${address} gives it back to ${dev.driver ?? "the kernel"}`,
    );
  }
  return { address, was: dev.driver, group: dev.iommuGroup, already: false };
}

/** The kernel driver recorded when `address` was bound, or null (none recorded, or it had none). */
export function recordedDriver(address: string, stateDir = DEFAULT_STATE_DIR): string | null | undefined {
  try {
    const s = fs.readFileSync(path.join(stateDir, address), "utf8").trim();
    return s === "" ? null : s;
  } catch {
    return undefined;
  }
}

export interface RestoreResult {
  readonly address: string;
  readonly was: string | null;
  readonly now: string | null;
}

/**
 * Releases `address` from vfio-pci (clears driver_override, unbinds) and, unless `detachOnly`,
 * gives it to the recorded kernel driver (bind), or lets the kernel pick one (drivers_probe).
 */
export function restoreDriver(address: string, o: BindOptions & { detachOnly?: boolean } = {}): RestoreResult {
  const dev = readDevice(address, o);
  const stateDir = o.stateDir ?? DEFAULT_STATE_DIR;
  const recorded = recordedDriver(address, stateDir);
  if (o.detachOnly && dev.driver !== VFIO) {
    // Unbinding a kernel driver takes the interface away just as binding does.
    const refusal = bindRefusal(dev, "--unbind");
    if (refusal !== null && !o.force) throw new RefusedError(refusal.replace(/Binding it|BINDING IT/, (m) => (m === "Binding it" ? "Unbinding it" : "UNBINDING IT")));
  }
  // Already on a kernel driver: nothing to give back.
  if (!o.detachOnly && dev.driver !== null && dev.driver !== VFIO) return { address, was: dev.driver, now: dev.driver };
  const devDir = path.join(sysfs(o), "bus/pci/devices", address);
  // An empty write clears driver_override (the kernel takes "\n" as none).
  if (dev.driverOverride !== null) write(path.join(devDir, "driver_override"), "\n", o);
  if (dev.driver !== null) write(path.join(devDir, "driver/unbind"), address, o);
  if (!o.detachOnly) {
    if (recorded) {
      const drvDir = path.join(sysfs(o), "bus/pci/drivers", recorded);
      if (!fs.existsSync(drvDir)) (o.modprobe ?? realModprobe)(recorded);
      if (fs.existsSync(drvDir)) write(path.join(drvDir, "bind"), address, o);
      else write(path.join(sysfs(o), "bus/pci/drivers_probe"), address, o);
    } else {
      write(path.join(sysfs(o), "bus/pci/drivers_probe"), address, o);
    }
  }
  fs.rmSync(path.join(stateDir, address), { force: true });
  return { address, was: dev.driver, now: currentDriver(address, o) };
}
