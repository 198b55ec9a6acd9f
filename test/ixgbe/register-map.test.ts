/**
 * The driver's register map (ixgbe_type.ts, Linux's names and values) against the model's own
 * (model-registers.ts, written from the datasheet). Neither is derived from the other, so a wrong
 * offset or bit on either side shows up here instead of being reproduced by the model.
 */
import { describe, expect, it } from "vitest";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import * as M from "../../src/sim/ixgbe/model-registers.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";

type Entry = number | ((n: number) => number);
const driver = T as unknown as Record<string, Entry | undefined>;
const model = M as unknown as Record<string, Entry>;

/** Where the datasheet (the model's names) and Linux (the driver's) name the same thing differently. */
const DRIVER_NAME: Readonly<Record<string, string>> = {
  CTRL_LRST: "CTRL_LNK_RST",
  CTRL_RESET_BITS: "CTRL_RST_MASK",
  EEC_EE_PRES: "EEC_PRES",
  EEC_AUTO_RD: "EEC_ARD",
  SRRCTL_BSIZEPACKET_SHIFT: "SRRCTL_BSIZEPKT_SHIFT",
  // The reset size of packet buffer 0 is the whole buffer, which is what the driver's _MAX names.
  RXPBSIZE_RESET: "RXPBSIZE_MAX",
  TXPBSIZE_RESET: "TXPBSIZE_MAX",
  MAXFRS_MFS_SHIFT: "MHADD_MFS_SHIFT",
  AUTOC_RESTART_AN: "AUTOC_AN_RESTART",
  AUTOC2_10G_PMA_PMD_SERIAL_SFI: "AUTOC2_10G_SFI",
  LINKS_LINK_UP: "LINKS_UP",
  LINKS_NON_STD: "LINKS_SPEED_NON_STD",
  DCA_TXCTRL: "DCA_TXCTRL_82599",
  LINKS_LINK_SPEED_MASK: "LINKS_SPEED_82599",
  LINKS_LINK_SPEED_10G: "LINKS_SPEED_10G_82599",
  LINKS_LINK_SPEED_1G: "LINKS_SPEED_1G_82599",
  LINKS_LINK_SPEED_100M: "LINKS_SPEED_100_82599",
  DESCRIPTOR_SIZE: "DESC_SIZE",
  RXD_STATUS_DD: "RXDADV_STAT_DD",
  RXD_STATUS_EOP: "RXDADV_STAT_EOP",
  TXD_DTALEN_MASK: "ADVTXD_DTALEN_MASK",
  TXD_DTYP_MASK: "ADVTXD_DTYP_MASK",
  TXD_DTYP_CONTEXT: "ADVTXD_DTYP_CTXT",
  TXD_DTYP_DATA: "ADVTXD_DTYP_DATA",
  TXD_DCMD_EOP: "ADVTXD_DCMD_EOP",
  TXD_DCMD_IFCS: "ADVTXD_DCMD_IFCS",
  TXD_DCMD_RS: "ADVTXD_DCMD_RS",
  TXD_DCMD_DEXT: "ADVTXD_DCMD_DEXT",
  TXD_STA_DD: "ADVTXD_STAT_DD",
  TXD_PAYLEN_SHIFT: "ADVTXD_PAYLEN_SHIFT",
  MRQC_MRQE_RSS: "MRQC_RSSEN",
  EICR_RTXQ_MASK: "EICR_RTX_QUEUE",
  GPIE_MULTIPLE_MSIX: "GPIE_MSIX_MODE",
  EITR_ITR_INTERVAL_MASK: "EITR_ITR_INT_MASK",
  IVAR_INT_ALLOC_VAL: "IVAR_ALLOC_VAL",
  RXD_STATUS_UDPCS: "RXD_STAT_UDPCS",
  RXD_STATUS_L4CS: "RXD_STAT_L4CS",
  RXD_STATUS_IPCS: "RXD_STAT_IPCS",
  RXD_ERROR_TCPE: "RXDADV_ERR_TCPE",
  RXD_ERROR_IPE: "RXDADV_ERR_IPE",
  TXD_DCMD_VLE: "ADVTXD_DCMD_VLE",
  TXD_DCMD_TSE: "ADVTXD_DCMD_TSE",
  TXD_IDX_SHIFT: "ADVTXD_IDX_SHIFT",
  TXD_POPTS_IXSM: "ADVTXD_POPTS_IXSM",
  TXD_POPTS_TXSM: "ADVTXD_POPTS_TXSM",
  TXCTX_MACLEN_SHIFT: "ADVTXD_MACLEN_SHIFT",
  TXCTX_TUCMD_IPV4: "ADVTXD_TUCMD_IPV4",
  TXCTX_TUCMD_L4T_UDP: "ADVTXD_TUCMD_L4T_UDP",
  TXCTX_TUCMD_L4T_TCP: "ADVTXD_TUCMD_L4T_TCP",
  TXCTX_IDX_SHIFT: "ADVTXD_IDX_SHIFT",
  TXCTX_L4LEN_SHIFT: "ADVTXD_L4LEN_SHIFT",
  TXCTX_MSS_SHIFT: "ADVTXD_MSS_SHIFT",
};

/**
 * Registers the driver (like Linux) addresses at their 82598-compatible alias for n = 0-15 and at
 * the 82599 address above; the model decodes both.
 */
const ALIASED: Readonly<Record<string, (n: number) => number>> = {
  SRRCTL: M.SRRCTL_ALIAS,
  DCA_RXCTRL: M.DCA_RXCTRL_ALIAS,
  RAL: M.RAL_ALIAS,
  RAH: M.RAH_ALIAS,
};

/** Model exports without a driver counterpart: reset values and the alias functions above. */
const MODEL_ONLY = new Set([
  "SRRCTL_ALIAS", "DCA_RXCTRL_ALIAS", "RAL_ALIAS", "RAH_ALIAS",
  "SRRCTL_RESET", "RDRXCTL_RESET", "DTXMXSZRQ_RESET", "TXPBTHRESH0_RESET", "DCA_RXCTRL_RESET", "HLREG0_RESET",
  "MAXFRS_RESET", "DCA_TXCTRL_RESET",
  // How the model turns EITR into time; the driver writes microseconds << 2 (ixgbe-interrupts.ts).
  "EITR_ITR_INTERVAL_SHIFT", "EITR_INTERVAL_UNIT_US",
  // What the model writes into a receive descriptor for RSS; the driver does not read it (yet).
  "RXD_RSSTYPE_NONE", "RXD_RSSTYPE_IPV4_TCP", "RXD_RSSTYPE_IPV4", "RXD_RSSTYPE_IPV6_TCP", "RXD_RSSTYPE_IPV6",
  "RXD_RSSTYPE_IPV4_UDP", "RXD_RSSTYPE_IPV6_UDP", "RXD_PKTTYPE_IPV4", "RXD_PKTTYPE_IPV4E", "RXD_PKTTYPE_IPV6",
  "RXD_PKTTYPE_IPV6E", "RXD_PKTTYPE_TCP", "RXD_PKTTYPE_UDP",
  // Transmit offload fields the model decodes (masks, SCTP) and its limits (model-registers.ts).
  "TXD_IDX_MASK", "TXCTX_IPLEN_MASK", "TXCTX_MACLEN_MASK", "TXCTX_TUCMD_L4T_MASK", "TXCTX_TUCMD_L4T_SCTP", "TXCTX_L4LEN_MASK",
  "TX_CONTEXTS", "TXD_MAX_DATA",
]);

/**
 * Linux's mask is wider than the datasheet's field: SRRCTL.BSIZEPACKET is bits 4:0 (1-16 KB) in
 * the 82599 datasheet, IXGBE_SRRCTL_BSIZEPKT_MASK is 0x7f. Checked separately below.
 */
const WIDER_IN_DRIVER = new Set(["SRRCTL_BSIZEPACKET_MASK"]);

/** Indexed registers with 8 instances (one per packet buffer); the others have 128. */
const EIGHT = new Set(["MPC", "RXPBSIZE", "TXPBSIZE", "TXPBTHRESH"]);

const checked = Object.keys(model).filter((name) => !MODEL_ONLY.has(name) && !WIDER_IN_DRIVER.has(name)).sort();
const driverNameOf = (name: string) => `IXGBE_${DRIVER_NAME[name] ?? name}`;
const hex = (v: number) => `0x${(v >>> 0).toString(16).padStart(5, "0")}`;

describe("the driver's register map agrees with the model's (datasheet) register map", () => {
  it("has a driver constant for every register and field the model knows", () => {
    const missing = checked.filter((name) => driver[driverNameOf(name)] === undefined);
    expect(missing, "model names with no driver constant: add it to DRIVER_NAME or MODEL_ONLY").toEqual([]);
    const stale = [...MODEL_ONLY, ...WIDER_IN_DRIVER, ...Object.keys(DRIVER_NAME)].filter((name) => !(name in model));
    expect(stale, "names in this test's tables that the model no longer exports").toEqual([]);
  });

  it.each(checked.map((name) => [name, driverNameOf(name)]))("%s equals the driver's %s", (name, driverName) => {
    const ours = model[name]!;
    const theirs = driver[driverName]!;
    expect(typeof theirs).toBe(typeof ours);
    if (typeof ours === "number") {
      expect(hex(theirs as number)).toBe(hex(ours));
      return;
    }
    const count = EIGHT.has(name) ? 8 : name === "QPRDC" ? 16 : 128;
    const alias = ALIASED[name];
    const expected = Array.from({ length: count }, (_, n) => hex(alias !== undefined && n < 16 ? alias(n) : ours(n)));
    const actual = Array.from({ length: count }, (_, n) => hex((theirs as (n: number) => number)(n)));
    expect(actual).toEqual(expected);
  });

  it("SRRCTL: the driver's BSIZEPACKET mask covers the datasheet's field, and 2 KB fits in it", () => {
    expect(T.IXGBE_SRRCTL_BSIZEPKT_MASK & M.SRRCTL_BSIZEPACKET_MASK).toBe(M.SRRCTL_BSIZEPACKET_MASK);
    expect((2048 >>> T.IXGBE_SRRCTL_BSIZEPKT_SHIFT) & ~M.SRRCTL_BSIZEPACKET_MASK).toBe(0);
  });
});

describe("the model decodes the 82598-compatible aliases the driver uses", () => {
  it("keeps SRRCTL, DCA_RXCTRL and RAL/RAH 0-15 identical at both addresses", () => {
    const model = new Ixgbe82599Model({ dma: new SimDma() });
    const bar = model.regs;
    for (const [register, alias] of [[M.SRRCTL, M.SRRCTL_ALIAS], [M.DCA_RXCTRL, M.DCA_RXCTRL_ALIAS], [M.RAL, M.RAL_ALIAS],
      [M.RAH, M.RAH_ALIAS]] as const) {
      for (const n of [0, 15]) {
        expect(bar.read32(alias(n))).toBe(bar.read32(register(n))); // reset values
        bar.write32(register(n), 0x1234);
        expect(bar.read32(alias(n))).toBe(0x1234);
        bar.write32(alias(n), 0x5678);
        expect(bar.read32(register(n))).toBe(0x5678);
      }
    }
  });
});
