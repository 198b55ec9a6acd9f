/**
 * A PCI function opened through VFIO: configuration space through pread/pwrite on the device fd,
 * memory BARs mmapped from it (Mmio on typed arrays over a koffi view), I/O-port BARs through
 * pread/pwrite.
 */
import { VfioError } from "../errors.ts";
import { close as closeFd, mmap, munmap, MAP_SHARED, PROT_READ, PROT_WRITE, view } from "../sys/libc.ts";
import { createEventFd } from "../sys/eventfd.ts";
import { TypedArrayMmio, type Mmio } from "./mmio.ts";
import {
  BarKind,
  PCI_BASE_ADDRESS_0,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  type MsixVectors,
  type PciFunction,
} from "./pci-function.ts";
import { PreadMmio } from "./pread-mmio.ts";
import {
  VFIO_IRQ_INFO_EVENTFD,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_REGION_INFO_FLAG_MMAP,
} from "./vfio-structs.ts";
import type { VfioDevice } from "./vfio.ts";

export class VfioPciFunction implements PciFunction {
  readonly address: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly config: Mmio;
  readonly #device: VfioDevice;
  readonly #bars = new Map<number, Mmio>();
  readonly #mappings: { ptr: bigint; size: number }[] = [];
  #closed = false;
  readonly msix: VfioMsixVectors | null;

  constructor(device: VfioDevice) {
    this.#device = device;
    this.address = device.address;
    const cfg = device.regionInfo(VFIO_PCI_CONFIG_REGION_INDEX);
    this.config = new PreadMmio(`${device.address} config space`, device.fd, cfg.offset, cfg.size);
    this.vendorId = this.config.read16(0);
    this.deviceId = this.config.read16(2);
    const irq = device.irqInfo(VFIO_PCI_MSIX_IRQ_INDEX);
    // count 0: no MSI-X capability. Without EVENTFD the vectors could not reach user space.
    this.msix = irq.count > 0 && (irq.flags & VFIO_IRQ_INFO_EVENTFD) !== 0 ? new VfioMsixVectors(device, irq.count) : null;
  }

  barKind(index: number): BarKind {
    this.#checkIndex(index);
    const info = this.#device.regionInfo(index);
    if (info.size === 0) return BarKind.none;
    // Bit 0 of a BAR register says I/O space (PCI Local Bus Specification 3.0, 6.2.5.1).
    return (this.config.read32(PCI_BASE_ADDRESS_0 + 4 * index) & 1) !== 0 ? BarKind.io : BarKind.memory;
  }

  bar(index: number): Mmio {
    this.#checkIndex(index);
    if (this.#closed) throw new VfioError(`${this.address}: device is closed`);
    const known = this.#bars.get(index);
    if (known) return known;
    const info = this.#device.regionInfo(index);
    if (info.size === 0) throw new VfioError(`${this.address}: BAR${index} is not implemented by this device`);
    let mmio: Mmio;
    const name = `${this.address} BAR${index}`;
    if ((info.flags & VFIO_REGION_INFO_FLAG_MMAP) !== 0) {
      const ptr = mmap(info.size, PROT_READ | PROT_WRITE, MAP_SHARED, this.#device.fd, info.offset, `${name}: mapping the BAR`);
      this.#mappings.push({ ptr, size: info.size });
      mmio = new TypedArrayMmio(name, view(ptr, info.size));
    } else {
      mmio = new PreadMmio(name, this.#device.fd, info.offset, info.size);
    }
    this.#bars.set(index, mmio);
    return mmio;
  }

  enableDma(): void {
    // Memory Space Enable and Bus Master Enable (PCI 3.0, 6.2.2); without bus mastering the
    // device cannot read descriptors or write packets.
    const cmd = this.config.read16(PCI_COMMAND);
    this.config.write16(PCI_COMMAND, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  }

  reset(): boolean {
    return this.#device.reset();
  }

  /**
   * Unmaps the BARs and closes the device fd. Mmio objects of this device must not be used
   * afterwards: their views alias memory that is gone.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.msix?.disable();
    for (const m of this.#mappings) munmap(m.ptr, m.size);
    this.#mappings.length = 0;
    this.#bars.clear();
    this.#device.close();
  }

  #checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index > 5) throw new RangeError(`${this.address}: BAR index must be 0 to 5, got ${index}`);
  }
}

/**
 * MSI-X through VFIO (Documentation/driver-api/vfio.rst; linux/vfio.h, VFIO_DEVICE_SET_IRQS):
 * the kernel owns the MSI-X table and the capability's enable bit; user space hands it one
 * eventfd per vector. MSI-X reports NORESIZE: the vector count is fixed until the index is
 * disabled, so a new count means disable, then enable.
 */
export class VfioMsixVectors implements MsixVectors {
  readonly count: number;
  readonly #device: VfioDevice;
  #fds: number[] = [];

  constructor(device: VfioDevice, count: number) {
    this.#device = device;
    this.count = count;
  }

  get enabled(): number {
    return this.#fds.length;
  }

  enable(vectors: number): readonly number[] {
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > this.count) {
      throw new RangeError(`${this.#device.address}: MSI-X vectors to enable must be 1 to ${this.count}, got ${vectors}`);
    }
    this.disable();
    const fds: number[] = [];
    try {
      for (let i = 0; i < vectors; i++) fds.push(createEventFd(`${this.#device.address}: eventfd for MSI-X vector ${i}`));
      this.#device.setIrqEventfds(VFIO_PCI_MSIX_IRQ_INDEX, 0, fds);
    } catch (e) {
      for (const fd of fds) closeFd(fd);
      throw e;
    }
    this.#fds = fds;
    return fds.slice();
  }

  disable(): void {
    if (this.#fds.length === 0) return;
    const fds = this.#fds;
    this.#fds = [];
    try {
      this.#device.triggerIrqs(VFIO_PCI_MSIX_IRQ_INDEX, 0, 0);
    } finally {
      // The kernel dropped its references with the trigger; ours go now.
      for (const fd of fds) closeFd(fd);
    }
  }
}
