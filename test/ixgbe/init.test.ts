import { describe, expect, it } from "vitest";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import { DeviceTimeoutError } from "../../src/errors.ts";
import type { RegisterAccess } from "../../src/pci/tracing-mmio.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { regName, tracedPci } from "./helpers.ts";

function openTraced(options: Parameters<typeof createIxgbeDevice>[2] = {}, modelOptions = {}) {
  const dma = new SimDma();
  const model = new Ixgbe82599Model({ dma, ...modelOptions });
  const trace: RegisterAccess[] = [];
  const dev = createIxgbeDevice(tracedPci(model.pci, (a) => trace.push(a)), dma, { linkTimeoutMs: 1000, ...options });
  const writes = trace.filter((a) => a.op === "write").map((a) => `${regName(a.offset)}=0x${a.value.toString(16)}`);
  return { dma, model, dev, trace, writes, peek: (reg: number) => model.regs.peek32(reg) };
}

const hex = (v: number) => `0x${(v >>> 0).toString(16)}`;

describe("ixgbe init (datasheet 4.6)", () => {
  it("writes the registers of every init step in the datasheet's order", () => {
    const { writes, peek } = openTraced({ rxRingSize: 64, txRingSize: 64 });
    const rdbal = hex(peek(T.IXGBE_RDBAL(0)));
    const rdbah = hex(peek(T.IXGBE_RDBAH(0)));
    const tdbal = hex(peek(T.IXGBE_TDBAL(0)));
    const tdbah = hex(peek(T.IXGBE_TDBAH(0)));
    expect(writes).toEqual([
      // 4.6.3.1 interrupts off; PCIe master disable (5.2.5.3.2), 4.6.3.2 global reset (keeping
      // GIO_DIS), interrupts off again
      "EIMC=0xffffffff",
      "CTRL=0x4",
      "CTRL=0x400000c",
      "EIMC=0xffffffff",
      // ixgbe_get_hw_control: DRV_LOAD
      "CTRL_EXT=0x10000000",
      // 4.6.4 link setup of an SFP+ part: laser on (SDP3 low), LMS 10 Gb serial with a pipeline
      // reset (LMS[2] toggled with Restart_AN, then the wanted LMS with Restart_AN)
      "ESDP=0x0",
      "AUTOC=0xf000",
      "AUTOC=0x7000",
      // 4.6.7 receive init
      "RXCTRL=0x0",
      "RXPBSIZE(0)=0x80000", "RXPBSIZE(1)=0x0", "RXPBSIZE(2)=0x0", "RXPBSIZE(3)=0x0",
      "RXPBSIZE(4)=0x0", "RXPBSIZE(5)=0x0", "RXPBSIZE(6)=0x0", "RXPBSIZE(7)=0x0",
      "HLREG0=0x403",
      "RDRXCTL=0x600000a",
      "FCTRL=0x400",
      "SRRCTL(0)=0x12000002",
      `RDBAL(0)=${rdbal}`, `RDBAH(0)=${rdbah}`, "RDLEN(0)=0x400", "RDH(0)=0x0", "RDT(0)=0x0",
      "CTRL_EXT=0x10010000",
      // bit 12 and relaxed ordering (DATA_WRO_EN, HEAD_WRO_EN) off; descriptor read RO stays
      "DCA_RXCTRL(0)=0x200",
      // 4.6.8 transmit init
      "HLREG0=0x403",
      "RTTDCS=0x40",
      "TXPBSIZE(0)=0x28000", "TXPBSIZE(1)=0x0", "TXPBSIZE(2)=0x0", "TXPBSIZE(3)=0x0",
      "TXPBSIZE(4)=0x0", "TXPBSIZE(5)=0x0", "TXPBSIZE(6)=0x0", "TXPBSIZE(7)=0x0",
      "MTQC=0x0",
      "DTXMXSZRQ=0xfff",
      "RTTDCS=0x0",
      `TDBAL(0)=${tdbal}`, `TDBAH(0)=${tdbah}`, "TDLEN(0)=0x400",
      "TXDCTL(0)=0x120",
      "DCA_TXCTRL_82599(0)=0x2200", // DESC_WRO_EN off (ixgbe_start_hw_gen2)
      "DMATXCTL=0x1",
      // 4.6.7.1 enable the receive queue, then hand it its descriptors; then receive on
      "RXDCTL(0)=0x2000000",
      "RDT(0)=0x3f",
      // receive on inside SECRXCTRL.RX_DIS (ixgbe_enable_rx_dma_82599)
      "SECRXCTRL=0x2",
      "RXCTRL=0x1",
      "SECRXCTRL=0x0",
      // 4.6.8.1 enable the transmit queue
      "TDH(0)=0x0", "TDT(0)=0x0",
      "TXDCTL(0)=0x2000120",
      // promiscuous mode
      "FCTRL=0x700",
    ]);
  });

  it("waits for each bit it depends on, in order: CTRL.RST, EEC.ARD, DMAIDONE, queue enables, link", () => {
    const { trace } = openTraced();
    const events = trace.map((a) => `${a.op} ${regName(a.offset)}${a.op === "write" ? "=0x" + a.value.toString(16) : ""}`);
    const after = (event: string) => events[events.indexOf(event) + 1];
    expect(after("write CTRL=0x4")).toBe("read STATUS");
    expect(after("write CTRL=0x400000c")).toBe("read CTRL");
    expect(after("write RXDCTL(0)=0x2000000")).toBe("read RXDCTL(0)");
    expect(after("write TXDCTL(0)=0x2000120")).toBe("read TXDCTL(0)");
    const first = (event: string) => events.indexOf(event);
    const order = [first("write CTRL=0x400000c"), first("read EEC"), first("read RDRXCTL"), first("write AUTOC=0x7000"),
      first("read GPRC"), first("write RXCTRL=0x0")];
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(events.at(-1)).toBe("read LINKS");
  });

  it("reads every statistics register once to clear it (4.6.5)", () => {
    const { trace } = openTraced();
    const stats = [T.IXGBE_GPRC, T.IXGBE_GPTC, T.IXGBE_GORCL, T.IXGBE_GORCH, T.IXGBE_GOTCL, T.IXGBE_GOTCH, T.IXGBE_CRCERRS,
      T.IXGBE_ILLERRC, T.IXGBE_ERRBC, T.IXGBE_RLEC, ...Array.from({ length: 8 }, (_, i) => T.IXGBE_MPC(i))];
    for (const reg of stats) {
      expect(trace.filter((a) => a.offset === reg && a.op === "read").map((a) => a.width), regName(reg)).toEqual([4]);
    }
  });

  it("leaves the model in the state the datasheet requires", () => {
    const { peek, dma, model } = openTraced({ rxRingSize: 512, txRingSize: 256 });
    expect(peek(T.IXGBE_CTRL) & T.IXGBE_CTRL_RST_MASK).toBe(0);
    expect(peek(T.IXGBE_EIMS)).toBe(0); // every interrupt masked
    expect(peek(T.IXGBE_RXCTRL) & T.IXGBE_RXCTRL_RXEN).toBe(T.IXGBE_RXCTRL_RXEN);
    const hlreg0 = peek(T.IXGBE_HLREG0);
    for (const bit of [T.IXGBE_HLREG0_RXCRCSTRP, T.IXGBE_HLREG0_TXCRCEN, T.IXGBE_HLREG0_TXPADEN]) expect(hlreg0 & bit).toBe(bit);
    expect(hlreg0 & T.IXGBE_HLREG0_JUMBOEN).toBe(0);
    const rdrxctl = peek(T.IXGBE_RDRXCTL);
    expect(rdrxctl & T.IXGBE_RDRXCTL_CRCSTRIP).toBe(T.IXGBE_RDRXCTL_CRCSTRIP);
    expect(rdrxctl & T.IXGBE_RDRXCTL_RSCFRSTSIZE).toBe(0);
    expect(rdrxctl & (T.IXGBE_RDRXCTL_RSCACKC | T.IXGBE_RDRXCTL_FCOE_WRFIX)).toBe(T.IXGBE_RDRXCTL_RSCACKC | T.IXGBE_RDRXCTL_FCOE_WRFIX);
    expect(peek(T.IXGBE_FCTRL)).toBe((T.IXGBE_FCTRL_BAM | T.IXGBE_FCTRL_UPE | T.IXGBE_FCTRL_MPE) >>> 0);
    // 8.2.3.8.9: the whole 512 KB receive packet buffer of the 82599 (ixy gives away 384 KB).
    expect(peek(T.IXGBE_RXPBSIZE(0)) >>> T.IXGBE_RXPBSIZE_SHIFT).toBe(512);
    expect(peek(T.IXGBE_TXPBSIZE(0)) >>> 10).toBe(160);
    for (let i = 1; i < 8; i++) expect([peek(T.IXGBE_RXPBSIZE(i)), peek(T.IXGBE_TXPBSIZE(i))]).toEqual([0, 0]);
    expect(peek(T.IXGBE_RTTDCS) & T.IXGBE_RTTDCS_ARBDIS).toBe(0);
    expect(peek(T.IXGBE_DMATXCTL) & T.IXGBE_DMATXCTL_TE).toBe(T.IXGBE_DMATXCTL_TE);
    expect(peek(T.IXGBE_CTRL_EXT) & T.IXGBE_CTRL_EXT_NS_DIS).toBe(T.IXGBE_CTRL_EXT_NS_DIS);
    expect(peek(T.IXGBE_DCA_RXCTRL(0)) & (1 << 12)).toBe(0);

    // Receive queue 0: advanced one-buffer descriptors, 2 KB buffers, drop when full, enabled,
    // every descriptor but one given to the device.
    const srrctl = peek(T.IXGBE_SRRCTL(0));
    expect(srrctl & T.IXGBE_SRRCTL_DESCTYPE_MASK).toBe(T.IXGBE_SRRCTL_DESCTYPE_ADV_ONEBUF);
    expect(srrctl & T.IXGBE_SRRCTL_DROP_EN).toBe(T.IXGBE_SRRCTL_DROP_EN);
    expect(srrctl & T.IXGBE_SRRCTL_BSIZEPKT_MASK).toBe(2);
    expect(peek(T.IXGBE_RDLEN(0))).toBe(512 * 16);
    expect(peek(T.IXGBE_RDBAH(0))).toBeGreaterThan(0); // the sim's IOVAs lie above 4 GiB
    expect(peek(T.IXGBE_RDBAL(0)) % 128).toBe(0);
    expect([peek(T.IXGBE_RDH(0)), peek(T.IXGBE_RDT(0))]).toEqual([0, 511]);
    expect(peek(T.IXGBE_RXDCTL(0)) & T.IXGBE_RXDCTL_ENABLE).toBe(T.IXGBE_RXDCTL_ENABLE);

    // Every receive descriptor holds a distinct buffer address inside DMA memory, DD clear.
    const ringIova = peek(T.IXGBE_RDBAL(0)) + peek(T.IXGBE_RDBAH(0)) * 2 ** 32;
    const ring = dma.resolve(ringIova, 512 * 16);
    const words = new Uint32Array(ring.buffer, ring.byteOffset, 512 * 4);
    const addresses = new Set<number>();
    for (let i = 0; i < 512; i++) {
      const address = words[i * 4]! + words[i * 4 + 1]! * 2 ** 32;
      expect(dma.contains(address, 1984)).toBe(true);
      expect(words[i * 4 + 2]! & T.IXGBE_RXDADV_STAT_DD).toBe(0);
      addresses.add(address);
    }
    expect(addresses.size).toBe(512);

    // Transmit queue 0: ring, empty, enabled, PTHRESH 32 / HTHRESH 1 / WTHRESH 0.
    expect(peek(T.IXGBE_TDLEN(0))).toBe(256 * 16);
    expect(peek(T.IXGBE_TDBAH(0))).toBeGreaterThan(0);
    expect([peek(T.IXGBE_TDH(0)), peek(T.IXGBE_TDT(0))]).toEqual([0, 0]);
    const txdctl = peek(T.IXGBE_TXDCTL(0));
    expect(txdctl & T.IXGBE_TXDCTL_ENABLE).toBe(T.IXGBE_TXDCTL_ENABLE);
    expect([txdctl & 0x7f, (txdctl >>> 8) & 0x7f, (txdctl >>> 16) & 0x7f]).toEqual([32, 1, 0]);
    expect(model.linkUp).toBe(true);
  });

  it("configures every queue before it enables any, and turns receive on after the last receive queue", () => {
    const { writes } = openTraced({ rxQueues: 3, txQueues: 2, rxRingSize: 64, txRingSize: 64 });
    const at = (w: string) => writes.findIndex((x) => x.startsWith(w));
    const lastConfig = Math.max(at("RDLEN(2)"), at("TDLEN(1)"), at("DMATXCTL"));
    const firstEnable = Math.min(at("RXDCTL(0)"), at("TXDCTL(0)=0x2"));
    expect(lastConfig).toBeLessThan(firstEnable);
    expect(at("RXDCTL(2)")).toBeLessThan(at("RXCTRL=0x1"));
    expect(at("DMATXCTL")).toBeLessThan(at("TXDCTL(0)=0x2"));
  });

  it("reads the MAC address the EEPROM loaded into RAL(0)/RAH(0)", () => {
    const mac = Uint8Array.of(0x00, 0x1b, 0x21, 0xab, 0xcd, 0xef);
    const { dev } = openTraced({}, { mac });
    expect(dev.macAddress()).toEqual(mac);
    expect(dev.driver).toBe("ixgbe");
  });

  it("waits for a slow reset to finish", () => {
    const start = performance.now();
    const { trace, dev } = openTraced({}, { resetDelayMs: 30 });
    expect(performance.now() - start).toBeGreaterThanOrEqual(30);
    expect(trace.filter((a) => a.op === "read" && a.offset === T.IXGBE_CTRL).length).toBeGreaterThan(1);
    expect(dev.linkSpeed()).toBe(10_000);
  });

  it("fails with a DeviceTimeoutError naming the device and the register when the reset never ends", () => {
    const dma = new SimDma();
    const model = new Ixgbe82599Model({ dma, address: "0000:03:00.0", resetDelayMs: 60_000 });
    let error: unknown;
    try {
      createIxgbeDevice(model.pci, dma, {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DeviceTimeoutError);
    expect(String((error as Error).message)).toMatch(/0000:03:00\.0 BAR0: timed out after 1000 ms waiting for CTRL\.RST/);
  });

  it("enables bus mastering before the device does any DMA", () => {
    const { model } = openTraced();
    expect(model.pci.busMasterEnabled).toBe(true);
  });
});
