import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import { bufLength } from "../../src/mem/buffer-table.ts";
import { freeBuffer } from "../../src/mem/mempool.ts";
import { setFrameLength } from "../../src/mem/packet.ts";
import type { RegisterAccess } from "../../src/pci/tracing-mmio.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { batchWith, bufferWith, openSimPort, randomFrame, randomLength, regName, rng, tracedPci, txPool } from "./helpers.ts";

const STATS_REGISTERS = [T.IXGBE_GPRC, T.IXGBE_GPTC, T.IXGBE_GORCL, T.IXGBE_GORCH, T.IXGBE_GOTCL, T.IXGBE_GOTCH,
  T.IXGBE_CRCERRS, T.IXGBE_ILLERRC, T.IXGBE_ERRBC, T.IXGBE_RLEC, ...Array.from({ length: 8 }, (_, i) => T.IXGBE_MPC(i))];

describe("ixgbe statistics", () => {
  it("equal what the model counted", () => {
    const { model, dev } = openSimPort({ rxRingSize: 64 });
    const random = rng(20);
    const pool = txPool(dev, 128);
    const bufs = new Int32Array(32);
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 80; i++) model.inject(randomFrame(random, randomLength(random), i)); // 17 are missed
      model.inject(new Uint8Array(1600)); // too long: a length error
      model.inject(new Uint8Array(30)); // too short: a length error
      for (let n; (n = dev.rxBatch(0, bufs, 32)) > 0;) for (let i = 0; i < n; i++) freeBuffer(bufs[i]!);
      const out = batchWith(pool, Array.from({ length: 20 }, (_, i) => randomFrame(random, randomLength(random), i)));
      expect(dev.txBatch(0, out, 20)).toBe(20);
    }
    const c = model.counters;
    expect(c.rxMissed).toBe(20 * 17);
    expect(c.rxLengthErrors).toBe(40);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats).toEqual({
      rxPackets: c.rxPackets,
      // The model counts like the hardware, CRC included; DeviceStats leaves the FCS out.
      rxBytes: c.rxBytes - 4 * c.rxPackets,
      txPackets: c.txPackets,
      txBytes: c.txBytes - 4 * c.txPackets,
      rxMissed: c.rxMissed,
      rxErrors: c.rxLengthErrors,
      txErrors: 0,
    });
    expect(stats.txPackets).toBe(400);
  });

  it("count frame bytes without the FCS that the hardware counters include", () => {
    const { model, dev } = openSimPort();
    const pool = txPool(dev, 8);
    model.inject(new Uint8Array(100));
    dev.txBatch(0, Int32Array.of(bufferWith(pool, new Uint8Array(200))), 1);
    const stats = newStats();
    dev.readStats(stats);
    expect(model.counters).toMatchObject({ rxBytes: 104, txBytes: 204 }); // GORC/GOTC: CRC included
    expect(stats).toMatchObject({ rxPackets: 1, rxBytes: 100, txPackets: 1, txBytes: 200 });
  });

  it("read each clear-on-read register exactly once per call, with a 32-bit access", () => {
    const dma = new SimDma();
    const model = new Ixgbe82599Model({ dma });
    const trace: RegisterAccess[] = [];
    const dev = createIxgbeDevice(tracedPci(model.pci, (a) => trace.push(a)), dma, {});
    for (let call = 0; call < 3; call++) {
      trace.length = 0;
      dev.readStats(newStats());
      for (const reg of STATS_REGISTERS) {
        expect(trace.filter((a) => a.offset === reg).map((a) => `${a.op}${a.width * 8}`), regName(reg)).toEqual(["read32"]);
      }
      expect(trace.every((a) => a.op === "read" && a.width === 4)).toBe(true);
    }
  });

  it("accumulate across calls and stay put without traffic", () => {
    const { model, dev } = openSimPort();
    const a = newStats();
    const b = newStats();
    for (let i = 0; i < 5; i++) model.inject(new Uint8Array(60));
    dev.readStats(a);
    dev.readStats(b);
    expect(b).toEqual(a);
    model.inject(new Uint8Array(60));
    dev.readStats(b);
    expect(b.rxPackets).toBe(6);
    expect(b.rxBytes).toBe(6 * 60);
  });

  it("fill the caller's object instead of making one", () => {
    const { dev } = openSimPort();
    const mine = { ...newStats(), rxPackets: 99 };
    expect(dev.readStats(mine)).toBeUndefined();
    expect(mine.rxPackets).toBe(0);
  });

  it("include the frames the driver dropped itself", () => {
    const { model, dev, dma } = openSimPort({ rxRingSize: 64 });
    // A device that writes back a length larger than the buffer: rxBatch must not hand it out.
    model.inject(new Uint8Array(100).fill(7));
    const ring = dma.resolve(model.regs.peek32(T.IXGBE_RDBAL(0)) + model.regs.peek32(T.IXGBE_RDBAH(0)) * 2 ** 32, 64 * 16);
    const words = new Uint32Array(ring.buffer, ring.byteOffset, 64 * 4);
    expect(words[2]! & T.IXGBE_RXDADV_STAT_DD).toBe(T.IXGBE_RXDADV_STAT_DD);
    words[3] = 4000;
    model.inject(new Uint8Array(0x50).fill(8)); // a good frame behind it
    const bufs = new Int32Array(32);
    expect(dev.rxBatch(0, bufs, 32)).toBe(1);
    expect(bufLength[bufs[0]!]).toBe(0x50);
    // Frames of length 0, or longer than their buffer (a corrupted length), handed to txBatch
    // are taken, not sent, counted, and their buffers go back to the pool.
    const pool = txPool(dev, 4);
    const empty = pool.alloc();
    setFrameLength(empty, 0);
    const tooLong = pool.alloc();
    bufLength[tooLong] = pool.dataCapacity + 1;
    const sent: Uint8Array[] = [];
    model.onTransmit = (frame) => sent.push(frame);
    expect(dev.txBatch(0, Int32Array.of(empty, tooLong), 2)).toBe(2);
    expect(pool.available).toBe(4);
    expect(sent).toEqual([]);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats).toMatchObject({ rxPackets: 2, rxErrors: 1, txPackets: 0, txErrors: 2 });
    dev.close();
    dev.readStats(stats); // still readable after close, and nothing lost
    expect(stats).toMatchObject({ rxPackets: 2, rxErrors: 1, txErrors: 2 });
  });
});
