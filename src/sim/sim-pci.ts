/**
 * SimPciFunction: the PCI side of a device model — a configuration space with identity,
 * COMMAND register and capability list, BARs that are SimMmio register files, and (once a model
 * adds the capability) MSI-X vectors delivered through real eventfds, as VFIO delivers them.
 * Models check busMasterEnabled before they do DMA, as real devices do, and raise interrupts
 * with signal(vector).
 */
import {
  BarKind,
  PCI_CAPABILITY_LIST,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_VENDOR_ID,
  PCI_CLASS_REVISION,
  PCI_CAP_ID_MSIX,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  type MsixVectors,
  type PciFunction,
} from "../pci/pci-function.ts";
import { createEventFd, eventfdWrite } from "../sys/eventfd.ts";
import { close as closeFd } from "../sys/libc.ts";
import type { Mmio } from "../pci/mmio.ts";
import { SimMmio } from "./sim-mmio.ts";

export interface SimPciOptions {
  readonly address: string;
  readonly vendorId: number;
  readonly deviceId: number;
  /** Class code << 8 | revision (e.g. 0x02000000 for an Ethernet controller). */
  readonly classRevision?: number;
  /** BAR register files by index. */
  readonly bars: ReadonlyArray<SimMmio | null>;
}

export class SimPciFunction implements PciFunction {
  readonly address: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly config: SimMmio;
  readonly #bars: ReadonlyArray<SimMmio | null>;
  #nextCap = 0x40;
  #lastCap = 0;
  #closed = false;
  #msix: SimMsixVectors | null = null;
  /** Called by reset(); the model resets itself. */
  onReset: (() => void) | null = null;

  constructor(options: SimPciOptions) {
    this.address = options.address;
    this.vendorId = options.vendorId;
    this.deviceId = options.deviceId;
    this.#bars = options.bars;
    this.config = new SimMmio(`${options.address} config`, 4096);
    this.config.poke16(PCI_VENDOR_ID, options.vendorId);
    this.config.poke16(PCI_DEVICE_ID, options.deviceId);
    this.config.poke32(PCI_CLASS_REVISION, options.classRevision ?? 0x02000000);
  }

  /**
   * Appends a capability with the given id and body (bytes after the id/next pair) to the list;
   * returns its config-space offset.
   */
  addCapability(id: number, body: Uint8Array): number {
    const offset = this.#nextCap;
    this.config.poke8(offset, id);
    this.config.poke8(offset + 1, 0);
    for (let i = 0; i < body.length; i++) this.config.poke8(offset + 2 + i, body[i]!);
    if (this.#lastCap === 0) this.config.poke8(PCI_CAPABILITY_LIST, offset);
    else this.config.poke8(this.#lastCap + 1, offset);
    this.config.poke16(PCI_STATUS, this.config.peek16(PCI_STATUS) | PCI_STATUS_CAP_LIST);
    this.#lastCap = offset;
    this.#nextCap = (offset + 2 + body.length + 3) & ~3;
    return offset;
  }

  /**
   * Adds an MSI-X capability with `vectors` vectors (PCI 3.0, 6.8.2): Message Control with the
   * table size, the table at offset 0 of BAR `bar` and the pending-bit array at 0x800 of it, as
   * qemu's virtio-net-pci lays them out. The table itself is not modelled: VFIO programs it for
   * the driver, which only ever sees eventfds. Returns the capability's config-space offset.
   */
  addMsixCapability(vectors: number, bar = 1): number {
    if (this.#msix !== null) throw new TypeError(`${this.address}: the model already has an MSI-X capability`);
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > 2048) throw new RangeError(`${this.address}: MSI-X vectors must be 1 to 2048, got ${vectors}`);
    const size = vectors - 1;
    const table = bar; // offset 0, BIR in bits 2:0
    const pba = 0x800 | bar;
    const offset = this.addCapability(
      PCI_CAP_ID_MSIX,
      Uint8Array.of(size & 0xff, size >> 8, table & 0xff, 0, 0, 0, pba & 0xff, pba >> 8, 0, 0),
    );
    this.#msix = new SimMsixVectors(this, offset, vectors);
    return offset;
  }

  get msix(): MsixVectors | null {
    return this.#msix;
  }

  /**
   * The model raises MSI-X vector `vector`: its eventfd is written, as the kernel does when the
   * device's message arrives. Returns false, doing nothing, while MSI-X is disabled or the
   * vector is not among those enabled (the message goes nowhere: no eventfd is bound to it).
   */
  signal(vector: number): boolean {
    return this.#msix?.signal(vector) ?? false;
  }

  /** Interrupts delivered per vector since the model was made (for tests). */
  get interruptCounts(): readonly number[] {
    return this.#msix?.delivered ?? [];
  }

  get busMasterEnabled(): boolean {
    return (this.config.peek16(PCI_COMMAND) & PCI_COMMAND_MASTER) !== 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  barKind(index: number): BarKind {
    return this.#bars[index] ? BarKind.memory : BarKind.none;
  }

  bar(index: number): Mmio {
    const bar = this.#bars[index];
    if (!bar) throw new RangeError(`${this.address}: BAR${index} is not implemented by this device`);
    return bar;
  }

  enableDma(): void {
    this.config.write16(PCI_COMMAND, this.config.read16(PCI_COMMAND) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  }

  reset(): boolean {
    this.onReset?.();
    return true;
  }

  close(): void {
    this.#closed = true;
    this.#msix?.disable();
  }
}

/**
 * What VFIO does for a real device, for a model: enable() creates the eventfds and sets MSI-X
 * Enable in Message Control (the kernel sets it when user space binds the first trigger; a
 * legacy virtio device moves its configuration by 4 bytes when it sees it), disable() clears it.
 */
class SimMsixVectors implements MsixVectors {
  readonly count: number;
  readonly delivered: number[];
  readonly #pci: SimPciFunction;
  readonly #cap: number;
  #fds: number[] = [];

  constructor(pci: SimPciFunction, cap: number, count: number) {
    this.#pci = pci;
    this.#cap = cap;
    this.count = count;
    this.delivered = new Array<number>(count).fill(0);
  }

  get enabled(): number {
    return this.#fds.length;
  }

  enable(vectors: number): readonly number[] {
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > this.count) {
      throw new RangeError(`${this.#pci.address}: MSI-X vectors to enable must be 1 to ${this.count}, got ${vectors}`);
    }
    if (this.#pci.closed) throw new TypeError(`${this.#pci.address}: MSI-X enabled on a closed device`);
    this.disable(); // NORESIZE, as VFIO reports for MSI-X
    const fds: number[] = [];
    for (let i = 0; i < vectors; i++) fds.push(createEventFd(`${this.#pci.address}: eventfd for MSI-X vector ${i}`));
    this.#fds = fds;
    const at = this.#cap + PCI_MSIX_FLAGS;
    this.#pci.config.poke16(at, this.#pci.config.peek16(at) | PCI_MSIX_FLAGS_ENABLE);
    return fds.slice();
  }

  disable(): void {
    if (this.#fds.length === 0) return;
    const at = this.#cap + PCI_MSIX_FLAGS;
    this.#pci.config.poke16(at, this.#pci.config.peek16(at) & ~PCI_MSIX_FLAGS_ENABLE);
    for (const fd of this.#fds) closeFd(fd);
    this.#fds = [];
  }

  signal(vector: number): boolean {
    const fd = this.#fds[vector];
    if (fd === undefined) return false;
    eventfdWrite(fd, 1, `${this.#pci.address}: MSI-X vector ${vector}`);
    this.delivered[vector]!++;
    return true;
  }
}
