import { describe, expect, it } from "vitest";
import { bufL2Len, bufL3Len, bufL4Len, bufMss, bufRxOffload, bufTxOffload } from "../../src/mem/buffer-table.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { clearOffloadRequest, requestChecksum, requestTso, rxChecksumOf, RX_OFFLOAD, TX_OFFLOAD } from "../../src/mem/offload.ts";
import { writeFrame } from "../../src/mem/packet.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { buildFrame } from "../helpers/frames.ts";
import { prng } from "../helpers/prng.ts";

function pool(): Mempool {
  return new Mempool(new SimDma(), { count: 8, name: "offload", entrySize: 65536 });
}

describe("offload requests", () => {
  it("requestChecksum records the headers and the flags for each kind of frame", () => {
    const p = pool();
    const rand = prng(9);
    const cases = [
      { spec: { proto: "udp", payload: 100 } as const, flags: TX_OFFLOAD.ipChecksum | TX_OFFLOAD.udpChecksum, l2: 14, l3: 20, l4: 8 },
      { spec: { proto: "tcp", payload: 100, vlan: true, ipOptions: 12, tcpOptions: 8 } as const, flags: TX_OFFLOAD.ipChecksum | TX_OFFLOAD.tcpChecksum, l2: 18, l3: 32, l4: 28 },
      { spec: { proto: "tcp", payload: 100, ipv6: true, ipOptions: 8 } as const, flags: TX_OFFLOAD.ipv6 | TX_OFFLOAD.tcpChecksum, l2: 14, l3: 48, l4: 20 },
      { spec: { proto: "udp", payload: 1, ipv6: true } as const, flags: TX_OFFLOAD.ipv6 | TX_OFFLOAD.udpChecksum, l2: 14, l3: 40, l4: 8 },
    ];
    for (const c of cases) {
      const b = p.alloc();
      writeFrame(b, buildFrame(c.spec, rand).bytes);
      requestChecksum(b);
      expect([bufTxOffload[b], bufL2Len[b], bufL3Len[b], bufL4Len[b], bufMss[b]]).toEqual([c.flags, c.l2, c.l3, c.l4, 0]);
      clearOffloadRequest(b);
      expect(bufTxOffload[b]).toBe(0);
      p.free(b);
    }
  });

  it("requestTso records the mss and refuses UDP and a bad mss", () => {
    const p = pool();
    const rand = prng(10);
    const b = p.alloc();
    writeFrame(b, buildFrame({ proto: "tcp", payload: 30000 }, rand).bytes);
    requestTso(b, 1448);
    expect(bufTxOffload[b]).toBe(TX_OFFLOAD.tso | TX_OFFLOAD.tcpChecksum | TX_OFFLOAD.ipChecksum);
    expect(bufMss[b]).toBe(1448);
    expect(() => requestTso(b, 0)).toThrow(RangeError);
    expect(() => requestTso(b, 1.5)).toThrow(RangeError);
    writeFrame(b, buildFrame({ proto: "udp", payload: 3000 }, rand).bytes);
    bufTxOffload[b] = 0;
    expect(() => requestTso(b, 1000)).toThrow(/UDP/);
    expect(bufTxOffload[b]).toBe(0); // nothing recorded by a refused request
  });

  it("refuses frames it cannot offload, and non-buffers, with typed errors naming them", () => {
    const p = pool();
    const b = p.alloc();
    const arp = new Uint8Array(60);
    arp[12] = 0x08;
    arp[13] = 0x06;
    writeFrame(b, arp);
    expect(() => requestChecksum(b)).toThrow(new RegExp(`buffer ${b} .*ethertype 0x0806`));
    const frag = buildFrame({ proto: "udp", payload: 100 }, prng(1)).bytes;
    frag[14 + 6] = 0x20; // more fragments
    writeFrame(b, frag);
    expect(() => requestChecksum(b)).toThrow(/fragment/);
    expect(() => requestChecksum(-5)).toThrow(RangeError);
    expect(() => requestChecksum("1" as unknown as number)).toThrow(TypeError);
    expect(bufTxOffload[b]).toBe(0);
  });

  it("alloc and allocBatch clear a request left from before a free", () => {
    const p = pool();
    const b = p.alloc();
    writeFrame(b, buildFrame({ proto: "udp", payload: 10 }, prng(2)).bytes);
    requestChecksum(b);
    p.free(b);
    expect(p.alloc()).toBe(b);
    expect(bufTxOffload[b]).toBe(0);
    requestChecksum(b);
    p.free(b);
    const batch = new Int32Array(8);
    const n = p.allocBatch(batch, 8);
    expect(Array.from(batch.subarray(0, n))).toContain(b);
    expect(bufTxOffload[b]).toBe(0);
  });

  it("rxChecksumOf reads the device's verdict", () => {
    const p = pool();
    const b = p.alloc();
    bufRxOffload[b] = 0;
    expect(rxChecksumOf(b)).toEqual({ ip: "unknown", l4: "unknown" });
    bufRxOffload[b] = RX_OFFLOAD.ipChecksumGood | RX_OFFLOAD.l4ChecksumBad;
    expect(rxChecksumOf(b)).toEqual({ ip: "good", l4: "bad" });
    bufRxOffload[b] = RX_OFFLOAD.l4ChecksumPartial;
    expect(rxChecksumOf(b)).toEqual({ ip: "unknown", l4: "partial" });
  });
});
