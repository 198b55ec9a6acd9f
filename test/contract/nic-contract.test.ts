/**
 * The NicDevice contract (src/device.ts, docs/packet-api.md), one suite for every driver: the
 * ixgbe driver on the 82599 model and the virtio driver on the virtio-net model, modern and
 * legacy (rigs.ts). Every case ends with session.finish(held): close the device, then an exact
 * accounting of every buffer of every pool on the device's memory (accounting.ts), then the
 * test's TX pools are closed (checked pools refuse to close with a buffer missing). The device's
 * receive pools are checked too (DeviceOptions.checked), so a double free anywhere throws.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { NicDevice } from "../../src/device.ts";
import { BufferOwnershipError, DeviceClosedError, DeviceTimeoutError } from "../../src/errors.ts";
import { bufHome, bufLength, ownerOf, poolCapacity, bufPool, ROWS_IN_USE, tableState } from "../../src/mem/buffer-table.ts";
import { freeBuffer, Mempool } from "../../src/mem/mempool.ts";
import { copyFrame, writeFrame } from "../../src/mem/packet.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { prng, randInt } from "../helpers/prng.ts";
import { account, availability, poolsOn } from "./accounting.ts";
import { stats, VARIANTS, type Rig, type RigOptions, type Variant } from "./rigs.ts";

// ---- frames ---------------------------------------------------------------------------------

/** `count` frames of random length (60 .. 1514) and random bytes; bytes 0-3: sequence number. */
function randomFrames(seed: number, count: number, firstSeq = 0, minLength = 60, maxLength = 1514): Uint8Array[] {
  const rand = prng(seed);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const frame = new Uint8Array(randInt(rand, minLength, maxLength));
    for (let j = 0; j < frame.length; j += 4) {
      const word = (rand() * 4294967296) >>> 0;
      frame[j] = word;
      frame[j + 1] = word >>> 8;
      frame[j + 2] = word >>> 16;
      frame[j + 3] = word >>> 24;
    }
    new DataView(frame.buffer).setUint32(0, firstSeq + i);
    out.push(frame);
  }
  return out;
}

function seqOf(frame: Uint8Array): number {
  return new DataView(frame.buffer, frame.byteOffset, frame.length).getUint32(0);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** `actual` and `expected` hold the same frames in the same order (names the first difference). */
function expectSameFrames(actual: readonly Uint8Array[], expected: readonly Uint8Array[]): void {
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (!same(actual[i]!, expected[i]!)) {
      throw new Error(
        `frame ${i} differs: got ${actual[i]!.length} bytes (seq ${seqOf(actual[i]!)}), expected ${expected[i]!.length} ` +
          `bytes (seq ${seqOf(expected[i]!)})`,
      );
    }
  }
  expect(actual.length, "frames").toBe(expected.length);
}

const totalBytes = (frames: readonly Uint8Array[]): number => frames.reduce((sum, f) => sum + f.length, 0);

// ---- a session: a rig, the test's TX pools, the final accounting -----------------------------

interface Session extends Rig {
  /** A checked mempool on the device's memory, closed by finish(). */
  txPool(count: number): Mempool;
  /** Buffers of `pool` holding `frames`, as a batch. */
  batchOf(pool: Mempool, frames: readonly Uint8Array[]): Int32Array;
  /**
   * The end of every case: accounting while open (the RX ring full, the TX ring within bounds),
   * close(), exact accounting with what the test still holds, `held` freed, every pool full, the
   * TX pools closed, no protocol violation seen by the model, the DMA memory released.
   */
  finish(held?: Iterable<number>): void;
  readonly finished: boolean;
}

let current: Session | null = null;

function open(variant: Variant, options?: RigOptions): Session {
  const rig = variant.open(options);
  const pools: Mempool[] = [];
  let finished = false;
  const session: Session = {
    ...rig,
    txPool(count) {
      const pool = new Mempool(rig.dma, { count, checked: true, name: `contract TX pool ${pools.length}` });
      pools.push(pool);
      return pool;
    },
    batchOf(pool, frames) {
      const batch = new Int32Array(frames.length);
      expect(pool.allocBatch(batch, frames.length)).toBe(frames.length);
      frames.forEach((f, i) => writeFrame(batch[i]!, f));
      return batch;
    },
    finish(held = []) {
      const heldList = [...held];
      // Still open: the receive ring is full, the transmit ring holds at most what it can.
      if (isOpen(rig.dev)) account(rig.dma, heldList, { atLeast: rig.rxRingBuffers, atMost: rig.rxRingBuffers + rig.txHolds });
      rig.dev.close();
      account(rig.dma, heldList);
      for (const b of heldList) freeBuffer(b);
      for (const pool of poolsOn(rig.dma)) expect(pool.available, `${pool.name} after close()`).toBe(pool.count);
      for (const pool of pools) pool.close();
      expect(rig.violations(), "protocol violations the model saw").toEqual([]);
      rig.dma.close();
      finished = true;
    },
    get finished() {
      return finished;
    },
  };
  current = session;
  return session;
}

afterEach((context) => {
  const session = current;
  current = null;
  if (session === null) return;
  // A failed test stops where it failed (and an it.fails one is expected to); a passing one
  // must have done its accounting.
  if (context.task.result?.state !== "fail" && context.task.fails !== true) {
    expect(session.finished, "the test ended with finish()").toBe(true);
  }
});

function isOpen(dev: NicDevice): boolean {
  try {
    dev.linkSpeed();
    return true;
  } catch (e) {
    if (e instanceof DeviceClosedError) return false;
    throw e;
  }
}

/** Everything a call must leave alone, for "checked before any ring or pool is touched". */
function snapshot(s: Rig, batch?: ArrayLike<number> | null): unknown {
  return {
    pools: availability(s.dma),
    stats: stats(s.dev),
    rings: s.ringState(),
    transmitted: s.transmitted().length,
    batch: batch == null ? null : Array.from(batch),
    home: batch == null ? null : Array.from(batch, (b) => (Number.isInteger(b) && b >= 0 && b < bufHome.length ? bufHome[b] : -1)),
  };
}

/** `call` throws `error`, and afterwards nothing a snapshot sees has changed. */
function expectRefused(
  s: Rig,
  call: () => unknown,
  error: new (...args: never[]) => Error,
  batch?: ArrayLike<number> | null,
  what?: string,
): void {
  const before = snapshot(s, batch);
  expect(call, what).toThrow(error);
  expect(snapshot(s, batch), what === undefined ? "state after the refused call" : `state after ${what}`).toEqual(before);
}

/** txBatch until all of bufs[0 .. n) are taken, letting the model work in between. */
function sendAll(s: Rig, bufs: Int32Array, n: number): void {
  let done = 0;
  for (let attempt = 0; done < n; attempt++) {
    if (attempt > 100) throw new Error(`txBatch took ${done} of ${n} buffers and then no more`);
    done += s.dev.txBatch(0, done === 0 ? bufs : bufs.subarray(done), n - done);
    s.step();
  }
}

/** Injects `frames`, receives them and sends them back, `batchSize` at a time. */
function forward(s: Rig, frames: readonly Uint8Array[], batchSize: number, rand?: () => number): void {
  const batch = new Int32Array(batchSize);
  for (let i = 0; i < frames.length;) {
    const room = Math.min(batchSize, s.rxHolds);
    const chunk = Math.min(frames.length - i, rand === undefined ? room : randInt(rand, 1, room));
    for (let k = 0; k < chunk; k++) {
      if (!s.deliver(frames[i + k]!)) throw new Error(`frame ${i + k} was dropped by the device`);
    }
    s.step();
    // Ask for more than is there: rxBatch returns what it has.
    const n = s.dev.rxBatch(0, batch, batchSize);
    expect(n).toBe(chunk);
    sendAll(s, batch, n);
    i += chunk;
  }
  s.step();
}

// ---- the contract ---------------------------------------------------------------------------

describe.each(VARIANTS)("NicDevice contract: $name", (variant) => {
  describe("data path", () => {
    it.each([1, 7, 32, 64, 256])("carries random frames through the rings and back, byte-exact and in order, in batches of %i", (size) => {
      const s = open(variant, { ringSize: 512 });
      const frames = randomFrames(1000 + size, size === 1 ? 300 : 800);
      forward(s, frames, size);
      expectSameFrames(s.transmitted(), frames);
      const st = stats(s.dev);
      // Both drivers count frames and bytes without the FCS, as the application sees them.
      expect(st).toMatchObject({
        rxPackets: frames.length,
        txPackets: frames.length,
        rxBytes: totalBytes(frames),
        txBytes: totalBytes(frames),
        rxMissed: 0,
        rxErrors: 0,
        txErrors: 0,
      });
      s.finish();
    });

    it("wraps around both rings many times (5000 frames through 64-entry rings), byte-exact", () => {
      const s = open(variant, { ringSize: 64 });
      const frames = randomFrames(2, 5000);
      forward(s, frames, 64, prng(3));
      expectSameFrames(s.transmitted(), frames);
      s.finish();
    });

    // virtio's avail.idx and used.idx run free over 16 bits (ixgbe has no such counters: its ring
    // indices wrap at the ring size, which the case above covers).
    if (variant.driver === "virtio") it("wraps the free-running 16-bit virtqueue indices (66000 short frames)", () => {
      const s = open(variant, { ringSize: 64 });
      const frames = randomFrames(4, 66_000, 0, 60, 64);
      forward(s, frames, 64);
      expectSameFrames(s.transmitted(), frames);
      s.finish();
    });

    it("forwards with unchecked pools too", () => {
      const s = open(variant, { ringSize: 64, checked: false });
      const frames = randomFrames(5, 500);
      forward(s, frames, 32, prng(6));
      const pool = new Mempool(s.dma, { count: 64, name: "unchecked TX pool" });
      const own = randomFrames(7, 40, 500);
      const batch = s.batchOf(pool, own);
      sendAll(s, batch, batch.length);
      s.step();
      expectSameFrames(s.transmitted(), [...frames, ...own]);
      s.finish();
      pool.close();
    });
  });

  describe("full and empty rings", () => {
    it("counts the overflow of a full RX ring, corrupts nothing, and drains and works again", () => {
      const s = open(variant, { ringSize: 64 });
      const over = 40;
      const frames = randomFrames(10, s.rxHolds + over);
      const placed = frames.map((f) => s.deliver(f));
      expect(placed.indexOf(false), "the first frame the device could not place").toBe(s.rxHolds);
      expect(placed.filter(Boolean).length).toBe(s.rxHolds);
      // ixgbe: MPC in rxMissed; virtio-net has no counter, the model's drop count stands in.
      expect(stats(s.dev).rxMissed + s.modelOnlyDrops(), "frames the device dropped").toBe(over);

      const batch = new Int32Array(2 * s.rxHolds);
      const n = s.dev.rxBatch(0, batch, batch.length);
      expect(n).toBe(s.rxHolds);
      expectSameFrames(Array.from(batch.subarray(0, n), copyFrame), frames.slice(0, s.rxHolds));
      freeBatch(batch, n);
      expect(s.dev.rxBatch(0, batch, batch.length)).toBe(0);
      expect(stats(s.dev)).toMatchObject({ rxPackets: s.rxHolds, rxBytes: totalBytes(frames.slice(0, s.rxHolds)), rxErrors: 0 });

      const more = randomFrames(11, 300, 1000);
      forward(s, more, 32, prng(12));
      expectSameFrames(s.transmitted(), more);
      expect(stats(s.dev).rxMissed + s.modelOnlyDrops()).toBe(over);
      s.finish();
    });

    it("returns 0 from rxBatch on an empty ring and changes nothing; txBatch with count 0 returns 0", () => {
      const s = open(variant, { ringSize: 64 });
      const batch = new Int32Array(32).fill(12345);
      expectNoChange(s, () => expect(s.dev.rxBatch(0, batch, batch.length)).toBe(0), batch);
      expectNoChange(s, () => expect(s.dev.rxBatch(0, batch, 0)).toBe(0), batch);
      expectNoChange(s, () => expect(s.dev.txBatch(0, batch, 0)).toBe(0), batch);
      expectNoChange(s, () => expect(s.dev.txBatch(0, new Int32Array(0), 0)).toBe(0), null);
      // And again once frames went through both rings.
      const frames = randomFrames(20, 10);
      forward(s, frames, 32);
      batch.fill(12345);
      expectNoChange(s, () => expect(s.dev.rxBatch(0, batch, batch.length)).toBe(0), batch);
      const sent = s.transmitted().length;
      expect(s.dev.txBatch(0, batch, 0)).toBe(0);
      s.step();
      expect(s.transmitted().length).toBe(sent);
      expect(Array.from(batch)).toEqual(new Array(32).fill(12345));
      expectSameFrames(s.transmitted(), frames);
      s.finish();
    });

    it("takes a prefix of a batch larger than the TX ring while the device sends nothing, and the rest after it sent", () => {
      const s = open(variant, { ringSize: 64 });
      const pool = s.txPool(256);
      const frames = randomFrames(30, 2 * 64 + 5);
      const batch = s.batchOf(pool, frames);
      s.holdTx(true);
      const taken = s.dev.txBatch(0, batch, batch.length);
      expect(taken).toBe(s.txHolds);
      s.step();
      expect(s.transmitted().length, "frames sent while the device was held").toBe(0);
      // The rest stays with the caller: not free, not in a ring.
      const rest = batch.subarray(taken);
      for (const b of rest) expect(bufHome[b]).toBe(0);
      account(s.dma, rest, { exactly: s.rxRingBuffers + taken });
      expect(s.dev.txBatch(0, rest, rest.length), "a full ring takes nothing").toBe(0);
      s.holdTx(false);
      s.step();
      expectSameFrames(s.transmitted(), frames.slice(0, taken));
      sendAll(s, rest, rest.length);
      expectSameFrames(s.transmitted(), frames);
      expect(stats(s.dev)).toMatchObject({ txPackets: frames.length, txBytes: totalBytes(frames), txErrors: 0 });
      s.finish();
    });

    it("hands out nothing more once every RX buffer is held, counts the missed frames, and resumes after they are freed", () => {
      const poolSize = 256;
      const s = open(variant, { ringSize: 64, poolSize });
      const held: number[] = [];
      const injected: Uint8Array[] = [];
      const received: Uint8Array[] = [];
      const batch = new Int32Array(64);
      let seq = 0;
      const inject = (count: number): void => {
        for (const f of randomFrames(40 + seq, count, seq)) {
          injected.push(f);
          s.deliver(f);
        }
        seq += count;
        s.step();
      };
      const receive = (keep: boolean): number => {
        const n = s.dev.rxBatch(0, batch, batch.length);
        for (let i = 0; i < n; i++) {
          received.push(copyFrame(batch[i]!));
          if (keep) held.push(batch[i]!);
          else freeBuffer(batch[i]!);
        }
        return n;
      };

      // Hold every frame received until the receive pool is empty.
      let rxPool: Mempool | null = null;
      for (let round = 0; rxPool === null || rxPool.available > 0; round++) {
        if (round > 100) throw new Error("the receive pool never ran dry");
        inject(16);
        receive(true);
        rxPool ??= held.length > 0 ? (ownerOf(held[0]!) as Mempool) : null;
      }
      expect(held.length, "buffers held: the pool minus the ring").toBe(poolSize - s.rxRingBuffers);
      account(s.dma, held, { exactly: s.rxRingBuffers });

      // More frames, polled: nothing more is handed out, and the device counts what it missed.
      const missedBefore = stats(s.dev).rxMissed;
      for (let round = 0; round < 8; round++) {
        inject(16);
        expect(receive(true), "frames handed out from an empty pool").toBe(0);
      }
      expect(stats(s.dev).rxMissed, "rxMissed while the pool was empty").toBeGreaterThan(missedBefore);
      account(s.dma, held, { exactly: s.rxRingBuffers });

      // Free them all: what the ring kept comes out, then reception goes on as before.
      for (const b of held.splice(0)) freeBuffer(b);
      for (let round = 0; receive(false) > 0; round++) expect(round).toBeLessThan(10);
      for (let round = 0; round < 4; round++) {
        const before = received.length;
        inject(32);
        expect(receive(false)).toBe(32);
        expectSameFrames(received.slice(before), injected.slice(-32));
      }

      // Every frame was received (byte-exact, in order) or counted as missed.
      let last = -1;
      for (const frame of received) {
        const n = seqOf(frame);
        expect(n).toBeGreaterThan(last);
        expect(same(frame, injected[n]!), `received frame ${n} is what was injected`).toBe(true);
        last = n;
      }
      const st = stats(s.dev);
      expect(received.length + st.rxMissed + s.modelOnlyDrops(), "received + missed").toBe(injected.length);
      expect(st.rxPackets).toBe(received.length);
      s.finish();
    });
  });

  describe("arguments, the same for both drivers, checked before any ring or pool is touched", () => {
    /** A device with frames waiting in its RX ring, traffic behind it, and a batch ready to send. */
    interface Primed {
      s: Session;
      pool: Mempool;
      good: Int32Array;
      goodFrames: Uint8Array[];
      /** Frames waiting in the RX ring, in order. */
      pending: Uint8Array[];
      /** Frames the test received (and freed) besides the first three and the pending ones. */
      extraRx: number;
    }

    function primed(): Primed {
      const s = open(variant, { ringSize: 64 });
      forward(s, randomFrames(50, 3), 32);
      const pending = randomFrames(51, 5, 100);
      for (const f of pending) expect(s.deliver(f)).toBe(true);
      const pool = s.txPool(64);
      const goodFrames = randomFrames(52, 4, 200);
      return { s, pool, good: s.batchOf(pool, goodFrames), goodFrames, pending, extraRx: 0 };
    }

    /** After refused calls: the next good calls behave as if there had been none. */
    function goOn(p: Primed): void {
      const { s, good, goodFrames, pending } = p;
      const batch = new Int32Array(32).fill(-7);
      // With frames waiting, max 0 takes none and changes nothing ...
      expectNoChange(s, () => expect(s.dev.rxBatch(0, batch, 0)).toBe(0), batch);
      // ... and rxBatch writes bufs[0 .. n) only.
      expect(s.dev.rxBatch(0, batch, 2)).toBe(2);
      expect(Array.from(batch.subarray(2))).toEqual(new Array(30).fill(-7));
      const n = 2 + s.dev.rxBatch(0, batch.subarray(2), 30);
      expectSameFrames(Array.from(batch.subarray(0, n), copyFrame), pending);
      freeBatch(batch, n);
      // txBatch reads bufs[0 .. count) only: what lies beyond is not looked at.
      const padded = new Int32Array(good.length + 3).fill(-1);
      padded.set(good);
      sendAll(s, padded, good.length);
      expect(s.transmitted().length).toBe(3 + goodFrames.length);
      expectSameFrames(s.transmitted().slice(3), goodFrames);
      expect(stats(s.dev)).toMatchObject({ rxPackets: 3 + p.extraRx + pending.length, txPackets: 3 + goodFrames.length, rxErrors: 0, txErrors: 0 });
      s.finish();
    }

    it("refuses a max or count larger than the batch with a RangeError", () => {
      const p = primed();
      const { s, good } = p;
      const rx = new Int32Array(8);
      expectRefused(s, () => s.dev.rxBatch(0, rx, 9), RangeError, rx);
      expectRefused(s, () => s.dev.rxBatch(0, new Int32Array(0), 1), RangeError);
      expectRefused(s, () => s.dev.txBatch(0, good, good.length + 1), RangeError, good);
      expectRefused(s, () => s.dev.txBatch(0, new Int32Array(0), 1), RangeError);
      goOn(p);
    });

    it("refuses a NaN or fractional max or count with a TypeError and a negative one with a RangeError", () => {
      const p = primed();
      const { s, good } = p;
      const rx = new Int32Array(8);
      for (const [n, error] of [[Number.NaN, TypeError], [1.5, TypeError], [0.5, TypeError], [-1, RangeError]] as const) {
        expectRefused(s, () => s.dev.rxBatch(0, rx, n), error, rx);
        expectRefused(s, () => s.dev.txBatch(0, good, n), error, good);
      }
      goOn(p);
    });

    it("refuses a batch that is not an Int32Array with a TypeError", () => {
      const p = primed();
      const { s, good } = p;
      const numbers = Array.from(good);
      const bad: unknown[] = [numbers, Uint32Array.from(numbers), Float64Array.from(numbers), null, undefined, {}];
      for (const batch of bad) {
        const b = batch as Int32Array;
        expectRefused(s, () => s.dev.rxBatch(0, b, 2), TypeError);
        expectRefused(s, () => s.dev.txBatch(0, b, 2), TypeError, good);
      }
      goOn(p);
    });

    it("refuses a bad queue number with a RangeError", () => {
      const p = primed();
      const { s, good } = p;
      const rx = new Int32Array(8);
      for (const q of [1, -1, 0.5, Number.NaN, 64, 2 ** 32]) {
        expectRefused(s, () => s.dev.rxBatch(q, rx, rx.length), RangeError, rx);
        expectRefused(s, () => s.dev.txBatch(q, good, good.length), RangeError, good);
      }
      goOn(p);
    });

    it("refuses a batch with a bad buffer number anywhere in it with a RangeError, and sends none of it", () => {
      const p = primed();
      const { s, good } = p;
      // A buffer of a pool that was closed since. (Made last: a later pool would reuse its rows.)
      const closed = new Mempool(s.dma, { count: 4, checked: true, name: "closed pool" });
      const gone = closed.alloc();
      freeBuffer(gone);
      closed.close();
      // (A fractional buffer number cannot be: an Int32Array batch truncates it when it is stored.)
      const bad: Array<[string, number]> = [
        ["-1", -1],
        ["a large negative number", -123_456],
        ["the first row past every pool", tableState[ROWS_IN_USE]!],
        ["2**31 - 1", 0x7fff_ffff],
        ["a buffer of a closed pool", gone],
      ];
      for (const [what, b] of bad) {
        for (const at of [0, 2, 4]) {
          const batch = new Int32Array(5);
          batch.set(good.subarray(0, at), 0);
          batch[at] = b;
          batch.set(good.subarray(at, 4), at + 1);
          expectRefused(s, () => s.dev.txBatch(0, batch, 5), RangeError, batch, `${what} (${b}) at ${at}`);
        }
      }
      // Nothing is taken back before the check either: not even a buffer that would be refused
      // for its length (length 0) ahead of the bad number.
      const empty = p.pool.alloc();
      bufLength[empty] = 0;
      const mixed = Int32Array.of(good[0]!, empty, -1, good[1]!);
      expectRefused(s, () => s.dev.txBatch(0, mixed, 4), RangeError, mixed, "-1 after a buffer of length 0");
      expect(bufHome[empty], "the length-0 buffer is still the caller's").toBe(0);
      freeBuffer(empty);
      goOn(p);
    });

    // The allocator tells its pools when it closes (DmaAllocator.onClose), and they give their
    // rows back at once: the number is no buffer any more.
    it("refuses a buffer of a pool whose DMA allocator was closed with a RangeError, and sends none of the batch", () => {
      const p = primed();
      const { s, good } = p;
      const otherDma = new SimDma("closed DMA");
      const orphaned = new Mempool(otherDma, { count: 4, checked: true, name: "pool on a closed allocator" }).alloc();
      writeFrame(orphaned, new Uint8Array(64).fill(9));
      otherDma.close();
      const batch = Int32Array.of(good[0]!, orphaned, good[1]!);
      expectRefused(s, () => s.dev.txBatch(0, batch, 3), RangeError, batch, "a buffer of a pool whose allocator was closed");
      goOn(p);
    });

    it("refuses a buffer that is free in a checked pool with a BufferOwnershipError, and sends none of the batch", () => {
      const p = primed();
      const { s, pool, good } = p;
      const freed = pool.alloc();
      writeFrame(freed, new Uint8Array(100).fill(7));
      freeBuffer(freed);
      const batch = Int32Array.of(good[0]!, good[1]!, freed, good[2]!);
      expectRefused(s, () => s.dev.txBatch(0, batch, 4), BufferOwnershipError, batch);
      // A receive buffer given back already (the device's receive pools are checked too): the
      // first pending frame's.
      const rx = new Int32Array(1);
      expect(s.dev.rxBatch(0, rx, 1)).toBe(1);
      expect(same(copyFrame(rx[0]!), p.pending.shift()!)).toBe(true);
      p.extraRx++;
      freeBuffer(rx[0]!);
      const batch2 = Int32Array.of(good[0]!, good[1]!, rx[0]!);
      expectRefused(s, () => s.dev.txBatch(0, batch2, 3), BufferOwnershipError, batch2);
      goOn(p);
    });

    it("takes a buffer of length 0 or longer than its capacity, does not send it, returns it to its pool and counts it in txErrors", () => {
      const s = open(variant, { ringSize: 64 });
      const pool = s.txPool(16);
      const frames = randomFrames(60, 4);
      const batch = s.batchOf(pool, frames);
      const empty = pool.alloc();
      bufLength[empty] = 0;
      const oversize = pool.alloc();
      bufLength[oversize] = poolCapacity[bufPool[oversize]!]! + 1;
      const mixed = Int32Array.of(batch[0]!, empty, batch[1]!, batch[2]!, oversize, batch[3]!);
      const available = pool.available;
      expect(s.dev.txBatch(0, mixed, mixed.length), "all taken").toBe(mixed.length);
      s.step();
      expect(bufHome[empty], "the empty buffer is back home").toBe(1);
      expect(bufHome[oversize], "the oversize buffer is back home").toBe(1);
      expect(pool.available).toBeGreaterThanOrEqual(available + 2);
      expectSameFrames(s.transmitted(), frames);
      expect(stats(s.dev)).toMatchObject({ txPackets: 4, txBytes: totalBytes(frames), txErrors: 2 });
      s.finish();
    });
  });

  describe("control", () => {
    it("reports the MAC address as a fresh 6-byte copy, the link speed, and takes setPromisc", () => {
      const s = open(variant, { ringSize: 64 });
      const mac = s.dev.macAddress();
      expect(mac).toBeInstanceOf(Uint8Array);
      expect(mac.length).toBe(6);
      mac.fill(0);
      expect(s.dev.macAddress()).not.toEqual(mac);
      expect(s.dev.linkSpeed()).toBeGreaterThan(0);
      s.dev.setPromisc(false);
      s.dev.setPromisc(true);
      const frames = randomFrames(80, 20);
      forward(s, frames, 8);
      expectSameFrames(s.transmitted(), frames);
      s.finish();
    });
  });

  describe("close()", () => {
    it("returns the buffers in the TX and RX rings to their pools; then refuses calls but still reports stats", () => {
      const s = open(variant, { ringSize: 64 });
      forward(s, randomFrames(70, 20), 8);
      // Frames waiting in the RX ring, two received frames held, frames stuck in the TX ring.
      for (const f of randomFrames(71, 10, 100)) expect(s.deliver(f)).toBe(true);
      const rx = new Int32Array(2);
      expect(s.dev.rxBatch(0, rx, 2)).toBe(2);
      const pool = s.txPool(64);
      const tx = s.batchOf(pool, randomFrames(72, 30, 200));
      s.holdTx(true);
      expect(s.dev.txBatch(0, tx, tx.length)).toBe(tx.length);
      account(s.dma, rx, { atLeast: s.rxRingBuffers + tx.length, atMost: s.rxRingBuffers + s.txHolds });
      const before = stats(s.dev);

      s.dev.close();
      account(s.dma, rx);
      expect(pool.available, "the TX ring's buffers are back").toBe(pool.count);
      const closed: Array<[string, () => unknown]> = [
        ["rxBatch", () => s.dev.rxBatch(0, new Int32Array(4), 4)],
        ["txBatch", () => s.dev.txBatch(0, rx, 1)],
        ["txBatch of nothing", () => s.dev.txBatch(0, new Int32Array(0), 0)],
        ["rxBatch with bad arguments", () => s.dev.rxBatch(7, null as unknown as Int32Array, Number.NaN)],
        ["setPromisc", () => s.dev.setPromisc(false)],
        ["linkSpeed", () => s.dev.linkSpeed()],
        ["macAddress", () => s.dev.macAddress()],
      ];
      for (const [what, call] of closed) expect(call, what).toThrow(DeviceClosedError);
      expect(stats(s.dev), "readStats after close()").toEqual(before);
      expect(() => s.dev.close()).not.toThrow();
      expect(stats(s.dev)).toEqual(before);
      s.holdTx(false);
      s.finish(rx); // closes again
    });
  });

  describe("link", () => {
    it("fails to open with a DeviceTimeoutError when the link stays down past linkTimeoutMs, leaving every buffer in its pool", () => {
      const dma = new SimDma("contract link DMA");
      const start = performance.now();
      expect(() => variant.open({ ringSize: 64, link: false, linkTimeoutMs: 50, dma })).toThrow(DeviceTimeoutError);
      expect(performance.now() - start).toBeGreaterThanOrEqual(50);
      expect(performance.now() - start).toBeLessThan(2000);
      // Nobody has a device to close: the driver gave back what its rings held on the way out.
      for (const pool of poolsOn(dma)) expect(pool.available, `${pool.name} after the failed open`).toBe(pool.count);
      dma.close();
    });

    it("opens without waiting with linkTimeoutMs: 0, and reports the link as down", () => {
      const start = performance.now();
      const s = open(variant, { ringSize: 64, link: false, linkTimeoutMs: 0 });
      expect(performance.now() - start).toBeLessThan(1000);
      expect(s.dev.linkSpeed()).toBe(0);
      s.finish();
    });
  });
});

function freeBatch(bufs: Int32Array, n: number): void {
  for (let i = 0; i < n; i++) freeBuffer(bufs[i]!);
}

/** `call` changes nothing a snapshot sees. */
function expectNoChange(s: Rig, call: () => void, batch: Int32Array | null): void {
  const before = snapshot(s, batch);
  call();
  s.step();
  expect(snapshot(s, batch)).toEqual(before);
}
