import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { freeBuffer } from "../../src/mem/mempool.ts";
import { copyFrame } from "../../src/mem/packet.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { poolOf } from "../helpers/buffers.ts";
import { bufferWith, expectSameFrames, openSimPort, randomFrame, randomLength, rng, txPool } from "./helpers.ts";

describe("ixgbe receive and transmit", () => {
  it("receives random frames of 60 to 1514 bytes byte-exact and in order across many ring wrap-arounds", () => {
    const { model, dev } = openSimPort({ rxRingSize: 64 });
    const random = rng(1);
    const expected: Uint8Array[] = [];
    const got: Uint8Array[] = [];
    const bufs = new Int32Array(32);
    let seq = 0;
    while (seq < 6000) {
      // A burst never larger than what the device holds (63 descriptors), so nothing is missed.
      const burst = Math.min(1 + Math.floor(random() * 63), 6000 - seq);
      for (let i = 0; i < burst; i++, seq++) {
        const frame = randomFrame(random, randomLength(random), seq);
        expect(model.inject(frame)).toBe(true);
        expected.push(frame);
      }
      for (;;) {
        const max = 1 + Math.floor(random() * 32);
        const n = dev.rxBatch(0, bufs, max);
        expect(n).toBeLessThanOrEqual(max);
        for (let i = 0; i < n; i++) {
          const buf = bufs[i]!;
          got.push(copyFrame(buf));
          freeBuffer(buf);
        }
        if (n === 0) break;
      }
    }
    expectSameFrames(got, expected);
    expect(got.length).toBe(6000);
    expect(model.counters.rxMissed).toBe(0);
    const pool = poolOf(bufs[0]!);
    expect(pool.available).toBe(pool.count - 64); // only the ring's buffers are out
    dev.close();
    expect(pool.available).toBe(pool.count); // close() takes the ring's buffers back
  });

  it("sends random frames byte-exact and in order, and gives every buffer back", () => {
    const { model, dev } = openSimPort({ txRingSize: 64 });
    const pool = txPool(dev, 200);
    const random = rng(2);
    const sent: Uint8Array[] = [];
    const seen: Uint8Array[] = [];
    model.onTransmit = (frame, queue) => {
      expect(queue).toBe(0);
      seen.push(frame);
    };
    const batch = new Int32Array(64);
    let seq = 0;
    while (seq < 6000) {
      const count = 1 + Math.floor(random() * 48);
      let filled = 0;
      while (filled < count && pool.available > 0) {
        const frame = randomFrame(random, randomLength(random), seq++);
        batch[filled++] = bufferWith(pool, frame);
        sent.push(frame);
      }
      // Sent descriptors come back a group of 32 at a time, so a batch may be taken in parts.
      let taken = dev.txBatch(0, batch, filled);
      expect(taken).toBeGreaterThanOrEqual(Math.min(filled, 32));
      while (taken < filled) {
        batch.copyWithin(0, taken, filled);
        filled -= taken;
        taken = dev.txBatch(0, batch, filled);
        expect(taken).toBeGreaterThan(0);
      }
    }
    expectSameFrames(seen, sent);
    // Buffers come back in groups of 32: at most one group and a partial one are in flight.
    expect(pool.available).toBeGreaterThanOrEqual(pool.count - 63);
    dev.close();
    expect(pool.available).toBe(pool.count); // close() returns what was still in the ring
  });

  it("pads short frames to 60 bytes (64 with the CRC) on the wire", () => {
    const { model, dev } = openSimPort();
    const pool = txPool(dev, 8);
    const seen: Uint8Array[] = [];
    model.onTransmit = (frame) => seen.push(frame);
    const frame = Uint8Array.from({ length: 42 }, (_, i) => i + 1);
    expect(dev.txBatch(0, Int32Array.of(bufferWith(pool, frame)), 1)).toBe(1);
    expect(seen[0]!.length).toBe(60);
    expect(seen[0]!.subarray(0, 42)).toEqual(frame);
    expect(seen[0]!.subarray(42).every((b) => b === 0)).toBe(true);
  });

  it("carries every frame from one driver to the other over two ports wired back to back", () => {
    const dma = new SimDma();
    const a = openSimPort({ txRingSize: 128 }, {}, dma);
    const b = openSimPort({ rxRingSize: 128 }, {}, dma);
    a.model.connect(b.model);
    const pool = txPool(a.dev, 256);
    const random = rng(3);
    const sent: Uint8Array[] = [];
    const got: Uint8Array[] = [];
    const out = new Int32Array(32);
    const inb = new Int32Array(32);
    for (let seq = 0; seq < 4000;) {
      let n = 0;
      for (; n < 32 && pool.available > 0; n++, seq++) {
        const frame = randomFrame(random, randomLength(random), seq);
        out[n] = bufferWith(pool, frame);
        sent.push(frame);
      }
      expect(a.dev.txBatch(0, out, n)).toBe(n);
      for (let k; (k = b.dev.rxBatch(0, inb, 32)) > 0;) {
        for (let i = 0; i < k; i++) {
          got.push(copyFrame(inb[i]!));
          freeBuffer(inb[i]!);
        }
      }
    }
    expectSameFrames(got, sent);
    const sa = newStats();
    const sb = newStats();
    a.dev.readStats(sa);
    b.dev.readStats(sb);
    expect(sb.rxPackets).toBe(sa.txPackets);
    expect(sb.rxBytes).toBe(sa.txBytes);
  });

  it("forwards received buffers out of another port without copying and without losing any", () => {
    const dma = new SimDma();
    const rx = openSimPort({ rxRingSize: 64, mempoolSize: 256 }, {}, dma);
    const tx = openSimPort({ txRingSize: 64 }, {}, dma);
    const seen: Uint8Array[] = [];
    tx.model.onTransmit = (frame) => seen.push(frame);
    const random = rng(4);
    const expected: Uint8Array[] = [];
    const bufs = new Int32Array(32);
    for (let seq = 0; seq < 3000;) {
      const burst = 1 + Math.floor(random() * 40);
      for (let i = 0; i < burst; i++, seq++) {
        const frame = randomFrame(random, randomLength(random), seq);
        if (rx.model.inject(frame)) expected.push(frame);
      }
      const n = rx.dev.rxBatch(0, bufs, 32);
      expect(tx.dev.txBatch(0, bufs, n)).toBe(n); // the model sends at once: the ring has room
    }
    // Drain what is still in the receive ring.
    for (let n; (n = rx.dev.rxBatch(0, bufs, 32)) > 0;) expect(tx.dev.txBatch(0, bufs, n)).toBe(n);
    expectSameFrames(seen, expected);
    const pool = poolOf(bufs[0]!);
    tx.dev.close(); // gives back what the transmit ring still held
    expect(pool.available).toBe(pool.count - 64);
    rx.dev.close(); // and the receive ring's buffers
    expect(pool.available).toBe(pool.count);
  });
});
