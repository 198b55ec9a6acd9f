/**
 * The one SharedMemoryDmaAllocator of all vhost-user devices of a process (as openDevice shares
 * one VFIO container), so that a buffer received on one port can be sent on another: every
 * device's memory table holds all of it.
 *
 * Memory comes in regions of `memoryBytes` (the first device opened sets it; an allocation
 * larger than that gets a region of its own size). A region added while devices are open is
 * announced to each of them (SET_MEM_TABLE again) before any address in it is used. A memory
 * table holds at most 8 regions (vhost-user: "Memory regions description"); the allocation that
 * would need a 9th fails with a DmaError that says to raise memoryBytes.
 */
import { DmaError } from "../../../errors.ts";
import { HUGEPAGE_SIZE } from "../../../mem/hugepages.ts";
import { SharedMemoryDmaAllocator, type SharedRegion } from "../../../mem/shared-dma.ts";
import { MEMORY_MAX_REGIONS } from "./protocol.ts";

/** Default size of a region: the receive pools of two default devices and a generator's pool. */
export const DEFAULT_MEMORY_BYTES = 32 * 1024 * 1024;

type RegionListener = (region: SharedRegion, table: readonly SharedRegion[]) => void;

const shared: {
  dma: SharedMemoryDmaAllocator | null;
  users: number;
  listeners: Set<RegionListener>;
} = { dma: null, users: 0, listeners: new Set() };

/** The process's vhost-user memory, created with regions of `memoryBytes` by its first user. */
export function acquireSharedMemory(memoryBytes: number): SharedMemoryDmaAllocator {
  if (shared.dma === null || shared.dma.closed) {
    const dma = new SharedMemoryDmaAllocator({ name: "vhost-user shared memory", regionSize: memoryBytes });
    dma.onRegionAdded((region) => {
      // The table: the regions so far and the new one (which regions() lists already).
      const table = [...dma.regions().filter((r) => r.guestAddress !== region.guestAddress), region];
      if (table.length > MEMORY_MAX_REGIONS) {
        throw new DmaError(
          `${dma.name}: this allocation needs a memory region of ${mib(region.size)} more, the ${table.length}th, ` +
            `but a vhost-user memory table holds at most ${MEMORY_MAX_REGIONS}: open the first vhost-user device ` +
            `with a larger memoryBytes (each region has ${mib(dma.regions()[0]?.size ?? memoryBytes)}), or use smaller mempools`,
        );
      }
      for (const listener of [...shared.listeners]) listener(region, table);
    });
    shared.dma = dma;
  }
  shared.users++;
  return shared.dma;
}

/** Drops a user; the last one closes the memory (and with it every mempool made from it). */
export function releaseSharedMemory(): void {
  if (shared.users === 0) return;
  shared.users--;
  if (shared.users > 0 || shared.dma === null) return;
  const dma = shared.dma;
  shared.dma = null;
  shared.listeners.clear();
  dma.close();
}

/**
 * Calls `listener` with each region added from now on and the whole table with it, before the
 * allocation that needed it returns; a listener that throws fails that allocation. Returns the
 * function that removes the listener.
 */
export function onSharedRegionAdded(listener: RegionListener): () => void {
  shared.listeners.add(listener);
  return () => shared.listeners.delete(listener);
}

/** memoryBytes rounded up to whole hugepages (what a region really takes). */
export function regionBytes(memoryBytes: number): number {
  return Math.ceil(memoryBytes / HUGEPAGE_SIZE) * HUGEPAGE_SIZE;
}

function mib(bytes: number): string {
  return `${bytes / (1024 * 1024)} MiB`;
}

/** How many devices hold the shared memory and how many regions it has (tests, diagnostics). */
export function sharedMemoryState(): { readonly users: number; readonly regions: number } {
  return { users: shared.users, regions: shared.dma?.regions().length ?? 0 };
}
