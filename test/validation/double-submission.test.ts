/**
 * Issue 12.2: in checked pools a buffer handed to txBatch is marked as the device's (bufHome 2)
 * in the validation pass, so the same buffer twice in one batch, a freed buffer, or one a queue
 * still holds is refused before any ring is touched, with the marks of the batch undone; the
 * queue keeps working and no buffer is lost. (Unchecked pools detect none of this: see
 * docs/packet-api.md.)
 */
import { describe, expect, it } from "vitest";
import { BufferOwnershipError } from "../../src/errors.ts";
import { bufHome } from "../../src/mem/buffer-table.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { writeFrame } from "../../src/mem/packet.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { account } from "../contract/accounting.ts";
import { stats, VARIANTS } from "../contract/rigs.ts";

function frame(seq: number): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f[12] = 0x08;
  f[14] = seq & 0xff;
  return f;
}

function batchOf(...bufs: number[]): Int32Array {
  return Int32Array.from(bufs);
}

for (const variant of VARIANTS) {
  describe(`double submission, checked pools: ${variant.name}`, () => {
    it("the same buffer twice in one txBatch is refused, nothing is sent, and the queue keeps working", () => {
      const rig = variant.open();
      const count = 3 * rig.txHolds + 16;
      const pool = new Mempool(rig.dma, { count, checked: true, name: "tx pool" });
      const a = pool.alloc();
      const b = pool.alloc();
      writeFrame(a, frame(1));
      writeFrame(b, frame(2));
      const twice = batchOf(a, b, a);
      expect(() => rig.dev.txBatch(0, twice, 3)).toThrow(BufferOwnershipError);
      expect(() => rig.dev.txBatch(0, twice, 3)).toThrow(/bufs\[2\] = \d+ is also bufs\[0\]/);
      rig.step();
      expect(rig.transmitted()).toHaveLength(0);
      expect(bufHome[a]).toBe(0);
      expect(bufHome[b]).toBe(0);
      // Later batches work, and close() gives everything back.
      expect(rig.dev.txBatch(0, twice, 2)).toBe(2);
      rig.step();
      expect(rig.transmitted().map((f) => f[14])).toEqual([1, 2]);
      for (let i = 0; i < 3 * rig.txHolds; i++) {
        const c = pool.alloc();
        writeFrame(c, frame(3 + i));
        expect(rig.dev.txBatch(0, batchOf(c), 1)).toBe(1);
        rig.step();
      }
      expect(stats(rig.dev).txErrors).toBe(0);
      rig.dev.close();
      account(rig.dma, []);
      expect(pool.available).toBe(count);
      pool.close();
    });

    it("a freed buffer is refused; the buffers before it in the batch stay the caller's", () => {
      const rig = variant.open();
      const pool = new Mempool(rig.dma, { count: 8, checked: true, name: "tx pool" });
      const a = pool.alloc();
      const b = pool.alloc();
      writeFrame(a, frame(1));
      writeFrame(b, frame(2));
      pool.free(b);
      expect(() => rig.dev.txBatch(0, batchOf(a, b), 2)).toThrow(/bufs\[1\] = \d+ is free in tx pool/);
      rig.step();
      expect(rig.transmitted()).toHaveLength(0);
      expect(bufHome[a]).toBe(0);
      expect(rig.dev.txBatch(0, batchOf(a), 1)).toBe(1);
      rig.step();
      expect(rig.transmitted()).toHaveLength(1);
      rig.dev.close();
      account(rig.dma, []);
      expect(pool.available).toBe(8);
    });

    it("a buffer the queue still holds is refused when sent again; the queue works on", () => {
      const rig = variant.open();
      const pool = new Mempool(rig.dma, { count: 8, checked: true, name: "tx pool" });
      const a = pool.alloc();
      writeFrame(a, frame(1));
      rig.holdTx(true);
      expect(rig.dev.txBatch(0, batchOf(a), 1)).toBe(1);
      expect(bufHome[a]).toBe(2);
      expect(() => rig.dev.txBatch(0, batchOf(a), 1)).toThrow(/held by a device queue/);
      rig.holdTx(false);
      rig.step();
      expect(rig.transmitted()).toHaveLength(1);
      rig.dev.close();
      account(rig.dma, []);
      expect(pool.available).toBe(8);
    });

    it("buffers a full ring did not take are not left marked: they can be freed or sent later", () => {
      const rig = variant.open();
      const n = rig.txHolds + 8;
      const pool = new Mempool(rig.dma, { count: n + 8, checked: true, name: "tx pool" });
      const bufs = new Int32Array(n);
      expect(pool.allocBatch(bufs, n)).toBe(n);
      for (let i = 0; i < n; i++) writeFrame(bufs[i]!, frame(i));
      rig.holdTx(true);
      const taken = rig.dev.txBatch(0, bufs, n);
      expect(taken).toBe(rig.txHolds);
      for (let i = taken; i < n; i++) expect(bufHome[bufs[i]!], `bufs[${i}]`).toBe(0);
      // Nothing taken at all when the ring is full: none stays marked either.
      const rest = bufs.slice(taken);
      expect(rig.dev.txBatch(0, rest, rest.length)).toBe(0);
      for (const b of rest) expect(bufHome[b]).toBe(0);
      pool.free(rest[0]!);
      rig.holdTx(false);
      rig.step();
      expect(rig.dev.txBatch(0, rest.subarray(1), rest.length - 1)).toBe(rest.length - 1);
      rig.step();
      expect(rig.transmitted()).toHaveLength(n - 1);
      rig.dev.close();
      account(rig.dma, []);
      expect(pool.available).toBe(n + 8);
    });
  });
}

describe("double free in an unchecked pool", () => {
  it("is not detected when it happens, but alloc() then refuses to hand out a buffer it cannot trust", () => {
    const pool = new Mempool(new SimDma("unchecked"), { count: 4, name: "unchecked pool" });
    const a = pool.alloc();
    pool.free(a);
    pool.free(a); // no error: unchecked pools do not track where a buffer is
    expect(() => pool.alloc()).toThrow(BufferOwnershipError);
    expect(() => pool.alloc()).toThrow(/unchecked pool: alloc\(\): 5 buffers were freed into a pool of 4.*checked: true/);
    expect(() => pool.allocBatch(new Int32Array(4), 4)).toThrow(/allocBatch\(\): 5 buffers/);
  });
});
