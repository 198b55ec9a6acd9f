/**
 * The model's asynchronous, out-of-order completion mode (VirtioNetModel `completion: "async"`),
 * with the driver reading the rings between arbitrary pieces of the device's work: receive
 * buffers filled in random order, used entries published in random chunks, transmit chains
 * completed out of order (without VIRTIO_F_IN_ORDER a split ring allows all of it, §2.7.9, and
 * so does a packed ring, §2.8.9: its used descriptors are written in ring order, their ids in any).
 * The contract suite runs in this mode too (test/contract/rigs.ts), draining the device at each
 * step; here the driver also sees it half done.
 */
import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { copyFrame, writeFrame } from "../../src/mem/packet.ts";
import { freeBuffer } from "../../src/mem/mempool.ts";
import { prng, randInt, randomBytes } from "../helpers/prng.ts";
import { bytesEqual, openRig } from "./helpers.ts";

const variants = [
  { name: "modern", legacy: false, packed: false },
  { name: "legacy", legacy: true, packed: false },
  { name: "modern, packed ring", legacy: false, packed: true },
] as const;

describe.each(variants)("virtio on an asynchronous, out-of-order device ($name)", ({ legacy, packed }) => {
  const ring = packed ? ("packed" as const) : ("split" as const);
  it("forwards frames byte-exact and in order while the device works in random pieces", () => {
    const rand = prng(legacy ? 11 : 12);
    const { model, dev } = openRig({ legacy, packed, completion: "async", seed: 99, queueSize: 64 }, { rxRingSize: 32, txRingSize: 32, checked: true, ring });
    const sent: Uint8Array[] = [];
    model.onTransmit = (f) => sent.push(f.slice());
    const injected: Uint8Array[] = [];
    const batch = new Int32Array(32);
    let pending: number[] = []; // received, not yet taken by txBatch
    for (let round = 0; round < 3000; round++) {
      const arrive = randInt(rand, 0, 4);
      for (let k = 0; k < arrive; k++) {
        const frame = randomBytes(rand, randInt(rand, 60, 300));
        new DataView(frame.buffer).setUint32(0, injected.length);
        if (model.inject(frame)) injected.push(frame);
      }
      for (let k = randInt(rand, 0, 3); k > 0; k--) model.step();
      const n = dev.rxBatch(0, batch, randInt(rand, 1, 32));
      for (let i = 0; i < n; i++) pending.push(batch[i]!);
      if (pending.length > 0) {
        const out = Int32Array.from(pending);
        const taken = dev.txBatch(0, out, out.length);
        pending = pending.slice(taken);
      }
    }
    // Let the device finish, and send what is left.
    for (let i = 0; i < 100 && (pending.length > 0 || sent.length < injected.length); i++) {
      model.poll();
      let n = dev.rxBatch(0, batch, 32);
      while (n > 0) {
        for (let k = 0; k < n; k++) pending.push(batch[k]!);
        n = dev.rxBatch(0, batch, 32);
      }
      const out = Int32Array.from(pending);
      pending = pending.slice(dev.txBatch(0, out, out.length));
    }
    model.poll();
    expect(injected.length).toBeGreaterThan(3000);
    expect(sent.length).toBe(injected.length);
    for (let i = 0; i < sent.length; i++) if (!bytesEqual(sent[i]!, injected[i]!)) throw new Error(`frame ${i} differs`);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats).toMatchObject({ rxPackets: injected.length, txPackets: injected.length, rxErrors: 0, txErrors: 0 });
    expect(model.violations).toEqual([]);
    dev.close();
  });

  it("fills receive buffers out of order and completes control commands only as time passes", () => {
    const { model, dev } = openRig({ legacy, packed, completion: "async", seed: 5 }, { rxRingSize: 16, ring });
    // setPromisc at init completed although nothing but status reads let the device work.
    expect(model.ctrlLog).toEqual([{ cls: 0, command: 0, data: [1], ack: 0 }]);
    const frames = Array.from({ length: 8 }, (_, i) => new Uint8Array(60).fill(i + 1));
    for (const f of frames) expect(model.inject(f)).toBe(true);
    const bufs = new Int32Array(16);
    expect(dev.rxBatch(0, bufs, 16), "nothing is in the used ring before the device is stepped").toBe(0);
    model.poll();
    expect(dev.rxBatch(0, bufs, 16)).toBe(8);
    expect(Array.from(bufs.subarray(0, 8), (b) => copyFrame(b)[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    for (let i = 0; i < 8; i++) freeBuffer(bufs[i]!);
    dev.setPromisc(false);
    expect(model.promisc).toBe(false);
    dev.close();
  });

  it("completes transmitted chains out of order, and the driver reclaims them all", () => {
    const { model, dev, dma } = openRig({ legacy, packed, completion: "async", seed: 7 }, { txRingSize: 16, ring });
    const pool = new Mempool(dma, { count: 64, checked: true });
    const bufs = new Int32Array(16);
    pool.allocBatch(bufs, 16);
    bufs.forEach((b, i) => writeFrame(b, new Uint8Array(60).fill(i)));
    expect(dev.txBatch(0, bufs, 16)).toBe(16);
    expect(model.counters.txFrames, "nothing is sent inside the doorbell write").toBe(0);
    model.poll();
    expect(model.counters.txFrames).toBe(16);
    if (packed) {
      // The descriptor ring as the device left it: 16 used descriptors, ids not in ring order.
      const bar = model.pci.bar(4);
      bar.write16(0x16, 1);
      const desc = dma.resolve(bar.read32(0x20) + bar.read32(0x24) * 2 ** 32, 16 * 16);
      const ids = Array.from({ length: 16 }, (_, i) => new Uint16Array(desc.buffer, desc.byteOffset, 8 * 16)[8 * i + 6]!);
      expect([...ids].sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i));
      expect(ids).not.toEqual([...ids].sort((a, b) => a - b));
    } else if (!legacy) {
      // The used ring as the device wrote it: the 16 ids, not in the order they were made available.
      const bar = model.pci.bar(4);
      bar.write16(0x16, 1);
      const at = (lo: number) => bar.read32(lo) + bar.read32(lo + 4) * 2 ** 32;
      const used = dma.resolve(at(0x30), 4 + 8 * 16);
      const avail = dma.resolve(at(0x28), 4 + 2 * 16);
      const usedIds = Array.from({ length: 16 }, (_, i) => new Uint32Array(used.buffer, used.byteOffset, 1 + 32)[1 + 2 * i]);
      const availIds = Array.from(new Uint16Array(avail.buffer, avail.byteOffset, 18).subarray(2));
      expect([...usedIds].sort((a, b) => a! - b!)).toEqual([...availIds].sort((a, b) => a - b));
      expect(usedIds).not.toEqual(availIds);
    }
    // A full batch forces a reclaim of all 16, whatever order they came back in.
    const more = new Int32Array(16);
    pool.allocBatch(more, 16);
    more.forEach((b) => writeFrame(b, new Uint8Array(60)));
    expect(dev.txBatch(0, more, 16)).toBe(16);
    expect(pool.available).toBe(64 - 16);
    dev.close();
    expect(pool.available).toBe(64);
    pool.close();
  });
});
