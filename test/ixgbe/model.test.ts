import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import type { IxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import { DeviceProtocolError, DmaFaultError } from "../../src/errors.ts";
import { bufIovaHi, bufIovaLo, bufLength } from "../../src/mem/buffer-table.ts";
import { copyFrame, frameOf } from "../../src/mem/packet.ts";
import { crc32 } from "../../src/net/crc32.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { sleepMs } from "../../src/pci/regs.ts";
import { bufferWith, expectSameFrames, openSimPort, randomFrame, rng, txPool } from "./helpers.ts";
import { MS_IPV4_VECTORS, MS_RSS_KEY, flowFrame } from "./rss-frames.ts";

function ringWords(port: ReturnType<typeof openSimPort>, bal: number, bah: number, len: number): Uint32Array {
  const regs = port.model.regs;
  const bytes = port.dma.resolve(regs.peek32(bal) + regs.peek32(bah) * 2 ** 32, regs.peek32(len));
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
}

describe("the 82599 model", () => {
  it("resets its registers on CTRL.RST, and the bit clears itself", () => {
    const model = new Ixgbe82599Model({ dma: new SimDma() });
    const bar = model.pci.bar(0);
    bar.write32(T.IXGBE_FCTRL, 0x700);
    bar.write32(T.IXGBE_CTRL, T.IXGBE_CTRL_GIO_DIS);
    bar.write32(T.IXGBE_CTRL, T.IXGBE_CTRL_RST);
    sleepMs(1); // the default reset takes 0.5 ms
    expect(bar.read32(T.IXGBE_CTRL) & T.IXGBE_CTRL_RST).toBe(0);
    expect(bar.read32(T.IXGBE_FCTRL)).toBe(0);
    expect(model.violations).toEqual([]);
    expect(bar.read32(T.IXGBE_SRRCTL(3))).toBe(0x402); // reset value
    expect(model.resets).toBe(1);
  });

  it("brings up EEC.ARD and RDRXCTL.DMAIDONE when a slow reset is done", () => {
    const model = new Ixgbe82599Model({ dma: new SimDma(), resetDelayMs: 20 });
    const bar = model.pci.bar(0);
    bar.write32(T.IXGBE_CTRL, T.IXGBE_CTRL_RST);
    expect(bar.read32(T.IXGBE_CTRL) & T.IXGBE_CTRL_RST).toBe(T.IXGBE_CTRL_RST);
    expect(bar.read32(T.IXGBE_EEC) & T.IXGBE_EEC_ARD).toBe(0);
    expect(bar.read32(T.IXGBE_RDRXCTL) & T.IXGBE_RDRXCTL_DMAIDONE).toBe(0);
    sleepMs(25);
    expect(bar.read32(T.IXGBE_CTRL) & T.IXGBE_CTRL_RST).toBe(0);
    expect(bar.read32(T.IXGBE_EEC) & T.IXGBE_EEC_ARD).toBe(T.IXGBE_EEC_ARD);
    expect(bar.read32(T.IXGBE_RDRXCTL) & T.IXGBE_RDRXCTL_DMAIDONE).toBe(T.IXGBE_RDRXCTL_DMAIDONE);
  });

  it("reports the link in LINKS only after auto-negotiation is restarted, after the configured delay", () => {
    const model = new Ixgbe82599Model({ dma: new SimDma(), linkUpDelayMs: 20 });
    const bar = model.pci.bar(0);
    expect(bar.read32(T.IXGBE_LINKS)).toBe(0);
    bar.write32(T.IXGBE_AUTOC, bar.read32(T.IXGBE_AUTOC) | T.IXGBE_AUTOC_AN_RESTART);
    expect(bar.read32(T.IXGBE_AUTOC) & T.IXGBE_AUTOC_AN_RESTART).toBe(0); // self-clearing
    expect(bar.read32(T.IXGBE_LINKS)).toBe(0);
    sleepMs(25);
    expect(bar.read32(T.IXGBE_LINKS)).toBe((T.IXGBE_LINKS_UP | T.IXGBE_LINKS_SPEED_10G_82599) >>> 0);
  });

  it("clears statistics on read, all of the register even when a driver reads one byte", () => {
    const port = openSimPort();
    const bar = port.model.pci.bar(0);
    port.model.inject(new Uint8Array(60));
    expect(bar.read32(T.IXGBE_GPRC)).toBe(1);
    expect(bar.read32(T.IXGBE_GPRC)).toBe(0);
    for (let i = 0; i < 0x101; i++) port.model.inject(new Uint8Array(60));
    expect(bar.read8(T.IXGBE_GPRC)).toBe(0x01); // the low byte ...
    expect(bar.read32(T.IXGBE_GPRC)).toBe(0); // ... and the rest is gone: why drivers never read byte-wise
  });

  it("keeps the octet counters 36 bits wide, read low half first", () => {
    const port = openSimPort({ rxRingSize: 64 });
    const bar = port.model.pci.bar(0);
    port.model.inject(new Uint8Array(1000));
    expect([bar.read32(T.IXGBE_GORCL), bar.read32(T.IXGBE_GORCH)]).toEqual([1004, 0]);
    expect([bar.read32(T.IXGBE_GORCL), bar.read32(T.IXGBE_GORCH)]).toEqual([0, 0]);
  });

  it("counts a frame as missed when receive is disabled", () => {
    const port = openSimPort();
    port.model.pci.bar(0).write32(T.IXGBE_RXCTRL, 0);
    expect(port.model.inject(new Uint8Array(60))).toBe(false);
    expect(port.model.counters.rxMissed).toBe(1);
    expect(port.model.pci.bar(0).read32(T.IXGBE_MPC(0))).toBe(1);
  });

  it("counts frames shorter than 64 or longer than 1518 bytes on the wire as length errors, and allows a VLAN tag", () => {
    const port = openSimPort();
    const bar = port.model.pci.bar(0);
    expect(port.model.inject(new Uint8Array(59))).toBe(false);
    expect(port.model.inject(new Uint8Array(1515))).toBe(false);
    expect(port.model.inject(new Uint8Array(1514))).toBe(true);
    const tagged = new Uint8Array(1518);
    tagged[12] = 0x81;
    expect(port.model.inject(tagged)).toBe(true);
    const stats = newStats();
    port.dev.readStats(stats); // reads (and clears) RLEC, RUC and ROC
    expect(stats.rxErrors).toBe(2);
    expect(port.model.counters.rxLengthErrors).toBe(2);
    expect([bar.read32(T.IXGBE_RUC), bar.read32(T.IXGBE_ROC)]).toEqual([0, 0]);
    expect((port.dev as IxgbeDevice).hwCounters()).toMatchObject({ rxUndersize: 1, rxOversize: 1, rxFragments: 0, rxJabbers: 0 });
  });

  it("delivers frames with their CRC when CRC stripping is off", () => {
    const port = openSimPort();
    const bar = port.model.pci.bar(0);
    bar.write32(T.IXGBE_HLREG0, bar.read32(T.IXGBE_HLREG0) & ~T.IXGBE_HLREG0_RXCRCSTRP);
    const frame = randomFrame(rng(40), 200, 1);
    port.model.inject(frame);
    const bufs = new Int32Array(1);
    expect(port.dev.rxBatch(0, bufs, 1)).toBe(1);
    const got = copyFrame(bufs[0]!);
    expect(got.length).toBe(204);
    expect(new DataView(got.buffer).getUint32(200, true)).toBe(crc32(frame));
  });

  it("splits a frame larger than the receive buffer over descriptors, and the driver drops it whole", () => {
    const port = openSimPort({ rxRingSize: 64 });
    const bar = port.model.pci.bar(0);
    // 1 KB buffers: a 1514-byte frame needs two descriptors, the first one without EOP.
    bar.write32(T.IXGBE_SRRCTL(0), (bar.read32(T.IXGBE_SRRCTL(0)) & ~T.IXGBE_SRRCTL_BSIZEPKT_MASK) | 1);
    const random = rng(41);
    const small = [randomFrame(random, 500, 1), randomFrame(random, 600, 2)];
    port.model.inject(small[0]!);
    port.model.inject(randomFrame(random, 1514, 99));
    const words = ringWords(port, T.IXGBE_RDBAL(0), T.IXGBE_RDBAH(0), T.IXGBE_RDLEN(0));
    expect(words[1 * 4 + 2]! & (T.IXGBE_RXDADV_STAT_DD | T.IXGBE_RXDADV_STAT_EOP)).toBe(T.IXGBE_RXDADV_STAT_DD);
    expect(words[2 * 4 + 2]! & T.IXGBE_RXDADV_STAT_EOP).toBe(T.IXGBE_RXDADV_STAT_EOP);
    const bufs = new Int32Array(8);
    // Take the first part alone: the driver must remember it is inside a frame to drop.
    expect(port.dev.rxBatch(0, bufs, 1)).toBe(1);
    expect(port.dev.rxBatch(0, bufs, 1)).toBe(0);
    port.model.inject(small[1]!);
    const got = [copyFrame(bufs[0]!)];
    const n = port.dev.rxBatch(0, bufs, 8);
    for (let i = 0; i < n; i++) got.push(copyFrame(bufs[i]!));
    expectSameFrames(got, small);
    const stats = newStats();
    port.dev.readStats(stats);
    expect(stats).toMatchObject({ rxPackets: 3, rxErrors: 1 });
  });

  it("throws a DmaFaultError when a descriptor points outside DMA memory", () => {
    const port = openSimPort();
    // Receive: a ring base that is not mapped.
    const bar = port.model.pci.bar(0);
    bar.write32(T.IXGBE_RDBAH(0), 0);
    expect(() => port.model.inject(new Uint8Array(60))).toThrow(DmaFaultError);
    // Transmit: a buffer whose address is not mapped.
    const pool = txPool(port.dev, 2);
    const bogus = bufferWith(pool, new Uint8Array(60));
    // A buffer whose row in the table has a corrupted device address.
    const [lo, hi] = [bufIovaLo[bogus]!, bufIovaHi[bogus]!];
    bufIovaLo[bogus] = 0x1234_0000;
    bufIovaHi[bogus] = 0;
    let fault: unknown;
    try {
      port.dev.txBatch(0, Int32Array.of(bogus), 1);
    } catch (e) {
      fault = e;
    } finally {
      bufIovaLo[bogus] = lo;
      bufIovaHi[bogus] = hi;
    }
    expect(fault).toBeInstanceOf(DmaFaultError);
    expect((fault as DmaFaultError).iova).toBe(0x1234_0000);
    expect((fault as Error).message).toMatch(/TX packet read/);
  });

  it("rejects a tail pointer beyond the ring and a transmit descriptor with the wrong PAYLEN", () => {
    const port = openSimPort({ rxRingSize: 64, txRingSize: 64 });
    const bar = port.model.pci.bar(0);
    expect(() => bar.write32(T.IXGBE_RDT(0), 64)).toThrow(DeviceProtocolError);
    const pool = txPool(port.dev, 2);
    const buf = bufferWith(pool, new Uint8Array(100));
    const words = ringWords(port, T.IXGBE_TDBAL(0), T.IXGBE_TDBAH(0), T.IXGBE_TDLEN(0));
    words[0] = bufIovaLo[buf]! >>> 0;
    words[1] = bufIovaHi[buf]!;
    words[2] = (T.IXGBE_ADVTXD_DTYP_DATA | T.IXGBE_ADVTXD_DCMD_DEXT | T.IXGBE_ADVTXD_DCMD_EOP | 100) >>> 0;
    words[3] = 99 << T.IXGBE_ADVTXD_PAYLEN_SHIFT;
    expect(() => bar.write32(T.IXGBE_TDT(0), 1)).toThrow(/PAYLEN is 99 but the frame's descriptors hold 100 bytes/);
  });

  it("wires two ports back to back in both directions, the receiver steering each frame by RSS", () => {
    const dma = new SimDma();
    // Microsoft's key: vector 4's TCP hash 0xafc7327f has low bits 127 (RETA entry 127 = queue 1
    // of 2), vector 1's 0x51ccc178 has 120 (queue 0).
    const a = openSimPort({ rxQueues: 2, rssKey: MS_RSS_KEY }, {}, dma);
    const b = openSimPort({ rxQueues: 2, rssKey: MS_RSS_KEY }, {}, dma);
    a.model.connect(b.model);
    const flowOf = (v: (typeof MS_IPV4_VECTORS)[number]) => ({ v6: false, protocol: "tcp" as const, ...v });
    const toQueue1 = flowFrame(flowOf(MS_IPV4_VECTORS[3]!), 1);
    const toQueue0 = flowFrame(flowOf(MS_IPV4_VECTORS[0]!), 2);
    const pa = txPool(a.dev, 8);
    const pb = txPool(b.dev, 8);
    a.dev.txBatch(0, Int32Array.of(bufferWith(pa, toQueue1), bufferWith(pa, toQueue0)), 2);
    b.dev.txBatch(0, Int32Array.of(bufferWith(pb, new Uint8Array(70).fill(3))), 1);
    const bufs = new Int32Array(4);
    expect(b.dev.rxBatch(1, bufs, 4)).toBe(1);
    expect(copyFrame(bufs[0]!)).toEqual(toQueue1);
    expect(b.dev.rxBatch(0, bufs, 4)).toBe(1);
    expect(copyFrame(bufs[0]!)).toEqual(toQueue0);
    // Not IP: no hash, so RETA entry 0, queue 0.
    expect(a.dev.rxBatch(0, bufs, 4)).toBe(1);
    expect(bufLength[bufs[0]!]).toBe(70);
  });
});
