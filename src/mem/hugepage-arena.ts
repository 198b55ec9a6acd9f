/**
 * HugepageArena: carves DMA regions out of hugepage mappings. Small regions (descriptor rings)
 * share a hugepage; a region that needs more than what is left gets a mapping of its own. Memory
 * goes back to the system only when the arena closes — a driver allocates at init and keeps
 * everything until it closes, as ixy does.
 *
 * How the device addresses a mapping (IOMMU IOVA or physical address) is the Addressing's job.
 */
import { AllocatorClosedError, DmaError } from "../errors.ts";
import { checkInteger } from "../validate.ts";
import type { DmaRegion } from "./dma.ts";
import { HUGEPAGE_SIZE, HugepageMapping } from "./hugepages.ts";
import { mappingNodes } from "./numa.ts";

export interface ChunkAddressing {
  /** Called once per new mapping, before any region of it is handed out. */
  attach(mapping: HugepageMapping): void;
  /** Device address of byte `offset` of the mapping. */
  iovaOf(mapping: HugepageMapping, offset: number): number;
  /** Called at close, before the mapping is unmapped. */
  detach(mapping: HugepageMapping): void;
}

class ArenaRegion implements DmaRegion {
  readonly bytes: Uint8Array;
  readonly size: number;
  readonly iova: number;
  readonly contiguous: boolean;
  readonly #mapping: HugepageMapping;
  readonly #start: number;
  readonly #addressing: ChunkAddressing;

  constructor(mapping: HugepageMapping, start: number, size: number, addressing: ChunkAddressing) {
    this.#mapping = mapping;
    this.#start = start;
    this.#addressing = addressing;
    this.bytes = new Uint8Array(mapping.buffer, start, size);
    this.size = size;
    this.iova = addressing.iovaOf(mapping, start);
    this.contiguous = addressing.iovaOf(mapping, start + size - 1) === this.iova + size - 1 && isContiguous(this);
  }

  iovaOf(offset: number): number {
    if (offset < 0 || offset >= this.size) throw new RangeError(`offset ${offset} is outside the ${this.size}-byte DMA region`);
    return this.#addressing.iovaOf(this.#mapping, this.#start + offset);
  }
}

/** True when each hugepage of the region follows the previous one for the device too. */
function isContiguous(region: DmaRegion): boolean {
  for (let off = HUGEPAGE_SIZE - (region.iova % HUGEPAGE_SIZE); off < region.size; off += HUGEPAGE_SIZE) {
    if (region.iovaOf(off) !== region.iova + off) return false;
  }
  return true;
}

export class HugepageArena {
  readonly name: string;
  readonly #addressing: ChunkAddressing;
  readonly #mappings: HugepageMapping[] = [];
  #current: HugepageMapping | null = null;
  #used = 0;
  #closed = false;
  readonly #onClose = new Set<() => void>();
  /** Per allocation, the arena's state before it: what releaseSince() goes back to. */
  readonly #log: { mappings: number; current: HugepageMapping | null; used: number }[] = [];

  /** The NUMA node every mapping is bound to, or null for the kernel's default (first touch). */
  readonly numaNode: number | null;

  constructor(name: string, addressing: ChunkAddressing, numaNode: number | null = null) {
    this.name = name;
    this.#addressing = addressing;
    this.numaNode = numaNode;
  }

  /** The NUMA node of each hugepage mapped so far (move_pages): where the DMA memory really is. */
  pageNodes(): number[] {
    return this.#mappings.flatMap((m) => mappingNodes(m.ptr, m.size, HUGEPAGE_SIZE, this.name));
  }

  allocate(size: number, align: number, contiguous: boolean): DmaRegion {
    if (this.#closed) throw new AllocatorClosedError(`${this.name}: allocate() on a closed allocator`);
    const before = { mappings: this.#mappings.length, current: this.#current, used: this.#used };
    let mapping = this.#current;
    let start = mapping === null ? 0 : Math.ceil(this.#used / align) * align;
    // A contiguous region must not cross a hugepage boundary: two hugepages need not be
    // neighbours in physical memory.
    const crosses = contiguous && size <= HUGEPAGE_SIZE && Math.floor(start / HUGEPAGE_SIZE) !== Math.floor((start + size - 1) / HUGEPAGE_SIZE);
    if (crosses) start = Math.ceil(start / HUGEPAGE_SIZE) * HUGEPAGE_SIZE;
    if (mapping === null || start + size > mapping.size) {
      mapping = HugepageMapping.map(size, this.name, this.numaNode ?? undefined);
      try {
        this.#addressing.attach(mapping);
      } catch (e) {
        mapping.unmap();
        throw e;
      }
      this.#mappings.push(mapping);
      start = 0;
      this.#current = mapping;
    }
    this.#used = start + size;
    this.#log.push(before);
    const region = new ArenaRegion(mapping, start, size, this.#addressing);
    if (contiguous && !region.contiguous) {
      throw new DmaError(
        `${this.name}: could not get ${size} bytes of memory that is contiguous for the device ` +
          `(its hugepages are not physically adjacent); use a smaller ring or a device behind an IOMMU`,
      );
    }
    return region;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Allocations so far: a mark for releaseSince(). */
  mark(): number {
    if (this.#closed) throw new AllocatorClosedError(`${this.name}: mark() on a closed allocator`);
    return this.#log.length;
  }

  /**
   * Goes back to the state at `mark`: the mappings made since are detached from the device and
   * unmapped (their hugepages go back to the system), and the space used since in the mapping
   * current then is handed out again.
   */
  releaseSince(mark: number): void {
    if (this.#closed) throw new AllocatorClosedError(`${this.name}: releaseSince() on a closed allocator`);
    checkInteger(this.name, "releaseSince()'s mark", mark, 0, this.#log.length);
    if (mark === this.#log.length) return;
    const state = this.#log[mark]!;
    this.#log.length = mark;
    let first: unknown = null;
    for (const m of this.#mappings.splice(state.mappings)) {
      try {
        this.#addressing.detach(m);
      } catch (e) {
        first ??= e;
      }
      m.unmap();
    }
    this.#current = state.current;
    this.#used = state.used;
    if (first) throw first;
  }

  onClose(callback: () => void): () => void {
    if (this.#closed) throw new AllocatorClosedError(`${this.name}: onClose() on a closed allocator`);
    this.#onClose.add(callback);
    return () => void this.#onClose.delete(callback);
  }

  /** Detaches and unmaps every mapping. Idempotent. */
  close(): void {
    if (this.#closed) return;
    const callbacks = [...this.#onClose];
    this.#onClose.clear();
    for (const callback of callbacks) callback();
    this.#closed = true;
    let first: unknown = null;
    for (const m of this.#mappings) {
      try {
        this.#addressing.detach(m);
      } catch (e) {
        first ??= e;
      }
      m.unmap();
    }
    this.#mappings.length = 0;
    this.#log.length = 0;
    this.#current = null;
    if (first) throw first;
  }
}
