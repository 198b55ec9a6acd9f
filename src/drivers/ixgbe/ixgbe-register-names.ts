/**
 * The 82599's registers by offset, for trace mode (src/pci/register-trace.ts): the names of
 * ixgbe_type.ts without the IXGBE_ prefix, which are the datasheet's (section 8.2.3), indexed
 * registers as "RDT(3)", and the names of the bits the driver sets or waits for. Built from the
 * constants, so that no offset is written twice.
 */
import type { RegisterNames } from "../../pci/register-trace.ts";
import { bitNames } from "../../pci/register-trace.ts";
import * as T from "./ixgbe_type.ts";

/** How many of each indexed register: the driver uses queues 0-63 and 8 packet buffers. */
const INDEX_COUNTS: Readonly<Record<string, number>> = {
  RXPBSIZE: 8, TXPBSIZE: 8, MPC: 8, TXPBTHRESH: 8, QPRDC: 16, RSSRK: 10, RETA: 32, FDIRSIPv6: 3,
  EICS_EX: 2, EIMS_EX: 2, EIMC_EX: 2, EIAM_EX: 2, EITR: 64, IVAR: 64, RAL: 16, RAH: 16,
};

/**
 * The registers of ixgbe_type.ts that are not indexed (its other constants are bits and fields);
 * listed rather than guessed from the names, as CTRL_EXT is a register and CTRL_RST a bit.
 */
const SCALAR_REGISTERS = [
  "CTRL", "STATUS", "CTRL_EXT", "ESDP", "EEC", "EICR", "EICS", "EIAC", "EIMS", "EIMC", "EIAM", "GPIE", "IVAR_MISC",
  "RDRXCTL", "RXCTRL", "SECRXCTRL", "SECRXSTAT", "FCTRL", "RXCSUM", "MRQC", "FDIRCTRL", "FDIRHKEY", "FDIRSKEY",
  "FDIRDIP4M", "FDIRSIP4M", "FDIRTCPM", "FDIRUDPM", "FDIRIP6M", "FDIRM", "FDIRFREE", "FDIRLEN", "FDIRUSTAT", "FDIRFSTAT",
  "FDIRMATCH", "FDIRMISS", "FDIRIPSA", "FDIRIPDA", "FDIRPORT", "FDIRVLAN", "FDIRHASH", "FDIRCMD", "DMATXCTL", "DTXMXSZRQ",
  "MTQC", "RTTDCS", "HLREG0", "MAXFRS", "AUTOC", "LINKS", "AUTOC2", "CRCERRS", "ILLERRC", "ERRBC", "RLEC", "GPRC", "GPTC",
  "GORCL", "GORCH", "GOTCL", "GOTCH", "RUC", "ROC", "RFC", "RJC",
] as const;

const NAMES = new Map<number, string>();
for (const [key, value] of Object.entries(T)) {
  if (!key.startsWith("IXGBE_")) continue;
  const name = key.slice("IXGBE_".length);
  if (typeof value === "function") {
    const count = INDEX_COUNTS[name] ?? 64;
    const base = name === "DCA_TXCTRL_82599" ? "DCA_TXCTRL" : name;
    for (let i = 0; i < count; i++) {
      const offset = (value as (i: number) => number)(i);
      if (!NAMES.has(offset)) NAMES.set(offset, `${base}(${i})`);
    }
  }
}
const constants = T as unknown as Readonly<Record<string, number>>;
for (const name of SCALAR_REGISTERS) NAMES.set(constants[`IXGBE_${name}`]!, name);

type BitTable = readonly (readonly [number, string])[];

/** Bit names where they help to read the trace (single bits and the LMS / speed fields). */
const BITS = new Map<number, BitTable>([
  [T.IXGBE_CTRL, [[T.IXGBE_CTRL_GIO_DIS, "GIO_DIS"], [T.IXGBE_CTRL_LNK_RST, "LNK_RST"], [T.IXGBE_CTRL_RST, "RST"]]],
  [T.IXGBE_STATUS, [[T.IXGBE_STATUS_GIO, "GIO"]]],
  [T.IXGBE_CTRL_EXT, [[T.IXGBE_CTRL_EXT_NS_DIS, "NS_DIS"], [T.IXGBE_CTRL_EXT_DRV_LOAD, "DRV_LOAD"]]],
  [T.IXGBE_ESDP, [[T.IXGBE_ESDP_SDP3, "SDP3"], [T.IXGBE_ESDP_SDP3_DIR, "SDP3_DIR"]]],
  [T.IXGBE_EEC, [[T.IXGBE_EEC_PRES, "PRES"], [T.IXGBE_EEC_ARD, "ARD"]]],
  [T.IXGBE_RDRXCTL, [
    [T.IXGBE_RDRXCTL_CRCSTRIP, "CRCSTRIP"], [T.IXGBE_RDRXCTL_DMAIDONE, "DMAIDONE"], [T.IXGBE_RDRXCTL_RSCACKC, "RSCACKC"],
    [T.IXGBE_RDRXCTL_FCOE_WRFIX, "FCOE_WRFIX"],
  ]],
  [T.IXGBE_RXCTRL, [[T.IXGBE_RXCTRL_RXEN, "RXEN"]]],
  [T.IXGBE_FCTRL, [[T.IXGBE_FCTRL_MPE, "MPE"], [T.IXGBE_FCTRL_UPE, "UPE"], [T.IXGBE_FCTRL_BAM, "BAM"]]],
  [T.IXGBE_HLREG0, [
    [T.IXGBE_HLREG0_TXCRCEN, "TXCRCEN"], [T.IXGBE_HLREG0_RXCRCSTRP, "RXCRCSTRP"], [T.IXGBE_HLREG0_JUMBOEN, "JUMBOEN"],
    [T.IXGBE_HLREG0_TXPADEN, "TXPADEN"],
  ]],
  [T.IXGBE_DMATXCTL, [[T.IXGBE_DMATXCTL_TE, "TE"]]],
  [T.IXGBE_RTTDCS, [[T.IXGBE_RTTDCS_ARBDIS, "ARBDIS"]]],
  [T.IXGBE_SECRXCTRL, [[T.IXGBE_SECRXCTRL_RX_DIS, "RX_DIS"]]],
  [T.IXGBE_SECRXSTAT, [[T.IXGBE_SECRXSTAT_SECRX_RDY, "SECRX_RDY"]]],
]);

/** AUTOC: Restart_AN, and the link mode select field LMS (bits 15:13) by value. */
function autocBits(value: number): string[] {
  const names = (value & T.IXGBE_AUTOC_AN_RESTART) !== 0 ? ["AN_RESTART"] : [];
  const lms = (value & T.IXGBE_AUTOC_LMS_MASK) >>> 0;
  const mode = lms === T.IXGBE_AUTOC_LMS_10G_SERIAL ? "10G_SERIAL" : lms === T.IXGBE_AUTOC_LMS_KX4_KX_KR ? "KX4_KX_KR"
    : lms === T.IXGBE_AUTOC_LMS_1G_NO_AN ? "1G_NO_AN" : `${lms >>> T.IXGBE_AUTOC_LMS_SHIFT}`;
  names.push(`LMS=${mode}`);
  return names;
}

/** LINKS: link up, and the speed field (bits 29:28). */
function linksBits(value: number): string[] {
  const names = (value & T.IXGBE_LINKS_UP) !== 0 ? ["UP"] : [];
  const speed = (value & T.IXGBE_LINKS_SPEED_82599) >>> 0;
  if (speed === T.IXGBE_LINKS_SPEED_10G_82599) names.push("SPEED=10G");
  else if (speed === T.IXGBE_LINKS_SPEED_1G_82599) names.push("SPEED=1G");
  else if (speed === T.IXGBE_LINKS_SPEED_100_82599) names.push("SPEED=100M");
  return names;
}

const QUEUE_CONTROL = new Map<number, BitTable>();
for (let i = 0; i < 64; i++) {
  QUEUE_CONTROL.set(T.IXGBE_RXDCTL(i), [[T.IXGBE_RXDCTL_ENABLE, "ENABLE"]]);
  QUEUE_CONTROL.set(T.IXGBE_TXDCTL(i), [[T.IXGBE_TXDCTL_ENABLE, "ENABLE"], [T.IXGBE_TXDCTL_SWFLSH, "SWFLSH"]]);
  QUEUE_CONTROL.set(T.IXGBE_SRRCTL(i), [[T.IXGBE_SRRCTL_DESCTYPE_ADV_ONEBUF, "DESCTYPE_ADV_ONEBUF"], [T.IXGBE_SRRCTL_DROP_EN, "DROP_EN"]]);
}
for (let i = 0; i < 16; i++) QUEUE_CONTROL.set(T.IXGBE_RAH(i), [[T.IXGBE_RAH_AV, "AV"]]);

export const IXGBE_REGISTER_NAMES: RegisterNames = {
  name: (offset) => NAMES.get(offset) ?? null,
  bits(offset, value) {
    if (offset === T.IXGBE_AUTOC) return autocBits(value);
    if (offset === T.IXGBE_LINKS) return linksBits(value);
    const table = BITS.get(offset) ?? QUEUE_CONTROL.get(offset);
    return table === undefined ? null : bitNames(value, table);
  },
};
