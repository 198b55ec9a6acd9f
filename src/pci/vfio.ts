/**
 * VFIO: the kernel interface that hands a PCI device to user space safely. A container holds an
 * IOMMU context; groups (the IOMMU's unit of isolation) join the container; devices are opened
 * through their group. DMA memory is mapped into the container at IOVAs we choose, and every
 * device of every group in the container can then reach it.
 *
 * Kernel documentation: Documentation/driver-api/vfio.rst. Numbers: ./vfio-structs.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PermissionError, SyscallError, VfioError } from "../errors.ts";
import { memlockError } from "../mem/hugepages.ts";
import { close, ioctl, ioctlBytes, ioctlInt, ioctlString, open, O_RDWR } from "../sys/libc.ts";
import { newAddressSpace } from "../mem/dma.ts";
import { iommuGroupDevices } from "./sysfs.ts";
import {
  getU32,
  getU64,
  newStruct,
  setU32,
  setU64,
  VFIO,
  VFIO_API_VERSION,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_GROUP_FLAGS_VIABLE,
  VFIO_TYPE1v2_IOMMU,
  vfio_device_info,
  vfio_group_status,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
  vfio_irq_info,
  vfio_irq_set,
  vfio_region_info,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
} from "./vfio-structs.ts";

export interface VfioPaths {
  /** Where the VFIO character devices live (default /dev/vfio). */
  readonly devVfio?: string;
  /** sysfs root, for error messages that list a group's devices (default /sys). */
  readonly sysfsRoot?: string;
}

export class VfioContainer {
  readonly fd: number;
  /** The container's IOMMU domain, as an address space (DmaAllocator.space of its allocator). */
  readonly space: number;
  readonly #paths: Required<VfioPaths>;
  readonly #groups = new Map<number, number>(); // group number -> group fd
  #iommuSet = false;
  #closed = false;
  /**
   * The next free IOVA. The container hands out IOVAs, not each allocator, because several
   * allocators (one per NUMA node, src/open-device.ts) map memory into the one IOMMU domain:
   * their ranges must not overlap. From 4 GiB (clear of the x86 MSI window below it) upwards;
   * qemu's emulated Intel IOMMU accepts IOVAs below 2^39, real ones at least that.
   */
  #nextIova = 0x1_0000_0000;

  private constructor(fd: number, paths: Required<VfioPaths>) {
    this.fd = fd;
    this.#paths = paths;
    this.space = newAddressSpace(`the IOMMU domain of VFIO container fd ${fd}`);
  }

  /** Opens /dev/vfio/vfio and checks the API version and the TYPE1v2 IOMMU extension. */
  static open(paths: VfioPaths = {}): VfioContainer {
    const p = { devVfio: paths.devVfio ?? "/dev/vfio", sysfsRoot: paths.sysfsRoot ?? "/sys" };
    const node = path.join(p.devVfio, "vfio");
    if (!fs.existsSync(node)) {
      throw new VfioError(
        `${node} does not exist: VFIO is not available. Load it with "modprobe vfio-pci" ` +
          `(needs an IOMMU enabled in firmware and on the kernel command line, e.g. intel_iommu=on)`,
      );
    }
    let fd: number;
    try {
      fd = open(node, O_RDWR, "opening the VFIO container");
    } catch (e) {
      if (e instanceof SyscallError && (e.code === "EACCES" || e.code === "EPERM")) {
        throw new PermissionError(
          `no permission to open ${node} (${e.code}): the VFIO container node is normally mode 0666; as root: chmod 0666 ${node}`,
        );
      }
      throw e;
    }
    try {
      const version = ioctl(fd, VFIO.GET_API_VERSION);
      if (version !== VFIO_API_VERSION) throw new VfioError(`unknown VFIO API version ${version} (expected ${VFIO_API_VERSION})`);
      if (ioctlInt(fd, VFIO.CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) !== 1) {
        throw new VfioError(
          "VFIO does not support the TYPE1v2 IOMMU: load vfio_iommu_type1 (modprobe vfio_iommu_type1) and check that an IOMMU is enabled",
        );
      }
    } catch (e) {
      close(fd);
      throw e;
    }
    return new VfioContainer(fd, p);
  }

  /**
   * Opens group `group` and adds it to the container (once per group). `forDevice` names the
   * device in errors.
   */
  addGroup(group: number, forDevice: string): number {
    const known = this.#groups.get(group);
    if (known !== undefined) return known;
    const node = path.join(this.#paths.devVfio, String(group));
    if (!fs.existsSync(node)) {
      throw new VfioError(
        `${forDevice}: ${node} does not exist: the device's IOMMU group has no VFIO node. ` +
          `Bind the device to vfio-pci: npx ixy-devbind --bind ${forDevice} (as root)`,
      );
    }
    let fd: number;
    try {
      fd = open(node, O_RDWR, `${forDevice}: opening VFIO group ${group}`);
    } catch (e) {
      if (e instanceof SyscallError && e.code === "EBUSY") {
        throw new VfioError(`${forDevice}: VFIO group ${group} is in use by another process (${node} is busy)`);
      }
      if (e instanceof SyscallError && (e.code === "EACCES" || e.code === "EPERM")) {
        throw new PermissionError(
          `${forDevice}: no permission to open ${node} (VFIO group ${group}, ${e.code}): to run without root, give ` +
            `the group's node to the user, as root: chown <user> ${node} (a udev rule keeps it across rebinds), ` +
            `and raise that user's RLIMIT_MEMLOCK (see the README's troubleshooting section)`,
        );
      }
      throw e;
    }
    try {
      const status = newStruct(vfio_group_status);
      ioctlBytes(fd, VFIO.GROUP_GET_STATUS, status, forDevice);
      if ((getU32(status, vfio_group_status.flags) & VFIO_GROUP_FLAGS_VIABLE) === 0) {
        throw new VfioError(notViableMessage(forDevice, group, this.#paths.sysfsRoot));
      }
      const containerFd = new Uint8Array(4);
      setU32(containerFd, 0, this.fd);
      ioctlBytes(fd, VFIO.GROUP_SET_CONTAINER, containerFd, `${forDevice}: adding group ${group} to the container`);
      if (!this.#iommuSet) {
        // The IOMMU model is chosen once, after the first group joined (vfio.rst, "VFIO Usage Example").
        ioctlInt(this.fd, VFIO.SET_IOMMU, VFIO_TYPE1v2_IOMMU, `${forDevice}: VFIO_SET_IOMMU`);
        this.#iommuSet = true;
      }
    } catch (e) {
      close(fd);
      throw e;
    }
    this.#groups.set(group, fd);
    return fd;
  }

  /** Opens a device of an added group; returns its fd. */
  openDevice(group: number, address: string): VfioDevice {
    const groupFd = this.addGroup(group, address);
    const fd = ioctlString(groupFd, VFIO.GROUP_GET_DEVICE_FD, address, `${address}: VFIO_GROUP_GET_DEVICE_FD`);
    return new VfioDevice(address, fd);
  }

  /** An IOVA range of `size` bytes no other allocator of this container has. Never reused. */
  reserveIova(size: number): number {
    const iova = this.#nextIova;
    this.#nextIova += size;
    return iova;
  }

  /** Makes [vaddr, vaddr + size) reachable by the devices at [iova, iova + size). */
  mapDma(vaddr: bigint, iova: number, size: number): void {
    const map = newStruct(vfio_iommu_type1_dma_map);
    setU32(map, vfio_iommu_type1_dma_map.flags, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE);
    setU64(map, vfio_iommu_type1_dma_map.vaddr, vaddr);
    setU64(map, vfio_iommu_type1_dma_map.iova, iova);
    setU64(map, vfio_iommu_type1_dma_map.size, size);
    try {
      ioctlBytes(this.fd, VFIO.IOMMU_MAP_DMA, map, `mapping ${size} bytes of DMA memory at IOVA 0x${iova.toString(16)}`);
    } catch (e) {
      // VFIO pins the pages and charges them to RLIMIT_MEMLOCK (vfio_iommu_type1: vfio_pin_pages_remote).
      if (e instanceof SyscallError && e.code === "ENOMEM") throw memlockError("VFIO container", size, "pinning for DMA");
      throw e;
    }
  }

  unmapDma(iova: number, size: number): void {
    const unmap = newStruct(vfio_iommu_type1_dma_unmap);
    setU64(unmap, vfio_iommu_type1_dma_unmap.iova, iova);
    setU64(unmap, vfio_iommu_type1_dma_unmap.size, size);
    ioctlBytes(this.fd, VFIO.IOMMU_UNMAP_DMA, unmap, `unmapping DMA memory at IOVA 0x${iova.toString(16)}`);
  }

  /** Closes the groups, then the container. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const fd of this.#groups.values()) close(fd);
    this.#groups.clear();
    close(this.fd);
  }
}

export function notViableMessage(device: string, group: number, sysfsRoot = "/sys"): string {
  const others = iommuGroupDevices(group, sysfsRoot).filter((d) => d.address !== device);
  const list = others.map((d) => `${d.address} (${d.driver ?? "no driver"})`).join(", ");
  return (
    `${device}: IOMMU group ${group} is not viable: every device of a group must be bound to vfio-pci ` +
    `(or to no driver) before any can be used. Other devices in the group: ${list || "none found"}. ` +
    `Bind each of them with npx ixy-devbind --bind <address> (as root)`
  );
}

export interface RegionInfo {
  readonly index: number;
  readonly flags: number;
  readonly size: number;
  /** Offset of the region within the device fd (for pread/pwrite/mmap). */
  readonly offset: number;
}

export interface IrqInfo {
  readonly index: number;
  /** VFIO_IRQ_INFO_* bits. */
  readonly flags: number;
  /** Interrupts (vectors) the index has; 0: the device does not implement it. */
  readonly count: number;
}

export class VfioDevice {
  readonly address: string;
  readonly fd: number;
  #closed = false;

  constructor(address: string, fd: number) {
    this.address = address;
    this.fd = fd;
  }

  info(): { flags: number; numRegions: number; numIrqs: number } {
    const buf = newStruct(vfio_device_info);
    ioctlBytes(this.fd, VFIO.DEVICE_GET_INFO, buf, `${this.address}: VFIO_DEVICE_GET_INFO`);
    return {
      flags: getU32(buf, vfio_device_info.flags),
      numRegions: getU32(buf, vfio_device_info.num_regions),
      numIrqs: getU32(buf, vfio_device_info.num_irqs),
    };
  }

  regionInfo(index: number): RegionInfo {
    const buf = newStruct(vfio_region_info);
    setU32(buf, vfio_region_info.index, index);
    ioctlBytes(this.fd, VFIO.DEVICE_GET_REGION_INFO, buf, `${this.address}: VFIO_DEVICE_GET_REGION_INFO ${index}`);
    return {
      index,
      flags: getU32(buf, vfio_region_info.flags),
      size: getU64(buf, vfio_region_info.size),
      offset: getU64(buf, vfio_region_info.offset),
    };
  }

  /** VFIO_DEVICE_GET_IRQ_INFO for interrupt index `index` (VFIO_PCI_MSIX_IRQ_INDEX: MSI-X). */
  irqInfo(index: number): IrqInfo {
    const buf = newStruct(vfio_irq_info);
    setU32(buf, vfio_irq_info.index, index);
    ioctlBytes(this.fd, VFIO.DEVICE_GET_IRQ_INFO, buf, `${this.address}: VFIO_DEVICE_GET_IRQ_INFO ${index}`);
    return { index, flags: getU32(buf, vfio_irq_info.flags), count: getU32(buf, vfio_irq_info.count) };
  }

  /**
   * VFIO_DEVICE_SET_IRQS with DATA_EVENTFD | ACTION_TRIGGER: interrupt `start + i` of `index`
   * signals eventfd fds[i] (-1: none). Setting a trigger enables the index (for MSI-X: the
   * kernel sets MSI-X Enable in the capability and programs the table itself).
   */
  setIrqEventfds(index: number, start: number, fds: readonly number[]): void {
    const buf = new Uint8Array(vfio_irq_set.SIZE + 4 * fds.length);
    setU32(buf, vfio_irq_set.argsz, buf.length);
    setU32(buf, vfio_irq_set.flags, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER);
    setU32(buf, vfio_irq_set.index, index);
    setU32(buf, vfio_irq_set.start, start);
    setU32(buf, vfio_irq_set.count, fds.length);
    for (let i = 0; i < fds.length; i++) setU32(buf, vfio_irq_set.SIZE + 4 * i, fds[i]!);
    ioctlBytes(this.fd, VFIO.DEVICE_SET_IRQS, buf, `${this.address}: VFIO_DEVICE_SET_IRQS (eventfds for ${fds.length} interrupts of index ${index})`);
  }

  /**
   * VFIO_DEVICE_SET_IRQS with DATA_NONE | ACTION_TRIGGER. With count 0: disables the whole
   * index (the documented way). With a count: fires interrupts start..start+count-1 from
   * software (their eventfds are signalled as if the device had raised them).
   */
  triggerIrqs(index: number, start: number, count: number): void {
    const buf = newStruct(vfio_irq_set);
    setU32(buf, vfio_irq_set.flags, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER);
    setU32(buf, vfio_irq_set.index, index);
    setU32(buf, vfio_irq_set.start, start);
    setU32(buf, vfio_irq_set.count, count);
    const what = count === 0 ? `disabling interrupt index ${index}` : `triggering ${count} interrupts of index ${index}`;
    ioctlBytes(this.fd, VFIO.DEVICE_SET_IRQS, buf, `${this.address}: VFIO_DEVICE_SET_IRQS (${what})`);
  }

  /** Function-level reset (VFIO_DEVICE_RESET); false when the device offers none. */
  reset(): boolean {
    try {
      ioctl(this.fd, VFIO.DEVICE_RESET, `${this.address}: VFIO_DEVICE_RESET`);
      return true;
    } catch (e) {
      if (e instanceof SyscallError && (e.code === "ENOTTY" || e.code === "EINVAL" || e.code === "ENODEV")) return false;
      throw e;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    close(this.fd);
  }
}
