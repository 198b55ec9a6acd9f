/**
 * TCP segmentation offload on the 82599 (datasheet 7.2.4): a super-frame of up to 64 KB in one
 * buffer, a context with MSS and L4LEN, data descriptors of at most 16 KB each with PAYLEN the
 * payload; the model cuts it as the hardware does and computes each segment's checksums from the
 * seed requestTso left in the frame.
 */
import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { NotSupportedError } from "../../src/errors.ts";
import { bufHome, bufTxOffload } from "../../src/mem/buffer-table.ts";
import { requestChecksum, requestTso } from "../../src/mem/offload.ts";
import { dataOf } from "../../src/mem/packet.ts";
import { checkFrameChecksums, pseudoHeaderSum } from "../../src/net/checksum.ts";
import { segmentTcp } from "../../src/net/tcp-segment.ts";
import * as M from "../../src/sim/ixgbe/model-registers.ts";
import { buildFrame, type BuiltFrame, type FrameSpec } from "../helpers/frames.ts";
import { prng, randInt } from "../helpers/prng.ts";
import { bufferWith, expectSameFrames, openSimPort } from "./helpers.ts";
import { padded, poolFor, wire } from "./offload-helpers.ts";

/** Data capacity of a 64 KB pool entry (64 bytes of headroom). */
const BIG = 65536 - 64;

function superFrame(rand: () => number, spec: Partial<FrameSpec> & { payload: number }): BuiltFrame {
  return buildFrame({ proto: "tcp", tcpFlags: 0x19 /* FIN PSH ACK */, ...spec }, rand);
}

/** The segments on the wire: segmentTcp's, a last one under 60 bytes padded (HLREG0.TXPADEN). */
function expectedSegments(f: BuiltFrame, mss: number, ipv6 = false): Uint8Array[] {
  return segmentTcp(f.bytes, f.l2, f.l3, f.l4, mss, ipv6).map(padded);
}

describe("ixgbe TCP segmentation offload", () => {
  it("cuts super-frames of several sizes into correctly sized, correctly checksummed frames", () => {
    const { model, dev } = openSimPort({ txRingSize: 256 });
    expect(dev.offloads.tso).toBe(true);
    const pool = poolFor(dev, 16, 65536);
    const rand = prng(21);
    const frames = wire(model);
    const cases: [Partial<FrameSpec> & { payload: number }, number][] = [
      [{ payload: 100 }, 1448], // one segment
      [{ payload: 1448 * 3 }, 1448], // exactly three
      [{ payload: 1448 * 3 + 17 }, 1448],
      [{ payload: 16384 }, 536], // the buffer just over one data descriptor
      [{ payload: 40000, tcpOptions: 12 }, 1448],
      [{ payload: 30000, vlan: true }, 1460],
      [{ payload: 30000, ipv6: true }, 1440],
      [{ payload: 20000, ipv6: true, ipOptions: 8, tcpOptions: 20 }, 1000],
      [{ payload: 20000, ipOptions: 12 }, 1200],
      [{ payload: BIG - 54 }, 1448], // the whole 64 KB buffer: four data descriptors
    ];
    for (const [spec, mss] of cases) {
      const f = superFrame(rand, spec);
      const start = frames.length;
      const b = bufferWith(pool, f.bytes);
      requestTso(b, mss);
      expect(dev.txBatch(0, Int32Array.of(b), 1)).toBe(1);
      const got = frames.slice(start);
      expectSameFrames(got, expectedSegments(f, mss, spec.ipv6));
      for (const s of got) {
        expect(s.length).toBeLessThanOrEqual(1514 + 4);
        expect(checkFrameChecksums(s, 0, s.length)).toEqual({ ip: spec.ipv6 ? "none" : "good", l4: "good" });
      }
    }
    dev.close();
    expect(pool.available).toBe(pool.count);
  });

  it("gives a super-frame one data descriptor per 16 KB and a context only for a new shape", () => {
    const { model, dev } = openSimPort({ txRingSize: 256 });
    const pool = poolFor(dev, 4, 65536);
    const rand = prng(22);
    const frames = wire(model);
    const tdt = () => model.regs.peek32(M.TDT(0));
    const send = (payload: number, mss: number) => {
      const b = bufferWith(pool, superFrame(rand, { payload }).bytes);
      requestTso(b, mss);
      expect(dev.txBatch(0, Int32Array.of(b), 1)).toBe(1);
    };
    send(40000, 1448); // 40054 bytes: context + 3 data descriptors
    expect(tdt()).toBe(4);
    send(16384 - 54, 1448); // exactly 16 KB: one data descriptor, same context
    expect(tdt()).toBe(5);
    send(16384 - 53, 1448); // one byte more: two
    expect(tdt()).toBe(7);
    send(3000, 1000); // another MSS: a new context
    expect(tdt()).toBe(9);
    expect(frames.length).toBe(28 + 12 + 12 + 3);
    dev.close();
  });

  it("fills and wraps the ring: takes super-frames while their descriptors fit, and every frame arrives", () => {
    const { model, dev } = openSimPort({ txRingSize: 64 }, { asynchronous: true, seed: 5 });
    const pool = poolFor(dev, 48, 65536);
    const rand = prng(23);
    const frames = wire(model);
    const expected: Uint8Array[] = [];
    const batch = new Int32Array(24);
    let pending = 0; // buffers in batch[0 .. pending) not taken yet
    let full = 0;
    for (let round = 0; round < 120; round++) {
      while (pending < batch.length && pool.available > 0) {
        const spec = { payload: randInt(rand, 1, rand() < 0.3 ? BIG - 54 : 20000), ipv6: rand() < 0.3 };
        const mss = rand() < 0.5 ? 1440 : randInt(rand, 200, 1440); // 74 + 1440 = 1514 with IPv6
        const f = superFrame(rand, spec);
        expected.push(...expectedSegments(f, mss, spec.ipv6));
        const b = bufferWith(pool, f.bytes);
        requestTso(b, mss);
        batch[pending++] = b;
      }
      const before = dev.txBatch(0, batch, 0);
      expect(before).toBe(0);
      const taken = dev.txBatch(0, batch, pending);
      if (taken < pending) full++;
      // What was not taken keeps its request and its place, in order.
      for (let i = taken; i < pending; i++) expect(bufTxOffload[batch[i]!]).not.toBe(0);
      batch.copyWithin(0, taken, pending);
      pending -= taken;
      model.step();
    }
    while (pending > 0) {
      model.drain();
      const taken = dev.txBatch(0, batch, pending);
      batch.copyWithin(0, taken, pending);
      pending -= taken;
    }
    model.drain();
    expect(full).toBeGreaterThan(10); // the ring was full often
    expectSameFrames(frames, expected);
    dev.txBatch(0, batch, 0);
    dev.close();
    expect(pool.available).toBe(pool.count); // every buffer reclaimed once
  });

  it("a TSO request on a device opened without TSO is a NotSupportedError before anything is taken", () => {
    const { model, dev } = openSimPort({ offloads: { tso: false } });
    expect(dev.offloads).toMatchObject({ txChecksum: true, tso: false });
    const pool = poolFor(dev, 4, 65536);
    const rand = prng(24);
    const plain = bufferWith(pool, buildFrame({ proto: "udp", payload: 10 }, rand).bytes);
    requestChecksum(plain);
    const big = bufferWith(pool, superFrame(rand, { payload: 5000 }).bytes);
    requestTso(big, 1448);
    expect(() => dev.txBatch(0, Int32Array.of(plain, big), 2)).toThrow(NotSupportedError);
    expect(model.regs.peek32(M.TDT(0))).toBe(0);
    expect([bufHome[plain], bufHome[big]]).toEqual([0, 0]); // still the caller's
    pool.free(plain);
    pool.free(big);
    dev.close();
  });

  it("TSO needs the checksum offload: off with txChecksum off, and asking for both is a RangeError", () => {
    const off = openSimPort({ offloads: { txChecksum: false } });
    expect(off.dev.offloads.tso).toBe(false);
    off.dev.close();
    expect(() => openSimPort({ offloads: { txChecksum: false, tso: true } })).toThrow(/tso needs offloads.txChecksum/);
  });

  it("a seed with the length in it (not what 7.2.4 asks) gives segments with wrong checksums", () => {
    const { model, dev } = openSimPort();
    const pool = poolFor(dev, 2, 65536);
    const frames = wire(model);
    const f = superFrame(prng(25), { payload: 5000 });
    const b = bufferWith(pool, f.bytes);
    requestTso(b, 1448);
    const bytes = dataOf(b);
    const seed = pseudoHeaderSum(bytes, f.l2, false, 6, f.bytes.length - f.l2 - f.l3);
    bytes[f.l2 + f.l3 + 16] = seed >> 8;
    bytes[f.l2 + f.l3 + 17] = seed & 0xff;
    expect(dev.txBatch(0, Int32Array.of(b), 1)).toBe(1);
    expect(frames).toHaveLength(4);
    for (const s of frames) expect(checkFrameChecksums(s, 0, s.length)).toEqual({ ip: "good", l4: "bad" });
    dev.close();
  });

  it("refuses, and counts, a super-frame whose segments would be longer than maxFrameSize", () => {
    const { model, dev } = openSimPort();
    const pool = poolFor(dev, 2, 65536);
    const frames = wire(model);
    const b = bufferWith(pool, superFrame(prng(26), { payload: 5000 }).bytes);
    requestTso(b, 1480); // 54 + 1480 = 1534 > 1518
    expect(dev.txBatch(0, Int32Array.of(b), 1)).toBe(1);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats.txErrors).toBe(1);
    expect(frames).toEqual([]);
    expect(pool.available).toBe(pool.count);
    dev.close();
  });
});
