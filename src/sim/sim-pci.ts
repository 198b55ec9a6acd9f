/**
 * SimPciFunction: the PCI side of a device model — a configuration space with identity,
 * COMMAND register and capability list, and BARs that are SimMmio register files.
 * Models check busMasterEnabled before they do DMA, as real devices do.
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
  type PciFunction,
} from "../pci/pci-function.ts";
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
  }
}
