import { describe, expect, it } from "vitest";
import { MAX_RING_CAPACITY, SpscRing } from "../../src/threads/spsc-ring.ts";
import { fewestGcs } from "../helpers/gc.ts";
import { prng, randInt } from "../helpers/prng.ts";

const seq = (from: number, n: number) => Int32Array.from({ length: n }, (_, i) => from + i);

describe("SpscRing in one thread", () => {
  it("starts empty and hands items out in the order they went in", () => {
    const ring = SpscRing.create(8, { name: "t" });
    expect(ring.capacity).toBe(8);
    expect(ring.count).toBe(0);
    const out = new Int32Array(8);
    expect(ring.dequeue(out, 0, 8)).toBe(0);
    expect(ring.enqueue(seq(100, 5), 0, 5)).toBe(5);
    expect(ring.count).toBe(5);
    expect(ring.dequeue(out, 0, 3)).toBe(3);
    expect([...out.subarray(0, 3)]).toEqual([100, 101, 102]);
    expect(ring.count).toBe(2);
    expect(ring.dequeue(out, 3, 5)).toBe(2);
    expect([...out.subarray(3, 5)]).toEqual([103, 104]);
    expect(ring.count).toBe(0);
  });

  it("takes only what fits when full, and none at all then", () => {
    const ring = SpscRing.create(4);
    expect(ring.enqueue(seq(0, 6), 0, 6)).toBe(4); // a batch larger than the free space
    expect(ring.count).toBe(4);
    expect(ring.enqueue(seq(9, 1), 0, 1)).toBe(0);
    const out = new Int32Array(4);
    expect(ring.dequeue(out, 0, 1)).toBe(1);
    expect(ring.enqueue(seq(4, 2), 0, 2)).toBe(1); // one slot free
    expect(ring.dequeue(out, 0, 4)).toBe(4);
    expect([...out]).toEqual([1, 2, 3, 4]);
  });

  it("enqueues from and dequeues into the middle of an array", () => {
    const ring = SpscRing.create(16);
    const src = Int32Array.of(-1, -1, 7, 8, 9, -1);
    expect(ring.enqueue(src, 2, 3)).toBe(3);
    const out = new Int32Array(6).fill(-5);
    expect(ring.dequeue(out, 1, 4)).toBe(3);
    expect([...out]).toEqual([-5, 7, 8, 9, -5, -5]);
    expect(ring.enqueue(src, 6, 0)).toBe(0); // an empty batch at the end is fine
  });

  it("wraps around the slots many times with random batch sizes, any int32 going through", () => {
    const ring = SpscRing.create(16);
    const rand = prng(13);
    const inBuf = new Int32Array(40);
    const outBuf = new Int32Array(40);
    let next = -2_000_000_000;
    let expected = next;
    for (let round = 0; round < 20_000; round++) {
      const n = randInt(rand, 0, 40);
      for (let i = 0; i < n; i++) inBuf[i] = next + i;
      const put = ring.enqueue(inBuf, 0, n);
      expect(put).toBe(Math.min(n, 16 - (next - expected)));
      next += put;
      const got = ring.dequeue(outBuf, 0, randInt(rand, 0, 40));
      for (let i = 0; i < got; i++) if (outBuf[i] !== expected + i) expect(outBuf[i]).toBe(expected + i);
      expected += got;
      expect(ring.count).toBe(next - expected);
    }
    expect(expected).toBeGreaterThan(-2_000_000_000 + 100_000);
  });

  it("keeps counting right when head and tail wrap at 2^32", () => {
    const ring = SpscRing.create(8, { initialIndex: 2 ** 31 - 3 });
    const out = new Int32Array(8);
    let value = 0;
    let expected = 0;
    for (let round = 0; round < 10; round++) {
      expect(ring.enqueue(seq(value, 6), 0, 6)).toBe(6);
      value += 6;
      expect(ring.count).toBe(6);
      expect(ring.enqueue(seq(value, 6), 0, 6)).toBe(2);
      value += 2;
      expect(ring.count).toBe(8);
      expect(ring.dequeue(out, 0, 8)).toBe(8);
      expect([...out]).toEqual([...seq(expected, 8)]);
      expected += 8;
    }
  });

  it("is opened on the other side from its shared description, and sees the same items", () => {
    const a = SpscRing.create(32, { name: "a->b" });
    a.enqueue(seq(1, 10), 0, 10);
    const shared = a.shared();
    expect(shared.sab).toBeInstanceOf(SharedArrayBuffer);
    const b = SpscRing.fromShared(structuredClone(shared)); // what postMessage does with it
    expect(b.name).toBe("a->b");
    expect(b.count).toBe(10);
    const out = new Int32Array(10);
    expect(b.dequeue(out, 0, 10)).toBe(10);
    expect([...out]).toEqual([...seq(1, 10)]);
    // The producer sees the space come back once its cached tail is out of date.
    expect(a.count).toBe(0);
    expect(a.enqueue(seq(0, 32), 0, 32)).toBe(32);
  });

  it("refuses bad arguments with errors that name the ring", () => {
    expect(() => SpscRing.create(12, { name: "r" })).toThrow(new RangeError("r: capacity must be a power of two from 2 to 268435456, got 12"));
    expect(() => SpscRing.create(1)).toThrow(RangeError);
    expect(() => SpscRing.create(MAX_RING_CAPACITY * 2)).toThrow(RangeError);
    expect(() => SpscRing.create("8" as never)).toThrow(new TypeError('spsc-ring: capacity must be a number, got the string "8"'));
    expect(() => SpscRing.create(8, { name: 5 as never })).toThrow(TypeError);
    expect(() => SpscRing.create(8, { initialIndex: 2 ** 32 })).toThrow(RangeError);

    const ring = SpscRing.create(8, { name: "rx->w1" });
    const bufs = new Int32Array(4);
    expect(() => ring.enqueue([1, 2] as never, 0, 2)).toThrow(new TypeError("rx->w1: enqueue() needs an Int32Array of buffer numbers, got an Array"));
    expect(() => ring.enqueue(bufs, 0, 5)).toThrow(RangeError);
    expect(() => ring.enqueue(bufs, 3, 2)).toThrow(/rx->w1: enqueue\(\) of 2 buffers at 3 does not fit a batch of 4/);
    expect(() => ring.enqueue(bufs, -1, 1)).toThrow(RangeError);
    expect(() => ring.enqueue(bufs, 0, 1.5)).toThrow(TypeError);
    expect(() => ring.dequeue(bufs, 0, -1)).toThrow(RangeError);
    expect(() => ring.dequeue(new Uint32Array(4) as never, 0, 1)).toThrow(/rx->w1: dequeue\(\) needs an Int32Array/);
    expect(() => ring.dequeue(bufs, "0" as never, 1)).toThrow(TypeError);
    expect(ring.count).toBe(0); // nothing moved

    expect(() => SpscRing.fromShared(null as never)).toThrow(TypeError);
    expect(() => SpscRing.fromShared({ sab: new ArrayBuffer(512), capacity: 32, name: "x" } as never)).toThrow(
      /x: SpscRing.fromShared\(\) needs the ring's SharedArrayBuffer as sab, got an object \(ArrayBuffer\)/,
    );
    expect(() => SpscRing.fromShared({ ...ring.shared(), capacity: 16 })).toThrow(/rx->w1: this SharedArrayBuffer \(416 bytes\) is not an SpscRing of capacity 16/);
    expect(() => SpscRing.fromShared({ sab: new SharedArrayBuffer(384 + 32), capacity: 8, name: "y" })).toThrow(/y: .* is not an SpscRing/);
    expect(() => SpscRing.fromShared({ sab: new SharedArrayBuffer(8), capacity: 8, name: "z" })).toThrow(RangeError);
  });

  it("moves ten million items through enqueue and dequeue without allocating", async () => {
    const ring = SpscRing.create(1024);
    const bufs = seq(0, 32);
    const out = new Int32Array(32);
    let moved = 0;
    const run = (items: number) => {
      while (moved < items) {
        const n = ring.enqueue(bufs, 0, 32);
        moved += ring.dequeue(out, 0, n);
        // Batches of 1 take the refresh paths (a cached index that says "not enough") every time.
        ring.enqueue(bufs, 0, 1);
        moved += ring.dequeue(out, 0, 8);
      }
    };
    run(200_000); // warm up: let V8 optimize
    // The best of up to three windows (fewestGcs says why); an allocating loop collects in each.
    const { fewest, counts } = await fewestGcs(() => {
      moved = 0;
      run(10_000_000);
    });
    expect(moved).toBeGreaterThanOrEqual(10_000_000);
    expect(fewest, `collections per window: ${counts.join(", ")}`).toBeLessThanOrEqual(1);
  });
});
