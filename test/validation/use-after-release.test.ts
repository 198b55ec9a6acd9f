/**
 * Issue 12.4: after close(), every call on a device, a mempool or a DMA allocator throws a typed
 * error that says what was closed (DeviceClosedError, PoolClosedError, AllocatorClosedError),
 * and a buffer of a pool that is gone can no longer reach a device or an accessor. What stays
 * the caller's duty (views of packet memory kept across close) is in docs/packet-api.md.
 */
import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { AllocatorClosedError, DeviceClosedError, PoolClosedError } from "../../src/errors.ts";
import { isBufferNumber } from "../../src/mem/buffer-table.ts";
import { freeBuffer, Mempool } from "../../src/mem/mempool.ts";
import { copyFrame, dataOf, frameLength, frameOf, setFrameLength, writeFrame } from "../../src/mem/packet.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VARIANTS } from "../contract/rigs.ts";

const accessors = [
  ["frameOf", (b: number) => frameOf(b)],
  ["dataOf", (b: number) => dataOf(b)],
  ["copyFrame", (b: number) => copyFrame(b)],
  ["frameLength", (b: number) => frameLength(b)],
  ["writeFrame", (b: number) => writeFrame(b, new Uint8Array(60))],
  ["setFrameLength", (b: number) => setFrameLength(b, 60)],
] as const;

describe("use after release", () => {
  it("a closed mempool: alloc, allocBatch, free and freeBatch throw PoolClosedError; its buffers are no buffers", () => {
    const dma = new SimDma("uar");
    const pool = new Mempool(dma, { count: 8, name: "closed pool" });
    const b = pool.alloc();
    pool.free(b);
    pool.close();
    expect(() => pool.alloc()).toThrow(PoolClosedError);
    expect(() => pool.alloc()).toThrow(/closed pool: alloc\(\) on a closed mempool \(it was closed\)/);
    expect(() => pool.allocBatch(new Int32Array(4), 4)).toThrow(PoolClosedError);
    expect(() => pool.free(b)).toThrow(PoolClosedError);
    expect(() => pool.freeBatch(Int32Array.of(b), 1)).toThrow(PoolClosedError);
    expect(() => freeBuffer(b)).toThrow(RangeError);
    expect(isBufferNumber(b)).toBe(false);
    for (const [name, fn] of accessors) expect(() => fn(b), name).toThrow(new RegExp(`${name}: ${b} is not a packet buffer`));
    expect(pool.available).toBe(0);
  });

  it("a closed allocator: allocate, mark, releaseSince, onClose throw AllocatorClosedError; its pools are closed with it", () => {
    const dma = new SimDma("closed DMA");
    const pool = new Mempool(dma, { count: 8, name: "pool of a closed allocator" });
    const b = pool.alloc();
    dma.close();
    expect(() => dma.allocate(64)).toThrow(AllocatorClosedError);
    expect(() => dma.allocate(64)).toThrow(/closed DMA: allocate\(\) on a closed allocator/);
    expect(() => dma.mark()).toThrow(AllocatorClosedError);
    expect(() => dma.releaseSince(0)).toThrow(AllocatorClosedError);
    expect(() => dma.onClose(() => {})).toThrow(AllocatorClosedError);
    expect(() => new Mempool(dma, { count: 8 })).toThrow(PoolClosedError);
    expect(() => new Mempool(dma, { count: 8 })).toThrow(/its DMA allocator \(closed DMA\) is closed/);
    expect(pool.dead).toBe(true);
    expect(() => pool.alloc()).toThrow(/pool of a closed allocator: alloc\(\) on a closed mempool \(it was closed\)|its DMA allocator \(closed DMA\) was closed/);
    for (const [name, fn] of accessors) expect(() => fn(b), name).toThrow(RangeError);
    dma.close(); // idempotent
  });

  for (const variant of VARIANTS) {
    it(`${variant.name}: every call on a closed device throws DeviceClosedError but readStats, and buffers of gone pools are refused`, () => {
      const rig = variant.open();
      const dev = rig.dev;
      const pool = new Mempool(rig.dma, { count: 8, name: "app pool" });
      const b = pool.alloc();
      writeFrame(b, new Uint8Array(60));
      pool.free(b);
      pool.close();
      // A buffer of a closed pool can never reach the device.
      expect(() => dev.txBatch(0, Int32Array.of(b), 1)).toThrow(/is not a packet buffer of any open mempool .*nothing was sent/);
      dev.close();
      const batch = new Int32Array(4);
      expect(() => dev.rxBatch(0, batch, 4)).toThrow(DeviceClosedError);
      expect(() => dev.txBatch(0, batch, 0)).toThrow(DeviceClosedError);
      expect(() => dev.setPromisc(true)).toThrow(DeviceClosedError);
      expect(() => dev.linkSpeed()).toThrow(DeviceClosedError);
      expect(() => dev.macAddress()).toThrow(DeviceClosedError);
      const stats = newStats();
      dev.readStats(stats); // the totals stay readable after close (documented)
      expect(stats.rxPackets).toBe(0);
      dev.close(); // idempotent
      rig.dma.close();
      expect(() => rig.dma.allocate(64)).toThrow(AllocatorClosedError);
    });
  }
});
