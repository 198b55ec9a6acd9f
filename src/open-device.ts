/**
 * openDevice(): from a PCI address to a running driver. Checks the device the way a user would
 * (does it exist, is it a NIC we drive, is it bound to vfio-pci, is VFIO there), opens it through
 * VFIO, picks the DMA allocator the device needs and the driver by vendor and device id.
 *
 * All devices of a process share one VFIO container and one DMA allocator, so that a buffer
 * received on one device can be sent on another (the forwarder does exactly that). Both are
 * closed when the last device closes.
 *
 * "vhost-user:<socket path>" opens a virtio-net device on a vhost-user backend instead
 * (createVhostUserDevice in drivers/virtio/vhost-user-device.ts); those devices share one
 * memory of their own.
 */
import { IxyError, NotSupportedError, VfioError } from "./errors.ts";
import type { DeviceOptions, NicDevice } from "./device.ts";
import { createIxgbeDevice } from "./drivers/ixgbe/ixgbe-device.ts";
import { IXGBE_DEVICE_IDS, findIxgbeDeviceId } from "./drivers/ixgbe/ixgbe-ids.ts";
import { createVirtioDevice } from "./drivers/virtio/virtio-device.ts";
import { VIRTIO_DEVICE_IDS, findVirtioDeviceId, mayUseLegacyTransport } from "./drivers/virtio/virtio-ids.ts";
import { createVhostUserDevice, VHOST_USER_PREFIX, type VhostUserOptions } from "./drivers/virtio/vhost-user-device.ts";
import { numaPlacement, readNumaTopology, type NumaPlacement } from "./mem/numa.ts";
import { PhysicalDmaAllocator } from "./mem/physical-dma.ts";
import { VfioDmaAllocator } from "./mem/vfio-dma.ts";
import { PciAddress } from "./pci/pci-address.ts";
import type { PciFunction } from "./pci/pci-function.ts";
import { readPciSysfs } from "./pci/sysfs.ts";
import { activeInterfaceWarning, procRootBeside } from "./pci/sysfs-devices.ts";
import { VfioPciFunction } from "./pci/vfio-pci-function.ts";
import { VfioContainer, type VfioPaths } from "./pci/vfio.ts";
import { checkDeviceOptionTypes, checkInteger, checkOptionsObject, checkString, describeValue } from "./validate.ts";

/** Device options, VFIO paths (PCI devices) and the vhost-user options (mac, memoryBytes, timeoutMs). */
export interface OpenOptions extends DeviceOptions, VfioPaths, VhostUserOptions {
  /**
   * NUMA node for the DMA memory (PCI devices): by default the device's own (sysfs numa_node),
   * none when that is -1 or the machine has one node. -1 here: no memory policy at all.
   */
  readonly numaNode?: number;
}

/** Where a PCI device opened by openDevice() is, and where its memory is. */
export interface DevicePlacement extends NumaPlacement {
  /** The device's node as sysfs says (-1: unknown). */
  readonly deviceNode: number;
  /** The nodes its DMA memory's hugepages are on so far (move_pages), sorted. */
  readonly memoryNodes: readonly number[];
  /**
   * The node that memory is bound to (mbind), null for none: `node`, since each node has an
   * allocator of its own; kept apart because it says what was asked of the kernel, while
   * memoryNodes says where the pages are.
   */
  readonly memoryBoundTo: number | null;
}

type Driver = "ixgbe" | "virtio";

/** Which driver handles vendor:device, or null: the driver whose id table (ixgbe-ids.ts, virtio-ids.ts) lists it. */
export function driverFor(vendorId: number, deviceId: number): Driver | null {
  if (findIxgbeDeviceId(vendorId, deviceId) !== undefined) return "ixgbe";
  if (findVirtioDeviceId(vendorId, deviceId) !== undefined) return "virtio";
  return null;
}

const hex4 = (v: number) => v.toString(16).padStart(4, "0");

/**
 * The process-wide VFIO container and its DMA allocators, shared by the open devices: one
 * allocator per NUMA node (key: the node, or -1 for memory bound to no node), so that each device
 * gets memory of its own node. All of them map into the one container (one IOMMU domain, one
 * address space), so a buffer received on one device can be sent on another whatever its node.
 */
const shared: {
  container: VfioContainer | null;
  iommu: Map<number, VfioDmaAllocator>;
  physical: Map<number, PhysicalDmaAllocator>;
  users: number;
  /** Per open device: its sysfs node, its placement and its allocator. */
  placements: Map<string, { deviceNode: number; placement: NumaPlacement; dma: VfioDmaAllocator | PhysicalDmaAllocator }>;
  /** Addresses open in this process: two drivers on one device would corrupt each other's rings. */
  open: Set<string>;
} = {
  container: null,
  iommu: new Map(),
  physical: new Map(),
  users: 0,
  placements: new Map(),
  open: new Set(),
};

function releaseShared(): void {
  if (shared.users > 0) return;
  for (const dma of [...shared.iommu.values(), ...shared.physical.values()]) dma.close();
  shared.iommu.clear();
  shared.physical.clear();
  shared.container?.close();
  shared.container = null;
}

/**
 * Opens the NIC at `pciAddress` (e.g. "0000:01:00.0") through VFIO and initializes it, or, for
 * "vhost-user:/path/to/socket", the vhost-user backend listening there.
 * Throws TypeError for a malformed address, DeviceNotFoundError, NotSupportedError for a device
 * no driver here handles, VfioError when it is not bound to vfio-pci or VFIO is missing, and
 * whatever the driver's init throws; nothing stays open after an error.
 */
export function openDevice(pciAddress: string, options: OpenOptions = {}): NicDevice {
  options = checkOptionsObject(`openDevice(${describeValue(pciAddress)})`, "the options", options);
  if (typeof pciAddress === "string" && pciAddress.startsWith(VHOST_USER_PREFIX)) {
    return createVhostUserDevice(pciAddress.slice(VHOST_USER_PREFIX.length), options);
  }
  const address = PciAddress.parse(pciAddress);
  const name = address.toString();
  checkDeviceOptionTypes(name, options);
  checkString(name, "sysfsRoot", options.sysfsRoot);
  checkString(name, "devVfio", options.devVfio);
  if (options.numaNode !== undefined) checkInteger(name, "numaNode", options.numaNode, -1, 1023);
  const info = readPciSysfs(address, options.sysfsRoot);
  const driver = driverFor(info.vendorId, info.deviceId);
  if (driver === null) {
    throw new NotSupportedError(
      `${name}: device ${hex4(info.vendorId)}:${hex4(info.deviceId)} (class ${info.classCode.toString(16).padStart(6, "0")}) ` +
        `is not supported: ixy.ts drives Intel 82599/X520/X540/X550 (8086:${IXGBE_DEVICE_IDS.map((d) => hex4(d.deviceId)).join("/")}) ` +
        `and virtio-net (1af4:${VIRTIO_DEVICE_IDS.map((d) => hex4(d.deviceId)).join("/")})`,
    );
  }
  if (info.driver !== "vfio-pci") {
    // Before sending the user to bind it: is it the interface this machine talks through?
    const sysfsRoot = options.sysfsRoot ?? "/sys";
    const active = info.driver === null ? null : activeInterfaceWarning(name, { sysfsRoot, procRoot: procRootBeside(options.sysfsRoot) });
    throw new VfioError(
      `${name} is ${info.driver ? `bound to ${info.driver}` : "not bound to any driver"}, not vfio-pci: ` +
        (active ?? `bind it with npx ixy-devbind --bind ${name} (as root; ixy-devbind --status lists the devices)`),
    );
  }
  if (info.iommuGroup === null) {
    throw new VfioError(`${name} has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on on the kernel command line)`);
  }

  // A transitional virtio device (1af4:1000) is driven through its legacy interface, whose
  // DMA bypasses the IOMMU: it needs physical addresses, and then it can reach all of RAM.
  // Only when asked for in so many words. The id table says which devices those are; BAR0,
  // which has the final word (virtioTransportFor), cannot be read before the device is open,
  // and the allocator has to be chosen before that.
  const virtioId = driver === "virtio" ? findVirtioDeviceId(info.vendorId, info.deviceId) : undefined;
  const legacy = virtioId !== undefined && mayUseLegacyTransport(virtioId);
  if (legacy) {
    if (options.unsafeNoIommu !== true) {
      throw new NotSupportedError(
        `${name} is a transitional (legacy) virtio-net device (1af4:1000): its DMA bypasses the IOMMU, so it would ` +
          `get host physical addresses and could read and write any memory of the machine. Use a modern device ` +
          `(qemu: virtio-net-pci,disable-legacy=on,iommu_platform=on), or accept the risk with the option ` +
          `unsafeNoIommu: true (examples: --unsafe-no-iommu; needs root for /proc/self/pagemap)`,
      );
    }
    process.emitWarning(
      `${name}: DMA without an IOMMU (unsafeNoIommu): the legacy virtio device gets host physical addresses and ` +
        `can reach all of RAM`,
      { code: "IXY_UNSAFE_NO_IOMMU" },
    );
  }

  if (shared.open.has(name)) {
    throw new VfioError(`${name} is already open in this process: close() it before opening it again`);
  }
  shared.users++;
  let pci: PciFunction | null = null;
  try {
    // NUMA: the DMA memory (rings, receive pools) comes from the device's node, or the numaNode
    // option's, through that node's allocator.
    const placement =
      options.numaNode === -1
        ? numaPlacement(-1, readNumaTopology(options.sysfsRoot), name)
        : numaPlacement(info.numaNode, readNumaTopology(options.sysfsRoot), name, options.numaNode);
    const node = placement.node;
    shared.container ??= VfioContainer.open(options);
    const container = shared.container;
    pci = new VfioPciFunction(container.openDevice(info.iommuGroup, name));
    // The legacy device (checked above) gets physical addresses; everything else goes through the IOMMU.
    const where = node === null ? "" : ` on NUMA node ${node}`;
    const dma = legacy
      ? mapGet(shared.physical, node ?? -1, () => new PhysicalDmaAllocator(`physical DMA memory${where} (legacy virtio)`, undefined, node))
      : mapGet(shared.iommu, node ?? -1, () => new VfioDmaAllocator(container, `VFIO DMA memory${where}`, node));
    const nic = driver === "ixgbe" ? createIxgbeDevice(pci, dma, options) : createVirtioDevice(pci, dma, options);
    shared.open.add(name);
    shared.placements.set(name, { deviceNode: info.numaNode, placement, dma });
    return withRelease(nic, pci);
  } catch (e) {
    pci?.close();
    shared.users--;
    releaseShared();
    // Every error out of here names the device, also those of the shared allocator.
    if (e instanceof IxyError && !e.message.includes(name)) e.message = `${name}: ${e.message}`;
    throw e;
  }
}

/** The value of `key`, made by `make` the first time. */
function mapGet<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) map.set(key, (value = make()));
  return value;
}

/** Wraps close() so that the PCI function and, with the last device, VFIO are released too. */
function withRelease(nic: NicDevice, pci: PciFunction): NicDevice {
  let closed = false;
  const close = nic.close.bind(nic);
  Object.defineProperty(nic, "close", {
    value: () => {
      if (closed) return;
      closed = true;
      try {
        close();
      } finally {
        pci.close();
        shared.open.delete(nic.address);
        shared.placements.delete(nic.address);
        shared.users--;
        releaseShared();
      }
    },
  });
  return nic;
}


/**
 * The NUMA placement of a device openDevice() opened (null for other devices: vhost-user, or not
 * open): its node, the CPUs near it (the default to pin its workers to) and the nodes its DMA
 * memory's pages are really on.
 */
export function devicePlacement(address: string): DevicePlacement | null {
  const entry = shared.placements.get(address);
  if (entry === undefined) return null;
  const memoryNodes = [...new Set(entry.dma.pageNodes())].sort((a, b) => a - b);
  return { ...entry.placement, deviceNode: entry.deviceNode, memoryNodes, memoryBoundTo: entry.dma.numaNode };
}
