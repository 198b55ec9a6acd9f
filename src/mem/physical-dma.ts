/**
 * DMA memory for devices without an IOMMU in the way (a legacy virtio device, or hardware bound
 * to a driver without VFIO): locked hugepages whose physical addresses come from
 * /proc/self/pagemap. Root only. Each 2 MiB hugepage is physically contiguous; two of them need
 * not be, so regions that must be contiguous stay within one hugepage.
 */
import { PermissionError } from "../errors.ts";
import { geteuid } from "../sys/libc.ts";
import { checkAllocateArgs, DmaAddressing, PHYSICAL_ADDRESS_SPACE,  type AllocateOptions, type DmaAllocator, type DmaRegion } from "./dma.ts";
import { HugepageArena } from "./hugepage-arena.ts";
import { HUGEPAGE_SHIFT, HUGEPAGE_SIZE, type HugepageMapping } from "./hugepages.ts";
import { virtToPhys } from "./pagemap.ts";

export class PhysicalDmaAllocator implements DmaAllocator {
  readonly name: string;
  readonly addressing = DmaAddressing.physical;
  readonly space: number;
  readonly #arena: HugepageArena;

  constructor(name = "physical DMA memory", pagemapPath = "/proc/self/pagemap", numaNode: number | null = null) {
    this.name = name;
    this.space = PHYSICAL_ADDRESS_SPACE;
    if (geteuid() !== 0) {
      throw new PermissionError(`${name}: physical DMA addresses need root (for /proc/self/pagemap): run as root`);
    }
    const pages = new Map<HugepageMapping, number[]>();
    this.#arena = new HugepageArena(name, {
      attach(mapping) {
        const phys: number[] = [];
        for (let off = 0; off < mapping.size; off += HUGEPAGE_SIZE) {
          phys.push(virtToPhys(mapping.addressOf(off), name, pagemapPath));
        }
        pages.set(mapping, phys);
      },
      iovaOf(mapping, offset) {
        return pages.get(mapping)![offset >>> HUGEPAGE_SHIFT]! + (offset & (HUGEPAGE_SIZE - 1));
      },
      detach(mapping) {
        pages.delete(mapping);
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
