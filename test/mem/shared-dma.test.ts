/**
 * SharedMemoryDmaAllocator on real hugepages: memfds (and hugetlbfs files) mapped MAP_SHARED,
 * whose fds another process could map — here the test maps them a second time, also after
 * passing them through a socket, as a vhost-user backend would. Skipped, with the reason printed,
 * where hugepages cannot be had; .ci/run reserves them.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { DmaError } from "../../src/errors.ts";
import { DmaAddressing } from "../../src/mem/dma.ts";
import { hugepageCounts, HUGEPAGE_SIZE } from "../../src/mem/hugepages.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { writeFrame } from "../../src/mem/packet.ts";
import { SharedMemoryDmaAllocator, type SharedRegion } from "../../src/mem/shared-dma.ts";
import {
  addressOf,
  close,
  F_GET_SEALS,
  F_GETFD,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  fcntl,
  fstatSize,
  ftruncate,
  geteuid,
  mmapShared,
  munmap,
  view,
} from "../../src/sys/libc.ts";
import { receiveWithFds, sendWithFds, unixSocketPair } from "../../src/sys/unix-socket.ts";
import { iovaOf } from "../helpers/buffers.ts";

const NEEDED = 16;
const free = hugepageCounts().free;
const reason =
  geteuid() !== 0
    ? "not root (hugepages are locked with mlock, limited by RLIMIT_MEMLOCK otherwise)"
    : free < NEEDED
      ? `only ${free} free hugepages (need ${NEEDED}): echo 128 > /proc/sys/vm/nr_hugepages`
      : null;
if (reason) console.warn(`skipping shared DMA memory tests: ${reason}`);

const MiB = 1024 * 1024;
const openFds = () => fs.readdirSync("/proc/self/fd").length;

/** Maps `region.fd` a second time, as a backend does, and runs `fn` on that view. */
function withSecondMapping(fd: number, size: number, fn: (bytes: Uint8Array) => void): void {
  const ptr = mmapShared(fd, size);
  try {
    fn(new Uint8Array(view(ptr, size)));
  } finally {
    munmap(ptr, size);
  }
}

describe.skipIf(reason !== null)("shared DMA memory (memfd hugepages)", () => {
  it("hands out regions whose device addresses are contiguous, within and across memory regions", () => {
    const dma = new SharedMemoryDmaAllocator({ name: "test" });
    try {
      expect(dma.addressing).toBe(DmaAddressing.shared);
      const ring1 = dma.allocate(4096, { align: 4096 });
      const ring2 = dma.allocate(100, { align: 64 });
      expect(dma.regions()).toHaveLength(1);
      const [first] = dma.regions() as [SharedRegion];
      expect(first).toMatchObject({ guestAddress: 0x1_0000_0000, size: HUGEPAGE_SIZE, mmapOffset: 0 });
      expect(ring1.iova).toBe(first.guestAddress);
      expect(ring2.iova).toBe(first.guestAddress + 4096);
      expect(ring1.contiguous && ring2.contiguous).toBe(true);

      // 3 MiB does not fit in what is left: a 4 MiB region of its own, right after the first.
      const big = dma.allocate(3 * MiB);
      const regions = dma.regions();
      expect(regions).toHaveLength(2);
      expect(regions[1]!.guestAddress).toBe(first.guestAddress + first.size);
      expect(regions[1]!.size).toBe(4 * MiB);
      expect(big.iova).toBe(regions[1]!.guestAddress);
      expect(big.contiguous).toBe(true);
      expect(big.iovaOf(3 * MiB - 1)).toBe(big.iova + 3 * MiB - 1);
      expect(() => big.iovaOf(3 * MiB)).toThrow(RangeError);
      expect(big.bytes.every((b) => b === 0)).toBe(true);

      // userAddress is this process's address of the same bytes.
      expect(dma.userAddressOf(ring2.iova)).toBe(Number(addressOf(ring2.bytes)));
      expect(dma.userAddressOf(big.iovaOf(12345))).toBe(regions[1]!.userAddress + 12345);
      expect(() => dma.userAddressOf(0x1000)).toThrow(RangeError);
      for (const r of regions) expect(fstatSize(r.fd)).toBe(r.size);
    } finally {
      dma.close();
    }
  });

  it("regionSize makes one region hold several allocations", () => {
    const dma = new SharedMemoryDmaAllocator({ regionSize: 10 * MiB });
    try {
      dma.allocate(4096);
      dma.allocate(4 * MiB);
      dma.allocate(4 * MiB);
      expect(dma.regions().map((r) => r.size)).toEqual([10 * MiB]);
    } finally {
      dma.close();
    }
  });

  it("the fds of regions() map the same memory, also after travelling through a socket", () => {
    const dma = new SharedMemoryDmaAllocator();
    const [a, b] = unixSocketPair();
    try {
      const mem = dma.allocate(8192);
      const [region] = dma.regions() as [SharedRegion];
      const offset = mem.iova - region.guestAddress;
      mem.bytes[10] = 0xab;
      withSecondMapping(region.fd, region.size, (other) => {
        expect(other[offset + 10]).toBe(0xab);
        other[offset + 11] = 0xcd;
        expect(mem.bytes[11]).toBe(0xcd);
      });

      sendWithFds(a, new Uint8Array([1]), [region.fd]);
      const got = receiveWithFds(b, new Uint8Array(1));
      expect(got.fds).toHaveLength(1);
      try {
        withSecondMapping(got.fds[0]!, region.size, (other) => {
          expect(other[offset + 10]).toBe(0xab);
          other[offset + 12] = 0xef;
          expect(mem.bytes[12]).toBe(0xef);
        });
      } finally {
        close(got.fds[0]!);
      }
    } finally {
      close(a);
      close(b);
      dma.close();
    }
  });

  it("a memfd's size is sealed, so a backend cannot shrink it under our mappings", () => {
    const dma = new SharedMemoryDmaAllocator();
    try {
      dma.allocate(64);
      const { fd } = dma.regions()[0]!;
      expect(fcntl(fd, F_GET_SEALS)).toBe(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
      expect(() => ftruncate(fd, 0)).toThrow(expect.objectContaining({ code: "EPERM" }));
    } finally {
      dma.close();
    }
  });

  it("a Mempool works on it, and a backend finds each buffer at its device address in the region's fd", () => {
    const dma = new SharedMemoryDmaAllocator();
    try {
      const pool = new Mempool(dma, { count: 2048 }); // 4 MiB
      const region = dma.regions().at(-1)!;
      expect(iovaOf(pool.first + 1) - iovaOf(pool.first)).toBe(2048);
      const b = pool.alloc();
      writeFrame(b, new Uint8Array([1, 2, 3, 4]));
      withSecondMapping(region.fd, region.size, (backend) => {
        const at = iovaOf(b) - region.guestAddress;
        expect(Array.from(backend.subarray(at, at + 4))).toEqual([1, 2, 3, 4]);
      });
      pool.close();
    } finally {
      dma.close();
    }
  });

  it("announces each new region through onRegionAdded before the allocation returns", () => {
    const dma = new SharedMemoryDmaAllocator();
    try {
      const seen: { region: SharedRegion; listed: number }[] = [];
      dma.onRegionAdded((region) => seen.push({ region, listed: dma.regions().length }));
      dma.allocate(64);
      dma.allocate(64); // same region: no announcement
      dma.allocate(3 * MiB);
      expect(seen.map((s) => s.listed)).toEqual([1, 2]);
      expect(seen.map((s) => s.region)).toEqual(dma.regions());
    } finally {
      dma.close();
    }
  });

  it("a region its listener refuses is unmapped and closed, and the allocation fails with the listener's error", () => {
    const fds = openFds();
    const freeBefore = hugepageCounts().free;
    const dma = new SharedMemoryDmaAllocator();
    try {
      let refuse = true;
      dma.onRegionAdded(() => {
        if (refuse) throw new Error("backend refused the region");
      });
      expect(() => dma.allocate(64)).toThrow("backend refused the region");
      expect(dma.regions()).toHaveLength(0);
      expect(openFds()).toBe(fds);
      expect(hugepageCounts().free).toBe(freeBefore);
      refuse = false;
      expect(dma.allocate(64).iova).toBe(0x1_0000_0000); // the address was not used up
    } finally {
      dma.close();
    }
  });

  it("close() calls onClose first, then unmaps, closes every fd and gives the hugepages back", () => {
    const fds = openFds();
    const freeBefore = hugepageCounts().free;
    const dma = new SharedMemoryDmaAllocator();
    dma.allocate(64);
    dma.allocate(3 * MiB);
    const regionFds = dma.regions().map((r) => r.fd);
    expect(hugepageCounts().free).toBe(freeBefore - 3);
    let fdOpenAtOnClose = false;
    dma.onClose(() => {
      fdOpenAtOnClose = fcntl(regionFds[0]!, F_GETFD) >= 0;
    });
    dma.close();
    expect(fdOpenAtOnClose).toBe(true);
    expect(dma.closed).toBe(true);
    expect(dma.regions()).toHaveLength(0);
    for (const fd of regionFds) expect(() => fcntl(fd, F_GETFD)).toThrow(expect.objectContaining({ code: "EBADF" }));
    expect(openFds()).toBe(fds);
    expect(hugepageCounts().free).toBe(freeBefore);
    expect(() => dma.allocate(64)).toThrow(DmaError);
    dma.close(); // idempotent
  });

  it("asking for more hugepages than are free is a DmaError that says how to reserve them, and leaks nothing", () => {
    const fds = openFds();
    const freeNow = hugepageCounts().free;
    const dma = new SharedMemoryDmaAllocator({ name: "test" });
    try {
      let error: unknown;
      try {
        dma.allocate((freeNow + 1) * HUGEPAGE_SIZE);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DmaError);
      expect((error as Error).message).toMatch(/^test: no free hugepages for \d+ x 2 MiB .*echo \d+ > \/proc\/sys\/vm\/nr_hugepages/);
      expect(dma.regions()).toHaveLength(0);
      expect(openFds()).toBe(fds);
      expect(hugepageCounts().free).toBe(freeNow);
    } finally {
      dma.close();
    }
  });
});

describe("hugetlbfs directories", () => {
  it("a directory that is no hugetlbfs mount is a DmaError that says how to mount one", () => {
    const fds = openFds();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-not-hugetlbfs-"));
    try {
      const dma = new SharedMemoryDmaAllocator({ hugetlbfsDir: dir });
      expect(() => dma.allocate(64)).toThrow(DmaError);
      expect(() => dma.allocate(64)).toThrow(/is not a hugetlbfs mount.*mount -t hugetlbfs nodev/);
      dma.close();
      expect(fs.readdirSync(dir)).toEqual([]);
      expect(openFds()).toBe(fds);
    } finally {
      fs.rmdirSync(dir);
    }
  });

  it("a missing directory is a DmaError that says to create and mount it", () => {
    const dma = new SharedMemoryDmaAllocator({ hugetlbfsDir: "/nonexistent/hugepages" });
    expect(() => dma.allocate(64)).toThrow(/mkdir -p \/nonexistent\/hugepages && mount -t hugetlbfs nodev \/nonexistent\/hugepages/);
    dma.close();
  });
});

// The real hugetlbfs variant runs in a child process with a mount namespace of its own, so that
// the test mounts hugetlbfs without touching the host's mounts.
const CHILD = String.raw`
import * as fs from "node:fs";
import { SharedMemoryDmaAllocator } from "./src/mem/shared-dma.ts";
import { fcntl, F_GETFD, mmapShared, munmap, view } from "./src/sys/libc.ts";
const [dir, limited] = process.argv.slice(-2);
const out = {};
const dma = new SharedMemoryDmaAllocator({ hugetlbfsDir: dir });
const mem = dma.allocate(4096);
const region = dma.regions()[0];
out.filesLeft = fs.readdirSync(dir).length;
mem.bytes[5] = 77;
const ptr = mmapShared(region.fd, region.size);
out.seenThroughFd = new Uint8Array(view(ptr, region.size))[mem.iova - region.guestAddress + 5];
munmap(ptr, region.size);
out.guestAddress = region.guestAddress;
const fd = region.fd;
dma.close();
try { fcntl(fd, F_GETFD); out.closed = false; } catch (e) { out.closed = e.code === "EBADF"; }
const small = new SharedMemoryDmaAllocator({ hugetlbfsDir: limited, name: "limited" });
small.allocate(2 * 1024 * 1024);
try { small.allocate(4 * 1024 * 1024); out.limitError = "none"; } catch (e) { out.limitError = e.name + ": " + e.message; }
small.close();
console.log(JSON.stringify(out));
`;

function runInMountNamespace(): { skip: string } | { out: Record<string, unknown> } {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-hugetlbfs-"));
  const [dir, limited] = [path.join(base, "a"), path.join(base, "b")];
  fs.mkdirSync(dir);
  fs.mkdirSync(limited);
  try {
    const shell =
      'mount -t hugetlbfs -o pagesize=2M nodev "$1" && mount -t hugetlbfs -o pagesize=2M,size=4M nodev "$2" || exit 97; ' +
      'exec "$3" --import tsx --input-type=module -e "$4" -- "$1" "$2"';
    const r = spawnSync("unshare", ["--mount", "--propagation", "private", "sh", "-c", shell, "sh", dir, limited, process.execPath, CHILD], {
      encoding: "utf8",
      cwd: new URL("../..", import.meta.url).pathname,
      env: { ...process.env, TSX_TSCONFIG_PATH: undefined },
    });
    if (r.error || r.status === 97) return { skip: `cannot mount hugetlbfs in a private mount namespace: ${r.error?.message ?? r.stderr.trim()}` };
    if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
    return { out: JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, unknown> };
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

describe.skipIf(reason !== null)("shared DMA memory (hugetlbfs files)", () => {
  it("maps unlinked files of a hugetlbfs mount, closes them, and explains a full mount", (ctx) => {
    const result = runInMountNamespace();
    if ("skip" in result) {
      console.warn(`skipping hugetlbfs file test: ${result.skip}`);
      ctx.skip();
      return;
    }
    expect(result.out).toMatchObject({ filesLeft: 0, seenThroughFd: 77, guestAddress: 0x1_0000_0000, closed: true });
    expect(result.out.limitError).toMatch(/^DmaError: limited: no free hugepages.*size= limit of the hugetlbfs mount/);
  });
});
