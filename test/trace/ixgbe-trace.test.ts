/**
 * Trace mode on the 82599 model (docs/trace.md): the init prints its register accesses with
 * datasheet names, bits and sections in the datasheet's order; the hot path is summarised, or
 * printed one by one with hotPath "each"; with trace off the driver's BAR0 is not wrapped.
 */
import { describe, expect, it } from "vitest";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { IXGBE_REGISTER_NAMES } from "../../src/drivers/ixgbe/ixgbe-register-names.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { writeFrame } from "../../src/mem/packet.ts";
import type { DeviceOptions } from "../../src/device.ts";
import { driverTrace, NO_TRACE } from "../../src/pci/register-trace.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";

function open(trace: DeviceOptions["trace"]) {
  const dma = new SimDma();
  // A fixed address: the lines start with it.
  const model = new Ixgbe82599Model({ dma, address: "sim:ixgbe0" });
  const dev = createIxgbeDevice(model.pci, dma, { linkTimeoutMs: 1000, rxRingSize: 64, txRingSize: 64, trace });
  return { dma, model, dev };
}

function traced(hotPath: "summary" | "each" = "summary") {
  const lines: string[] = [];
  const port = open({ sink: (l) => lines.push(l), hotPath });
  return { ...port, lines };
}

/** The index of the first line from `from` on that contains every one of `parts`; -1 if none. */
function find(lines: readonly string[], from: number, ...parts: string[]): number {
  for (let i = from; i < lines.length; i++) if (parts.every((p) => lines[i]!.includes(p))) return i;
  return -1;
}

/** Each expectation found after the one before it. */
function expectInOrder(lines: readonly string[], expected: readonly (readonly string[])[]): void {
  let at = 0;
  for (const parts of expected) {
    const i = find(lines, at, ...parts);
    expect(i, `a line with ${JSON.stringify(parts)} after line ${at}:\n${lines.slice(Math.max(0, at - 3), at + 3).join("\n")}`).toBeGreaterThanOrEqual(0);
    at = i + 1;
  }
}

describe("ixgbe trace", () => {
  it("prints the init with register names, bits and datasheet sections, in the datasheet's order", () => {
    const { dev, lines } = traced();
    expect(lines[0]).toBe("sim:ixgbe0 write EIMC         = 0xffffffff  4.6.3.1 interrupts off");
    expectInOrder(lines, [
      ["write CTRL", "[GIO_DIS]", "5.2.5.3.2 PCIe master disable"],
      ["read  STATUS", "5.2.5.3.2"],
      ["write CTRL", "= 0x0400000c [GIO_DIS LNK_RST RST]", "4.6.3.2 global reset"],
      ["write EIMC", "4.6.3.1"],
      ["read  EEC", "[PRES ARD]", "4.6.3 wait for the EEPROM auto-read"],
      ["read  RDRXCTL", "[DMAIDONE]", "4.6.3 wait for the DMA init cycle"],
      ["write CTRL_EXT", "[DRV_LOAD]"],
      ["write AUTOC", "= 0x00007000 [AN_RESTART LMS=10G_SERIAL]", "4.6.4 link setup"],
      ["read  GPRC", "4.6.5 clear the statistics"],
      ["write RXCTRL", "4.6.7 receive init"],
      ["write RXPBSIZE(0)", "= 0x00080000", "4.6.7"],
      ["write RDRXCTL", "CRCSTRIP", "RSCACKC", "FCOE_WRFIX", "4.6.7"],
      ["write FCTRL", "[BAM]", "4.6.7"],
      ["write SRRCTL(0)", "DROP_EN", "7.1.9 receive queue 0 ring"],
      ["write RDLEN(0)", "= 0x00000400", "7.1.9"],
      ["write CTRL_EXT", "[NS_DIS DRV_LOAD]", "4.6.7"],
      ["write HLREG0", "TXCRCEN", "TXPADEN", "4.6.8 transmit init"],
      ["write RTTDCS", "[ARBDIS]", "4.6.11.3.4"],
      ["write TXPBSIZE(0)", "= 0x00028000", "4.6.11.3.4"],
      ["write TDLEN(0)", "7.2.3.4.1 transmit queue 0 ring"],
      ["write DMATXCTL", "[TE]", "4.6.8"],
      ["write RXDCTL(0)", "[ENABLE]", "4.6.7.1 enable the receive queues"],
      ["write RDT(0)", "= 0x0000003f", "4.6.7.1"],
      ["write RXCTRL", "[RXEN]", "4.6.7 receive on"],
      ["write TXDCTL(0)", "[ENABLE]", "4.6.8.1 enable the transmit queues"],
      ["write FCTRL", "[MPE UPE BAM]", "8.2.3.7.1 promiscuous mode on"],
      ["read  LINKS", "[UP SPEED=10G]", "8.2.3.22.19 link status"],
    ]);
    // Every register access line names its register: no bare offsets.
    for (const l of lines) expect(l).not.toMatch(/(read |write) 0x/);
    dev.close();
    expectInOrder(lines, [["4.6.7.1 close"], ["write CTRL", "[GIO_DIS LNK_RST RST]", "4.6.3.2 global reset"]]);
  });

  it("prints control operations as they happen, with their section", () => {
    const { dev, lines } = traced();
    const before = lines.length;
    dev.setPromisc(false);
    expect(lines.slice(before)).toEqual([
      "sim:ixgbe0 read  FCTRL        = 0x00000700 [MPE UPE BAM]  8.2.3.7.1 promiscuous mode off",
      "sim:ixgbe0 write FCTRL        = 0x00000400 [BAM]  8.2.3.7.1 promiscuous mode off",
    ]);
    dev.macAddress();
    expect(lines.slice(-2).map((l) => /^\S+ read +(\S+) .* 8\.2\.3\.7 receive address 0/.exec(l)?.[1])).toEqual(["RAL(0)", "RAH(0)"]);
    dev.close();
  });

  it("summarises the hot path (tail writes) instead of printing each access, and prints each with hotPath 'each'", () => {
    for (const mode of ["summary", "each"] as const) {
      const { dev, dma, lines } = traced(mode);
      const pool = new Mempool(dma, { count: 64 });
      const bufs = new Int32Array(8);
      const start = lines.length;
      for (let round = 0; round < 3; round++) {
        expect(pool.allocBatch(bufs, 8)).toBe(8);
        for (const b of bufs) writeFrame(b, new Uint8Array(60));
        expect(dev.txBatch(0, bufs, 8)).toBe(8);
      }
      const tailLines = lines.slice(start).filter((l) => l.includes("TDT(0)"));
      if (mode === "summary") {
        expect(tailLines).toEqual([]);
        dev.close();
        // close() prints what the summary held: one line per register with its count.
        expect(lines.filter((l) => l.includes("hot path") && l.includes("write TDT(0)"))).toEqual(["sim:ixgbe0 hot path, last 1 s: write TDT(0) x3"]);
      } else {
        expect(tailLines).toHaveLength(3);
        expect(tailLines[0]).toMatch(/^sim:ixgbe0 write TDT\(0\) +?= 0x00000008  hot path$/);
        dev.close();
      }
    }
  });

  it("leaves the ring inspector's register reads (ringState: RDH, TDH) out of the trace", () => {
    const { dev, lines } = traced("each");
    const start = lines.length;
    expect(dev.ringState("rx", 0).fields).toMatchObject({ RDT: 63 });
    expect(dev.ringState("tx", 0).fields).toMatchObject({ TDH: 0 });
    // They are the inspector's, not steps of the driver: a student reading the trace would take them for the driver's.
    expect(lines.slice(start).filter((l) => /RDH|RDT|TDH|TDT/.test(l))).toEqual([]);
    dev.close();
  });

  it("does not wrap BAR0 with trace off: no trace code between the driver and the registers", () => {
    const stacks = (trace: DeviceOptions["trace"]): string[] => {
      const dma = new SimDma();
      const model = new Ixgbe82599Model({ dma });
      const bar = model.pci.bar(0);
      const read32 = bar.read32.bind(bar);
      const seen: string[] = [];
      bar.read32 = (offset: number) => {
        seen.push(new Error().stack ?? "");
        return read32(offset);
      };
      createIxgbeDevice(model.pci, dma, { linkTimeoutMs: 1000, rxRingSize: 64, txRingSize: 64, trace }).close();
      return seen;
    };
    expect(stacks({ sink: () => {} }).some((s) => s.includes("TracingMmio"))).toBe(true);
    const off = stacks(undefined);
    expect(off.length).toBeGreaterThan(0);
    expect(off.some((s) => s.includes("TracingMmio"))).toBe(false);
    expect(driverTrace(false, "x")).toBe(NO_TRACE);
    expect(() => driverTrace({ hotPath: "some" as "each" }, "x")).toThrow(RangeError);
  });

  it("names registers from ixgbe_type.ts, indexed ones with their index", () => {
    expect(IXGBE_REGISTER_NAMES.name(T.IXGBE_CTRL_EXT)).toBe("CTRL_EXT");
    expect(IXGBE_REGISTER_NAMES.name(T.IXGBE_RDT(70))).toBeNull(); // the driver uses queues 0-63
    expect(IXGBE_REGISTER_NAMES.name(T.IXGBE_RDT(5))).toBe("RDT(5)");
    expect(IXGBE_REGISTER_NAMES.name(T.IXGBE_SRRCTL(3))).toBe("SRRCTL(3)");
    expect(IXGBE_REGISTER_NAMES.name(T.IXGBE_RAL(1))).toBe("RAL(1)");
    expect(IXGBE_REGISTER_NAMES.bits(T.IXGBE_CTRL, T.IXGBE_CTRL_RST_MASK)).toEqual(["LNK_RST", "RST"]);
  });
});
