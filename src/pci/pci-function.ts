/**
 * PciFunction: what a driver needs of a PCI device — its identity, its configuration space and
 * its BARs — without knowing whether they come from VFIO (src/pci/vfio-pci-function.ts) or from a
 * device model (src/sim). Drivers receive one of these plus a DmaAllocator.
 */
import type { Mmio } from "./mmio.ts";

export const BarKind = {
  none: "none",
  /** Memory BAR: mapped into the process, one load/store per register access. */
  memory: "memory",
  /** I/O-port BAR: every access is a pread/pwrite system call through VFIO (slow; init only). */
  io: "io",
} as const;
export type BarKind = (typeof BarKind)[keyof typeof BarKind];

/**
 * A function's MSI-X vectors, each delivered to the driver as an eventfd: the kernel (VFIO) or
 * the model writes the eventfd when the device raises the vector. The eventfds are nonblocking;
 * wait on them with src/irq (never with a blocking read on Node's main thread).
 */
export interface MsixVectors {
  /** Vectors the device has (the MSI-X Table Size + 1). */
  readonly count: number;
  /** Vectors enabled now (0: MSI-X is disabled). */
  readonly enabled: number;
  /**
   * Enables MSI-X with vectors 0..vectors-1 and returns one eventfd per vector, in order. The
   * count cannot change while enabled (VFIO's NORESIZE): enabling again first disables, which
   * closes the eventfds returned before. RangeError for 0 or more than `count`.
   */
  enable(vectors: number): readonly number[];
  /** Disables MSI-X and closes its eventfds. Does nothing while disabled. */
  disable(): void;
}

export interface PciFunction {
  /** Canonical address, "0000:01:00.0". */
  readonly address: string;
  readonly vendorId: number;
  readonly deviceId: number;
  /** Configuration space (256 bytes, or 4096 for PCIe extended space). */
  readonly config: Mmio;
  barKind(index: number): BarKind;
  /** The BAR's register window; mapped on first use and kept until close(). */
  bar(index: number): Mmio;
  /** Sets Memory Space Enable and Bus Master Enable in the COMMAND register (config offset 4). */
  enableDma(): void;
  /** The MSI-X vectors; null when the function has no MSI-X capability. close() disables them. */
  readonly msix: MsixVectors | null;
  /** Function-level reset where the platform offers one (VFIO_DEVICE_RESET); false if none. */
  reset(): boolean;
  /** Unmaps the BARs and releases the device. Idempotent. */
  close(): void;
}

/** PCI configuration space offsets (PCI Local Bus Specification 3.0, 6.1). */
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_CLASS_REVISION = 0x08;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_CAP_ID_VNDR = 0x09;
export const PCI_CAP_ID_MSIX = 0x11;
/** MSI-X capability (PCI Local Bus Specification 3.0, 6.8.2): Message Control at offset 2. */
export const PCI_MSIX_FLAGS = 2;
/** Message Control bits 10:0: Table Size, the vector count minus one. */
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff;
/** Message Control bit 14: Function Mask (every vector masked). */
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
/** Message Control bit 15: MSI-X Enable. */
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;

/** Walks the capability list; yields [capability id, config-space offset]. */
export function* pciCapabilities(config: Mmio): Generator<[number, number]> {
  if ((config.read16(PCI_STATUS) & PCI_STATUS_CAP_LIST) === 0) return;
  let offset = config.read8(PCI_CAPABILITY_LIST) & 0xfc;
  // A malformed list could loop; there are at most 48 capabilities in 256 bytes.
  for (let n = 0; offset !== 0 && n < 48; n++) {
    yield [config.read8(offset), offset];
    offset = config.read8(offset + 1) & 0xfc;
  }
}
