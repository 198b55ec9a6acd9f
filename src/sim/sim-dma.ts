/**
 * SimDma: a DmaAllocator over SharedArrayBuffers, with made-up IOVAs, for the device models.
 * It plays the IOMMU as well: a model reaches driver memory only through resolve(), which throws
 * a DmaFaultError for any address outside every live allocation — the test sees the fault that
 * would have been a DMAR fault (or memory corruption) on real hardware.
 *
 * IOVAs start above 4 GiB on purpose, so that a driver that drops the high half of a 64-bit
 * address fails in the models too.
 *
 * Every SimDma is an IOMMU domain of its own (its own address space, DmaAllocator.space) and
 * hands out IOVAs from its own 4 GiB window, disjoint from every other SimDma's: an address of
 * another SimDma faults here instead of resolving to whatever this one has at the same IOVA,
 * as it would behind a real IOMMU with two containers. The windows stay below 2^44, so that a
 * legacy virtio device (32-bit page frame numbers) can reach any of them; after 4095 SimDmas in
 * one process the windows are used again.
 */
import { AllocatorClosedError, DmaError, DmaFaultError } from "../errors.ts";
import { checkInteger } from "../validate.ts";
import {
  checkAllocateArgs,
  ContiguousRegion,
  DmaAddressing,
  newAddressSpace,
  type AllocateOptions,
  type DmaAllocator,
  type DmaRegion,
} from "../mem/dma.ts";

/** Each SimDma's IOVA window: WINDOW bytes at WINDOW * k, k = 1 .. WINDOWS - 1. */
const WINDOW = 0x1_0000_0000;
const WINDOWS = 4096;
let windowsUsed = 0;
/** Unmapped gap between allocations: an overrun faults instead of landing in the next one. */
const GUARD = 0x1000;

export interface SimDmaOptions {
  /** Refuse allocations beyond this many bytes in total (to test out-of-memory paths). */
  readonly limitBytes?: number;
}

export class SimDma implements DmaAllocator {
  readonly name: string;
  readonly addressing = DmaAddressing.sim;
  readonly space: number;
  /** First IOVA of this SimDma's window, and one past its last. */
  readonly iovaBase: number;
  readonly #iovaEnd: number;
  readonly #regions: ContiguousRegion[] = [];
  readonly #limit: number;
  #next: number;
  #allocated = 0;
  #last: ContiguousRegion | null = null;
  #closed = false;
  readonly #onClose = new Set<() => void>();

  constructor(name = "sim DMA", options: SimDmaOptions = {}) {
    this.name = name;
    this.#limit = options.limitBytes ?? Number.MAX_SAFE_INTEGER;
    this.space = newAddressSpace(`${name} (a simulated IOMMU domain)`);
    this.iovaBase = WINDOW * (1 + (windowsUsed++ % (WINDOWS - 1)));
    this.#iovaEnd = this.iovaBase + WINDOW;
    this.#next = this.iovaBase;
  }

  /** Allocations live so far: a mark for releaseSince(). */
  mark(): number {
    this.#checkOpen("mark");
    return this.#regions.length;
  }

  /** Forgets every allocation made after mark() returned `mark`: the device faults on them. */
  releaseSince(mark: number): void {
    this.#checkOpen("releaseSince");
    checkInteger(this.name, "releaseSince()'s mark", mark, 0, this.#regions.length);
    for (const region of this.#regions.splice(mark)) this.#allocated -= region.size;
    const last = this.#regions.at(-1);
    this.#next = last === undefined ? this.iovaBase : last.iova + last.size + GUARD;
    this.#last = null;
  }

  /** Allocations live now (regions handed out and not released). */
  get allocations(): number {
    return this.#regions.length;
  }

  /** Bytes handed out so far. */
  get allocatedBytes(): number {
    return this.#allocated;
  }

  get closed(): boolean {
    return this.#closed;
  }

  allocate(size: number, options?: AllocateOptions): DmaRegion {
    this.#checkOpen("allocate");
    const align = checkAllocateArgs(this.name, size, options, 1 << 21);
    if (this.#allocated + size > this.#limit) {
      throw new DmaError(`${this.name}: out of DMA memory (${this.#allocated} of ${this.#limit} bytes in use, ${size} more requested)`);
    }
    const iova = Math.ceil(this.#next / align) * align;
    if (iova + size > this.#iovaEnd) {
      throw new DmaError(`${this.name}: out of IOVA space (its window is ${WINDOW} bytes; ${size} more requested)`);
    }
    // Shared memory, as DMA memory is: a queue handed to a worker thread (src/threads) is driven
    // from there on the same bytes, while the model runs in the thread that owns it.
    const region = new ContiguousRegion(new Uint8Array(new SharedArrayBuffer(size)), iova);
    this.#next = iova + size + GUARD;
    this.#allocated += size;
    this.#regions.push(region);
    return region;
  }

  onClose(callback: () => void): () => void {
    this.#checkOpen("onClose");
    this.#onClose.add(callback);
    return () => void this.#onClose.delete(callback);
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new AllocatorClosedError(`${this.name}: ${what}() on a closed allocator: make a new one`);
  }

  close(): void {
    if (!this.#closed) {
      const callbacks = [...this.#onClose];
      this.#onClose.clear();
      for (const callback of callbacks) callback();
    }
    this.#closed = true;
    this.#regions.length = 0;
    this.#last = null;
  }

  /**
   * The device's view of [iova, iova + length): a Uint8Array aliasing the driver's memory.
   * `what` names the access in a fault ("RX descriptor write", ...).
   */
  resolve(iova: number, length: number, what = "DMA access", device = this.name): Uint8Array {
    const region = this.#find(iova, length);
    if (region === null) throw new DmaFaultError(device, iova, length, what);
    const offset = iova - region.iova;
    return region.bytes.subarray(offset, offset + length);
  }

  /** Whether [iova, iova + length) lies inside one live allocation. */
  contains(iova: number, length: number): boolean {
    return this.#find(iova, length) !== null;
  }

  #find(iova: number, length: number): ContiguousRegion | null {
    if (!Number.isFinite(iova) || !Number.isFinite(length) || length < 0) return null;
    const last = this.#last;
    if (last !== null && iova >= last.iova && iova + length <= last.iova + last.size) return last;
    for (const region of this.#regions) {
      if (iova >= region.iova && iova + length <= region.iova + region.size) {
        this.#last = region;
        return region;
      }
    }
    return null;
  }
}
