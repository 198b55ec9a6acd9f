/**
 * Virtual to physical translation through /proc/self/pagemap (Documentation/admin-guide/mm/
 * pagemap.rst): one 64-bit entry per 4 KiB virtual page; bits 0-54 hold the page frame number,
 * bit 63 says the page is present. Since Linux 4.0 the PFN reads as 0 without CAP_SYS_ADMIN.
 */
import { PermissionError, DmaError } from "../errors.ts";
import { close, geteuid, O_RDONLY, open, pread } from "../sys/libc.ts";
import { join64 } from "./u64.ts";

const PAGE_SIZE = 4096;

/** Physical address of the byte at virtual address `vaddr`. */
export function virtToPhys(vaddr: bigint, owner: string, pagemapPath = "/proc/self/pagemap"): number {
  if (geteuid() !== 0) {
    throw new PermissionError(
      `${owner}: physical addresses need root (/proc/self/pagemap hides them from other users): run as root, ` +
        `or use a device behind an IOMMU through VFIO`,
    );
  }
  const fd = open(pagemapPath, O_RDONLY, owner);
  try {
    const entry = new Uint8Array(8);
    pread(fd, entry, Number(vaddr / BigInt(PAGE_SIZE)) * 8, `${owner}: reading ${pagemapPath}`);
    const words = new Uint32Array(entry.buffer);
    const present = (words[1]! & 0x8000_0000) !== 0;
    // PFN: bits 0-54 = low word + bits 0-22 of the high word.
    const pfn = join64(words[0]!, words[1]! & 0x7f_ffff);
    if (!present || pfn === 0) {
      throw new DmaError(`${owner}: page at 0x${vaddr.toString(16)} has no physical address (not present, or pagemap hides it)`);
    }
    return pfn * PAGE_SIZE + Number(vaddr % BigInt(PAGE_SIZE));
  } finally {
    close(fd);
  }
}
