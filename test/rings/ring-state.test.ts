/**
 * NicDevice.ringState on the models: known states of the RX and TX rings (after init, frames
 * received but not taken, taken, sent but not completed, completed, around the wrap), and that a
 * snapshot changes nothing.
 */
import { describe, expect, it } from "vitest";
import type { NicDevice } from "../../src/device.ts";
import { DeviceClosedError, QueueSharedError } from "../../src/errors.ts";
import { freeBuffer } from "../../src/mem/mempool.ts";
import { copyFrame } from "../../src/mem/packet.ts";
import { RingOwner, type RingState } from "../../src/ring-state.ts";
import { bufferWith, openSimPort, randomFrame, rng, txPool } from "../ixgbe/helpers.ts";
import { openRig } from "../virtio/helpers.ts";

/** The slots of `state` that `owner` has, in ring order. */
function slotsOf(state: RingState, owner: RingOwner): number[] {
  return [...state.owners.keys()].filter((i) => state.owners[i] === owner);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, k) => from + k);
}

/** Receives everything waiting on queue 0 and returns the frames' bytes (buffers freed). */
function receiveAll(dev: NicDevice): Uint8Array[] {
  const bufs = new Int32Array(32);
  const got: Uint8Array[] = [];
  for (let n = dev.rxBatch(0, bufs, 32); n > 0; n = dev.rxBatch(0, bufs, 32)) {
    for (let i = 0; i < n; i++) {
      got.push(copyFrame(bufs[i]!));
      freeBuffer(bufs[i]!);
    }
  }
  return got;
}

function frames(count: number, seed: number): Uint8Array[] {
  const random = rng(seed);
  return Array.from({ length: count }, (_, seq) => randomFrame(random, 60 + seq, seq));
}

describe("ringState on the 82599 model", () => {
  it("after init: every RX descriptor but the one at RDT is the device's, the TX ring is empty", () => {
    const { dev } = openSimPort({ rxRingSize: 64, txRingSize: 64 });
    const rx = dev.ringState("rx", 0);
    expect(rx).toMatchObject({ layout: "ixgbe", kind: "rx", queue: 0, size: 64, head: 0, tail: 63, next: 0, device: 63, done: 0, driver: 1 });
    expect(rx.fields).toEqual({ RDH: 0, RDT: 63, next: 0 });
    expect(slotsOf(rx, RingOwner.driver)).toEqual([63]);
    const tx = dev.ringState("tx", 0);
    expect(tx).toMatchObject({ kind: "tx", size: 64, head: 0, tail: 0, next: 0, device: 0, done: 0, driver: 64 });
    dev.close();
  });

  it("received frames are done until rxBatch takes them, then the descriptors are the device's again", () => {
    const { model, dev } = openSimPort({ rxRingSize: 64 });
    for (const f of frames(5, 1)) expect(model.inject(f)).toBe(true);
    const waiting = dev.ringState("rx", 0);
    expect(slotsOf(waiting, RingOwner.done)).toEqual(range(0, 5));
    expect(waiting).toMatchObject({ head: 5, tail: 63, next: 0, device: 58, done: 5, driver: 1 });
    expect(receiveAll(dev)).toHaveLength(5);
    const taken = dev.ringState("rx", 0);
    // Re-posted: RDT moved to the last descriptor processed, which the driver keeps back.
    expect(taken).toMatchObject({ head: 5, tail: 4, next: 5, device: 63, done: 0, driver: 1 });
    expect(slotsOf(taken, RingOwner.driver)).toEqual([4]);
    dev.close();
  });

  it("around the wrap: the done descriptors follow the driver's next index", () => {
    const { model, dev } = openSimPort({ rxRingSize: 64 });
    for (let burst = 0; burst < 10; burst++) {
      for (const f of frames(10, burst)) model.inject(f);
      expect(receiveAll(dev)).toHaveLength(10);
    }
    for (const f of frames(30, 99)) model.inject(f);
    const state = dev.ringState("rx", 0);
    // 100 frames taken: next is 100 mod 64 = 36; 30 more fill 36 .. 65, i.e. 36 .. 63 and 0 .. 1.
    expect(state.next).toBe(36);
    expect(slotsOf(state, RingOwner.done)).toEqual([0, 1, ...range(36, 64)]);
    expect(state).toMatchObject({ head: 2, tail: 35, device: 33, done: 30, driver: 1 });
    dev.close();
  });

  it("sent frames are the device's until it processes them, then done until the driver reclaims their group", () => {
    const { model, dev } = openSimPort({ txRingSize: 64 }, { asynchronous: true });
    const pool = txPool(dev, 128);
    const batch = Int32Array.from(frames(40, 3), (f) => bufferWith(pool, f));
    expect(dev.txBatch(0, batch, 10)).toBe(10);
    const queued = dev.ringState("tx", 0);
    expect(slotsOf(queued, RingOwner.device)).toEqual(range(0, 10));
    expect(queued).toMatchObject({ head: 0, tail: 10, next: 0, device: 10, done: 0, driver: 54 });
    model.drain();
    expect(dev.ringState("tx", 0)).toMatchObject({ head: 10, tail: 10, next: 0, device: 0, done: 10, driver: 54 });
    // 30 more: the first group of 32 ends with RS, its DD is written back, the next call reclaims it.
    expect(dev.txBatch(0, batch.subarray(10), 30)).toBe(30);
    model.drain();
    const sent = dev.ringState("tx", 0);
    expect(sent).toMatchObject({ head: 40, tail: 40, next: 0, done: 40 });
    expect(sent.fields["dd"]).toBe(1);
    expect(dev.txBatch(0, batch, 0)).toBe(0);
    const reclaimed = dev.ringState("tx", 0);
    expect(reclaimed).toMatchObject({ head: 40, tail: 40, next: 32, device: 0, done: 8, driver: 56 });
    expect(slotsOf(reclaimed, RingOwner.done)).toEqual(range(32, 40));
    dev.close();
  });

  it("a snapshot changes nothing: frames are received byte-exact afterwards", () => {
    const { model, dev } = openSimPort({ rxRingSize: 64 });
    const sent = frames(20, 7);
    for (const f of sent) model.inject(f);
    for (let k = 0; k < 5; k++) dev.ringState("rx", 0);
    dev.ringState("tx", 0);
    expect(receiveAll(dev)).toEqual(sent);
    expect(model.counters.rxMissed).toBe(0);
    dev.close();
  });

  it("refuses a queue that does not exist, a pair a worker drives, and a closed device", () => {
    const { dev } = openSimPort();
    expect(() => dev.ringState("rx", 1)).toThrow(RangeError);
    dev.shareQueuePair(0);
    expect(() => dev.ringState("tx", 0)).toThrow(QueueSharedError);
    expect(dev.reclaimQueuePair(0)).toBe(true);
    expect(dev.ringState("tx", 0).driver).toBe(512);
    dev.close();
    expect(() => dev.ringState("rx", 0)).toThrow(DeviceClosedError);
  });
});

describe.each(["split", "packed"] as const)("ringState on the virtio-net model, %s ring", (ring) => {
  const open = (completion: "instant" | "async" = "instant") =>
    openRig({ packed: ring === "packed", completion }, { ring, rxRingSize: 16, txRingSize: 16 });
  const layout = ring === "packed" ? "virtio-packed" : "virtio-split";

  it("after init: the RX ring is all the device's, the TX ring all the driver's", () => {
    const { dev } = open();
    expect(dev.ringState("rx", 0)).toMatchObject({ layout, kind: "rx", size: 16, head: 0, tail: 0, next: 0, device: 16, done: 0, driver: 0 });
    expect(dev.ringState("tx", 0)).toMatchObject({ layout, kind: "tx", size: 16, head: 0, tail: 0, next: 0, device: 0, done: 0, driver: 16 });
    dev.close();
  });

  it("received frames are done (used, not consumed) until rxBatch, then available again", () => {
    const { model, dev } = open();
    const sent = frames(3, 11);
    for (const f of sent) expect(model.inject(f)).toBe(true);
    const waiting = dev.ringState("rx", 0);
    expect(slotsOf(waiting, RingOwner.done)).toEqual([0, 1, 2]);
    expect(waiting).toMatchObject({ head: 3, next: 0, device: 13, done: 3, driver: 0 });
    expect(receiveAll(dev)).toEqual(sent); // byte-exact: the snapshot changed nothing
    expect(dev.ringState("rx", 0)).toMatchObject({ head: 3, next: 3, device: 16, done: 0, driver: 0 });
    dev.close();
  });

  it("around the wrap: the done slots follow the driver's next slot", () => {
    const { model, dev } = open();
    for (let burst = 0; burst < 5; burst++) {
      for (const f of frames(8, burst)) model.inject(f);
      expect(receiveAll(dev)).toHaveLength(8);
    }
    for (const f of frames(12, 50)) model.inject(f);
    const state = dev.ringState("rx", 0);
    // 40 taken: next slot 40 mod 16 = 8; 12 more fill 8 .. 15 and 0 .. 3.
    expect(state.next).toBe(8);
    expect(slotsOf(state, RingOwner.done)).toEqual([0, 1, 2, 3, ...range(8, 16)]);
    expect(state).toMatchObject({ head: 4, device: 4, done: 12 });
    dev.close();
  });

  it("sent frames are the device's until it completes them, then done until the driver reclaims them", () => {
    const { model, dev } = open("async");
    const pool = txPool(dev, 64);
    const batch = Int32Array.from(frames(5, 21), (f) => bufferWith(pool, f));
    const seen: Uint8Array[] = [];
    model.onTransmit = (f) => seen.push(f);
    expect(dev.txBatch(0, batch, 5)).toBe(5);
    const queued = dev.ringState("tx", 0);
    expect(slotsOf(queued, RingOwner.device)).toEqual(range(0, 5));
    expect(queued).toMatchObject({ tail: 5, next: 0, device: 5, done: 0, driver: 11 });
    model.poll(1);
    const completed = dev.ringState("tx", 0);
    expect(slotsOf(completed, RingOwner.done)).toEqual(range(0, 5));
    expect(completed).toMatchObject({ head: 5, tail: 5, next: 0, device: 0, done: 5, driver: 11 });
    expect(seen).toHaveLength(5);
    dev.close();
  });
});
