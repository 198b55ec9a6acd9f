/**
 * Flow Director of the 82599 model, perfect-match mode (datasheet 7.1.2.7, registers 8.2.3.21):
 * the filter table and the steering of received frames by it.
 *
 * Modelled:
 * - Init (7.1.2.7.x): writing FDIRCTRL with PBALLOC != 0 takes 32 << PBALLOC KB of the 512 KB
 *   receive packet buffer (64, 128, 256 KB) for a table of 2K-1, 4K-1 or 8K-1 perfect filters.
 *   The RXPBSIZE registers must leave that room (their sum + the table <= 512 KB), else it is a
 *   violation and the init never completes. INIT_DONE reads 0 on the first read after the write
 *   and 1 from the next (the init runs while the driver polls); until then every FDIRCMD write is
 *   a violation and is ignored: a rule programmed before INIT_DONE does not exist. Writing
 *   FDIRCTRL again after an init needs FDIRCMD.CLEARHT set and cleared first (the 82599 erratum
 *   Linux's ixgbe_reinit_fdir_tables_82599 works around). Signature mode is refused
 *   (NotSupportedError).
 * - The table: buckets indexed by the low 13 bits of FDIRHASH, each a list of filters known by
 *   their software index (FDIRHASH bits 30:16). FDIRCMD ADD_FLOW takes the fields from FDIRIPSA,
 *   FDIRIPDA, FDIRPORT, FDIRVLAN and the flow type, queue, drop and pool from FDIRCMD; an index
 *   already in the bucket is replaced with FILTER_UPDATE, else the add fails; a filter with the
 *   same fields under another index is a collision (FDIRCMD.COLLISION, FDIRFREE.COLL, the add
 *   fails: the model's choice, the datasheet leaves it open); no room fails the add. Failed adds
 *   and removes count in FDIRFSTAT, done ones in FDIRUSTAT; FDIRFREE.FREE counts the room left,
 *   FDIRLEN the longest bucket seen. REMOVE_FLOW and QUERY_REM_FILT find a filter by bucket and
 *   index; a query sets FILTER_VALID and loads the filter's fields into the field registers.
 *   A command completes on the first read of FDIRCMD after it (CMD reads back once, then 0),
 *   or at once when that read comes DEVICE_DONE_MS or more after the write: the real device
 *   takes microseconds, so a driver descheduled between the write and its first poll finds the
 *   command done (the same holds for the init and INIT_DONE). Writing FDIRCMD or a field
 *   register while a command is pending is a violation and is ignored.
 * - The masks (FDIRM, FDIRSIP4M, FDIRDIP4M, FDIRTCPM, FDIRUDPM; a 1 bit takes the bit out of
 *   the comparison; the port masks are bit-reversed) apply to every filter: writing them while
 *   the table holds filters is a violation (the filters were hashed under the old masks).
 * - Steering: a received IPv4 frame is masked, hashed with the bucket hash (key from FDIRHKEY,
 *   read per frame) and compared with the filters of its bucket only, so a filter written with
 *   a hash other than the frame's never matches. A match counts in FDIRMATCH and, with
 *   QUEUE_EN, sends the frame to the filter's queue ahead of RSS (7.1.2: Flow Director comes
 *   before RSS); with DROP it goes to FDIRCTRL.DROP_QUEUE, and when that queue is not enabled
 *   the frame is dropped (counters.rxFdirDropped; not MPC, not GPRC). An IP frame no filter
 *   matches counts in FDIRMISS. All statistics registers clear on read.
 * Not modelled: IPv6 filters (an IPv6 frame is tested and missed; an IPv6 FDIRCMD throws
 * NotSupportedError), signature (hash) filters and ATR, the REPORT_STATUS descriptor write-back,
 * the bucket length limit (FDIRCTRL.MAX_LENGTH) and its descriptor error, VMDq pools, the
 * full-threshold interrupt, and SCTP port matching (the 82599 compares no SCTP ports).
 */
import { NotSupportedError } from "../../errors.ts";
import type { SimMmio } from "../sim-mmio.ts";
import { RXDCTL, RXDCTL_ENABLE, RXPBSIZE, RXPBSIZE_SHIFT } from "./model-registers.ts";

// 8.2.3.21: the Flow Director registers (the model's own copy, written from the datasheet).
export const FDIRCTRL = 0x0ee00;
export const FDIRSIPv6 = (n: number): number => 0x0ee0c + 4 * n;
export const FDIRIPSA = 0x0ee18;
export const FDIRIPDA = 0x0ee1c;
export const FDIRPORT = 0x0ee20;
export const FDIRVLAN = 0x0ee24;
export const FDIRHASH = 0x0ee28;
export const FDIRCMD = 0x0ee2c;
/** A command or init read this long after its write is done: the 82599 needs microseconds. */
const DEVICE_DONE_MS = 1;
export const FDIRFREE = 0x0ee38;
export const FDIRDIP4M = 0x0ee3c;
export const FDIRSIP4M = 0x0ee40;
export const FDIRTCPM = 0x0ee44;
export const FDIRUDPM = 0x0ee48;
export const FDIRLEN = 0x0ee4c;
export const FDIRUSTAT = 0x0ee50;
export const FDIRFSTAT = 0x0ee54;
export const FDIRMATCH = 0x0ee58;
export const FDIRMISS = 0x0ee5c;
export const FDIRHKEY = 0x0ee68;
export const FDIRSKEY = 0x0ee6c;
export const FDIRM = 0x0ee70;
export const FDIRIP6M = 0x0ee74;

const CTRL_PBALLOC_MASK = 0x3;
const CTRL_INIT_DONE = 1 << 3;
const CTRL_PERFECT_MATCH = 1 << 4;
const CTRL_DROP_QUEUE_SHIFT = 8; // bits 14:8
const CTRL_FLEX_SHIFT = 16; // bits 20:16, in 16-bit words from the frame's start
const CMD_MASK = 0x3;
const CMD_ADD = 1;
const CMD_REMOVE = 2;
const CMD_QUERY = 3;
const CMD_FILTER_VALID = 1 << 2;
const CMD_FILTER_UPDATE = 1 << 3;
const CMD_CLEARHT = 1 << 8;
const CMD_DROP = 1 << 9;
const CMD_COLLISION = 1 << 12;
const CMD_QUEUE_EN = 1 << 15;
const M_VLANID = 1 << 0;
const M_VLANP = 1 << 1;
const M_POOL = 1 << 2;
const M_L4P = 1 << 3;
const M_FLEX = 1 << 4;
const L4_UDP = 1;
const L4_TCP = 2;
const L4_SCTP = 3;
const FLOW_IPV6 = 4;
const BUCKET_BITS = 0x1fff;
const RX_PACKET_BUFFER_KB = 512;

/** The packet-buffer KB and the perfect filters of each PBALLOC (1: 64 KB, 2: 128 KB, 3: 256 KB). */
function tableKb(pballoc: number): number {
  return 32 << pballoc;
}
function tableFilters(pballoc: number): number {
  return (1024 << pballoc) - 1;
}

/** Register bytes as the big-endian fields hold them (first octet in the low byte) to a host value. */
function fromBigEndian(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

function bitReverse16(v: number): number {
  let r = 0;
  for (let i = 0; i < 16; i++) if ((v & (1 << i)) !== 0) r |= 1 << (15 - i);
  return r;
}

/**
 * 7.1.2.7.x bucket hash over the 11-dword input stream reduced to two dwords: `flow` (pool, flow
 * type, VLAN) and `common` (the XOR of the address, port and flexible-byte dwords). Key bit k of
 * the low 16 folds the word-swapped common dword (with the flow dword mixed in after bit 0) shifted
 * right by k, key bit 16+k the common dword with the flow dword's halves mixed in, shifted by k.
 */
export function perfectBucketHash(key: number, flow: number, common: number): number {
  const swapped = ((common << 16) | (common >>> 16)) >>> 0;
  const high = (common ^ flow ^ (flow >>> 16)) >>> 0;
  const low = (swapped ^ flow ^ (flow << 16)) >>> 0;
  let hash = 0;
  for (let k = 0; k < 32; k++) {
    if (((key >>> k) & 1) === 0) continue;
    if (k < 16) hash ^= (k === 0 ? swapped : low) >>> k;
    else hash ^= high >>> (k - 16);
  }
  return hash & BUCKET_BITS;
}

interface Filter {
  index: number;
  flowType: number;
  src: number;
  dst: number;
  /** FDIRPORT: destination port in 31:16, source in 15:0. */
  ports: number;
  /** FDIRVLAN: flexible bytes in 31:16, VLAN tag in 15:0. */
  vlanFlex: number;
  pool: number;
  queue: number;
  queueEnable: boolean;
  drop: boolean;
}

/** A received frame's fields as the filters compare them (reused). */
interface FrameFields {
  flowType: number;
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  vlan: number;
  flex: number;
}

type InitState = "off" | "initializing" | "ready" | "failed";

/** steer()'s answer when Flow Director has no say (shared: most frames get it). */
const NO_DECISION: { readonly queue: number; readonly dropped: boolean } = Object.freeze({ queue: -1, dropped: false });

export interface FdirCounters {
  /** Frames a filter matched (FDIRMATCH). */
  rxFdirMatched: number;
  /** IP frames no filter matched (FDIRMISS). */
  rxFdirMissed: number;
  /** Frames a drop filter sent to a drop queue that is not enabled: gone, counted in no other register. */
  rxFdirDropped: number;
}

export class FlowDirectorModel {
  readonly counters: FdirCounters = { rxFdirMatched: 0, rxFdirMissed: 0, rxFdirDropped: 0 };
  readonly #regs: SimMmio;
  readonly #violation: (message: string) => void;
  readonly #address: string;
  #state: InitState = "off";
  #buckets = new Map<number, Filter[]>();
  #free = 0;
  #filters = 0;
  #collisions = 0;
  #longest = 0;
  #longestBucket = 0;
  /** Clear-on-read statistics registers. */
  #added = 0;
  #removed = 0;
  #failedAdds = 0;
  #failedRemoves = 0;
  #matchReg = 0;
  #missReg = 0;
  #commandPending = false;
  /** performance.now() of the last command or init write: a read long after it finds the work done. */
  #startedAt = 0;
  #clearedTable = false;
  readonly #fields: FrameFields = { flowType: 0, src: 0, dst: 0, srcPort: 0, dstPort: 0, vlan: 0, flex: 0 };

  constructor(regs: SimMmio, address: string, violation: (message: string) => void) {
    this.#regs = regs;
    this.#address = address;
    this.#violation = violation;
    this.#installHooks();
  }

  /** Filters in the table. */
  get filterCount(): number {
    return this.#filters;
  }

  /** Whether the table is initialised (FDIRCTRL.INIT_DONE). */
  get ready(): boolean {
    return this.#state === "ready";
  }

  /** Device reset: the table and the counters are gone (the registers were cleared by the caller). */
  reset(): void {
    this.#state = "off";
    this.#buckets = new Map();
    this.#free = this.#filters = this.#collisions = this.#longest = this.#longestBucket = 0;
    this.#added = this.#removed = this.#failedAdds = this.#failedRemoves = this.#matchReg = this.#missReg = 0;
    this.#commandPending = false;
    this.#clearedTable = false;
    this.counters.rxFdirMatched = this.counters.rxFdirMissed = this.counters.rxFdirDropped = 0;
  }

  /**
   * The queue Flow Director sends `frame` to: -1 when it has no say (off, not IP, no match, or a
   * match without QUEUE_EN), else the filter's queue, or the drop queue of a drop filter; `dropped`
   * tells the caller the frame is gone (a drop filter whose drop queue is not enabled).
   */
  steer(frame: Uint8Array): { queue: number; dropped: boolean } {
    const none = NO_DECISION;
    if (this.#state !== "ready") return none;
    const f = this.#parse(frame);
    if (f === null) return none;
    const regs = this.#regs;
    if ((f.flowType & FLOW_IPV6) !== 0) {
      this.#missed();
      return none;
    }
    const m = this.#masks(f.flowType);
    const flowType = f.flowType & m.flowType;
    const src = f.src & m.src;
    const dst = f.dst & m.dst;
    const srcPort = f.srcPort & m.srcPort;
    const dstPort = f.dstPort & m.dstPort;
    const vlan = f.vlan & m.vlan;
    const flex = f.flex & m.flex;
    const flow = (flowType << 16) | vlan; // pool 0: no VMDq
    const common = (src ^ dst ^ ((srcPort << 16) | dstPort) ^ (flex << 16)) >>> 0;
    const bucket = perfectBucketHash(regs.peek32(FDIRHKEY), flow, common);
    for (const filter of this.#buckets.get(bucket) ?? []) {
      if ((filter.flowType & m.flowType) !== flowType || (filter.src & m.src) !== src || (filter.dst & m.dst) !== dst) continue;
      if ((filter.ports & m.srcPort) !== srcPort || ((filter.ports >>> 16) & m.dstPort) !== dstPort) continue;
      if ((filter.vlanFlex & m.vlan) !== vlan || ((filter.vlanFlex >>> 16) & m.flex) !== flex) continue;
      this.counters.rxFdirMatched++;
      this.#matchReg = Math.min(this.#matchReg + 1, 0xffffffff);
      if (filter.drop) {
        const dropQueue = (regs.peek32(FDIRCTRL) >>> CTRL_DROP_QUEUE_SHIFT) & 0x7f;
        const enabled = (regs.peek32(RXDCTL(dropQueue)) & RXDCTL_ENABLE) !== 0;
        if (!enabled) this.counters.rxFdirDropped++;
        return { queue: dropQueue, dropped: !enabled };
      }
      return filter.queueEnable ? { queue: filter.queue, dropped: false } : none;
    }
    this.#missed();
    return none;
  }

  #missed(): void {
    this.counters.rxFdirMissed++;
    this.#missReg = Math.min(this.#missReg + 1, 0xffffffff);
  }

  /** What each field keeps after the masks, for a frame of flow type `flowType` (all ones: compared). */
  #masks(flowType: number): { flowType: number; src: number; dst: number; srcPort: number; dstPort: number; vlan: number; flex: number } {
    const regs = this.#regs;
    const fdirm = regs.peek32(FDIRM);
    const l4 = flowType & 3;
    const portMask = l4 === L4_TCP ? regs.peek32(FDIRTCPM) : l4 === L4_UDP ? regs.peek32(FDIRUDPM) : 0xffffffff;
    const l4Masked = (fdirm & M_L4P) !== 0;
    return {
      flowType: l4Masked ? FLOW_IPV6 : 0x7,
      src: ~fromBigEndian(regs.peek32(FDIRSIP4M)) >>> 0,
      dst: ~fromBigEndian(regs.peek32(FDIRDIP4M)) >>> 0,
      srcPort: l4Masked ? 0 : ~bitReverse16(portMask & 0xffff) & 0xffff,
      dstPort: l4Masked ? 0 : ~bitReverse16(portMask >>> 16) & 0xffff,
      vlan: ((fdirm & M_VLANID) !== 0 ? 0 : 0x0fff) | ((fdirm & M_VLANP) !== 0 ? 0 : 0xe000),
      flex: (fdirm & M_FLEX) !== 0 ? 0 : 0xffff,
    };
  }

  /** Ethernet (one optional 802.1Q tag), IPv4 or IPv6, TCP/UDP/SCTP ports; null for a frame that is not IP. */
  #parse(frame: Uint8Array): FrameFields | null {
    const f = this.#fields;
    if (frame.length < 14) return null;
    let l3 = 14;
    let ethertype = (frame[12]! << 8) | frame[13]!;
    f.vlan = 0;
    if (ethertype === 0x8100 && frame.length >= 18) {
      f.vlan = (frame[14]! << 8) | frame[15]!;
      ethertype = (frame[16]! << 8) | frame[17]!;
      l3 = 18;
    }
    const flexAt = 2 * ((this.#regs.peek32(FDIRCTRL) >>> CTRL_FLEX_SHIFT) & 0x1f);
    f.flex = frame.length >= flexAt + 2 ? frame[flexAt]! | (frame[flexAt + 1]! << 8) : 0;
    f.src = f.dst = f.srcPort = f.dstPort = 0;
    if (ethertype === 0x86dd) {
      f.flowType = FLOW_IPV6;
      return f;
    }
    if (ethertype !== 0x0800 || frame.length < l3 + 20 || frame[l3]! >>> 4 !== 4) return null;
    const ihl = (frame[l3]! & 0xf) * 4;
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    f.src = view.getUint32(l3 + 12);
    f.dst = view.getUint32(l3 + 16);
    const fragment = (view.getUint16(l3 + 6) & 0x3fff) !== 0; // MF or an offset
    const protocol = frame[l3 + 9]!;
    const l4 = l3 + ihl;
    f.flowType = 0;
    if (ihl < 20 || fragment) return f;
    if (protocol === 6) f.flowType = L4_TCP;
    else if (protocol === 17) f.flowType = L4_UDP;
    else if (protocol === 132) f.flowType = L4_SCTP;
    // TCP and UDP ports; the 82599 compares no SCTP ports.
    if ((f.flowType === L4_TCP || f.flowType === L4_UDP) && frame.length >= l4 + 4) {
      f.srcPort = view.getUint16(l4);
      f.dstPort = view.getUint16(l4 + 2);
    }
    return f;
  }

  #installHooks(): void {
    const regs = this.#regs;
    regs.onWrite(FDIRCTRL, (value) => this.#writeCtrl(value));
    regs.onRead(FDIRCTRL, () => {
      // The init completes while the driver polls: the first read after the write still sees it running.
      const v = regs.peek32(FDIRCTRL) & ~CTRL_INIT_DONE;
      if (this.#state === "initializing" && performance.now() - this.#startedAt >= DEVICE_DONE_MS) this.#state = "ready";
      if (this.#state === "initializing") {
        this.#state = "ready";
        return v;
      }
      return (v | (this.#state === "ready" ? CTRL_INIT_DONE : 0)) >>> 0;
    });
    regs.onWrite(FDIRCMD, (value) => this.#writeCommand(value));
    regs.onRead(FDIRCMD, () => {
      const v = regs.peek32(FDIRCMD);
      if (this.#commandPending) {
        this.#commandPending = false;
        regs.poke32(FDIRCMD, v & ~CMD_MASK);
        return performance.now() - this.#startedAt >= DEVICE_DONE_MS ? (v & ~CMD_MASK) >>> 0 : v;
      }
      return v;
    });
    for (const field of [FDIRSIPv6(0), FDIRSIPv6(1), FDIRSIPv6(2), FDIRIPSA, FDIRIPDA, FDIRPORT, FDIRVLAN, FDIRHASH]) {
      regs.onWrite(field, (value) => {
        if (this.#commandPending) {
          this.#violation(`Flow Director register 0x${field.toString(16)} written while an FDIRCMD command is pending: poll FDIRCMD ` +
            `until CMD reads 0 first (ixgbe_fdir_check_cmd_complete); the write is ignored`);
          return;
        }
        regs.poke32(field, value);
      });
    }
    for (const mask of [FDIRM, FDIRSIP4M, FDIRDIP4M, FDIRTCPM, FDIRUDPM, FDIRIP6M]) {
      regs.onWrite(mask, (value) => {
        if (this.#filters > 0 && value !== regs.peek32(mask)) {
          this.#violation(`Flow Director mask 0x${mask.toString(16)} changed while the table holds ${this.#filters} filters: the masks ` +
            `apply to every filter, whose bucket hashes were computed under the old ones (7.1.2.7); change them with the table empty`);
        }
        regs.poke32(mask, value);
      });
    }
    regs.onRead(FDIRFREE, () => ((this.#free & 0xffff) | ((this.#collisions & 0x7fff) << 16)) >>> 0);
    regs.onWrite(FDIRFREE, () => {});
    const clearOnRead = (offset: number, read: () => number): void => {
      regs.onRead(offset, read);
      regs.onWrite(offset, () => {});
    };
    clearOnRead(FDIRLEN, () => {
      const v = ((this.#longest & 0x3f) | ((this.#longestBucket & 0x7fff) << 16)) >>> 0;
      this.#longest = this.#longestBucket = 0;
      return v;
    });
    clearOnRead(FDIRUSTAT, () => {
      const v = ((this.#added & 0xffff) | ((this.#removed & 0xffff) << 16)) >>> 0;
      this.#added = this.#removed = 0;
      return v;
    });
    clearOnRead(FDIRFSTAT, () => {
      const v = (this.#failedAdds & 0xff) | ((this.#failedRemoves & 0xff) << 8);
      this.#failedAdds = this.#failedRemoves = 0;
      return v;
    });
    clearOnRead(FDIRMATCH, () => {
      const v = this.#matchReg;
      this.#matchReg = 0;
      return v;
    });
    clearOnRead(FDIRMISS, () => {
      const v = this.#missReg;
      this.#missReg = 0;
      return v;
    });
  }

  #writeCtrl(value: number): void {
    const regs = this.#regs;
    const pballoc = value & CTRL_PBALLOC_MASK;
    if (pballoc !== 0 && (value & CTRL_PERFECT_MATCH) === 0) {
      throw new NotSupportedError(`${this.#address}: FDIRCTRL = 0x${value.toString(16)}: the model implements perfect-match filters only, not signature mode`);
    }
    if (this.#state !== "off" && !this.#clearedTable) {
      this.#violation("FDIRCTRL written again after a Flow Director init without FDIRCMD.CLEARHT set and cleared first: the 82599's " +
        "init cannot be restarted otherwise (erratum; ixgbe_reinit_fdir_tables_82599); the write is ignored");
      return;
    }
    regs.poke32(FDIRCTRL, value & ~CTRL_INIT_DONE);
    this.#buckets = new Map();
    this.#filters = this.#collisions = 0;
    this.#clearedTable = false;
    if (pballoc === 0) {
      this.#state = "off";
      this.#free = 0;
      return;
    }
    // 7.1.2.7: the table lives in the receive packet buffer, above what RXPBSIZE gives the packet buffers.
    let packetBufferKb = 0;
    for (let i = 0; i < 8; i++) packetBufferKb += regs.peek32(RXPBSIZE(i)) >>> RXPBSIZE_SHIFT;
    if (packetBufferKb + tableKb(pballoc) > RX_PACKET_BUFFER_KB) {
      this.#violation(`Flow Director enabled with PBALLOC ${pballoc} (${tableKb(pballoc)} KB) while the RXPBSIZE registers give ` +
        `${packetBufferKb} KB of the ${RX_PACKET_BUFFER_KB} KB packet buffer to packets: reduce RXPBSIZE(0) by the table's size first ` +
        `(the packet buffer would overwrite the filters); the table stays off`);
      this.#state = "failed";
      return;
    }
    this.#state = "initializing";
    this.#startedAt = performance.now();
    this.#free = tableFilters(pballoc);
  }

  #writeCommand(value: number): void {
    const regs = this.#regs;
    if (this.#commandPending) {
      this.#violation("FDIRCMD written while the previous command is pending: poll FDIRCMD until CMD reads 0 first; the write is ignored");
      return;
    }
    if ((value & CMD_CLEARHT) !== 0) {
      // The erratum's first step: clears the table; FDIRCTRL may be written again afterwards.
      this.#buckets = new Map();
      this.#filters = 0;
      this.#clearedTable = true;
      regs.poke32(FDIRCMD, value & ~CMD_MASK);
      return;
    }
    const command = value & CMD_MASK;
    if (command === 0) {
      regs.poke32(FDIRCMD, value);
      return;
    }
    if (this.#state !== "ready") {
      this.#violation(`FDIRCMD command ${command} written before FDIRCTRL.INIT_DONE read 1 (Flow Director ${this.#state}): wait for the init ` +
        `(ixgbe_fdir_enable_82599); the command is ignored`);
      return;
    }
    const hash = regs.peek32(FDIRHASH);
    const bucket = hash & BUCKET_BITS;
    const index = (hash >>> 16) & 0x7fff;
    const list = this.#buckets.get(bucket) ?? [];
    const at = list.findIndex((f) => f.index === index);
    let result = value & ~(CMD_FILTER_VALID | CMD_COLLISION);
    if (command === CMD_ADD) {
      const flowType = (value >>> 5) & 0x7;
      if ((flowType & FLOW_IPV6) !== 0) {
        throw new NotSupportedError(`${this.#address}: FDIRCMD with FDIRCMD.IPV6: the model implements IPv4 perfect filters only`);
      }
      const filter: Filter = {
        index, flowType, src: fromBigEndian(regs.peek32(FDIRIPSA)), dst: fromBigEndian(regs.peek32(FDIRIPDA)),
        ports: regs.peek32(FDIRPORT), vlanFlex: regs.peek32(FDIRVLAN), pool: (value >>> 24) & 0x3f,
        queue: (value >>> 16) & 0x7f, queueEnable: (value & CMD_QUEUE_EN) !== 0, drop: (value & CMD_DROP) !== 0,
      };
      const same = list.find((f) => f.index !== index && f.flowType === filter.flowType && f.src === filter.src && f.dst === filter.dst &&
        f.ports === filter.ports && f.vlanFlex === filter.vlanFlex && f.pool === filter.pool);
      if (at >= 0) {
        if ((value & CMD_FILTER_UPDATE) !== 0) {
          list[at] = filter;
          this.#added++;
        } else {
          this.#failedAdds++;
        }
      } else if (same !== undefined) {
        result |= CMD_COLLISION;
        this.#collisions++;
        this.#failedAdds++;
      } else if (this.#free === 0) {
        this.#failedAdds++;
      } else {
        list.push(filter);
        this.#buckets.set(bucket, list);
        this.#free--;
        this.#filters++;
        this.#added++;
        if (list.length > this.#longest) {
          this.#longest = list.length;
          this.#longestBucket = bucket;
        }
      }
    } else if (command === CMD_REMOVE) {
      if (at >= 0) {
        list.splice(at, 1);
        if (list.length === 0) this.#buckets.delete(bucket);
        this.#free++;
        this.#filters--;
        this.#removed++;
      } else {
        this.#failedRemoves++;
      }
    } else if (at >= 0) {
      // QUERY_REM_FILT: the filter's fields into the field registers.
      const f = list[at]!;
      result |= CMD_FILTER_VALID;
      result = (result & ~(0x7f << 16)) | (f.queue << 16);
      const asRegister = (v: number): number => fromBigEndian(v); // byte swap is its own inverse
      regs.poke32(FDIRIPSA, asRegister(f.src));
      regs.poke32(FDIRIPDA, asRegister(f.dst));
      regs.poke32(FDIRPORT, f.ports);
      regs.poke32(FDIRVLAN, f.vlanFlex);
    }
    regs.poke32(FDIRCMD, result >>> 0);
    this.#commandPending = true;
    this.#startedAt = performance.now();
  }
}
