import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { freeBuffer } from "../../src/mem/mempool.ts";
import { copyFrame } from "../../src/mem/packet.ts";
import { poolOf } from "../helpers/buffers.ts";
import { batchWith, expectSameFrames, openSimPort, randomFrame, randomLength, rng, txPool } from "./helpers.ts";

describe("ixgbe back-pressure", () => {
  it("pushes back when the transmit ring is full, and loses nothing", () => {
    const { model, dev } = openSimPort({ txRingSize: 64 });
    const seen: Uint8Array[] = [];
    model.onTransmit = (frame) => seen.push(frame);
    const pool = txPool(dev, 256);
    const random = rng(10);
    const frames = Array.from({ length: 200 }, (_, seq) => randomFrame(random, randomLength(random), seq));
    const bufs = batchWith(pool, frames);

    model.setLink(false); // the device stops sending: descriptors pile up
    expect(dev.txBatch(0, bufs, 100)).toBe(63); // one descriptor always stays empty
    expect(dev.txBatch(0, bufs.subarray(63), 37)).toBe(0);
    expect(seen.length).toBe(0);

    model.setLink(true); // the device sends what it holds
    expect(seen.length).toBe(63);
    let next = 63;
    for (let rounds = 0; next < bufs.length; rounds++) {
      expect(rounds).toBeLessThan(50);
      next += dev.txBatch(0, bufs.subarray(next), bufs.length - next);
    }
    expectSameFrames(seen, frames);
    expect(model.counters.txPackets).toBe(200);
    // Everything not still in the ring is back in the pool, and close() returns the rest.
    expect(pool.available).toBeGreaterThanOrEqual(pool.count - 63);
    dev.close();
    expect(pool.available).toBe(pool.count);
  });

  it("survives an exhausted receive mempool: frames are missed, nothing leaks, and it recovers", () => {
    // 64 buffers sit in the ring, 32 more are spare.
    const { model, dev } = openSimPort({ rxRingSize: 64, mempoolSize: 96 });
    const random = rng(11);
    let seq = 0;
    const next = () => randomFrame(random, randomLength(random), seq++);
    const accepted: Uint8Array[] = [];
    for (let i = 0; i < 63; i++) {
      const f = next();
      expect(model.inject(f)).toBe(true);
      accepted.push(f);
    }
    const held = new Int32Array(64);
    expect(dev.rxBatch(0, held, 64)).toBe(32); // the 33rd needs a 33rd spare buffer
    const pool = poolOf(held[0]!);
    expect(pool.available).toBe(0);
    expect(dev.rxBatch(0, new Int32Array(32), 32)).toBe(0);

    // The device got 32 descriptors back and now runs out: the rest is missed (MPC).
    let missed = 0;
    for (let i = 0; i < 40; i++) {
      const f = next();
      if (model.inject(f)) accepted.push(f);
      else missed++;
    }
    expect(missed).toBe(8);
    expect(model.counters.rxMissed).toBe(8);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats.rxMissed).toBe(8);

    // The application returns its buffers: receiving resumes where it stopped, in order.
    const got = Array.from(held.subarray(0, 32), copyFrame);
    pool.freeBatch(held, 32);
    const bufs = new Int32Array(32);
    for (let n; (n = dev.rxBatch(0, bufs, 32)) > 0;) {
      for (let i = 0; i < n; i++) {
        got.push(copyFrame(bufs[i]!));
        freeBuffer(bufs[i]!);
      }
    }
    expectSameFrames(got, accepted);
    expect(pool.available).toBe(32); // every spare buffer is back
    expect(model.inject(next())).toBe(true);
    expect(dev.rxBatch(0, bufs, 32)).toBe(1);
    freeBuffer(bufs[0]!);
    // close() takes the ring's buffers back too: the whole pool is home.
    dev.close();
    expect(pool.available).toBe(pool.count);
  });

  it("counts frames missed while receive queues are full and the application does not poll", () => {
    const { model, dev } = openSimPort({ rxRingSize: 64 });
    const random = rng(12);
    let accepted = 0;
    for (let i = 0; i < 100; i++) if (model.inject(randomFrame(random, 60, i))) accepted++;
    expect(accepted).toBe(63);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats).toMatchObject({ rxMissed: 37, rxPackets: 63, rxBytes: 63 * 60 });
  });
});
