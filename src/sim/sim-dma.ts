/**
 * SimDma: a DmaAllocator over ordinary ArrayBuffers, with made-up IOVAs, for the device models.
 * It plays the IOMMU as well: a model reaches driver memory only through resolve(), which throws
 * a DmaFaultError for any address outside every live allocation — the test sees the fault that
 * would have been a DMAR fault (or memory corruption) on real hardware.
 *
 * IOVAs start above 4 GiB on purpose, so that a driver that drops the high half of a 64-bit
 * address fails in the models too.
 */
import { DmaError, DmaFaultError } from "../errors.ts";
import { checkAllocateArgs, ContiguousRegion, DmaAddressing, type AllocateOptions, type DmaAllocator, type DmaRegion } from "../mem/dma.ts";

const IOVA_BASE = 0x1_0000_0000;
/** Unmapped gap between allocations: an overrun faults instead of landing in the next one. */
const GUARD = 0x1000;

export interface SimDmaOptions {
  /** Refuse allocations beyond this many bytes in total (to test out-of-memory paths). */
  readonly limitBytes?: number;
}

export class SimDma implements DmaAllocator {
  readonly name: string;
  readonly addressing = DmaAddressing.sim;
  readonly #regions: ContiguousRegion[] = [];
  readonly #limit: number;
  #next = IOVA_BASE;
  #allocated = 0;
  #last: ContiguousRegion | null = null;
  #closed = false;
  readonly #onClose: (() => void)[] = [];

  constructor(name = "sim DMA", options: SimDmaOptions = {}) {
    this.name = name;
    this.#limit = options.limitBytes ?? Number.MAX_SAFE_INTEGER;
  }

  /** Bytes handed out so far. */
  get allocatedBytes(): number {
    return this.#allocated;
  }

  get closed(): boolean {
    return this.#closed;
  }

  allocate(size: number, options?: AllocateOptions): DmaRegion {
    const align = checkAllocateArgs(this.name, size, options, 1 << 21);
    if (this.#closed) throw new DmaError(`${this.name}: allocator is closed`);
    if (this.#allocated + size > this.#limit) {
      throw new DmaError(`${this.name}: out of DMA memory (${this.#allocated} of ${this.#limit} bytes in use, ${size} more requested)`);
    }
    const iova = Math.ceil(this.#next / align) * align;
    const region = new ContiguousRegion(new Uint8Array(new ArrayBuffer(size)), iova);
    this.#next = iova + size + GUARD;
    this.#allocated += size;
    this.#regions.push(region);
    return region;
  }

  onClose(callback: () => void): void {
    this.#onClose.push(callback);
  }

  close(): void {
    if (!this.#closed) for (const callback of this.#onClose.splice(0)) callback();
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
