/**
 * Hugepages: 2 MiB pages that the kernel never swaps or moves, so a device can be given their
 * address once. Reserve them as root: echo 512 > /proc/sys/vm/nr_hugepages.
 *
 * Besides anonymous mappings, hugepages come as files (createHugepageFile) whose fd another
 * process can map too: memory shared with a vhost-user backend.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DmaError, SyscallError } from "../errors.ts";
import { checkMappingNode, checkNodeHugepages, nodeHugepagesFile } from "./numa.ts";
import {
  close,
  F_ADD_SEALS,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  fcntl,
  ftruncate,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_POPULATE,
  MAP_SHARED,
  mbindNode,
  memfdCreate,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  MFD_HUGE_2MB,
  MFD_HUGETLB,
  mlock,
  mmap,
  mmapShared,
  munmap,
  O_CREAT,
  O_EXCL,
  O_RDWR,
  openMode,
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

export function mountAdvice(dir: string): string {
  return `mount hugetlbfs there as root: mkdir -p ${dir} && mount -t hugetlbfs nodev ${dir}`;
}

/** The DmaError for a mapping of `bytes` that found too few free hugepages. */
function noFreeHugepages(owner: string, bytes: number, extra = ""): DmaError {
  const c = hugepageCounts();
  const needed = bytes / HUGEPAGE_SIZE;
  return new DmaError(
    `${owner}: no free hugepages for ${needed} x 2 MiB (HugePages_Free ${c.free} of ${c.total}): ` +
      reserveAdvice(Math.max(512, c.total + needed)) +
      extra,
  );
}

/** RLIMIT_MEMLOCK of this process in bytes (soft limit), from /proc/self/limits; null if unknown. */
export function memlockLimit(): number | "unlimited" | null {
  try {
    const line = fs.readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max locked memory"));
    const soft = line?.slice("Max locked memory".length).trim().split(/\s+/)[0];
    if (soft === undefined) return null;
    return soft === "unlimited" ? "unlimited" : Number(soft);
  } catch {
    return null;
  }
}

/**
 * The error for memory that could not be locked or pinned for DMA: mlock(2) and VFIO's pinning
 * count against RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK (root has). Says how to
 * raise it.
 */
export function memlockError(owner: string, bytes: number, what: string): DmaError {
  const limit = memlockLimit();
  const now = limit === null ? "unknown" : limit === "unlimited" ? "unlimited" : `${limit} bytes`;
  return new DmaError(
    `${owner}: ${what} ${bytes} bytes failed: locked and DMA-pinned memory counts against RLIMIT_MEMLOCK ` +
      `(now ${now}) for a process without CAP_IPC_LOCK. Raise it for the user that runs ixy.ts: as root, ` +
      `"prlimit --memlock=unlimited:unlimited --pid <pid>" or "ulimit -l unlimited" in its shell, or a line ` +
      `"<user> - memlock unlimited" in /etc/security/limits.conf (systemd: LimitMEMLOCK=infinity)`,
  );
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

  /**
   * Maps `size` bytes (rounded up to whole hugepages). `owner` names the user in errors. With
   * `numaNode`, every page comes from that NUMA node (mbind MPOL_BIND before the first touch),
   * and where they landed is checked (move_pages) before the mapping is handed out.
   */
  static map(size: number, owner: string, numaNode?: number): HugepageMapping {
    const rounded = Math.ceil(size / HUGEPAGE_SIZE) * HUGEPAGE_SIZE;
    // The global count says nothing about one node: say which node is short before mapping.
    if (numaNode !== undefined) checkNodeHugepages(numaNode, rounded / HUGEPAGE_SIZE, owner);
    let ptr: bigint;
    try {
      ptr = mmap(rounded, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0, owner);
    } catch (e) {
      if (e instanceof SyscallError && (e.code === "ENOMEM" || e.code === "EINVAL")) throw noFreeHugepages(owner, rounded);
      throw e;
    }
    try {
      // The policy must be in place before the first touch (mlock below): a page that exists
      // already stays where it is.
      if (numaNode !== undefined) mbindNode(ptr, rounded, numaNode, `${owner}: binding DMA memory to NUMA node ${numaNode}`);
    } catch (e) {
      munmap(ptr, rounded);
      throw e;
    }
    try {
      // Hugepages are never swapped, but mlock also faults every page in now, so that the
      // physical addresses exist before anyone asks for them.
      mlock(ptr, rounded, owner);
    } catch (e) {
      munmap(ptr, rounded);
      // Bound to a node whose pool ran dry between the check and the fault: the fault fails
      // (mlock reports it as ENOMEM) instead of taking a page of another node.
      if (numaNode !== undefined && e instanceof SyscallError && e.code === "ENOMEM") {
        throw new DmaError(
          `${owner}: could not fault in ${rounded / HUGEPAGE_SIZE} x 2 MiB hugepages on NUMA node ${numaNode} ` +
            `(ENOMEM: none left on that node, or RLIMIT_MEMLOCK): reserve more there as root ` +
            `(echo N > ${nodeHugepagesFile(numaNode)}), or raise the memlock limit (ulimit -l unlimited)`,
        );
      }
      if (e instanceof SyscallError && (e.code === "ENOMEM" || e.code === "EPERM" || e.code === "EAGAIN")) {
        throw memlockError(owner, rounded, "locking");
      }
      throw e;
    }
    if (numaNode !== undefined) {
      try {
        checkMappingNode(ptr, rounded, HUGEPAGE_SIZE, numaNode, owner);
      } catch (e) {
        munmap(ptr, rounded);
        throw e;
      }
    }
    return new HugepageMapping(ptr, rounded);
  }

  /**
   * Maps all `size` bytes (whole hugepages) of a hugepage file (createHugepageFile) MAP_SHARED,
   * faulted in and locked like map(). The fd stays the caller's; the mapping lives on after it
   * is closed. `hugetlbfsDir`, when the file is in one, goes into the advice of errors.
   */
  static mapFile(fd: number, size: number, owner: string, hugetlbfsDir?: string): HugepageMapping {
    if (!Number.isInteger(size) || size <= 0 || size % HUGEPAGE_SIZE !== 0) {
      throw new RangeError(`${owner}: a hugepage file mapping must be a positive multiple of 2 MiB, got ${size}`);
    }
    let ptr: bigint;
    try {
      // The kernel reserves the file's hugepages at mmap, so too few free ones fail here
      // (ENOMEM), not later with a SIGBUS on first touch.
      ptr = mmapShared(fd, size, MAP_POPULATE, owner);
    } catch (e) {
      if (e instanceof SyscallError && e.code === "ENOMEM") {
        throw noFreeHugepages(owner, size, hugetlbfsDir ? ` (or raise the size= limit of the hugetlbfs mount ${hugetlbfsDir})` : "");
      }
      throw e;
    }
    try {
      // As map() does. MAP_POPULATE has already faulted every page in, and hugetlb pages are
      // never swapped, so this only states the intent (and fails where RLIMIT_MEMLOCK is low).
      mlock(ptr, size, owner);
    } catch (e) {
      munmap(ptr, size);
      if (e instanceof SyscallError && (e.code === "ENOMEM" || e.code === "EPERM" || e.code === "EAGAIN")) {
        throw memlockError(owner, size, "locking");
      }
      throw e;
    }
    return new HugepageMapping(ptr, size);
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

/** hugetlbfs's f_type in statfs (HUGETLBFS_MAGIC, linux/magic.h). */
const HUGETLBFS_MAGIC = 0x958458f6;
let fileSerial = 0;

export interface HugepageFileOptions {
  /**
   * Create the file in this hugetlbfs mount (e.g. /dev/hugepages) instead of with
   * memfd_create(MFD_HUGETLB), for systems that refuse hugetlb memfds. The file is unlinked right
   * after it is opened: nothing is left behind, even if the process dies.
   */
  readonly hugetlbfsDir?: string;
}

/**
 * A file of `size` bytes (a positive multiple of 2 MiB) in 2 MiB hugepages that exists only as
 * long as an fd or a mapping of it does: a memfd, or an unlinked file of a hugetlbfs mount.
 * Returns its fd (close-on-exec). No hugepage is taken until the file is mapped
 * (HugepageMapping.mapFile).
 *
 * A memfd's size is sealed: whoever else gets the fd (a vhost-user backend) cannot shrink it
 * under our mappings, which would kill this process with SIGBUS on the next access. Files of a
 * hugetlbfs mount cannot be sealed.
 */
export function createHugepageFile(size: number, owner: string, options: HugepageFileOptions = {}): number {
  if (!Number.isInteger(size) || size <= 0 || size % HUGEPAGE_SIZE !== 0) {
    throw new RangeError(`${owner}: a hugepage file must be a positive multiple of 2 MiB, got ${size}`);
  }
  const dir = options.hugetlbfsDir;
  const fd = dir === undefined ? createMemfd(owner) : createUnlinkedFile(dir, owner);
  try {
    ftruncate(fd, size, `${owner}: sizing a hugepage file`);
    if (dir === undefined) fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, `${owner}: sealing a hugepage memfd`);
  } catch (e) {
    close(fd);
    throw e;
  }
  return fd;
}

function createMemfd(owner: string): number {
  try {
    return memfdCreate("ixy.ts-dma", MFD_CLOEXEC | MFD_HUGETLB | MFD_HUGE_2MB | MFD_ALLOW_SEALING, owner);
  } catch (e) {
    // EINVAL: no hugetlb support (or no 2 MiB pages) behind memfds; ENOSYS/EPERM: a sandbox
    // or seccomp filter refuses memfd_create.
    if (e instanceof SyscallError && ["EINVAL", "ENOSYS", "EPERM", "EOPNOTSUPP"].includes(e.code)) {
      throw new DmaError(
        `${owner}: memfd_create(MFD_HUGETLB) was refused (${e.code}): use a hugetlbfs mount instead, with the ` +
          `option { hugetlbfsDir: "/dev/hugepages" }, and ${mountAdvice("/dev/hugepages")}`,
      );
    }
    throw e;
  }
}

function createUnlinkedFile(dir: string, owner: string): number {
  let fsInfo: fs.StatsFs;
  try {
    fsInfo = fs.statfsSync(dir);
  } catch (e) {
    throw new DmaError(`${owner}: hugetlbfs directory ${dir} is not usable (${(e as Error).message}): ${mountAdvice(dir)}`);
  }
  if (fsInfo.type !== HUGETLBFS_MAGIC) {
    throw new DmaError(
      `${owner}: ${dir} is not a hugetlbfs mount, so its files would not be hugepages: give the path of one, ` +
        `or make one as root: mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages`,
    );
  }
  if (fsInfo.bsize !== HUGEPAGE_SIZE) {
    throw new DmaError(
      `${owner}: the hugetlbfs mount ${dir} has ${fsInfo.bsize / 1024} KiB pages, 2 MiB are needed: ` +
        `mount one with 2 MiB pages as root: mkdir -p ${dir} && mount -t hugetlbfs -o pagesize=2M nodev ${dir}`,
    );
  }
  const file = path.join(dir, `ixy.ts-dma-${process.pid}-${++fileSerial}-${Math.random().toString(36).slice(2, 10)}`);
  const fd = openMode(file, O_RDWR | O_CREAT | O_EXCL, 0o600, `${owner}: creating a hugepage file`);
  try {
    fs.unlinkSync(file);
  } catch (e) {
    close(fd);
    throw e;
  }
  return fd;
}
