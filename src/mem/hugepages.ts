/**
 * Hugepages: 2 MiB pages that the kernel never swaps or moves, so a device can be given their
 * address once. Reserve them as root: echo 512 > /proc/sys/vm/nr_hugepages.
 */
import * as fs from "node:fs";
import { DmaError, SyscallError } from "../errors.ts";
import {
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_SHARED,
  mlock,
  mmap,
  munmap,
  PROT_READ,
  PROT_WRITE,
  view,
} from "../sys/libc.ts";

export const HUGEPAGE_SIZE = 2 * 1024 * 1024;
export const HUGEPAGE_SHIFT = 21;

export interface HugepageCounts {
  readonly total: number;
  readonly free: number;
  readonly sizeKiB: number;
}

/** HugePages_Total / HugePages_Free / Hugepagesize from /proc/meminfo. */
export function hugepageCounts(meminfo = "/proc/meminfo"): HugepageCounts {
  const text = fs.readFileSync(meminfo, "utf8");
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text);
    return m ? parseInt(m[1]!, 10) : 0;
  };
  return { total: field("HugePages_Total"), free: field("HugePages_Free"), sizeKiB: field("Hugepagesize") };
}

export function reserveAdvice(pages: number): string {
  return `reserve hugepages as root: echo ${pages} > /proc/sys/vm/nr_hugepages`;
}

/** A mapping of whole hugepages, locked in memory, zeroed by the kernel. */
export class HugepageMapping {
  readonly ptr: bigint;
  readonly size: number;
  readonly buffer: ArrayBuffer;
  #unmapped = false;

  private constructor(ptr: bigint, size: number) {
    this.ptr = ptr;
    this.size = size;
    this.buffer = view(ptr, size);
  }

  /** Maps `size` bytes (rounded up to whole hugepages). `owner` names the user in errors. */
  static map(size: number, owner: string): HugepageMapping {
    const rounded = Math.ceil(size / HUGEPAGE_SIZE) * HUGEPAGE_SIZE;
    let ptr: bigint;
    try {
      ptr = mmap(rounded, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0, owner);
    } catch (e) {
      if (e instanceof SyscallError && (e.code === "ENOMEM" || e.code === "EINVAL")) {
        const c = hugepageCounts();
        const needed = rounded / HUGEPAGE_SIZE;
        throw new DmaError(
          `${owner}: no free hugepages for ${needed} x 2 MiB (HugePages_Free ${c.free} of ${c.total}): ` +
            reserveAdvice(Math.max(512, c.total + needed)),
        );
      }
      throw e;
    }
    try {
      // Hugepages are never swapped, but mlock also faults every page in now, so that the
      // physical addresses exist before anyone asks for them.
      mlock(ptr, rounded, owner);
    } catch (e) {
      munmap(ptr, rounded);
      throw e;
    }
    return new HugepageMapping(ptr, rounded);
  }

  /** Address of byte `offset` in the process, as a BigInt (for VFIO and pagemap). */
  addressOf(offset: number): bigint {
    return this.ptr + BigInt(offset);
  }

  /** Unmaps; views of `buffer` must not be touched afterwards. Idempotent. */
  unmap(): void {
    if (this.#unmapped) return;
    this.#unmapped = true;
    munmap(this.ptr, this.size);
  }
}
