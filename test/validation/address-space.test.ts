/**
 * Issue 11 item 4: every pool records the address space of its allocator, and txBatch refuses a
 * buffer of another space (its device address means other memory, or none, to this device).
 * And each SimDma is its own simulated IOMMU domain with an IOVA window of its own, so that an
 * address of the wrong space faults in the models instead of resolving to other memory.
 */
import { describe, expect, it } from "vitest";
import { AddressSpaceError, DmaFaultError } from "../../src/errors.ts";
import { BUF_UNTRACKED, bufHome, poolSpace } from "../../src/mem/buffer-table.ts";
import { PHYSICAL_ADDRESS_SPACE } from "../../src/mem/dma.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { writeFrame } from "../../src/mem/packet.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { account } from "../contract/accounting.ts";
import { VARIANTS } from "../contract/rigs.ts";

function frame(seq: number): Uint8Array {
  const f = new Uint8Array(64);
  f.fill(0xff, 0, 6);
  f[12] = 0x08;
  f[14] = seq;
  return f;
}

describe("address spaces", () => {
  it("every SimDma is a space of its own, with an IOVA window disjoint from every other's", () => {
    const a = new SimDma("A");
    const b = new SimDma("B");
    expect(a.space).not.toBe(b.space);
    expect(a.space).not.toBe(PHYSICAL_ADDRESS_SPACE);
    const ra = a.allocate(4096);
    const rb = b.allocate(4096);
    expect(ra.iova).not.toBe(rb.iova);
    // A's address is nothing to B: the simulated IOMMU faults instead of reaching B's memory.
    expect(() => b.resolve(ra.iova, 64, "TX frame read")).toThrow(DmaFaultError);
    expect(() => a.resolve(rb.iova, 64, "TX frame read")).toThrow(DmaFaultError);
    expect(a.resolve(ra.iova, 64).buffer).toBe(ra.bytes.buffer);
    // Windows: [iovaBase, iovaBase + 4 GiB), below 2^44 (legacy virtio's 32-bit page numbers).
    expect(Math.abs(a.iovaBase - b.iovaBase)).toBeGreaterThanOrEqual(2 ** 32);
    expect(Math.max(a.iovaBase, b.iovaBase) + 2 ** 32).toBeLessThanOrEqual(2 ** 44);
  });

  it("a mempool records its allocator's space in the buffer table", () => {
    const dma = new SimDma("recorded");
    const pool = new Mempool(dma, { count: 4 });
    expect(poolSpace[pool.id]).toBe(dma.space);
    pool.close();
    expect(poolSpace[pool.id]).toBe(0);
  });

  for (const variant of VARIANTS) {
    describe(variant.name, () => {
      for (const checked of [true, false]) {
        it(`${checked ? "checked" : "unchecked"}: a buffer of another SimDma is refused with both spaces named, nothing sent, the queue keeps working`, () => {
          const rig = variant.open();
          const other = new SimDma("other device's DMA");
          const foreign = new Mempool(other, { count: 8, checked, name: "foreign pool" });
          const local = new Mempool(rig.dma, { count: 8, checked, name: "local pool" });
          const bufs = new Int32Array(2);
          bufs[0] = local.alloc();
          bufs[1] = foreign.alloc();
          writeFrame(bufs[0], frame(1));
          writeFrame(bufs[1], frame(2));
          expect(() => rig.dev.txBatch(0, bufs, 2)).toThrow(AddressSpaceError);
          expect(() => rig.dev.txBatch(0, bufs, 2)).toThrow(/bufs\[1\].*foreign pool.*other device's DMA.*contract .* DMA/);
          rig.step();
          expect(rig.transmitted()).toHaveLength(0);
          // Both buffers are still the caller's (the mark on bufs[0] was undone).
          expect(bufHome[bufs[0]!]).toBe(checked ? 0 : BUF_UNTRACKED);
          expect(foreign.available).toBe(7);
          // The queue works on: the local buffer goes out alone.
          expect(rig.dev.txBatch(0, bufs, 1)).toBe(1);
          rig.step();
          expect(rig.transmitted()).toHaveLength(1);
          expect(rig.transmitted()[0]![14]).toBe(1);
          foreign.free(bufs[1]!);
          rig.dev.close();
          account(rig.dma, []);
          expect(foreign.available).toBe(8);
        });
      }
    });
  }
});
