/**
 * The DMA allocator interface: memory that both the CPU (through `bytes`) and the device (through
 * IOVAs) can reach. Drivers receive a DmaAllocator instead of creating memory themselves, so the
 * same driver runs on VFIO (IOVAs mapped through the IOMMU), on physical addresses (no IOMMU),
 * on memory shared with a vhost-user backend, and on the device models in src/sim.
 */

import { checkBoolean, checkInteger, checkOptionsObject, checkPowerOfTwo } from "../validate.ts";

/** How the device sees the addresses this allocator hands out. */
export const DmaAddressing = {
  /** IOVAs chosen by us and mapped into a VFIO container: the device goes through the IOMMU. */
  iommu: "iommu",
  /** Host physical addresses (pagemap): for devices whose DMA bypasses any IOMMU. */
  physical: "physical",
  /** Made-up addresses understood only by the simulated devices of src/sim. */
  sim: "sim",
  /**
   * Addresses the device side learns from a memory table: the memory is shared with another
   * process (a vhost-user backend) as file descriptors, each with the device address of its
   * byte 0 (src/mem/shared-dma.ts). No IOMMU and no physical addresses are involved.
   */
  shared: "shared",
} as const;
export type DmaAddressing = (typeof DmaAddressing)[keyof typeof DmaAddressing];

export interface DmaRegion {
  /** CPU view of the whole region; its byteOffset is at least `align`-aligned. */
  readonly bytes: Uint8Array;
  /** Size in bytes (bytes.length). */
  readonly size: number;
  /** Device address of byte 0. */
  readonly iova: number;
  /**
   * True when the device sees the region as one range, iova .. iova + size - 1. Physical
   * allocations larger than a hugepage may not be; then iovaOf() must be used per buffer.
   */
  readonly contiguous: boolean;
  /** Device address of byte `offset`. */
  iovaOf(offset: number): number;
}

/** A region the device sees as one range starting at `iova` (SimDma's, the shared allocator's). */
export class ContiguousRegion implements DmaRegion {
  readonly bytes: Uint8Array;
  readonly size: number;
  readonly iova: number;
  readonly contiguous = true;

  constructor(bytes: Uint8Array, iova: number) {
    this.bytes = bytes;
    this.size = bytes.length;
    this.iova = iova;
  }

  iovaOf(offset: number): number {
    if (offset < 0 || offset >= this.size) throw new RangeError(`offset ${offset} is outside the ${this.size}-byte DMA region`);
    return this.iova + offset;
  }
}

export interface AllocateOptions {
  /** Alignment of the start, a power of two (default 64; at most the hugepage size). */
  readonly align?: number;
  /** The device must see one contiguous range (descriptor rings). Default true. */
  readonly contiguous?: boolean;
}

export interface DmaAllocator {
  /** Names the allocator in errors, e.g. "VFIO container of 0000:00:01.0". */
  readonly name: string;
  readonly addressing: DmaAddressing;
  /**
   * The address space its device addresses belong to (an id from newAddressSpace()): a device
   * can use an address only if it was handed out in the device's own space. Each VFIO container
   * is one space, host physical memory is one (PHYSICAL_ADDRESS_SPACE), each shared-memory
   * allocator and each SimDma is its own. Every mempool records it, and txBatch refuses a
   * buffer of another space instead of putting an address on the ring that means other memory
   * (or nothing) to this device.
   */
  readonly space: number;
  /** True after close(): the memory is gone, and so are the mempools made from it. */
  readonly closed: boolean;
  /** Zeroed memory the device can reach. Throws DmaError when none can be had. */
  allocate(size: number, options?: AllocateOptions): DmaRegion;
  /**
   * Calls `callback` when close() is called, before the memory goes. Mempools use it to retire
   * their buffer numbers, so that a buffer of freed memory can never reach a device. Optional:
   * without it, a pool notices only when it is used or when the buffer table runs short.
   * Returns the function that takes the callback back: a pool closed before its allocator calls
   * it, or the allocator would keep every closed pool (and its memory) reachable until it closes.
   */
  onClose?(callback: () => void): () => void;
  /**
   * Releases every allocation: unmaps it from the device, then from the process. Views
   * into it must not be touched afterwards (a koffi view does not own its memory).
   */
  close(): void;
  /**
   * A mark of what has been allocated so far, for releaseSince(). Optional, with
   * releaseSince(): an allocator without them keeps a failed init's memory until it closes.
   */
  mark?(): number;
  /**
   * Gives back every allocation made after mark() returned `mark` (a driver's failed init: its
   * rings and pools). Views of those regions must not be touched afterwards; mempools made from
   * them must have been closed first.
   */
  releaseSince?(mark: number): void;
}

/** Names of the address spaces handed out so far, by id (0 is "no space": a dead pool's). */
const spaceNames: string[] = ["no address space"];

/** The one space of host physical addresses (devices whose DMA bypasses every IOMMU). */
export const PHYSICAL_ADDRESS_SPACE = 1;
spaceNames.push("host physical addresses");

/** A new address space's id, a small positive integer; `name` says what it is in errors. */
export function newAddressSpace(name: string): number {
  spaceNames.push(name);
  return spaceNames.length - 1;
}

/** What address space `space` is, for error messages. */
export function addressSpaceName(space: number): string {
  return spaceNames[space] ?? `address space ${space}`;
}

/** Checks allocate()'s arguments (TypeError for a wrong type, RangeError otherwise); returns the alignment. */
export function checkAllocateArgs(name: string, size: number, options: AllocateOptions | undefined, maxAlign: number): number {
  checkInteger(name, "the DMA allocation size (bytes)", size, 1, Number.MAX_SAFE_INTEGER);
  const o = checkOptionsObject(name, "the allocation options", options);
  checkBoolean(name, "contiguous", o.contiguous);
  return checkPowerOfTwo(name, "the DMA alignment", o.align === undefined ? 64 : o.align, 1, maxAlign);
}
