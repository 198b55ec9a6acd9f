/**
 * Flow Director perfect-match filters of the 82599 (datasheet 7.1.2.7): rules that send the IPv4
 * frames of one flow to a chosen receive queue, or drop them, ahead of RSS.
 *
 * How the hardware holds them: a table in the receive packet buffer (FDIRCTRL.PBALLOC takes 64,
 * 128 or 256 KB of it; this driver takes 64 KB: 2047 perfect filters) organised as hash buckets.
 * Software computes each filter's bucket with the bucket hash (key FDIRHKEY) over the filter's
 * fields, after the global masks (FDIRM, FDIRSIP4M, FDIRDIP4M, FDIRTCPM, FDIRUDPM) took out what
 * is not compared. The device hashes every received frame the same way and compares the frame
 * with the filters of that bucket only: a filter written with a wrong hash never matches.
 * A filter is written as fields (FDIRIPSA, FDIRIPDA, FDIRPORT, FDIRVLAN, FDIRSIPv6), then
 * FDIRHASH (bucket and a software index that names the filter in its bucket), then FDIRCMD (the
 * command, flow type, queue); FDIRCMD.CMD reads back 0 once the device took the command.
 *
 * The steps follow the 82599 datasheet 7.1.2.7 and Linux's ixgbe_82599.c (ixgbe_init_fdir_
 * perfect_82599, ixgbe_fdir_set_input_mask_82599, ixgbe_fdir_write_perfect_filter_82599,
 * ixgbe_fdir_erase_perfect_filter_82599, ixgbe_atr_compute_perfect_hash_82599):
 * 1. init, before receive is enabled (4.6.7): RXPBSIZE(0) made 64 KB smaller (the driver's
 *    #initRx does it), the hash keys into FDIRHKEY/FDIRSKEY, then FDIRCTRL (PBALLOC 64K,
 *    PERFECT_MATCH, drop queue 127, bucket length limit 10) and a wait for FDIRCTRL.INIT_DONE;
 *    the statistics registers are read once to clear them;
 * 2. masks: one set for the whole table, written while the table is empty (the first rule
 *    decides which fields are compared; rules added later must compare the same fields);
 * 3. add: fields, FDIRHASH, FDIRCMD = ADD_FLOW | LAST | QUEUE_EN | flow type | queue (| DROP),
 *    wait for CMD to clear, then FDIRFSTAT says whether the add failed (table full);
 * 4. remove: FDIRHASH, QUERY_REM_FILT, wait; if FILTER_VALID, FDIRHASH again and REMOVE_FLOW.
 * Not done: IPv6 rules, VLAN and flexible-byte matching, partial (prefix) masks, signature mode
 * (ATR), the FDIRCTRL.REPORT_STATUS write-back, and re-initialising the table of a running device
 * (the 82599 erratum dance with FDIRCMD.CLEARHT): the table is set up once per open.
 */
import type { FlowAction, FlowMatch } from "../../device.ts";
import { DeviceProtocolError, DeviceTimeoutError, FlowTableFullError, NotSupportedError } from "../../errors.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { getReg32, pollUntil, setReg32, waitSetReg32 } from "../../pci/regs.ts";
import * as T from "./ixgbe_type.ts";

/** 64 KB of packet buffer for the table: what Linux takes (fdir_pballoc = IXGBE_FDIR_PBALLOC_64K). */
export const FDIR_PBALLOC = T.IXGBE_FDIRCTRL_PBALLOC_64K;
/** Packet buffer the table takes, in KB: 32 << PBALLOC (Linux's ixgbe_configure_pb headroom). */
export const FDIR_PACKET_BUFFER_KB = 32 << FDIR_PBALLOC;
/** Perfect filters a 64 KB table holds (2K - 1, datasheet 7.1.2.7 / ixgbe_init_fdir_perfect_82599). */
export const FDIR_MAX_RULES = 2047;
/** The drop queue: a queue the driver never enables (it uses the first 64), as Linux's IXGBE_FDIR_DROP_QUEUE. */
export const FDIR_DROP_QUEUE = 127;
/** Perfect-filter bucket hashes are 13 bits (8K buckets at most; ixgbe_atr_compute_perfect_hash_82599). */
const BUCKET_MASK = 0x1fff;
/** The 15-bit software index of FDIRHASH (bits 30:16): rule ids are 1 .. FDIR_MAX_RULES. */
const COMMAND_TIMEOUT_MS = 10;
const INIT_TIMEOUT_MS = 100;

const FLOW_TYPES = { ip: T.IXGBE_ATR_FLOW_TYPE_IPV4, udp: T.IXGBE_ATR_FLOW_TYPE_UDPV4, tcp: T.IXGBE_ATR_FLOW_TYPE_TCPV4, sctp: T.IXGBE_ATR_FLOW_TYPE_SCTPV4 } as const;

/** Which fields the global masks let the device compare. */
interface FieldSet {
  readonly l4: boolean;
  readonly src: boolean;
  readonly dst: boolean;
  readonly srcPort: boolean;
  readonly dstPort: boolean;
}

interface Rule {
  readonly key: string;
  readonly bucket: number;
}

/** A checked rule: the values as the registers take them. */
interface Filter {
  readonly fields: FieldSet;
  readonly flowType: number;
  readonly src: number;
  readonly dst: number;
  readonly srcPort: number;
  readonly dstPort: number;
}

/** IPv4 dotted quad to its 32-bit value (first octet in the top byte); RangeError otherwise. */
function parseIpv4(device: string, what: string, value: unknown): number {
  if (typeof value !== "string") throw new TypeError(`${device}: addFlowRule(): ${what} must be an IPv4 address string, got ${typeof value}`);
  if (value.includes(":")) {
    throw new NotSupportedError(`${device}: addFlowRule(): ${what} ${value} is an IPv6 address; the driver's flow rules match IPv4 only`);
  }
  const parts = value.split(".");
  const octets = parts.map((p) => (/^(0|[1-9][0-9]{0,2})$/.test(p) ? Number(p) : Number.NaN));
  if (parts.length !== 4 || octets.some((o) => !(o <= 255))) {
    throw new RangeError(`${device}: addFlowRule(): ${what} must be a dotted IPv4 address like 10.0.0.2, got '${value}'`);
  }
  return ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
}

function parsePort(device: string, what: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new RangeError(`${device}: addFlowRule(): ${what} must be an integer from 0 to 65535, got ${String(value)}`);
  }
  return value;
}

/** A 32-bit value as the big-endian fields take it: the first octet in the register's low byte. */
function asBigEndian(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

/** The 16 bits of `v` in reverse order: FDIRTCPM/FDIRUDPM hold their port masks bit-reversed. */
function reverse16(v: number): number {
  let r = 0;
  for (let i = 0; i < 16; i++) r |= ((v >>> i) & 1) << (15 - i);
  return r;
}

/**
 * The bucket hash of a perfect filter (7.1.2.7.x; ixgbe_atr_compute_perfect_hash_82599), over the
 * masked hash input: dword 0 = VM pool, flow type, VLAN (here: the flow type in bits 23:16), and
 * the XOR of the other ten dwords (addresses, ports, flexible bytes). For each set bit n of the
 * key's low half the low hash dword shifted right by n is folded in, for each bit n of the high
 * half the high dword: a 32-bit-key version of a Toeplitz hash.
 */
export function fdirBucketHash(key: number, flowDword: number, common: number): number {
  let hi = (common ^ flowDword ^ (flowDword >>> 16)) >>> 0;
  let lo = ((common >>> 16) | (common << 16)) >>> 0;
  let hash = 0;
  // Bit 0 sees the low dword before the flow dword is folded into it.
  if ((key & 1) !== 0) hash ^= lo;
  if ((key & 0x10000) !== 0) hash ^= hi;
  lo = (lo ^ flowDword ^ (flowDword << 16)) >>> 0;
  for (let n = 1; n < 16; n++) {
    if ((key & (1 << n)) !== 0) hash ^= lo >>> n;
    if ((key & (1 << (n + 16))) !== 0) hash ^= hi >>> n;
  }
  return hash & BUCKET_MASK;
}

function describeFields(f: FieldSet): string {
  const names = [f.l4 ? "protocol" : "", f.src ? "src" : "", f.dst ? "dst" : "", f.srcPort ? "srcPort" : "", f.dstPort ? "dstPort" : ""].filter((n) => n !== "");
  return names.length === 0 ? "nothing (every IPv4 frame)" : names.join(", ");
}

function sameFields(a: FieldSet, b: FieldSet): boolean {
  return a.l4 === b.l4 && a.src === b.src && a.dst === b.dst && a.srcPort === b.srcPort && a.dstPort === b.dstPort;
}

export class IxgbeFlowDirector {
  readonly #mmio: Mmio;
  readonly #device: string;
  readonly #rxQueues: number;
  /** Rule id (the FDIRHASH software index) to its rule. */
  readonly #rules = new Map<number, Rule>();
  readonly #byKey = new Map<string, number>();
  /** The fields the masks in the registers compare; null while the table is empty and unmasked. */
  #fields: FieldSet | null = null;
  #nextId = 1;
  /** FDIRMATCH and FDIRMISS totals (the registers clear on read). */
  #matched = 0;
  #missed = 0;

  constructor(mmio: Mmio, device: string, rxQueues: number) {
    this.#mmio = mmio;
    this.#device = device;
    this.#rxQueues = rxQueues;
  }

  /** Step 1: keys, FDIRCTRL, INIT_DONE, statistics cleared. RXPBSIZE(0) must be smaller already. */
  init(): void {
    const mmio = this.#mmio;
    setReg32(mmio, T.IXGBE_FDIRHKEY, T.IXGBE_ATR_BUCKET_HASH_KEY);
    setReg32(mmio, T.IXGBE_FDIRSKEY, T.IXGBE_ATR_SIGNATURE_HASH_KEY);
    const fdirctrl = FDIR_PBALLOC | T.IXGBE_FDIRCTRL_PERFECT_MATCH | (FDIR_DROP_QUEUE << T.IXGBE_FDIRCTRL_DROP_Q_SHIFT) |
      (0x6 << T.IXGBE_FDIRCTRL_FLEX_SHIFT) | (0xa << T.IXGBE_FDIRCTRL_MAX_LENGTH_SHIFT) | (4 << T.IXGBE_FDIRCTRL_FULL_THRESH_SHIFT);
    setReg32(mmio, T.IXGBE_FDIRCTRL, fdirctrl >>> 0);
    // Linux: ~60 us at 10 Gbit/s with PBALLOC = 11b, four times that under load.
    waitSetReg32(mmio, T.IXGBE_FDIRCTRL, T.IXGBE_FDIRCTRL_INIT_DONE, { timeoutMs: INIT_TIMEOUT_MS, name: "FDIRCTRL.INIT_DONE" });
    for (const r of [T.IXGBE_FDIRUSTAT, T.IXGBE_FDIRFSTAT, T.IXGBE_FDIRMATCH, T.IXGBE_FDIRMISS, T.IXGBE_FDIRLEN]) getReg32(mmio, r);
  }

  get ruleCount(): number {
    return this.#rules.size;
  }

  /** Frames that matched a rule and frames the table was searched for in vain, since open. */
  counters(): { matched: number; missed: number } {
    this.#matched += getReg32(this.#mmio, T.IXGBE_FDIRMATCH);
    this.#missed += getReg32(this.#mmio, T.IXGBE_FDIRMISS);
    return { matched: this.#matched, missed: this.#missed };
  }

  add(match: FlowMatch, action: FlowAction): number {
    const filter = this.#check(match, action);
    const key = `${filter.flowType}/${filter.src}/${filter.dst}/${filter.srcPort}/${filter.dstPort}/${describeFields(filter.fields)}`;
    const existing = this.#byKey.get(key);
    if (existing !== undefined) {
      throw new RangeError(`${this.#device}: addFlowRule(): rule ${existing} matches the same frames already; remove it first to change its action`);
    }
    if (this.#fields !== null && this.#rules.size > 0 && !sameFields(this.#fields, filter.fields)) {
      throw new NotSupportedError(
        `${this.#device}: addFlowRule(): the 82599 compares one set of fields for all its rules (global masks, 7.1.2.7); ` +
          `the rules in place compare ${describeFields(this.#fields)}, this one ${describeFields(filter.fields)}: give every rule ` +
          `the same fields, or remove all rules first`,
      );
    }
    if (this.#rules.size >= FDIR_MAX_RULES) {
      throw new FlowTableFullError(`${this.#device}: addFlowRule(): the Flow Director table holds ${FDIR_MAX_RULES} rules, all in use: remove one first`);
    }
    const mmio = this.#mmio;
    // Step 2: masks, only while the table is empty (they apply to every filter in it).
    if (this.#fields === null || !sameFields(this.#fields, filter.fields)) this.#writeMasks(filter.fields);
    const id = this.#freeId();
    const common = (filter.src ^ filter.dst ^ ((filter.srcPort << 16) | filter.dstPort)) >>> 0;
    const bucket = fdirBucketHash(T.IXGBE_ATR_BUCKET_HASH_KEY, (filter.fields.l4 ? filter.flowType : 0) << 16, common);
    // Step 3: the fields (IPv6 words and VLAN/flex 0: not compared), FDIRHASH, FDIRCMD.
    for (let i = 0; i < 3; i++) setReg32(mmio, T.IXGBE_FDIRSIPv6(i), 0);
    setReg32(mmio, T.IXGBE_FDIRIPSA, asBigEndian(filter.src));
    setReg32(mmio, T.IXGBE_FDIRIPDA, asBigEndian(filter.dst));
    setReg32(mmio, T.IXGBE_FDIRPORT, ((filter.dstPort << T.IXGBE_FDIRPORT_DESTINATION_SHIFT) | filter.srcPort) >>> 0);
    setReg32(mmio, T.IXGBE_FDIRVLAN, 0);
    setReg32(mmio, T.IXGBE_FDIRHASH, (bucket | (id << T.IXGBE_FDIRHASH_SIG_SW_INDEX_SHIFT)) >>> 0);
    const queue = action === "drop" ? FDIR_DROP_QUEUE : action;
    const command = T.IXGBE_FDIRCMD_CMD_ADD_FLOW | T.IXGBE_FDIRCMD_LAST | T.IXGBE_FDIRCMD_QUEUE_EN |
      (action === "drop" ? T.IXGBE_FDIRCMD_DROP : 0) | (filter.flowType << T.IXGBE_FDIRCMD_FLOW_TYPE_SHIFT) |
      (queue << T.IXGBE_FDIRCMD_RX_QUEUE_SHIFT);
    setReg32(mmio, T.IXGBE_FDIRCMD, command >>> 0);
    const done = this.#waitCommand("add");
    const failed = getReg32(mmio, T.IXGBE_FDIRFSTAT) & T.IXGBE_FDIRFSTAT_FADD_MASK;
    if (failed !== 0 || (done & T.IXGBE_FDIRCMD_COLLISION) !== 0) {
      if ((getReg32(mmio, T.IXGBE_FDIRFREE) & T.IXGBE_FDIRFREE_FREE_MASK) === 0) {
        throw new FlowTableFullError(`${this.#device}: addFlowRule(): the device's Flow Director table is full: remove a rule first`);
      }
      throw new DeviceProtocolError(`${this.#device}: addFlowRule(): the device refused the filter (FDIRCMD 0x${done.toString(16)}, ` +
        `FDIRFSTAT.FADD ${failed}): close and open the device again`);
    }
    this.#fields = filter.fields;
    this.#rules.set(id, { key, bucket });
    this.#byKey.set(key, id);
    return id;
  }

  remove(id: number): void {
    const rule = typeof id === "number" ? this.#rules.get(id) : undefined;
    if (rule === undefined) {
      throw new RangeError(`${this.#device}: removeFlowRule(): ${String(id)} is no rule of this device (ids come from addFlowRule)`);
    }
    const mmio = this.#mmio;
    // Step 4: query first (the datasheet's order, as Linux does), remove only a filter that is there.
    const hash = (rule.bucket | (id << T.IXGBE_FDIRHASH_SIG_SW_INDEX_SHIFT)) >>> 0;
    setReg32(mmio, T.IXGBE_FDIRHASH, hash);
    setReg32(mmio, T.IXGBE_FDIRCMD, T.IXGBE_FDIRCMD_CMD_QUERY_REM_FILT);
    const query = this.#waitCommand("query");
    if ((query & T.IXGBE_FDIRCMD_FILTER_VALID) === 0) {
      throw new DeviceProtocolError(`${this.#device}: removeFlowRule(${id}): the device has no such filter (lost in a reset?): close and open the device again`);
    }
    setReg32(mmio, T.IXGBE_FDIRHASH, hash);
    setReg32(mmio, T.IXGBE_FDIRCMD, T.IXGBE_FDIRCMD_CMD_REMOVE_FLOW);
    this.#waitCommand("remove");
    this.#rules.delete(id);
    this.#byKey.delete(rule.key);
  }

  #check(match: FlowMatch, action: FlowAction): Filter {
    const device = this.#device;
    if (typeof match !== "object" || match === null) throw new TypeError(`${device}: addFlowRule() needs a match object like { proto: "udp", dst: "10.0.0.2" }`);
    if (action !== "drop" && (typeof action !== "number" || !Number.isInteger(action) || action < 0 || action >= this.#rxQueues)) {
      throw new RangeError(`${device}: addFlowRule(): the action must be a receive queue from 0 to ${this.#rxQueues - 1} or "drop", got ${String(action)}`);
    }
    const proto = match.proto;
    if (!Object.hasOwn(FLOW_TYPES, proto)) {
      throw new RangeError(`${device}: addFlowRule(): proto must be "tcp", "udp", "sctp" or "ip", got ${String(proto)}`);
    }
    const src = match.src === undefined ? 0 : parseIpv4(device, "src", match.src);
    const dst = match.dst === undefined ? 0 : parseIpv4(device, "dst", match.dst);
    const srcPort = match.srcPort === undefined ? 0 : parsePort(device, "srcPort", match.srcPort);
    const dstPort = match.dstPort === undefined ? 0 : parsePort(device, "dstPort", match.dstPort);
    const ports = match.srcPort !== undefined || match.dstPort !== undefined;
    if (ports && (proto === "ip" || proto === "sctp")) {
      throw new NotSupportedError(
        `${device}: addFlowRule(): ports with proto "${proto}": the 82599 compares TCP and UDP ports only (its SCTP port mask ` +
          `came with the X550); match on the addresses, or use tcp/udp`,
      );
    }
    const fields: FieldSet = {
      l4: proto !== "ip", src: match.src !== undefined, dst: match.dst !== undefined,
      srcPort: match.srcPort !== undefined, dstPort: match.dstPort !== undefined,
    };
    return { fields, flowType: FLOW_TYPES[proto as keyof typeof FLOW_TYPES], src, dst, srcPort, dstPort };
  }

  /**
   * ixgbe_fdir_set_input_mask_82599: FDIRM masks VLAN, pool, flexible bytes and the IPv6
   * destination always, the L4 type for "ip" rules; a mask register bit that is 1 takes that bit
   * out of the comparison. FDIRTCPM and FDIRUDPM hold the port masks bit-reversed.
   */
  #writeMasks(f: FieldSet): void {
    const mmio = this.#mmio;
    const fdirm = T.IXGBE_FDIRM_VLANID | T.IXGBE_FDIRM_VLANP | T.IXGBE_FDIRM_POOL | T.IXGBE_FDIRM_FLEX | T.IXGBE_FDIRM_DIPv6 |
      (f.l4 ? 0 : T.IXGBE_FDIRM_L4P);
    setReg32(mmio, T.IXGBE_FDIRM, fdirm);
    const compare = ((reverse16(f.dstPort ? 0xffff : 0) << 16) | reverse16(f.srcPort ? 0xffff : 0)) >>> 0;
    setReg32(mmio, T.IXGBE_FDIRTCPM, ~compare >>> 0);
    setReg32(mmio, T.IXGBE_FDIRUDPM, ~compare >>> 0);
    setReg32(mmio, T.IXGBE_FDIRSIP4M, f.src ? 0 : 0xffffffff);
    setReg32(mmio, T.IXGBE_FDIRDIP4M, f.dst ? 0 : 0xffffffff);
  }

  #freeId(): number {
    // Ids run up and wrap within the 15-bit software index, skipping ids in use.
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= 0x7fff ? 1 : id + 1;
      if (!this.#rules.has(id)) return id;
    }
  }

  /** Waits for FDIRCMD.CMD to read 0 (the device took the command); returns FDIRCMD then. */
  #waitCommand(what: string): number {
    let v = 0;
    // Spins (pollMs 0): the device takes a command in microseconds.
    pollUntil(() => ((v = getReg32(this.#mmio, T.IXGBE_FDIRCMD)) & T.IXGBE_FDIRCMD_CMD_MASK) === 0, {
      timeoutMs: COMMAND_TIMEOUT_MS,
      pollMs: 0,
      onTimeout: () =>
        new DeviceTimeoutError(`${this.#device}: the Flow Director ${what} command did not complete within ${COMMAND_TIMEOUT_MS} ms ` +
          `(FDIRCMD 0x${v.toString(16)}): close and open the device again`),
    });
    return v;
  }
}
