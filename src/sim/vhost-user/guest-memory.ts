/**
 * The front-end's memory as a vhost-user backend sees it: the regions of the last
 * SET_MEM_TABLE, each mapped MAP_SHARED from the file descriptor that came with it, so that
 * what the driver writes in its process the device model reads here, and the other way round.
 *
 * It is the model's DeviceAddressSpace: resolve() translates a guest address (what descriptors
 * hold) through the table, and anything outside every region is a DmaFaultError, as it would be
 * behind an IOMMU, so that a driver bug still faults instead of reading some other memory.
 * userToGuest() translates the front-end's own virtual addresses, which SET_VRING_ADDR uses.
 *
 * vhost-user: Memory access: "User addresses map to the vhost memory region containing that
 * user address"; without VIRTIO_F_IOMMU_PLATFORM (never offered here) "guest addresses map to
 * the vhost memory region containing that guest address".
 */
import * as fs from "node:fs";
import { DmaFaultError } from "../../errors.ts";
import { close, MAP_SHARED, mmap, munmap, pageSize, PROT_READ, PROT_WRITE, view } from "../../sys/libc.ts";
import type { DeviceAddressSpace } from "../address-space.ts";
import { FrontEndViolation } from "./errors.ts";
import { MAX_REGIONS } from "./messages.ts";

/** vhost-user: Memory regions description / A region. */
export interface MemoryRegionDescription {
  readonly guestAddress: number;
  readonly size: number;
  readonly userAddress: number;
  /** Where the region starts in the file. */
  readonly mmapOffset: number;
}

class MappedRegion {
  readonly guestAddress: number;
  readonly size: number;
  readonly userAddress: number;
  readonly mmapOffset: number;
  readonly fd: number;
  readonly #ptr: bigint;
  readonly #length: number;
  /** The region's bytes: a view made once, dropped (with every subarray of it) before munmap. */
  readonly bytes: Uint8Array;

  constructor(description: MemoryRegionDescription, fd: number, ptr: bigint, length: number) {
    this.guestAddress = description.guestAddress;
    this.size = description.size;
    this.userAddress = description.userAddress;
    this.mmapOffset = description.mmapOffset;
    this.fd = fd;
    this.#ptr = ptr;
    this.#length = length;
    this.bytes = new Uint8Array(view(ptr, length), description.mmapOffset, description.size);
  }

  unmap(): void {
    try {
      munmap(this.#ptr, this.#length);
    } finally {
      close(this.fd);
    }
  }
}

export class GuestMemory implements DeviceAddressSpace {
  readonly name: string;
  #regions: MappedRegion[] = [];
  #last: MappedRegion | null = null;

  /** `name` names the backend in faults and errors. */
  constructor(name = "vhost-user guest memory") {
    this.name = name;
  }

  /** Whether a memory table is in place. */
  get mapped(): boolean {
    return this.#regions.length > 0;
  }

  /** The regions of the table in place, in the order the front-end sent them. */
  get regions(): readonly MemoryRegionDescription[] {
    return this.#regions.map(({ guestAddress, size, userAddress, mmapOffset }) => ({ guestAddress, size, userAddress, mmapOffset }));
  }

  /**
   * vhost-user: Front-end message types / SET_MEM_TABLE. Maps every region of the new table
   * from its fd (the fds become this object's, and are closed on failure too), puts the table in
   * place, calls `beforeUnmap` (the backend rebuilds its ring views there: views of the old
   * mappings must be gone before they are unmapped), then unmaps the old table and closes its
   * fds. A table that makes no sense is a FrontEndViolation; the old table then stays.
   */
  setTable(regions: readonly MemoryRegionDescription[], fds: readonly number[], beforeUnmap: () => void = () => {}): void {
    const mapped: MappedRegion[] = [];
    try {
      checkTable(regions, fds.length);
      for (let i = 0; i < regions.length; i++) mapped.push(mapRegion(regions[i]!, fds[i]!, i, this.name));
    } catch (e) {
      for (const m of mapped) m.unmap();
      for (const fd of fds.slice(mapped.length)) closeQuietly(fd);
      throw e;
    }
    const old = this.#regions;
    this.#regions = mapped;
    this.#last = null;
    try {
      beforeUnmap();
    } finally {
      unmapAll(old);
    }
  }

  /** The device's view of guest addresses [address, address + length); a DmaFaultError outside every region. */
  resolve(address: number, length: number, what = "DMA access", device = this.name): Uint8Array {
    const region = this.#find(address, length);
    if (region === null) throw new DmaFaultError(device, address, length, `${what} (outside every region of the vhost-user memory table)`);
    const offset = address - region.guestAddress;
    return region.bytes.subarray(offset, offset + length);
  }

  /** Whether guest addresses [address, address + length) lie inside one region. */
  contains(address: number, length: number): boolean {
    return this.#find(address, length) !== null;
  }

  /**
   * The guest address of the front-end's virtual address `userAddress`, when [userAddress,
   * userAddress + length) lies inside one region; null otherwise.
   */
  userToGuest(userAddress: number, length = 1): number | null {
    if (!validRange(userAddress, length)) return null;
    for (const r of this.#regions) {
      if (userAddress >= r.userAddress && userAddress + length <= r.userAddress + r.size) return r.guestAddress + (userAddress - r.userAddress);
    }
    return null;
  }

  /** Unmaps every region and closes its fd. Views handed out before must not be touched after. Idempotent. */
  close(): void {
    const old = this.#regions;
    this.#regions = [];
    this.#last = null;
    unmapAll(old);
  }

  #find(address: number, length: number): MappedRegion | null {
    if (!validRange(address, length)) return null;
    const last = this.#last;
    if (last !== null && address >= last.guestAddress && address + length <= last.guestAddress + last.size) return last;
    for (const r of this.#regions) {
      if (address >= r.guestAddress && address + length <= r.guestAddress + r.size) {
        this.#last = r;
        return r;
      }
    }
    return null;
  }
}

function validRange(address: number, length: number): boolean {
  return Number.isSafeInteger(address) && address >= 0 && Number.isSafeInteger(length) && length >= 0 && Number.isSafeInteger(address + length);
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Sizes, counts and overlaps: what can be checked before mapping anything. */
function checkTable(regions: readonly MemoryRegionDescription[], fdCount: number): void {
  const n = regions.length;
  if (n < 1 || n > MAX_REGIONS) throw new FrontEndViolation(`${n} regions: send 1 to ${MAX_REGIONS}`);
  if (fdCount !== n) throw new FrontEndViolation(`${n} regions came with ${fdCount} file descriptor(s): send one fd per region, in order`);
  for (let i = 0; i < n; i++) {
    const r = regions[i]!;
    for (const [field, value] of [["guest address", r.guestAddress], ["size", r.size], ["user address", r.userAddress], ["mmap offset", r.mmapOffset]] as const) {
      if (!Number.isSafeInteger(value) || value < 0) throw new FrontEndViolation(`region ${i}: ${field} ${value} is not an address this backend can use (0 to 2^53)`);
    }
    if (r.size === 0) throw new FrontEndViolation(`region ${i} is empty: leave it out of the table`);
    if (!Number.isSafeInteger(r.guestAddress + r.size) || !Number.isSafeInteger(r.userAddress + r.size) || !Number.isSafeInteger(r.mmapOffset + r.size)) {
      throw new FrontEndViolation(`region ${i} ends beyond 2^53`);
    }
    for (let j = 0; j < i; j++) {
      const o = regions[j]!;
      if (r.guestAddress < o.guestAddress + o.size && o.guestAddress < r.guestAddress + r.size) {
        throw new FrontEndViolation(`regions ${j} and ${i} overlap in guest addresses (${hex(o.guestAddress)}+${hex(o.size)}, ${hex(r.guestAddress)}+${hex(r.size)})`);
      }
      if (r.userAddress < o.userAddress + o.size && o.userAddress < r.userAddress + r.size) {
        throw new FrontEndViolation(`regions ${j} and ${i} overlap in user addresses (${hex(o.userAddress)}+${hex(o.size)}, ${hex(r.userAddress)}+${hex(r.size)})`);
      }
    }
  }
}

/**
 * Maps the file from offset 0 through the region's end (mmap offsets need page alignment, the
 * region's offset need not have it), the length rounded up to the file's block size: a hugetlbfs
 * file or hugetlb memfd has 2 MiB blocks, and the kernel maps whole hugepages whatever length
 * mmap is given, but munmap refuses (EINVAL) a length that is not a multiple of them.
 */
function mapRegion(r: MemoryRegionDescription, fd: number, index: number, owner: string): MappedRegion {
  const context = `${owner}: SET_MEM_TABLE region ${index}`;
  const end = r.mmapOffset + r.size;
  let stat: fs.Stats;
  try {
    stat = fs.fstatSync(fd);
  } catch (e) {
    throw new FrontEndViolation(`region ${index}: its fd cannot be examined (${(e as Error).message}): send the memory's file descriptor`);
  }
  if (!stat.isFile()) throw new FrontEndViolation(`region ${index}: its fd is not a file (memfd, hugetlbfs or shm file) that can be mapped`);
  // Touching a page beyond the end of the file is a SIGBUS that kills the backend: refuse instead.
  if (end > stat.size) {
    throw new FrontEndViolation(`region ${index}: mmap offset ${hex(r.mmapOffset)} + size ${hex(r.size)} goes beyond the ${hex(stat.size)}-byte file: send the file's own size`);
  }
  const page = pageSize();
  const block = stat.blksize > page && stat.blksize % page === 0 ? stat.blksize : page;
  const length = Math.ceil(end / block) * block;
  const ptr = mmap(length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0, context);
  return new MappedRegion(r, fd, ptr, length);
}

function unmapAll(regions: readonly MappedRegion[]): void {
  let first: unknown = null;
  for (const r of regions) {
    try {
      r.unmap();
    } catch (e) {
      first ??= e;
    }
  }
  if (first !== null) throw first;
}

function closeQuietly(fd: number): void {
  try {
    close(fd);
  } catch {
    // already closed: nothing to release
  }
}
