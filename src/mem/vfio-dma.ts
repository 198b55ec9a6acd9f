/**
 * DMA memory for devices behind an IOMMU: hugepages mapped into a VFIO container at IOVAs that
 * this allocator chooses. IOVAs start at 4 GiB (clear of the x86 MSI window below 4 GiB) and grow
 * upwards; qemu's emulated Intel IOMMU accepts IOVAs below 2^39, real ones at least that.
 */
import { checkAllocateArgs, DmaAddressing, type AllocateOptions, type DmaAllocator, type DmaRegion } from "./dma.ts";
import { HugepageArena } from "./hugepage-arena.ts";
import { HUGEPAGE_SIZE, type HugepageMapping } from "./hugepages.ts";
import type { VfioContainer } from "../pci/vfio.ts";

const IOVA_BASE = 0x1_0000_0000;

export class VfioDmaAllocator implements DmaAllocator {
  readonly name: string;
  readonly addressing = DmaAddressing.iommu;
  readonly space: number;
  readonly #arena: HugepageArena;

  constructor(container: VfioContainer, name = "VFIO DMA memory", numaNode: number | null = null) {
    this.name = name;
    this.space = container.space;
    const iovas = new Map<HugepageMapping, number>();
    let next = IOVA_BASE;
    this.#arena = new HugepageArena(name, {
      attach(mapping) {
        container.mapDma(mapping.ptr, next, mapping.size);
        iovas.set(mapping, next);
        next += mapping.size;
      },
      iovaOf(mapping, offset) {
        return iovas.get(mapping)! + offset;
      },
      detach(mapping) {
        container.unmapDma(iovas.get(mapping)!, mapping.size);
        iovas.delete(mapping);
      },
    }, numaNode);
  }

  allocate(size: number, options?: AllocateOptions): DmaRegion {
    const align = checkAllocateArgs(this.name, size, options, HUGEPAGE_SIZE);
    return this.#arena.allocate(size, align, options?.contiguous ?? true);
  }

  onClose(callback: () => void): () => void {
    return this.#arena.onClose(callback);
  }

  get closed(): boolean {
    return this.#arena.closed;
  }

  mark(): number {
    return this.#arena.mark();
  }

  releaseSince(mark: number): void {
    this.#arena.releaseSince(mark);
  }

  /** The NUMA node its hugepages are bound to (mbind), or null for the kernel's default. */
  get numaNode(): number | null {
    return this.#arena.numaNode;
  }

  /** The NUMA node of each hugepage it has mapped (move_pages): where the DMA memory is. */
  pageNodes(): number[] {
    return this.#arena.pageNodes();
  }

  close(): void {
    this.#arena.close();
  }
}
