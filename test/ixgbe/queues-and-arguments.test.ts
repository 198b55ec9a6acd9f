import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { IXGBE_DEVICE_IDS, findIxgbeDeviceId } from "../../src/drivers/ixgbe/index.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import { BufferOwnershipError, DeviceClosedError } from "../../src/errors.ts";
import { BUFFER_TABLE_ROWS } from "../../src/mem/buffer-table.ts";
import { freeBuffer, Mempool } from "../../src/mem/mempool.ts";
import { copyFrame } from "../../src/mem/packet.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { poolOf } from "../helpers/buffers.ts";
import { batchWith, bufferWith, expectSameFrames, openSimPort, randomFrame, rng, txPool } from "./helpers.ts";

function drain(dev: ReturnType<typeof openSimPort>["dev"], queue: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const bufs = new Int32Array(32);
  for (let n; (n = dev.rxBatch(queue, bufs, 32)) > 0;) {
    for (let i = 0; i < n; i++) {
      out.push(copyFrame(bufs[i]!));
      freeBuffer(bufs[i]!);
    }
  }
  return out;
}

describe("ixgbe queues", () => {
  it("are independent: each receive queue gets only its frames, each transmit queue sends its own", () => {
    const { model, dev } = openSimPort({ rxQueues: 4, txQueues: 4, rxRingSize: 64, txRingSize: 64 });
    const random = rng(30);
    const perQueue = [0, 1, 2, 3].map((q) => Array.from({ length: 50 + q * 5 }, (_, i) => randomFrame(random, 60 + q, i)));
    // Queue 1 is not polled while the others are: it fills up and misses, the others do not.
    for (let round = 0; round < 2; round++) {
      for (let q = 0; q < 4; q++) for (const f of perQueue[q]!) model.inject(f, q);
    }
    expectSameFrames(drain(dev, 0), [...perQueue[0]!, ...perQueue[0]!].slice(0, 63));
    expect(drain(dev, 1).length).toBe(63);
    expect(drain(dev, 2).length).toBe(63);
    expect(drain(dev, 3).length).toBe(63);
    expect(drain(dev, 2)).toEqual([]);

    const sent: [number, number][] = [];
    model.onTransmit = (frame, queue) => sent.push([queue, frame[0]!]);
    const pool = txPool(dev, 64);
    for (const q of [3, 0, 2, 1]) expect(dev.txBatch(q, Int32Array.of(bufferWith(pool, new Uint8Array(60).fill(q + 10))), 1)).toBe(1);
    expect(sent).toEqual([[3, 13], [0, 10], [2, 12], [1, 11]]);
  });

  it("can be opened up to 64 of each, and the last one works", () => {
    const { model, dev } = openSimPort({ rxQueues: 64, txQueues: 64, rxRingSize: 64, txRingSize: 64, mempoolSize: 80 });
    expect(model.regs.peek32(T.IXGBE_RXDCTL(63)) & T.IXGBE_RXDCTL_ENABLE).toBe(T.IXGBE_RXDCTL_ENABLE);
    const frame = randomFrame(rng(31), 99, 7);
    expect(model.inject(frame, 63)).toBe(true);
    expectSameFrames(drain(dev, 63), [frame]);
    const seen: number[] = [];
    model.onTransmit = (_, queue) => seen.push(queue);
    expect(dev.txBatch(63, Int32Array.of(bufferWith(txPool(dev, 2), frame)), 1)).toBe(1);
    expect(seen).toEqual([63]);
  });

  it("can be zero of one kind", () => {
    const { dev } = openSimPort({ rxQueues: 0, txQueues: 1 });
    expect(dev.rxQueues).toBe(0);
    expect(() => dev.rxBatch(0, new Int32Array(0), 0)).toThrow(/no such queues/);
  });
});

describe("ixgbe arguments", () => {
  it("rejects a bad queue index in rxBatch and txBatch with a RangeError", () => {
    const { dev } = openSimPort({ rxQueues: 2, txQueues: 2 });
    const bufs = new Int32Array(32);
    for (const q of [-1, 2, 0.5, Number.NaN, 64]) {
      expect(() => dev.rxBatch(q, bufs, 32)).toThrow(RangeError);
      expect(() => dev.txBatch(q, bufs, 0)).toThrow(RangeError);
    }
    expect(() => dev.rxBatch(2, bufs, 32)).toThrow(/sim:ixgbe\d+: rxBatch\(\) on queue 2, but the device was opened with queues 0 to 1/);
  });

  it("rejects a count that is NaN or a fraction, or a batch that is not an Int32Array, with a TypeError", () => {
    const { dev } = openSimPort();
    const bufs = new Int32Array(4);
    for (const n of [Number.NaN, 1.5, Number.POSITIVE_INFINITY]) {
      expect(() => dev.rxBatch(0, bufs, n), `max ${n}`).toThrow(TypeError);
      expect(() => dev.txBatch(0, bufs, n), `count ${n}`).toThrow(TypeError);
    }
    expect(() => dev.rxBatch(0, bufs, 1.5)).toThrow(/rxBatch\(\) needs an integer count of buffers, got 1\.5/);
    for (const batch of [[0, 1, 2, 3], new Uint32Array(4), new Float64Array(4), null]) {
      expect(() => dev.rxBatch(0, batch as unknown as Int32Array, 0), String(batch)).toThrow(TypeError);
      expect(() => dev.txBatch(0, batch as unknown as Int32Array, 0), String(batch)).toThrow(TypeError);
    }
    expect(() => dev.txBatch(0, [] as unknown as Int32Array, 0)).toThrow(/txBatch\(\) needs an Int32Array of buffer numbers, got an Array/);
  });

  it("rejects a count below 0 or beyond the batch with a RangeError", () => {
    const { dev } = openSimPort();
    const bufs = new Int32Array(4);
    for (const n of [-1, 5, 2 ** 31]) {
      expect(() => dev.rxBatch(0, bufs, n), `max ${n}`).toThrow(RangeError);
      expect(() => dev.txBatch(0, bufs, n), `count ${n}`).toThrow(RangeError);
    }
    expect(() => dev.rxBatch(0, bufs, 5)).toThrow(/rxBatch\(\) for 5 buffers, but the batch holds 4: pass a count from 0 to 4/);
    expect(() => dev.txBatch(0, new Int32Array(0), 1)).toThrow(RangeError);
    // A subarray is a batch of its own length.
    expect(() => dev.rxBatch(0, bufs.subarray(2), 3)).toThrow(RangeError);
    expect(dev.rxBatch(0, bufs.subarray(2), 2)).toBe(0);
  });

  it("txBatch checks every buffer number before it sends or frees anything", () => {
    const { model, dev } = openSimPort();
    const sent: Uint8Array[] = [];
    model.onTransmit = (frame) => sent.push(frame);
    const pool = txPool(dev, 8);
    const gone = new Mempool(dev.dma, { count: 2, name: "closed pool" });
    const stale = gone.alloc();
    gone.free(stale);
    gone.close();
    const bad = [-1, BUFFER_TABLE_ROWS, 2 ** 31 - 1, stale];
    for (const number of bad) {
      const batch = batchWith(pool, [new Uint8Array(60).fill(1), new Uint8Array(60).fill(2)]);
      const before = pool.available;
      const withBad = Int32Array.of(batch[0]!, batch[1]!, number);
      expect(() => dev.txBatch(0, withBad, 3), `buffer ${number}`).toThrow(RangeError);
      expect(() => dev.txBatch(0, withBad, 3)).toThrow(new RegExp(`bufs\\[2\\] = ${number} is not a packet buffer.*nothing was sent`));
      expect(sent.length).toBe(0);
      expect(pool.available).toBe(before); // the good buffers are still the caller's
      pool.freeBatch(batch, 2);
    }
    const batch = batchWith(pool, [new Uint8Array(60).fill(3)]);
    const free = pool.alloc(); // allocated, then freed: free in its (checked) pool
    pool.free(free);
    const withFree = Int32Array.of(batch[0]!, free);
    expect(() => dev.txBatch(0, withFree, 2)).toThrow(BufferOwnershipError);
    expect(() => dev.txBatch(0, withFree, 2)).toThrow(/bufs\[1\] = \d+ is free in test TX pool.*nothing was sent/);
    expect(sent.length).toBe(0);
    // Only the first `count` numbers are checked, and the good prefix goes out as usual.
    expect(dev.txBatch(0, withFree, 1)).toBe(1);
    expect(sent.map((f) => f[0])).toEqual([3]);
  });

  it("rejects bad ring sizes, queue counts, mempool sizes and timeouts with a RangeError", () => {
    const dma = new SimDma();
    const model = new Ixgbe82599Model({ dma });
    const open = (options: object) => () => createIxgbeDevice(model.pci, dma, options);
    for (const size of [0, 32, 100, 513, 8192, 65536, 1.5, -512]) {
      expect(open({ rxRingSize: size }), `rxRingSize ${size}`).toThrow(RangeError);
      expect(open({ txRingSize: size }), `txRingSize ${size}`).toThrow(RangeError);
    }
    expect(open({ rxRingSize: 100 })).toThrow(/rxRingSize must be a power of two from 64 to 4096, got 100/);
    for (const n of [-1, 65, 1.5]) {
      expect(open({ rxQueues: n })).toThrow(RangeError);
      expect(open({ txQueues: n })).toThrow(RangeError);
    }
    expect(open({ rxRingSize: 512, mempoolSize: 512 })).toThrow(/mempoolSize must be an integer larger than rxRingSize/);
    expect(open({ linkTimeoutMs: -1 })).toThrow(RangeError);
    expect(open({ linkTimeoutMs: Number.POSITIVE_INFINITY })).toThrow(RangeError);
    // A bad option is found before anything is allocated or written to the device.
    expect(dma.allocatedBytes).toBe(0);
    expect(model.resets).toBe(0);
  });

  it("throws DeviceClosedError for calls on a closed device, still reports statistics, and close() is idempotent", () => {
    const { dev, model } = openSimPort();
    model.inject(new Uint8Array(60));
    dev.close();
    dev.close();
    expect(model.resets).toBe(2); // init and close, not a third time
    const bufs = new Int32Array(4);
    expect(() => dev.rxBatch(0, bufs, 0)).toThrow(DeviceClosedError);
    expect(() => dev.txBatch(0, bufs, 0)).toThrow(DeviceClosedError);
    expect(() => dev.txBatch(0, bufs, 0)).toThrow(/txBatch\(\) on a closed device/);
    // Closed is reported before any argument error.
    expect(() => dev.rxBatch(7, [] as unknown as Int32Array, Number.NaN)).toThrow(DeviceClosedError);
    expect(() => dev.setPromisc(false)).toThrow(DeviceClosedError);
    expect(() => dev.linkSpeed()).toThrow(DeviceClosedError);
    expect(() => dev.macAddress()).toThrow(DeviceClosedError);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats).toMatchObject({ rxPackets: 1, rxBytes: 60 });
    expect(model.regs.peek32(T.IXGBE_RXCTRL)).toBe(0);
    expect(model.pci.closed).toBe(false); // the opener owns the PCI function
  });

  it("close() gives every buffer of the receive and transmit rings back to its pool", () => {
    const { model, dev } = openSimPort({ rxQueues: 2, txQueues: 2, rxRingSize: 64, txRingSize: 64, mempoolSize: 128 });
    const rxPools: Mempool[] = [];
    const bufs = new Int32Array(32);
    for (const q of [0, 1]) {
      model.inject(new Uint8Array(60), q);
      expect(dev.rxBatch(q, bufs, 32)).toBe(1);
      rxPools.push(poolOf(bufs[0]!));
      freeBuffer(bufs[0]!);
    }
    expect(rxPools[0]).not.toBe(rxPools[1]);
    for (const pool of rxPools) expect(pool.available).toBe(128 - 64); // a ring's worth is out
    const pool = txPool(dev, 64);
    model.setLink(false); // nothing is sent: the frames stay in the transmit rings
    for (const q of [0, 1]) expect(dev.txBatch(q, batchWith(pool, Array.from({ length: 20 }, () => new Uint8Array(60))), 20)).toBe(20);
    expect(pool.available).toBe(64 - 40);
    dev.close();
    for (const p of [...rxPools, pool]) expect(p.available, p.name).toBe(p.count);
  });

});

describe("ixgbe register names", () => {
  it("encode the register banks of indexed registers as ixgbe_type.h does", () => {
    expect([T.IXGBE_RDBAL(0), T.IXGBE_RDBAL(63), T.IXGBE_RDBAL(64), T.IXGBE_RDBAL(127)]).toEqual([0x01000, 0x01fc0, 0x0d000, 0x0dfc0]);
    expect([T.IXGBE_RDT(1), T.IXGBE_RXDCTL(2), T.IXGBE_RDT(65)]).toEqual([0x01058, 0x010a8, 0x0d058]);
    expect([T.IXGBE_SRRCTL(0), T.IXGBE_SRRCTL(15), T.IXGBE_SRRCTL(16), T.IXGBE_SRRCTL(64)]).toEqual([0x02100, 0x0213c, 0x01414, 0x0d014]);
    expect([T.IXGBE_DCA_RXCTRL(15), T.IXGBE_DCA_RXCTRL(16)]).toEqual([0x0223c, 0x0140c]);
    expect([T.IXGBE_TDBAL(0), T.IXGBE_TDT(127), T.IXGBE_TXDCTL(1)]).toEqual([0x06000, 0x07fd8, 0x06068]);
    expect([T.IXGBE_RAL(0), T.IXGBE_RAH(15), T.IXGBE_RAL(16)]).toEqual([0x05400, 0x0547c, 0x0a280]);
    expect([T.IXGBE_MPC(7), T.IXGBE_RXPBSIZE(7), T.IXGBE_TXPBSIZE(7)]).toEqual([0x03fbc, 0x03c1c, 0x0cc1c]);
    expect([T.IXGBE_EEC, T.IXGBE_RDRXCTL, T.IXGBE_LINKS, T.IXGBE_AUTOC, T.IXGBE_DMATXCTL]).toEqual([0x10010, 0x02f00, 0x042a4, 0x042a0, 0x04a80]);
  });

  it("list the 82599, X520, X540 and X550 device ids the driver takes", () => {
    const ids = IXGBE_DEVICE_IDS.map((d) => d.deviceId);
    for (const id of [0x10fb, 0x10f7, 0x1517, 0x1528, 0x1560, 0x1563, 0x15d1]) expect(ids).toContain(id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(findIxgbeDeviceId(0x8086, 0x10fb)?.name).toMatch(/X520/);
    expect(findIxgbeDeviceId(0x8086, 0x10ed)).toBeUndefined(); // a virtual function
    expect(findIxgbeDeviceId(0x1af4, 0x10fb)).toBeUndefined();
    expect(Object.isFrozen(IXGBE_DEVICE_IDS)).toBe(true);
  });
});
