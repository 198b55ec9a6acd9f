/**
 * DMA memory shared with another process, for vhost-user: the "device" is a backend (DPDK, or a
 * model) that maps our packet memory from file descriptors sent in SET_MEM_TABLE. Each mapping
 * is one memory region: a hugepage file (memfd, or an unlinked hugetlbfs file), mapped
 * MAP_SHARED, with a device ("guest") address of our choosing for its byte 0. The backend
 * translates a device address through the table to its own mapping of the fd, so every region is
 * contiguous for it, whatever the physical pages.
 *
 * Device addresses start at 4 GiB, as the VFIO allocator's do, and follow each other without
 * gaps. Small allocations (rings) share a region; one that does not fit in what is left of the
 * current region gets a new region of its own, announced through onRegionAdded(): a backend
 * must learn of it before the device is given any address in it. vhost-user backends take few
 * regions (8 without VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS), so `regionSize` lets one
 * region hold all the rings and pools of a device.
 *
 * (HugepageArena is not reused: it maps anonymous memory itself, and offers no way to map files.)
 */
import { AllocatorClosedError } from "../errors.ts";
import { close } from "../sys/libc.ts";
import { checkAllocateArgs, ContiguousRegion, DmaAddressing, newAddressSpace, type AllocateOptions, type DmaAllocator, type DmaRegion } from "./dma.ts";
import { createHugepageFile, HUGEPAGE_SIZE, HugepageMapping } from "./hugepages.ts";

/** Device address of the first region's byte 0; 0 is never valid, so a zeroed address faults. */
const GUEST_ADDRESS_BASE = 0x1_0000_0000;

/** One entry of the memory table (vhost-user's VhostUserMemoryRegion). */
export interface SharedRegion {
  /** The file to map; it stays open, and ours, until close(). */
  readonly fd: number;
  /** Device address of byte 0 of the region. */
  readonly guestAddress: number;
  /** Bytes, a multiple of 2 MiB. */
  readonly size: number;
  /** This process's virtual address of byte 0 (vhost-user ring addresses are in these terms). */
  readonly userAddress: number;
  /** Where the region starts in the file: always 0, one file per region. */
  readonly mmapOffset: number;
}

export interface SharedMemoryOptions {
  /** Names the allocator in errors (default "shared DMA memory"). */
  readonly name?: string;
  /** Map files of this hugetlbfs mount instead of memfds (see createHugepageFile). */
  readonly hugetlbfsDir?: string;
  /** Size of a new region when the allocation that needs it is smaller (default 2 MiB). */
  readonly regionSize?: number;
}

interface Mapped {
  readonly region: SharedRegion;
  readonly mapping: HugepageMapping;
}

export class SharedMemoryDmaAllocator implements DmaAllocator {
  readonly name: string;
  readonly addressing = DmaAddressing.shared;
  readonly space: number;
  readonly #hugetlbfsDir: string | undefined;
  readonly #regionSize: number;
  readonly #mapped: Mapped[] = [];
  readonly #onRegionAdded: ((region: SharedRegion) => void)[] = [];
  readonly #onClose = new Set<() => void>();
  #nextGuestAddress = GUEST_ADDRESS_BASE;
  /** Bytes used of the last region. */
  #used = 0;
  #closed = false;

  constructor(options: SharedMemoryOptions = {}) {
    this.name = options.name ?? "shared DMA memory";
    this.space = newAddressSpace(`${this.name} (memory shared with a vhost-user backend)`);
    this.#hugetlbfsDir = options.hugetlbfsDir;
    const regionSize = options.regionSize ?? HUGEPAGE_SIZE;
    if (!Number.isInteger(regionSize) || regionSize <= 0) {
      throw new RangeError(`${this.name}: regionSize must be a positive integer, got ${regionSize}`);
    }
    this.#regionSize = roundToHugepages(regionSize);
  }

  get closed(): boolean {
    return this.#closed;
  }

  allocate(size: number, options?: AllocateOptions): DmaRegion {
    if (this.#closed) throw new AllocatorClosedError(`${this.name}: allocate() on a closed allocator`);
    const align = checkAllocateArgs(this.name, size, options, HUGEPAGE_SIZE);
    let last = this.#mapped.at(-1);
    let start = Math.ceil(this.#used / align) * align;
    if (last === undefined || start + size > last.region.size) {
      last = this.#addRegion(Math.max(roundToHugepages(size), this.#regionSize));
      start = 0;
    }
    this.#used = start + size;
    return new ContiguousRegion(new Uint8Array(last.mapping.buffer, start, size), last.region.guestAddress + start);
  }

  /** The memory table: every region so far, in order of device address. */
  regions(): readonly SharedRegion[] {
    return this.#mapped.map((m) => m.region);
  }

  /**
   * Calls `callback` with each region added from now on, before the allocation that needed it
   * returns; regions() already lists it. If a callback throws (the backend refused the region), the region is unmapped and
   * forgotten, and the allocation fails with that error; callbacks called before it are not told.
   */
  onRegionAdded(callback: (region: SharedRegion) => void): void {
    this.#onRegionAdded.push(callback);
  }

  onClose(callback: () => void): () => void {
    if (this.#closed) throw new AllocatorClosedError(`${this.name}: onClose() on a closed allocator`);
    this.#onClose.add(callback);
    return () => void this.#onClose.delete(callback);
  }

  /** This process's address of device address `guestAddress` (for vhost-user ring addresses). */
  userAddressOf(guestAddress: number): number {
    for (const { region } of this.#mapped) {
      const offset = guestAddress - region.guestAddress;
      if (offset >= 0 && offset < region.size) return region.userAddress + offset;
    }
    throw new RangeError(`${this.name}: device address 0x${guestAddress.toString(16)} is in no region`);
  }

  /** Calls the onClose callbacks, then unmaps every region and closes its fd. Idempotent. */
  close(): void {
    if (this.#closed) return;
    const callbacks = [...this.#onClose];
    this.#onClose.clear();
    for (const callback of callbacks) callback();
    this.#closed = true;
    this.#onRegionAdded.length = 0;
    let first: unknown = null;
    for (const m of this.#mapped.splice(0)) {
      try {
        release(m);
      } catch (e) {
        first ??= e;
      }
    }
    if (first) throw first;
  }

  #addRegion(size: number): Mapped {
    const owner = this.name;
    const fd = createHugepageFile(size, owner, { hugetlbfsDir: this.#hugetlbfsDir });
    let mapping: HugepageMapping;
    try {
      mapping = HugepageMapping.mapFile(fd, size, owner, this.#hugetlbfsDir);
    } catch (e) {
      close(fd);
      throw e;
    }
    const region: SharedRegion = { fd, guestAddress: this.#nextGuestAddress, size, userAddress: Number(mapping.ptr), mmapOffset: 0 };
    const m = { region, mapping };
    // Listed before the callbacks run, so that one may send the whole table again.
    this.#mapped.push(m);
    try {
      for (const callback of this.#onRegionAdded) callback(region);
    } catch (e) {
      this.#mapped.pop();
      release(m);
      throw e;
    }
    this.#nextGuestAddress += size;
    return m;
  }
}

function roundToHugepages(size: number): number {
  return Math.ceil(size / HUGEPAGE_SIZE) * HUGEPAGE_SIZE;
}

function release(m: Mapped): void {
  try {
    m.mapping.unmap();
  } finally {
    close(m.region.fd);
  }
}
