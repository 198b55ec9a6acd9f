/**
 * virtio-net data-path offloads (docs/offloads-virtio.md) against the virtio model, on split and
 * packed rings, modern and legacy interfaces: checksum requests through the header (§5.1.6.2) or
 * in software, TSO super-frames segmented by the device, DATA_VALID / NEEDS_CSUM on receive
 * (§5.1.6.4), and frames merged from several receive buffers (MRG_RXBUF), every one byte-exact
 * against an expectation computed in software.
 */
import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { NotSupportedError } from "../../src/errors.ts";
import { bufL3Len, bufTxOffload } from "../../src/mem/buffer-table.ts";
import { freeBuffers, Mempool } from "../../src/mem/mempool.ts";
import { clearOffloadRequest, requestChecksum, requestTso, rxChecksumOf, TX_OFFLOAD } from "../../src/mem/offload.ts";
import { copyFrame, writeFrame } from "../../src/mem/packet.ts";
import { checkFrameChecksums, pseudoHeaderSum } from "../../src/net/checksum.ts";
import { segmentTcp } from "../../src/net/tcp-segment.ts";
import type { VirtioNetModelOptions } from "../../src/sim/virtio/virtio-model.ts";
import type { VirtioDeviceOptions } from "../../src/drivers/virtio/virtio-device.ts";
import { buildFrame, type FrameSpec } from "../helpers/frames.ts";
import { prng, randInt, randomBytes } from "../helpers/prng.ts";
import { openRig, type Rig } from "./helpers.ts";

const RIGS: ReadonlyArray<{ name: string; model: Omit<VirtioNetModelOptions, "dma">; dev: VirtioDeviceOptions }> = [
  { name: "split ring, modern", model: {}, dev: {} },
  { name: "packed ring, modern", model: { packed: true }, dev: { ring: "packed" } },
  { name: "split ring, legacy", model: { legacy: true }, dev: {} },
];

function randomSpec(rand: () => number, maxPayload: number): FrameSpec {
  const ipv6 = rand() < 0.4;
  const tcp = rand() < 0.6;
  return {
    proto: tcp ? "tcp" : "udp",
    ipv6,
    vlan: rand() < 0.2,
    ipOptions: rand() < 0.2 ? (ipv6 ? 8 : 4 * randInt(rand, 1, 10)) : 0,
    tcpOptions: tcp && rand() < 0.3 ? 4 * randInt(rand, 1, 10) : 0,
    payload: randInt(rand, 0, maxPayload),
  };
}

/** Sends `frames` one batch at a time (each after `prepare(buf)`), returning what reached the wire. */
function sendAll(rig: Rig, pool: Mempool, frames: readonly Uint8Array[], prepare: (buf: number, i: number) => void): Uint8Array[] {
  const wire: Uint8Array[] = [];
  rig.model.onTransmit = (frame) => wire.push(frame.slice());
  const one = new Int32Array(1);
  frames.forEach((f, i) => {
    const b = pool.alloc();
    writeFrame(b, f);
    prepare(b, i);
    one[0] = b;
    expect(rig.dev.txBatch(0, one, 1)).toBe(1);
  });
  rig.model.onTransmit = null;
  return wire;
}

describe.each(RIGS)("virtio offloads ($name)", ({ model, dev }) => {
  it("negotiates CSUM, HOST_TSO4/6, GUEST_CSUM and MRG_RXBUF and reports them in offloads", () => {
    const rig = openRig(model, dev);
    expect(rig.dev.offloads).toMatchObject({ rxChecksum: true, txChecksum: true, tso: true, maxFrameSize: 1514, mergeableRx: true });
    expect(rig.dev.headerLength).toBe(12);
    expect(rig.model.violations).toEqual([]);
    const off = openRig(model, { ...dev, offloads: { rxChecksum: false, txChecksum: false, tso: false } });
    expect(off.dev.offloads).toMatchObject({ rxChecksum: false, txChecksum: false, tso: false, mergeableRx: true });
    expect(off.model.driverFeatures & 0b1100000000011n).toBe(0n); // CSUM, GUEST_CSUM, HOST_TSO4/6
    // TSO without CSUM would break §5.1.3.1: txChecksum false takes TSO with it.
    expect(openRig(model, { ...dev, offloads: { txChecksum: false } }).dev.offloads.tso).toBe(false);
    expect(() => openRig(model, { ...dev, offloads: { txChecksum: false, tso: true } })).toThrow(NotSupportedError);
  });

  for (const csum of [true, false]) {
    it(`random TCP/UDP frames over IPv4/IPv6 with checksum requests leave byte-exact (txChecksum ${csum})`, () => {
      const rig = openRig(model, { ...dev, offloads: { txChecksum: csum } });
      const pool = new Mempool(rig.dev.dma, { count: 512 });
      const rand = prng(csum ? 11 : 12);
      const expected: Uint8Array[] = [];
      const requested: boolean[] = [];
      for (let i = 0; i < 300; i++) {
        if (rand() < 0.15) {
          // No request: sent as it is, header all zero.
          expected.push(randomBytes(rand, randInt(rand, 60, 1514)));
          requested.push(false);
        } else {
          expected.push(buildFrame(randomSpec(rand, 1400), rand).bytes);
          requested.push(true);
        }
      }
      const wire = sendAll(rig, pool, expected.map((f, i) => {
        if (!requested[i]) return f;
        // Garbage where the checksums go: the request must not depend on them.
        const g = f.slice();
        const at = checksumOffsets(g);
        if (at.ip >= 0) g[at.ip + 10]! ^= 0xa5;
        g[at.l4 + at.check]! ^= 0x3c;
        return g;
      }), (b, i) => {
        if (requested[i]) requestChecksum(b);
      });
      expect(wire.length).toBe(expected.length);
      for (let i = 0; i < expected.length; i++) expect(wire[i], `frame ${i}`).toEqual(expected[i]);
      const requests = requested.filter((r) => r).length;
      // With CSUM the device completed the L4 checksums; without it the driver did, and the
      // device saw only zeroed headers.
      expect(rig.model.counters.txChecksummed).toBe(csum ? requests : 0);
      expect(rig.model.counters.txBadHeader).toBe(0);
      expect(rig.model.violations).toEqual([]);
    });
  }

  it("a wrong csum_start gives a wrong checksum on the wire (the device sums from where it is told)", () => {
    const rig = openRig(model, dev);
    const pool = new Mempool(rig.dev.dma, { count: 64 });
    const rand = prng(3);
    const f = buildFrame({ proto: "tcp", payload: 200 }, rand).bytes;
    const wire = sendAll(rig, pool, [f], (b) => {
      requestChecksum(b);
      bufL3Len[b] = bufL3Len[b]! + 4; // csum_start 4 bytes late
    });
    expect(checkFrameChecksums(wire[0]!, 0, wire[0]!.length).l4).toBe("bad");
  });

  it("TSO super-frames of several sizes (64 KiB pools) leave as the segments software TSO makes", () => {
    const rig = openRig(model, dev);
    const pool = new Mempool(rig.dev.dma, { count: 64, entrySize: 65536 });
    const rand = prng(21);
    const cases: Array<{ spec: FrameSpec; mss: number }> = [
      { spec: { proto: "tcp", payload: 1000 }, mss: 1460 },
      { spec: { proto: "tcp", payload: 1460 * 3 + 1 }, mss: 1460 },
      { spec: { proto: "tcp", payload: 9000, tcpOptions: 12 }, mss: 1448 },
      { spec: { proto: "tcp", ipv6: true, payload: 30000 }, mss: 1440 },
      { spec: { proto: "tcp", vlan: true, payload: 20000, ipOptions: 8 }, mss: 536 },
      { spec: { proto: "tcp", ipv6: true, payload: 65000 - 60, tcpFlags: 0x19 }, mss: 1220 },
    ];
    const built = cases.map((c) => buildFrame(c.spec, rand));
    const wire = sendAll(rig, pool, built.map((b) => b.bytes), (b, i) => requestTso(b, cases[i]!.mss));
    const expected = built.flatMap((b, i) => segmentTcp(b.bytes, b.l2, b.l3, b.l4, cases[i]!.mss, cases[i]!.spec.ipv6 ?? false));
    expect(wire.length).toBe(expected.length);
    for (let i = 0; i < expected.length; i++) {
      expect(wire[i], `segment ${i}`).toEqual(expected[i]);
      expect(checkFrameChecksums(wire[i]!, 0, wire[i]!.length).l4).toBe("good");
    }
    expect(rig.model.counters.txGso).toBe(cases.length);
    expect(rig.model.violations).toEqual([]);
  });

  it("a TSO request on a device without TSO is a NotSupportedError before anything is taken", () => {
    const rig = openRig(model, { ...dev, offloads: { tso: false } });
    const pool = new Mempool(rig.dev.dma, { count: 64, entrySize: 65536 });
    const rand = prng(5);
    const bufs = new Int32Array(3);
    pool.allocBatch(bufs, 3);
    for (const b of bufs) writeFrame(b, buildFrame({ proto: "tcp", payload: 5000 }, rand).bytes);
    requestTso(bufs[1]!, 1000);
    expect(() => rig.dev.txBatch(0, bufs, 3)).toThrow(NotSupportedError);
    expect(() => rig.dev.txBatch(0, bufs, 3)).toThrow(/segmentTcp/);
    expect(rig.model.counters.txFrames).toBe(0);
    // Nothing was taken: the caller still holds all three and may send them without the request.
    clearOffloadRequest(bufs[1]!);
    expect(rig.dev.txBatch(0, bufs, 3)).toBe(3);
    expect(rig.model.counters.txFrames).toBe(3);
  });

  it("receive: DATA_VALID for frames the device verified, nothing for bad ones, NEEDS_CSUM completed when forwarded", () => {
    for (const txChecksum of [true, false]) {
      const rig = openRig(model, { ...dev, offloads: { txChecksum } });
      const rand = prng(txChecksum ? 31 : 32);
      const bufs = new Int32Array(8);
      const good = buildFrame({ proto: "udp", payload: 300 }, rand).bytes;
      const bad = buildFrame({ proto: "tcp", payload: 300, checksums: "bad" }, rand).bytes;
      const full = buildFrame({ proto: "tcp", ipv6: true, payload: 700 }, rand);
      // A partial frame as a local sender leaves it: the pseudo-header sum in the TCP checksum.
      const partial = full.bytes.slice();
      const ip = full.l2;
      const l4 = ip + full.l3;
      const seed = pseudoHeaderSum(partial, ip, true, 6, partial.length - l4);
      partial[l4 + 16] = seed >> 8;
      partial[l4 + 17] = seed & 0xff;
      expect(rig.model.inject(good)).toBe(true);
      expect(rig.model.inject(bad)).toBe(true);
      expect(rig.model.inject(partial, undefined, { csumStart: l4, csumOffset: 16 })).toBe(true);
      expect(rig.dev.rxBatch(0, bufs, 8)).toBe(3);
      expect(rxChecksumOf(bufs[0]!).l4).toBe("good");
      expect(rxChecksumOf(bufs[1]!).l4).toBe("unknown");
      expect(rxChecksumOf(bufs[2]!).l4).toBe("partial");
      expect(bufTxOffload[bufs[2]!]! & TX_OFFLOAD.tcpChecksum).toBe(TX_OFFLOAD.tcpChecksum);
      expect(copyFrame(bufs[2]!)).toEqual(partial);
      // Forwarded: the request from the receive side completes it (device or software).
      const wire: Uint8Array[] = [];
      rig.model.onTransmit = (f) => wire.push(f.slice());
      expect(rig.dev.txBatch(0, bufs, 3)).toBe(3);
      expect(wire).toEqual([good, bad, full.bytes]);
    }
  });

  it("receive without GUEST_CSUM: the device completes partial frames and reports nothing", () => {
    const rig = openRig(model, { ...dev, offloads: { rxChecksum: false } });
    const rand = prng(41);
    const full = buildFrame({ proto: "udp", payload: 100 }, rand);
    const partial = full.bytes.slice();
    const l4 = full.l2 + full.l3;
    const seed = pseudoHeaderSum(partial, full.l2, false, 17, partial.length - l4);
    partial[l4 + 6] = seed >> 8;
    partial[l4 + 7] = seed & 0xff;
    const bufs = new Int32Array(4);
    expect(rig.model.inject(full.bytes)).toBe(true);
    expect(rig.model.inject(partial, undefined, { csumStart: l4, csumOffset: 6 })).toBe(true);
    expect(rig.dev.rxBatch(0, bufs, 4)).toBe(2);
    expect([rxChecksumOf(bufs[0]!).l4, rxChecksumOf(bufs[1]!).l4]).toEqual(["unknown", "unknown"]);
    expect([bufTxOffload[bufs[0]!], bufTxOffload[bufs[1]!]]).toEqual([0, 0]);
    expect(copyFrame(bufs[1]!)).toEqual(full.bytes);
  });

  for (const completion of ["instant", "async"] as const) {
    it(`mergeable receive buffers: frames split over several buffers come out whole, over ring wrap-around (${completion})`, () => {
      const rig = openRig({ ...model, queueSize: 64, completion, seed: 9 }, dev);
      rig.model.mergeSplit = 300;
      const rand = prng(completion === "async" ? 51 : 52);
      const frames = Array.from({ length: 1000 }, () => randomBytes(rand, randInt(rand, 60, 1514)));
      const got: Uint8Array[] = [];
      const bufs = new Int32Array(32);
      let next = 0;
      for (let round = 0; got.length < frames.length && round < 100000; round++) {
        while (next < frames.length && rig.model.rxBuffersAvailable > 6 && rig.model.inject(frames[next]!)) next++;
        if (completion === "async") rig.model.step();
        const n = rig.dev.rxBatch(0, bufs, randInt(rand, 1, 32));
        for (let k = 0; k < n; k++) got.push(copyFrame(bufs[k]!));
        freeBuffers(bufs, 0, n);
      }
      expect(got.length).toBe(frames.length);
      for (let i = 0; i < frames.length; i++) expect(got[i], `frame ${i}`).toEqual(frames[i]);
      expect(rig.model.counters.rxMerged).toBeGreaterThan(800);
      const s = newStats();
      rig.dev.readStats(s);
      expect([s.rxPackets, s.rxErrors, s.rxMissed]).toEqual([1000, 0, 0]);
      expect(rig.model.violations).toEqual([]);
    });
  }

  it("maxFrameSize: receive buffers large enough for jumbo frames; the device's mtu bounds it", () => {
    const rig = openRig(model, { ...dev, maxFrameSize: 9014 });
    expect(rig.dev.offloads.maxFrameSize).toBe(9014);
    const rand = prng(61);
    const jumbo = randomBytes(rand, 9014);
    expect(rig.model.inject(jumbo)).toBe(true);
    expect(rig.model.counters.rxMerged).toBe(0); // one buffer holds it
    const bufs = new Int32Array(2);
    expect(rig.dev.rxBatch(0, bufs, 2)).toBe(1);
    expect(copyFrame(bufs[0]!)).toEqual(jumbo);
    expect(() => openRig({ ...model, mtu: 1500 }, { ...dev, maxFrameSize: 9014 })).toThrow(/mtu is 1500.*host_mtu=9000/);
    expect(openRig({ ...model, mtu: 1400 }, dev).dev.offloads.maxFrameSize).toBe(1414);
    expect(openRig({ ...model, mtu: 9000 }, { ...dev, maxFrameSize: 9014 }).dev.offloads.maxFrameSize).toBe(9014);
  });
});

describe("virtio offload negotiation", () => {
  it("a legacy device without MRG_RXBUF keeps the 10-byte header; required offloads the device lacks are NotSupportedError", () => {
    const bit = (n: number) => 1n << BigInt(n);
    const rig = openRig({ legacy: true, features: bit(5) | bit(16) | bit(27) | bit(0) });
    expect(rig.dev.headerLength).toBe(10);
    expect(rig.dev.offloads).toMatchObject({ txChecksum: true, rxChecksum: false, tso: false, mergeableRx: false });
    expect(() => openRig({ offloads: false }, { offloads: { rxChecksum: true } })).toThrow(/GUEST_CSUM.*guest_csum=on/);
    expect(() => openRig({ offloads: false }, { offloads: { tso: true } })).toThrow(/HOST_TSO4/);
    expect(() => openRig({}, { offloads: { tso: "yes" as unknown as boolean } })).toThrow(TypeError);
  });
});

/** Where the IPv4 header (-1: IPv6) and the L4 checksum of a buildFrame frame are. */
function checksumOffsets(f: Uint8Array): { ip: number; l4: number; check: number } {
  let ip = 14;
  let type = (f[12]! << 8) | f[13]!;
  if (type === 0x8100) {
    ip = 18;
    type = (f[16]! << 8) | f[17]!;
  }
  const ipv6 = type === 0x86dd;
  let l3 = ipv6 ? 40 : (f[ip]! & 0xf) * 4;
  let proto = ipv6 ? f[ip + 6]! : f[ip + 9]!;
  if (ipv6 && proto === 60) {
    proto = f[ip + 40]!;
    l3 += 8;
  }
  return { ip: ipv6 ? -1 : ip, l4: ip + l3, check: proto === 17 ? 6 : 16 };
}
