/**
 * Receive-side scaling end to end: the driver programs RSSRK, RETA, RXCSUM.PCSD and MRQC
 * (ixgbe-rss.ts) and the model, which steers nothing unless they are programmed, spreads flows
 * over the receive queues by its own Toeplitz hash (toeplitz.ts, checked against Microsoft's
 * vectors in toeplitz.test.ts).
 */
import { describe, expect, it } from "vitest";
import type { NicDevice } from "../../src/device.ts";
import { IXGBE_RSS_MRQC } from "../../src/drivers/ixgbe/ixgbe-rss.ts";
import { copyFrame } from "../../src/mem/packet.ts";
import { freeBuffer } from "../../src/mem/mempool.ts";
import * as M from "../../src/sim/ixgbe/model-registers.ts";
import { toeplitzHash } from "../../src/sim/ixgbe/toeplitz.ts";
import { openSimPort } from "./helpers.ts";
import { MS_IPV4_VECTORS, MS_IPV6_VECTORS, MS_RSS_KEY, flowFrame, ipv4Bytes, ipv6Bytes, type Flow } from "./rss-frames.ts";

/** Every frame waiting in each receive queue, in order. */
function drain(dev: NicDevice, queues: number): Uint8Array[][] {
  const bufs = new Int32Array(32);
  const out: Uint8Array[][] = [];
  for (let q = 0; q < queues; q++) {
    const got: Uint8Array[] = [];
    for (let n = dev.rxBatch(q, bufs, 32); n > 0; n = dev.rxBatch(q, bufs, 32)) {
      for (let i = 0; i < n; i++) {
        got.push(copyFrame(bufs[i]!));
        freeBuffer(bufs[i]!);
      }
    }
    out.push(got);
  }
  return out;
}

/** The queue RSS must pick for a flow: hash of its fields, low 7 bits, RETA entry (i mod queues). */
function expectedQueue(flow: Flow, key: Uint8Array, queues: number): number {
  const address = flow.v6 ? ipv6Bytes : ipv4Bytes;
  const input = Uint8Array.from([...address(flow.src), ...address(flow.dst), flow.sport >>> 8, flow.sport & 0xff,
    flow.dport >>> 8, flow.dport & 0xff]);
  return (toeplitzHash(key, input) & 0x7f) % Math.min(queues, 16);
}

/** `count` flows, alternating IPv4/IPv6 and TCP/UDP, with addresses and ports from a seeded generator. */
function flows(count: number): Flow[] {
  let x = 12345;
  const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8;
  const out: Flow[] = [];
  for (let i = 0; i < count; i++) {
    const v6 = i % 2 === 1;
    const a = () => (v6 ? `2001:db8::${(next() & 0xffff).toString(16)}:${(next() & 0xffff).toString(16)}`
      : `10.${next() & 0xff}.${next() & 0xff}.${next() & 0xff}`);
    out.push({ v6, protocol: i % 4 < 2 ? "tcp" : "udp", src: a(), dst: a(), sport: 1024 + (next() % 60000), dport: 1 + (next() % 65535) });
  }
  return out;
}

describe("ixgbe RSS (datasheet 7.1.2.8)", () => {
  it("leaves RSS off with one receive queue: MRQC, RETA and RSSRK stay at 0, every frame in queue 0", () => {
    const { model, dev } = openSimPort({ rssKey: MS_RSS_KEY });
    expect(model.regs.peek32(M.MRQC)).toBe(0);
    for (let n = 0; n < 32; n++) expect(model.regs.peek32(M.RETA(n))).toBe(0);
    for (let n = 0; n < 10; n++) expect(model.regs.peek32(M.RSSRK(n))).toBe(0);
    for (const [i, flow] of flows(16).entries()) expect(model.inject(flowFrame(flow, i))).toBe(true);
    expect(drain(dev, 1)[0]).toHaveLength(16);
  });

  it("programs the given key into RSSRK, RETA round robin over the queues, RXCSUM.PCSD and MRQC", () => {
    const { model } = openSimPort({ rxQueues: 4, rssKey: MS_RSS_KEY });
    const regs = model.regs;
    for (let n = 0; n < 10; n++) {
      expect(regs.peek32(M.RSSRK(n))).toBe(Buffer.from(MS_RSS_KEY.subarray(4 * n, 4 * n + 4)).readUInt32LE(0));
    }
    for (let i = 0; i < 128; i++) expect((regs.peek32(M.RETA(i >>> 2)) >>> (8 * (i & 3))) & 0xf).toBe(i % 4);
    expect(regs.peek32(M.RXCSUM) & M.RXCSUM_PCSD).toBe(M.RXCSUM_PCSD);
    const mrqc = regs.peek32(M.MRQC);
    expect(mrqc & M.MRQC_MRQE_MASK).toBe(M.MRQC_MRQE_RSS);
    for (const field of [M.MRQC_RSS_FIELD_IPV4, M.MRQC_RSS_FIELD_IPV4_TCP, M.MRQC_RSS_FIELD_IPV4_UDP, M.MRQC_RSS_FIELD_IPV6,
      M.MRQC_RSS_FIELD_IPV6_TCP, M.MRQC_RSS_FIELD_IPV6_UDP]) {
      expect(mrqc & field).toBe(field);
    }
    expect(mrqc).toBe(IXGBE_RSS_MRQC);
  });

  it("takes a random key for each device without options.rssKey", () => {
    const keyOf = (rxQueues: number) => {
      const { model } = openSimPort({ rxQueues });
      return Array.from({ length: 10 }, (_, n) => model.regs.peek32(M.RSSRK(n)));
    };
    const a = keyOf(2);
    const b = keyOf(2);
    expect(a).not.toEqual(b);
    expect(a.some((w) => w !== 0)).toBe(true);
  });

  it("refuses an rssKey that is not a 40-byte Uint8Array, naming the device", () => {
    expect(() => openSimPort({ rxQueues: 2, rssKey: new Uint8Array(39) })).toThrow(/rssKey must have exactly 40 bytes.*got 39/);
    expect(() => openSimPort({ rxQueues: 2, rssKey: [1, 2, 3] as unknown as Uint8Array })).toThrow(TypeError);
  });

  it("steers Microsoft's example flows to the queue their hash names in RETA", () => {
    const { model, dev } = openSimPort({ rxQueues: 4, rssKey: MS_RSS_KEY });
    const all = [...MS_IPV4_VECTORS.map((v) => ({ v6: false, protocol: "tcp" as const, ...v })),
      ...MS_IPV6_VECTORS.map((v) => ({ v6: true, protocol: "tcp" as const, ...v }))];
    const expected: Uint8Array[][] = [[], [], [], []];
    for (const [i, flow] of all.entries()) {
      const frame = flowFrame(flow, i);
      // The published hash, low 7 bits, RETA entry i mod 4.
      expected[(flow.l4 & 0x7f) % 4]!.push(frame);
      expect(model.inject(frame)).toBe(true);
    }
    expect(drain(dev, 4)).toEqual(expected);
  });

  it("writes the RSS type, packet type and hash into the receive descriptor (7.1.6.2)", () => {
    const port = openSimPort({ rxQueues: 2, rssKey: MS_RSS_KEY });
    const v = MS_IPV4_VECTORS[0]!; // hash 0x51ccc178: entry 120, queue 0
    expect(port.model.inject(flowFrame({ v6: false, protocol: "udp", ...v }, 1))).toBe(true);
    const regs = port.model.regs;
    const head = regs.peek32(M.RDH(0));
    const ring = port.dma.resolve(regs.peek32(M.RDBAL(0)) + regs.peek32(M.RDBAH(0)) * 2 ** 32, regs.peek32(M.RDLEN(0)));
    const words = new Uint32Array(ring.buffer, ring.byteOffset, ring.length / 4);
    const w = ((head - 1 + ring.length / 16) % (ring.length / 16)) * 4;
    expect(words[w]).toBe(M.RXD_RSSTYPE_IPV4_UDP | M.RXD_PKTTYPE_IPV4 | M.RXD_PKTTYPE_UDP);
    expect(words[w + 1]).toBe(0x51ccc178);
    expect(words[w + 2]! & (M.RXD_STATUS_DD | M.RXD_STATUS_EOP)).toBe(M.RXD_STATUS_DD | M.RXD_STATUS_EOP);
  });

  it.each([2, 4])("spreads 64 flows over %i queues: each flow in one queue, in order, byte-exact, nothing lost", (queues) => {
    const key = Uint8Array.from({ length: 40 }, (_, i) => (i * 37 + 11) & 0xff);
    const { model, dev } = openSimPort({ rxQueues: queues, rssKey: key });
    const all = flows(64);
    const sent: Uint8Array[][] = all.map(() => []);
    const received: Uint8Array[][] = Array.from({ length: queues }, () => []);
    // Rounds of one frame per flow, each round drained with rxBatch on every queue.
    for (let round = 0; round < 24; round++) {
      for (const [f, flow] of all.entries()) {
        const frame = flowFrame(flow, round * 1000 + f, 26 + ((round * 13 + f) % 200));
        sent[f]!.push(frame);
        expect(model.inject(frame)).toBe(true);
      }
      drain(dev, queues).forEach((frames, q) => received[q]!.push(...frames));
    }
    // Which queue each flow's frames arrived in (the flow is in the first payload word / 1000).
    const seqOf = (frame: Uint8Array, v6: boolean) => new DataView(frame.buffer, frame.byteOffset).getUint32(14 + (v6 ? 40 : 20) + (frame[v6 ? 20 : 23] === 6 ? 20 : 8));
    const got: Uint8Array[][] = all.map(() => []);
    const queueOf = new Map<number, Set<number>>();
    received.forEach((frames, q) => {
      for (const frame of frames) {
        const f = seqOf(frame, frame[12] === 0x86) % 1000;
        got[f]!.push(frame);
        if (!queueOf.has(f)) queueOf.set(f, new Set());
        queueOf.get(f)!.add(q);
      }
    });
    expect(received.flat()).toHaveLength(64 * 24);
    for (const [f, flow] of all.entries()) {
      expect([...queueOf.get(f)!], `flow ${f}`).toEqual([expectedQueue(flow, key, queues)]);
      expect(got[f], `flow ${f}: in order, byte-exact`).toEqual(sent[f]);
    }
    // Every queue has flows: the hash does spread them.
    for (let q = 0; q < queues; q++) expect(received[q]!.length, `queue ${q}`).toBeGreaterThan(0);
    expect((dev as unknown as { hwCounters(): { rxNoDmaResources: number } }).hwCounters().rxNoDmaResources).toBe(0);
  });

  it("still puts a frame into the queue a test names with inject(frame, queue)", () => {
    const { model, dev } = openSimPort({ rxQueues: 4, rssKey: MS_RSS_KEY });
    const frame = flowFrame({ v6: false, protocol: "tcp", ...MS_IPV4_VECTORS[0]! }, 1); // RSS: queue 0
    expect(model.inject(frame, 3)).toBe(true);
    expect(drain(dev, 4).map((q) => q.length)).toEqual([0, 0, 0, 1]);
  });
});
