/**
 * DMA memory for devices behind an IOMMU: hugepages mapped into a VFIO container at IOVAs that
 * the container hands out (VfioContainer.reserveIova: from 4 GiB upwards, shared by all the
 * container's allocators, e.g. one per NUMA node).
 */
import { checkAllocateArgs, DmaAddressing, type AllocateOptions, type DmaAllocator, type DmaRegion } from "./dma.ts";
import { HugepageArena } from "./hugepage-arena.ts";
import { HUGEPAGE_SIZE, type HugepageMapping } from "./hugepages.ts";
import type { VfioContainer } from "../pci/vfio.ts";

export class VfioDmaAllocator implements DmaAllocator {
  readonly name: string;
  readonly addressing = DmaAddressing.iommu;
  readonly space: number;
  readonly #arena: HugepageArena;

  constructor(container: VfioContainer, name = "VFIO DMA memory", numaNode: number | null = null) {
    this.name = name;
    this.space = container.space;
    const iovas = new Map<HugepageMapping, number>();
    this.#arena = new HugepageArena(name, {
      attach(mapping) {
        const iova = container.reserveIova(mapping.size);
        container.mapDma(mapping.ptr, iova, mapping.size);
        iovas.set(mapping, iova);
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
