/**
 * Real hugepages and real physical addresses on the host (root, /proc/self/pagemap). Skipped,
 * with the reason printed, where hugepages cannot be had; .ci/run reserves them.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { DmaError } from "../../src/errors.ts";
import { hugepageCounts, HugepageMapping, HUGEPAGE_SIZE } from "../../src/mem/hugepages.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { virtToPhys } from "../../src/mem/pagemap.ts";
import { PhysicalDmaAllocator } from "../../src/mem/physical-dma.ts";
import { geteuid, view } from "../../src/sys/libc.ts";
import { iovaOf } from "../helpers/buffers.ts";

const counts = hugepageCounts();
const isRoot = geteuid() === 0;
const reason = !isRoot
  ? "not root (pagemap hides physical addresses)"
  : counts.free < 8
    ? `only ${counts.free} free hugepages (need 8): echo 64 > /proc/sys/vm/nr_hugepages`
    : null;
if (reason) console.warn(`skipping hugepage tests: ${reason}`);

const openFds = () => fs.readdirSync("/proc/self/fd").length;

describe.skipIf(reason !== null)("hugepages on the host", () => {
  it("a 2 MiB hugepage is physically contiguous", () => {
    const m = HugepageMapping.map(HUGEPAGE_SIZE, "test");
    try {
      const base = virtToPhys(m.ptr, "test");
      expect(base % HUGEPAGE_SIZE).toBe(0);
      for (let off = 0; off < HUGEPAGE_SIZE; off += 4096) {
        expect(virtToPhys(m.addressOf(off), "test")).toBe(base + off);
      }
    } finally {
      m.unmap();
    }
  });

  it("two views of one mapping alias the same memory, which starts zeroed", () => {
    const m = HugepageMapping.map(HUGEPAGE_SIZE, "test");
    try {
      const a = new Uint32Array(m.buffer);
      const b = new Uint32Array(view(m.ptr, HUGEPAGE_SIZE));
      expect(a.every((x) => x === 0)).toBe(true);
      a[1000] = 0xcafe_f00d;
      expect(b[1000]).toBe(0xcafe_f00d);
    } finally {
      m.unmap();
    }
  });

  it("the physical allocator gives rings contiguous memory and mempools per-buffer addresses", () => {
    const freeBefore = hugepageCounts().free;
    const dma = new PhysicalDmaAllocator("test");
    const ring = dma.allocate(512 * 16, { align: 4096 });
    expect(ring.contiguous).toBe(true);
    expect(ring.iova % 4096).toBe(0);
    const pool = new Mempool(dma, { count: 2048 }); // 4 MiB: spans two hugepages
    // 1024 buffers per hugepage: within one page the addresses step by 2048; the next page
    // starts at a hugepage boundary wherever the kernel put it.
    expect(iovaOf(pool.first + 1023) - iovaOf(pool.first)).toBe(1023 * 2048);
    expect((iovaOf(pool.first + 1024) - 64) % HUGEPAGE_SIZE).toBe(0);
    expect(hugepageCounts().free).toBeLessThan(freeBefore);
    dma.close();
    expect(hugepageCounts().free).toBe(freeBefore);
  });

  it("asking for more hugepages than are free is a DmaError that says how to reserve them, and leaks nothing", () => {
    const fds = openFds();
    const free = hugepageCounts().free;
    const dma = new PhysicalDmaAllocator("test");
    expect(() => dma.allocate((free + 1) * HUGEPAGE_SIZE)).toThrow(DmaError);
    expect(() => dma.allocate((free + 1) * HUGEPAGE_SIZE)).toThrow(/no free hugepages.*echo \d+ > \/proc\/sys\/vm\/nr_hugepages/);
    dma.close();
    expect(hugepageCounts().free).toBe(free);
    expect(openFds()).toBe(fds);
  });
});

/**
 * Why a child running as uid 65534 could not load this checkout (its files, or tsx's, lie
 * under a directory other users cannot enter, e.g. a clone in a mode-700 `mktemp -d`), or null
 * when it can. Asked of such a child itself, as root's view of permissions proves nothing.
 */
function unreadableForNobody(files: readonly string[]): string | null {
  const probe = spawnSync(
    process.execPath,
    ["-e", "const fs = require('node:fs'); for (const f of process.argv.slice(1)) { try { fs.accessSync(f, fs.constants.R_OK); } catch (e) { console.log(f + ': ' + e.code); process.exit(1); } }", ...files],
    { uid: 65534, gid: 65534, encoding: "utf8", cwd: "/" },
  );
  if (probe.error) return `cannot start a child as uid 65534: ${probe.error.message}`;
  return probe.status === 0 ? null : `uid 65534 cannot read ${probe.stdout.trim()} (is the checkout under a directory only its owner can enter?)`;
}

describe.skipIf(!isRoot)("physical addresses without root", () => {
  it("are refused with a PermissionError that says to run as root", (ctx) => {
    const source = new URL("../../src/mem/physical-dma.ts", import.meta.url).pathname;
    const tsx = fileURLToPath(import.meta.resolve("tsx"));
    const koffi = fileURLToPath(import.meta.resolve("koffi"));
    const why = unreadableForNobody([source, tsx, koffi]);
    if (why !== null) {
      console.warn(`skipping "physical addresses without root": ${why}`);
      ctx.skip();
    }
    const script = `
      import { PhysicalDmaAllocator } from ${JSON.stringify(new URL("../../src/mem/physical-dma.ts", import.meta.url).pathname)};
      try { new PhysicalDmaAllocator("test"); console.log("no error"); }
      catch (e) { console.log(e.name + ": " + e.message); }`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      uid: 65534,
      gid: 65534,
      encoding: "utf8",
      cwd: new URL("../..", import.meta.url).pathname,
      env: { ...process.env, HOME: "/tmp", TSX_TSCONFIG_PATH: undefined },
    });
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/PermissionError: .*need root.*run as root/);
  });
});
