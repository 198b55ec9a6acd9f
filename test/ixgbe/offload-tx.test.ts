/**
 * Transmit checksum offload on the 82599 (datasheet 7.2.3.2.3 context descriptors, 7.2.5
 * checksum insertion): the driver's contexts and data descriptors against the model, which
 * computes the checksums as the hardware does, from whatever the descriptors and the frame say.
 */
import { describe, expect, it } from "vitest";
import { bufIovaHi, bufIovaLo, bufL2Len, bufL3Len, bufTxOffload } from "../../src/mem/buffer-table.ts";
import { requestChecksum, TX_OFFLOAD } from "../../src/mem/offload.ts";
import { dataOf } from "../../src/mem/packet.ts";
import { checkFrameChecksums } from "../../src/net/checksum.ts";
import * as M from "../../src/sim/ixgbe/model-registers.ts";
import { buildFrame } from "../helpers/frames.ts";
import { prng, randomBytes } from "../helpers/prng.ts";
import { allowViolations, bufferWith, expectSameFrames, openSimPort } from "./helpers.ts";
import { padded, poolFor, randomFrameOf, wire } from "./offload-helpers.ts";

/** Copies `good` into a buffer with both checksum fields garbled, and asks for them. */
function requested(pool: ReturnType<typeof poolFor>, good: ReturnType<typeof randomFrameOf>, rand: () => number): number {
  const b = bufferWith(pool, good.bytes);
  const bytes = dataOf(b);
  const ipv6 = ((bytes[good.l2 - 2]! << 8) | bytes[good.l2 - 1]!) === 0x86dd;
  const l4 = good.l2 + good.l3;
  const udp = good.l4 === 8;
  bytes.set(randomBytes(rand, 2), l4 + (udp ? 6 : 16));
  if (!ipv6) bytes.set(randomBytes(rand, 2), good.l2 + 10);
  requestChecksum(b);
  return b;
}

describe("ixgbe transmit checksum offload", () => {
  it("fills in the checksums of random TCP and UDP frames over IPv4 and IPv6 byte-exact, as software would", () => {
    const { model, dev } = openSimPort({ txRingSize: 128 });
    expect(dev.offloads.txChecksum).toBe(true);
    const pool = poolFor(dev, 256);
    const rand = prng(11);
    const frames = wire(model);
    const expected: Uint8Array[] = [];
    const batch = new Int32Array(16);
    for (let round = 0; round < 100; round++) {
      const n = 1 + Math.floor(rand() * 16);
      for (let i = 0; i < n; i++) {
        const good = randomFrameOf(rand);
        expected.push(padded(good.bytes));
        batch[i] = requested(pool, good, rand);
      }
      expect(dev.txBatch(0, batch, n)).toBe(n);
      for (let i = 0; i < n; i++) expect(bufTxOffload[batch[i]!]).toBe(0); // a request applies to one send
    }
    expectSameFrames(frames, expected);
    for (const f of frames) expect(checkFrameChecksums(f, 0, f.length)).not.toMatchObject({ l4: "bad" });
    dev.close();
  });

  it("with txChecksum off completes the requests in software: the same bytes, and no context descriptor", () => {
    const { model, dev } = openSimPort({ txRingSize: 128, offloads: { txChecksum: false } });
    expect(dev.offloads).toMatchObject({ txChecksum: false, tso: false, rxChecksum: true });
    const pool = poolFor(dev, 256);
    const rand = prng(12);
    const frames = wire(model);
    const expected: Uint8Array[] = [];
    const batch = new Int32Array(1);
    for (let i = 0; i < 300; i++) {
      const good = randomFrameOf(rand);
      expected.push(padded(good.bytes));
      batch[0] = requested(pool, good, rand);
      expect(dev.txBatch(0, batch, 1)).toBe(1);
    }
    expectSameFrames(frames, expected);
    expect(model.regs.peek32(M.TDT(0))).toBe(300 % 128); // one descriptor per frame
    dev.close();
  });

  it("writes a context descriptor only for a request shape neither of its two contexts holds", () => {
    const { model, dev } = openSimPort({ txRingSize: 1024 });
    const pool = poolFor(dev, 64);
    const rand = prng(13);
    const frames = wire(model);
    const tdt = () => model.regs.peek32(M.TDT(0));
    const shapes = [
      { proto: "tcp", payload: 100 },
      { proto: "udp", payload: 100 },
      { proto: "tcp", payload: 100, ipv6: true },
    ] as const;
    const send = (shape: (typeof shapes)[number]) => {
      const good = buildFrame(shape, rand);
      expect(dev.txBatch(0, Int32Array.of(requested(pool, good, rand)), 1)).toBe(1);
      return good.bytes;
    };
    const expected: Uint8Array[] = [];
    // One shape: one context for all.
    for (let i = 0; i < 50; i++) expected.push(send(shapes[0]));
    expect(tdt()).toBe(51);
    // Two alternating shapes: the second context once, then both are reused.
    for (let i = 0; i < 50; i++) expected.push(send(shapes[i % 2]!));
    expect(tdt()).toBe(51 + 51);
    // Three in turn: each replaces the context written less recently, so every frame needs one.
    for (let i = 0; i < 60; i++) expected.push(send(shapes[(i + 2) % 3]!));
    expect(tdt()).toBe(102 + 120);
    expectSameFrames(frames, expected);
    dev.close();
  });

  it("a request with wrong lengths or a dirty IPv4 checksum field gives a wrong checksum, not a silently right one", () => {
    const { model, dev } = openSimPort();
    const pool = poolFor(dev, 16);
    const rand = prng(14);
    const frames = wire(model);
    const good = buildFrame({ proto: "tcp", payload: 200 }, rand);
    const send = (spoil: (b: number) => void) => {
      const b = requested(pool, good, rand);
      spoil(b);
      expect(dev.txBatch(0, Int32Array.of(b), 1)).toBe(1);
      return frames.at(-1)!;
    };
    // IPLEN 4 bytes too long: the device sums and stores the TCP checksum 4 bytes too far in.
    let f = send((b) => { bufL3Len[b] = bufL3Len[b]! + 4; });
    expect(f).not.toEqual(good.bytes);
    expect(checkFrameChecksums(f, 0, f.length).l4).toBe("bad");
    // MACLEN 18 on an untagged frame: both checksums land in the wrong place.
    f = send((b) => { bufL2Len[b] = 18; });
    expect(checkFrameChecksums(f, 0, f.length)).toEqual({ ip: "bad", l4: "bad" });
    // The IPv4 checksum field is summed as it is: left non-zero, the header checksum is wrong.
    f = send((b) => { dataOf(b)[good.l2 + 10] = 0x12; });
    expect(checkFrameChecksums(f, 0, f.length)).toEqual({ ip: "bad", l4: "good" });
    // The pseudo-header seed is summed too: without it the TCP checksum is wrong.
    f = send((b) => { dataOf(b).fill(0, good.l2 + good.l3 + 16, good.l2 + good.l3 + 18); });
    expect(checkFrameChecksums(f, 0, f.length)).toEqual({ ip: "good", l4: "bad" });
    // And with everything as requestChecksum left it, right.
    f = send(() => {});
    expect(f).toEqual(good.bytes);
    dev.close();
  });

  it("refuses (and counts) a frame with a request that is longer than maxFrameSize, as one without", () => {
    const { dev, model } = openSimPort();
    const pool = poolFor(dev, 16);
    const frames = wire(model);
    const long = buildFrame({ proto: "udp", payload: 1519 - 42 }, prng(15)); // 1519 bytes: over 1514 + a VLAN tag
    const b = bufferWith(pool, long.bytes);
    requestChecksum(b);
    expect(dev.txBatch(0, Int32Array.of(b), 1)).toBe(1);
    const stats = { rxPackets: 0, txPackets: 0, rxBytes: 0, txBytes: 0, rxMissed: 0, rxErrors: 0, txErrors: 0 };
    dev.readStats(stats);
    expect(stats.txErrors).toBe(1);
    expect(frames).toEqual([]);
    expect(pool.available).toBe(pool.count);
    dev.close();
  });

  it("keeps the request of a buffer the full ring did not take", () => {
    const { dev, model } = openSimPort({ txRingSize: 64 });
    const pool = poolFor(dev, 128);
    const rand = prng(16);
    model.faults.stallTx = true;
    const batch = new Int32Array(80);
    for (let i = 0; i < 80; i++) batch[i] = requested(pool, buildFrame({ proto: "tcp", payload: 10 }, rand), rand);
    // 63 descriptors: one context and 62 frames.
    expect(dev.txBatch(0, batch, 80)).toBe(62);
    for (let i = 62; i < 80; i++) expect(bufTxOffload[batch[i]!]).toBe(TX_OFFLOAD.tcpChecksum | TX_OFFLOAD.ipChecksum);
    model.faults.stallTx = false;
    model.step();
    for (const b of batch.subarray(62)) pool.free(b);
    dev.close();
  });
});

describe("the 82599 model's transmit offload rules", () => {
  /** The model's TX ring 0 as words, to hand-write descriptors at TDT. */
  function ring(port: ReturnType<typeof openSimPort>): Uint32Array {
    const base = port.model.regs.peek32(M.TDBAL(0)) + port.model.regs.peek32(M.TDBAH(0)) * 2 ** 32;
    const bytes = port.dma.resolve(base, port.model.regs.peek32(M.TDLEN(0)), "test", "test");
    return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  }

  it("an offload with a context no descriptor loaded, IXSM with an IPv6 context, and RS in a context descriptor are violations", () => {
    const port = openSimPort();
    const { model, dev } = port;
    allowViolations(model);
    const pool = poolFor(dev, 4);
    const good = buildFrame({ proto: "udp", payload: 40 }, prng(17));
    const b = bufferWith(pool, good.bytes);
    const words = ring(port);
    const frames = wire(model);
    const data = (at: number, olinfo: number) => {
      words[at * 4] = bufIovaLo[b]!;
      words[at * 4 + 1] = bufIovaHi[b]!;
      words[at * 4 + 2] = (M.TXD_DTYP_DATA | M.TXD_DCMD_DEXT | M.TXD_DCMD_IFCS | M.TXD_DCMD_EOP | good.bytes.length) >>> 0;
      words[at * 4 + 3] = ((good.bytes.length << M.TXD_PAYLEN_SHIFT) | olinfo) >>> 0;
    };
    const context = (at: number, ipv4: boolean, extra = 0) => {
      words[at * 4] = (14 << M.TXCTX_MACLEN_SHIFT) | 20;
      words[at * 4 + 1] = 0;
      words[at * 4 + 2] = (M.TXD_DTYP_CONTEXT | M.TXD_DCMD_DEXT | (ipv4 ? M.TXCTX_TUCMD_IPV4 : 0) | extra) >>> 0;
      words[at * 4 + 3] = 0;
    };
    data(0, M.TXD_POPTS_TXSM | (1 << M.TXD_IDX_SHIFT)); // context 1 was never loaded
    model.regs.write32(M.TDT(0), 1);
    context(1, false, M.TXD_DCMD_RS);
    data(2, M.TXD_POPTS_IXSM);
    model.regs.write32(M.TDT(0), 3);
    expect(model.violations.join("\n")).toMatch(/no context descriptor loaded/);
    expect(model.violations.join("\n")).toMatch(/RS is reserved in a context descriptor/);
    expect(model.violations.join("\n")).toMatch(/IXSM with context 0, an IPv6 one/);
    expect(frames).toHaveLength(2); // sent as they are in memory
    expect(frames[0]).toEqual(good.bytes);
    dev.close();
  });
});
