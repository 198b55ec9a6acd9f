/**
 * DmaAllocator.mark()/releaseSince() on real hugepages (HugepageArena, through the physical
 * allocator: root only): what a failed device init took goes back to the system at once, not
 * when the allocator closes.
 */
import { describe, expect, it } from "vitest";
import { AllocatorClosedError } from "../../src/errors.ts";
import { hugepageCounts, HUGEPAGE_SIZE } from "../../src/mem/hugepages.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { PhysicalDmaAllocator } from "../../src/mem/physical-dma.ts";
import { geteuid } from "../../src/sys/libc.ts";

const counts = hugepageCounts();
const reason = geteuid() !== 0 ? "needs root (/proc/self/pagemap)" : counts.free < 8 ? `needs 8 free hugepages (${counts.free} free)` : null;
if (reason !== null) console.log(`skipping the releaseSince tests on hugepages: ${reason}`);

describe.skipIf(reason !== null)("releaseSince on hugepages", () => {
  it("gives back the hugepages allocated since the mark, keeps what came before, and hands the space out again", () => {
    const dma = new PhysicalDmaAllocator("release test");
    const free0 = hugepageCounts().free;
    const ring = dma.allocate(4096);
    const kept = new Mempool(dma, { count: 16, name: "kept" });
    const mark = dma.mark();
    const afterMark = hugepageCounts().free;
    const pool = new Mempool(dma, { count: 2048, name: "doomed" }); // 4 MiB: two more hugepages
    dma.allocate(8192); // the doomed pool filled its mapping: a third hugepage
    expect(hugepageCounts().free).toBe(afterMark - 3);
    pool.close();
    dma.releaseSince(mark);
    expect(hugepageCounts().free).toBe(afterMark);
    // What came before the mark is untouched; the space after it is used again.
    ring.bytes[0] = 7;
    expect(ring.bytes[0]).toBe(7);
    expect(kept.available).toBe(16);
    const again = dma.allocate(4096);
    expect(again.iova).toBeGreaterThan(ring.iova);
    expect(() => dma.releaseSince(mark + 5)).toThrow(RangeError);
    kept.close();
    dma.close();
    expect(hugepageCounts().free).toBe(free0);
    expect(() => dma.mark()).toThrow(AllocatorClosedError);
    expect(HUGEPAGE_SIZE).toBe(2 * 1024 * 1024);
  });
});
