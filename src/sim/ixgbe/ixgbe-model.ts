/**
 * A behavioural model of an Intel 82599 port: the registers a driver programs, with their reset
 * values and side effects, and the receive and transmit DMA engines, built on SimMmio (BAR0) and
 * SimDma (host memory, behind a pretend IOMMU). It is what the ixgbe driver runs against in tests
 * and in the examples' --sim mode, and it checks what hardware would not forgive: a DMA to an
 * address outside every allocation throws DmaFaultError, a tail pointer beyond the ring or a
 * malformed transmit descriptor throws DeviceProtocolError.
 *
 * Modelled (datasheet sections and Linux functions in brackets):
 * - Reset (4.6.3.2, ixgbe_reset_hw_82599): CTRL.RST resets every register and reads 1 for
 *   resetDelayMs (default 0.5 ms); EEC.AUTO_RD and RDRXCTL.DMAIDONE read 0 meanwhile. Any access
 *   but CTRL, STATUS and EEC during it is a violation and has no effect, and so is one within
 *   resetSettleMs after it. A reset with PCIe mastering enabled (no CTRL.GIO_DIS first, 5.2.5.3.2)
 *   while a DMA engine is on is a violation; so is one while STATUS.GIO stayed 1
 *   (faults.masterDisableStuck) unless a second reset follows at once. CTRL.LRST alone is a link reset: link re-established, registers kept.
 * - Family by device id (ixgbeFamilyOf): X540/X550 bring the link up through their PHY, AUTOC
 *   writes are violations there, their packet buffer is 384 KB; X550 reports 2.5/5 Gbit/s with
 *   LINKS.NON_STD.
 * - Link (4.6.4): on an 82599 the link comes up linkUpDelayMs after Restart_AN, only with an
 *   AUTOC.LMS that carries the partner's speed on this board (SFP+: 10 Gb serial; backplane:
 *   the NVM's mode), no AUTOC2 link-disable bit, and, on SFP+ parts, ESDP.SDP3 (TX_DISABLE) low.
 *   LINKS reports options.linkSpeed. setLink(false) pulls the cable; faults.phyPoweredDown too.
 * - Receive (7.1): descriptors are fetched into an on-chip cache when RDT passes them (a
 *   descriptor rewritten afterwards is a violation; the fetched address is used). inject()
 *   filters by address (FCTRL.UPE/MPE/BAM, RAL/RAH), writes the frame into the buffers between
 *   RDH and RDT, splits it over descriptors larger than SRRCTL.BSIZEPACKET, writes the advanced
 *   write-back format back (DD, EOP, length) and moves RDH. Without a descriptor the frame counts
 *   in QPRDC(0) with SRRCTL.DROP_EN, else in MPC; with receive disabled, SECRXCTRL.RX_DIS set or
 *   faults.rxBufferFull, in MPC; every MPC frame counts in GPRC too (Linux: "gprc counts missed
 *   packets"). Frames under 64 or over MAXFRS bytes count as length errors (RLEC, RUC/ROC).
 * - Transmit (7.2): a TDT write makes the model read the descriptors from TDH to TDT, DMA-read
 *   the frames, pad short ones (HLREG0.TXPADEN), hand them to onTransmit and to a connected
 *   port, write DD back where RS is set and move TDH: inside the write (synchronous mode) or in
 *   step() chunks of random size (options.asynchronous, seeded). A frame under 17 bytes is a
 *   violation and is not sent. Transmit waits while DMATXCTL.TE or TXDCTL.ENABLE is clear, the
 *   link is down or faults.stallTx is set. TXDCTL.ENABLE cleared on a queue with pending
 *   descriptors keeps reading 1 until they are sent (never while the link is down).
 * - Receive-side scaling (7.1.2.8, toeplitz.ts): with MRQC.MRQE = 0001b a frame's queue is the
 *   RETA entry (bits 3:0) picked by the low 7 bits of the Toeplitz hash (key from RSSRK) over the
 *   fields of the enabled MRQC hash types; a frame no enabled type covers has hash 0 (RETA entry
 *   0). With MRQE = 0 every frame goes to queue 0. The write-back carries the RSS type and the
 *   packet type in word 0 and, with RXCSUM.PCSD, the hash in word 1. inject(frame, queue) skips
 *   the steering, for tests that need a frame in a given queue; inject(frame) and frames from a
 *   connected port are steered. Other MRQE modes (DCB, VMDq) are refused (NotSupportedError).
 * - Violations as well: RDH/TDH writes while the queue is enabled, RXEN set without SECRXCTRL.
 *   RX_DIS (82599 erratum) or without CTRL_EXT.DRV_LOAD, DMA with the relaxed-ordering bits of
 *   DCA_RXCTRL/DCA_TXCTRL still set (ixgbe_start_hw_gen2 clears them). `violations` lists them.
 * - Offloads (model-offloads.ts): every received frame's IPv4 header and TCP/UDP checksums are
 *   checked and reported in the EOP descriptor's status and error bits (7.1.11, with the 82599's
 *   UDP zero-checksum erratum); transmit context descriptors load one of a queue's two contexts,
 *   and data descriptors with POPTS.IXSM/TXSM or DCMD.TSE get their checksums inserted and TCP
 *   segments cut as the hardware does (7.2.4, 7.2.5), from whatever the context and the frame say.
 *   A data descriptor over 16 KB is a violation.
 * - Statistics count and clear on read (see model-stats.ts; options.octetScale multiplies the
 *   octet counts to bring a 36-bit wrap within reach of a test).
 * - MSI-X interrupts (7.3, model-interrupts.ts): a receive write-back raises the cause of the
 *   queue's IVAR vector; EIMS/EIMC masks, EIAC auto-clear, EIAM auto-mask (GPIE.EIAME), EITR
 *   moderation; the message goes to SimPciFunction.signal. Nothing fires outside MSI-X mode
 *   (GPIE.Multiple_MSIX) or while MSI-X is disabled in the PCI capability.
 * Knobs for tests and the soak run: options resetDelayMs, resetSettleMs, linkUpDelayMs,
 * linkSpeed, nvm { autocLms, linkDisabled, laserOff }, asynchronous, seed, octetScale; at run
 * time faults { stallTx, rxBufferFull, phyPoweredDown, masterDisableStuck }, setLink(), step(), drain().
 * - Flow Director perfect filters (7.1.2.7, model-fdir.ts): init, the filter table and its
 *   commands, masks and statistics; a matching frame goes to its filter's queue (or is dropped)
 *   ahead of RSS.
 * Not modelled: flow control (stallTx stands in for a partner's PAUSE), the multicast table,
 * the IPv6_EX hash types, RQSMR (all queues count in QPRDC(0)), DCB, VLAN insertion and
 * stripping, IPsec, FCoE, RSC, SCTP checksums, the SFP+
 * module and the NVM's SFP init sequence, the X540/X550 PHY and semaphores, and frames held in
 * the packet buffer when SRRCTL.DROP_EN is clear (they are dropped and counted in MPC).
 *
 * Register offsets and bits come from model-registers.ts, the model's own copy written from the
 * datasheet, never from the driver's ixgbe_type.ts (see there why).
 */
import * as R from "./model-registers.ts";
import { DeviceProtocolError, DmaFaultError, NotSupportedError } from "../../errors.ts";
import { SimDma } from "../sim-dma.ts";
import { join64 } from "../../mem/u64.ts";
import { SimMmio } from "../sim-mmio.ts";
import { SimPciFunction } from "../sim-pci.ts";
import { mulberry32 as prng } from "../seeded-random.ts";
import { withFcs } from "../../net/crc32.ts";
import { classifyRss } from "./toeplitz.ts";
import { ModelStatistics, type Ixgbe82599Counters } from "./model-stats.ts";
import { ModelInterrupts } from "./model-interrupts.ts";
import { FlowDirectorModel, type FdirCounters } from "./model-fdir.ts";
import { rxChecksumBits, TxOffloads } from "./model-offloads.ts";

export type { Ixgbe82599Counters } from "./model-stats.ts";

/** Which member of the family a device id is: it decides the reset, link and buffer rules. */
export type IxgbeFamily = "82599" | "X540" | "X550";

/** X540 (ixgbe_type.h IXGBE_DEV_ID_X540T, _X540T1) and X550 (IXGBE_DEV_ID_X550T, _X550T1) ids. */
const X540_IDS: readonly number[] = [0x1528, 0x1560];
const X550_IDS: readonly number[] = [0x1563, 0x15d1];
/**
 * 82599 parts whose MAC is wired to a backplane or copper PHY rather than an SFP+ cage: their
 * NVM's AUTOC is the right link mode (KX4 0x10F7/0x1514, KR 0x1517, combo 0x10F8, backplane FCoE
 * 0x152A, CX4 0x10F9, XAUI 0x10FC, 10GBASE-T3 0x151C).
 */
const BACKPLANE_IDS: readonly number[] = [0x10f7, 0x1514, 0x1517, 0x10f8, 0x152a, 0x10f9, 0x10fc, 0x151c];

export function ixgbeFamilyOf(deviceId: number): IxgbeFamily {
  if (X540_IDS.includes(deviceId)) return "X540";
  if (X550_IDS.includes(deviceId)) return "X550";
  return "82599";
}

/** What the NVM (EEPROM) of the board loads at every reset. */
export interface Ixgbe82599Nvm {
  /** AUTOC.LMS, bits 15:13 in place (default: 10 Gb serial on SFP+ parts, KX4/KX/KR on backplane parts). */
  readonly autocLms?: number;
  /** AUTOC2 link-disable bits set (the board ships with the link disabled; default false). */
  readonly linkDisabled?: boolean;
  /** ESDP.SDP3 an output driven high: the SFP+ laser is off until software clears it (default false). */
  readonly laserOff?: boolean;
}

/**
 * Faults a test (or a soak run) may switch on and off at any time; each names a condition a real
 * port meets. Documented names: the coordinator's soak test sets them at random.
 */
export interface Ixgbe82599Faults {
  /**
   * The link partner holds transmission off (802.3x PAUSE/XOFF): nothing is sent, queues do not
   * drain, and a TXDCTL.ENABLE clear of a queue with pending descriptors does not complete. After
   * clearing it, call step() (or ring a doorbell) to resume.
   */
  stallTx?: boolean;
  /** The receive packet buffer is full (e.g. PCIe back-pressure): every arriving frame is missed (MPC). */
  rxBufferFull?: boolean;
  /** The PHY is powered down (X540/X550 copper parts): no link whatever else says (default false). */
  phyPoweredDown?: boolean;
  /**
   * A PCIe request stays pending: STATUS.GIO stays 1 after CTRL.GIO_DIS. The 82599 specification
   * update then asks for two software resets in a row; until the second one, any access but
   * CTRL/STATUS/EEC is a violation. The next reset clears the fault.
   */
  masterDisableStuck?: boolean;
  /**
   * The device hangs in reset: CTRL.RST, once written, keeps reading 1 (and every access but
   * CTRL/STATUS/EEC stays a violation) until the fault is cleared; then the reset completes.
   */
  resetStuck?: boolean;
}

export interface Ixgbe82599ModelOptions {
  /** Host memory the model reaches by DMA; the driver must allocate from the same SimDma. */
  readonly dma: SimDma;
  /** PCI address (default "sim:ixgbe<n>"). */
  readonly address?: string;
  /** PCI device id (default 0x10FB, 82599ES SFP+ as on an X520). It picks the family (ixgbeFamilyOf). */
  readonly deviceId?: number;
  /** MAC address the "EEPROM" loads into RAL(0)/RAH(0) (default 02:00:00:82:59:<n>). */
  readonly mac?: Uint8Array;
  /** Time from the last thing the link waited for (auto-negotiation restart, laser on, cable) to link up, in ms (default 0). */
  readonly linkUpDelayMs?: number;
  /** Whether a cable and a link partner are there (default true). */
  readonly linkUp?: boolean;
  /**
   * Speed the link partner and the medium allow, in Mbit/s: 10000 (default), 1000, 100; on an
   * X550 also 2500 and 5000 (LINKS.NON_STD). LINKS reports it once the link is up.
   */
  readonly linkSpeed?: number;
  /**
   * Time a reset takes: CTRL.RST reads 1 and EEC.AUTO_RD / DMAIDONE read 0 until then (default
   * 0.5 ms: Linux's ixgbe_reset_hw_82599 polls after ~1 ms and fails after 10 more microseconds).
   * Register accesses other than CTRL, STATUS and EEC meanwhile are violations and have no effect.
   */
  readonly resetDelayMs?: number;
  /**
   * Time after a reset completes during which the device is still settling (default 0): accesses
   * other than CTRL, STATUS and EEC in it are violations. Linux waits 50 ms (82599) or 100 ms (X540).
   */
  readonly resetSettleMs?: number;
  /** What the NVM loads at reset (AUTOC.LMS, AUTOC2 link disable, laser). */
  readonly nvm?: Ixgbe82599Nvm;
  /**
   * Asynchronous mode (default false): register writes do nothing but store. RX descriptors are
   * fetched into an on-chip cache when RDT is written (a descriptor rewritten afterwards is a
   * violation), TX descriptors are read when TDT is written and processed, with DD written back,
   * only by step(), in chunks of random size (seeded by `seed`).
   */
  readonly asynchronous?: boolean;
  /** Seed of the asynchronous mode's chunk sizes (default 1). */
  readonly seed?: number;
  /**
   * GORC and GOTC count every byte this many times (default 1): compresses the minutes a 36-bit
   * octet counter takes to wrap at 10 Gbit/s into a few frames, to test that the driver reads
   * them often enough.
   */
  readonly octetScale?: number;
}

export const IXGBE_MODEL_QUEUES = 128;
/** MSI-X vectors of an 82599 function (MSI-X Table Size 63). */
export const IXGBE_MODEL_MSIX_VECTORS = 64;
/** BAR0 of the 82599: 128 KB of registers. */
export const IXGBE_MODEL_BAR0_SIZE = 0x20000;

const MIN_FRAME = 60; // without CRC: 64 on the wire
/** Linux ixgbe_tx_map/ixgbe_xmit_frame_ring: "the minimum packet size for olinfo paylen is 17". */
const MIN_TX_LENGTH = 17;
const VLAN_TPID = 0x8100;
/** Receive and transmit packet buffers, one per traffic class (RXPBSIZE/TXPBSIZE 0-7). */
const PACKET_BUFFERS = 8;
/** Receive packet buffer of each family, in KB (82599 datasheet 8.2.3.8.9; X540/X550: 384 KB). */
const RX_PACKET_BUFFER_KB: Readonly<Record<IxgbeFamily, number>> = { "82599": 512, X540: 384, X550: 384 };
/** Registers the device answers while it resets or settles (ixgbe_reset_hw_82599 polls CTRL only). */
const ALWAYS_ACCESSIBLE = new Set([R.CTRL, R.STATUS, R.EEC]);
const MAX_VIOLATIONS = 100;

/**
 * The 82599 also decodes the 82598's addresses of SRRCTL, DCA_RXCTRL and RAL/RAH for queues
 * (addresses) 0-15; Linux and the driver use them. Each address maps to its twin.
 */
const ALIAS_OF = new Map<number, number>();
for (const [register, alias] of [[R.SRRCTL, R.SRRCTL_ALIAS], [R.DCA_RXCTRL, R.DCA_RXCTRL_ALIAS], [R.RAL, R.RAL_ALIAS], [R.RAH, R.RAH_ALIAS]] as const) {
  for (let n = 0; n < 16; n++) {
    ALIAS_OF.set(register(n), alias(n));
    ALIAS_OF.set(alias(n), register(n));
  }
}

/** A descriptor ring as the model sees it, cached while base and length stay the same. */
class RingWindow {
  base = -1;
  length = 0;
  words: Uint32Array = new Uint32Array(0);
}

/** Descriptors the device has read into its on-chip cache: a copy of each, and which are valid. */
class DescriptorCache {
  words = new Uint32Array(0);
  valid = new Uint8Array(0);
  /** The next descriptor to fetch (RX: up to RDT; TX: up to TDT). */
  next = 0;
  resize(size: number): void {
    if (this.valid.length !== size) {
      this.words = new Uint32Array(size * 4);
      this.valid = new Uint8Array(size);
    }
    this.valid.fill(0);
  }
}

/**
 * BAR0: the register file, which refuses accesses while the device resets. `gate` is the model's
 * check; it returns false for an access the device does not perform.
 */
class GatedRegisters extends SimMmio {
  gate: ((offset: number, write: boolean) => boolean) | null = null;
  override read8(offset: number): number { return this.gate === null || this.gate(offset, false) ? super.read8(offset) : 0; }
  override read16(offset: number): number { return this.gate === null || this.gate(offset, false) ? super.read16(offset) : 0; }
  override read32(offset: number): number { return this.gate === null || this.gate(offset, false) ? super.read32(offset) : 0; }
  override write8(offset: number, value: number): void { if (this.gate === null || this.gate(offset, true)) super.write8(offset, value); }
  override write16(offset: number, value: number): void { if (this.gate === null || this.gate(offset, true)) super.write16(offset, value); }
  override write32(offset: number, value: number): void { if (this.gate === null || this.gate(offset, true)) super.write32(offset, value); }
}


const hex = (v: number): string => `0x${(v >>> 0).toString(16)}`;

let instances = 0;

export class Ixgbe82599Model {
  readonly pci: SimPciFunction;
  /** BAR0, the register file. Tests may peek and poke. */
  readonly regs: SimMmio;
  readonly address: string;
  readonly family: IxgbeFamily;
  readonly asynchronous: boolean;
  /** Faults to switch on and off at run time (see Ixgbe82599Faults). */
  readonly faults: Ixgbe82599Faults = {};
  /** Receives every frame the port puts on the wire, with the transmit queue it came from. */
  onTransmit: ((frame: Uint8Array, queue: number) => void) | null = null;

  readonly #regs: GatedRegisters;
  readonly #dma: SimDma;
  readonly #mac: Uint8Array;
  readonly #stats: ModelStatistics;
  /** MSI-X causes, masks, IVAR, EITR (model-interrupts.ts). */
  readonly #irq: ModelInterrupts;
  /** Flow Director perfect filters (model-fdir.ts). */
  readonly #fdir: FlowDirectorModel;
  readonly #linkUpDelayMs: number;
  readonly #resetDelayMs: number;
  readonly #resetSettleMs: number;
  readonly #partnerSpeed: number;
  readonly #sfp: boolean;
  readonly #nvmLms: number;
  readonly #nvm: Ixgbe82599Nvm;
  readonly #random: () => number;
  #cablePlugged: boolean;
  #cableChangedAt = 0;
  /** When auto-negotiation was last restarted, and with which LMS; NaN after a reset until it is. */
  #anRestartedAt = Number.NaN;
  #lmsAtRestart = -1;
  #laserOnAt = 0;
  #resetDoneAt = 0;
  #settledAt = 0;
  #peer: Ixgbe82599Model | null = null;
  readonly #rxRings: RingWindow[] = [];
  readonly #txRings: RingWindow[] = [];
  readonly #rxCache: DescriptorCache[] = [];
  readonly #txCache: DescriptorCache[] = [];
  /** TXDCTL.ENABLE was cleared but the queue still holds descriptors: the bit stays 1 until they are done. */
  readonly #txDisabling = new Uint8Array(IXGBE_MODEL_QUEUES);
  /** The two transmit contexts of every queue (model-offloads.ts). */
  readonly #offloads = new TxOffloads(IXGBE_MODEL_QUEUES);
  /** The RSS key as bytes, read from RSSRK for each steered frame. */
  readonly #rssKey = new Uint8Array(40);
  readonly #violations: string[] = [];
  readonly #violationSeen = new Set<string>();
  #resets = 0;
  #roWarned = false;
  /** A reset happened with a request pending (faults.masterDisableStuck): a second one is due. */
  #needsSecondReset = false;
  /** A reset is in progress or settling: register accesses are checked. */
  #gateArmed = false;

  constructor(options: Ixgbe82599ModelOptions) {
    if (!(options.dma instanceof SimDma)) throw new TypeError("Ixgbe82599Model needs { dma: SimDma }");
    const n = instances++;
    this.address = options.address ?? `sim:ixgbe${n}`;
    this.#dma = options.dma;
    this.#mac = options.mac ? Uint8Array.from(options.mac) : Uint8Array.of(0x02, 0x00, 0x00, 0x82, 0x59, n & 0xff);
    if (this.#mac.length !== 6) throw new RangeError(`${this.address}: a MAC address has 6 bytes, got ${this.#mac.length}`);
    const deviceId = options.deviceId ?? 0x10fb;
    this.family = ixgbeFamilyOf(deviceId);
    this.#sfp = this.family === "82599" && !BACKPLANE_IDS.includes(deviceId);
    this.#linkUpDelayMs = options.linkUpDelayMs ?? 0;
    this.#resetDelayMs = options.resetDelayMs ?? 0.5;
    this.#resetSettleMs = options.resetSettleMs ?? 0;
    this.#partnerSpeed = options.linkSpeed ?? 10_000;
    const speeds = this.family === "X550" ? [100, 1000, 2500, 5000, 10_000] : [100, 1000, 10_000];
    if (!speeds.includes(this.#partnerSpeed)) {
      throw new RangeError(`${this.address}: linkSpeed must be one of ${speeds.join(", ")} Mbit/s on an ${this.family}, got ${this.#partnerSpeed}`);
    }
    this.#nvm = { ...options.nvm };
    this.#nvmLms = (options.nvm?.autocLms ?? (this.#sfp ? R.AUTOC_LMS_10G_SERIAL : R.AUTOC_LMS_KX4_KX_KR)) & R.AUTOC_LMS_MASK;
    this.asynchronous = options.asynchronous ?? false;
    this.#random = prng(options.seed ?? 1);
    this.#cablePlugged = options.linkUp ?? true;
    this.#regs = new GatedRegisters(`${this.address} BAR0`, IXGBE_MODEL_BAR0_SIZE);
    this.regs = this.#regs;
    this.pci = new SimPciFunction({
      address: this.address,
      vendorId: 0x8086,
      deviceId,
      bars: [this.regs],
    });
    this.pci.onReset = () => this.#reset();
    // 7.3: 64 MSI-X vectors, the table in BAR4 (BAR3 with 32-bit BARs; only VFIO reads it).
    this.pci.addMsixCapability(IXGBE_MODEL_MSIX_VECTORS, 4);
    for (let q = 0; q < IXGBE_MODEL_QUEUES; q++) {
      this.#rxRings.push(new RingWindow());
      this.#txRings.push(new RingWindow());
      this.#rxCache.push(new DescriptorCache());
      this.#txCache.push(new DescriptorCache());
    }
    this.#stats = new ModelStatistics(this.regs, options.octetScale ?? 1);
    this.#irq = new ModelInterrupts(this.regs, this.address, {
      signal: (vector) => this.pci.signal(vector),
      violation: (message) => this.#violation(message),
    });
    this.#fdir = new FlowDirectorModel(this.regs, this.address, (message) => this.#violation(message));
    this.#installHooks();
    this.#reset();
    // Power-on: the device is out of reset when the driver first sees it.
    this.#resetDoneAt = 0;
    this.#settledAt = 0;
    this.#resets = 0;
    this.#regs.gate = (offset, write) => this.#gate(offset, write);
  }

  /** MSI-X messages the model sent, per vector 0-15, since its last reset. */
  get interruptsFired(): Readonly<Float64Array> {
    return this.#irq.fired;
  }

  /** What the model counted since its last reset. */
  get counters(): Readonly<Ixgbe82599Counters> {
    return this.#stats.counters;
  }

  /** What Flow Director counted since the last reset (matches, misses, frames its drop filters dropped). */
  get fdirCounters(): Readonly<FdirCounters> {
    return this.#fdir.counters;
  }

  /** Filters in the Flow Director table. */
  get fdirFilters(): number {
    return this.#fdir.filterCount;
  }

  /** Device resets (CTRL.RST or function-level) since construction. */
  get resets(): number {
    return this.#resets;
  }

  /** Whether a reset is still in progress (CTRL.RST reads 1). */
  get resetting(): boolean {
    // faults.resetStuck cleared: the hung reset completes now.
    if (this.#resetDoneAt === Infinity && this.faults.resetStuck !== true) {
      this.#resetDoneAt = performance.now();
      this.#settledAt = this.#resetDoneAt + this.#resetSettleMs;
    }
    return performance.now() < this.#resetDoneAt;
  }

  /**
   * What the driver did that a real device would not forgive, in order (at most 100; each
   * distinct message once). A correct driver leaves it empty.
   */
  get violations(): readonly string[] {
    return this.#violations;
  }

  /** Whether LINKS reports the link up right now. */
  get linkUp(): boolean {
    if (!this.#cablePlugged || this.resetting || this.faults.phyPoweredDown === true) return false;
    const regs = this.regs;
    let since = this.#cableChangedAt;
    if (this.family === "82599") {
      // 4.6.4: the MAC brings the link up with the mode in AUTOC once auto-negotiation was
      // (re)started with it; a later LMS change needs another Restart_AN (Linux's
      // ixgbe_reset_pipeline_82599 toggles LMS with Restart_AN for that reason).
      const lms = regs.peek32(R.AUTOC) & R.AUTOC_LMS_MASK;
      if (Number.isNaN(this.#anRestartedAt) || lms !== this.#lmsAtRestart || !this.#lmsCarries(lms)) return false;
      // AUTOC2 link-disable bits from the NVM keep the link down ("Enable link if disabled in NVM").
      if ((regs.peek32(R.AUTOC2) & R.AUTOC2_LINK_DISABLE_MASK) !== 0) return false;
      // SFP+: SDP3 driven high is TX_DISABLE (DPDK's ixgbe_enable_tx_laser clears it).
      const esdp = regs.peek32(R.ESDP);
      if (this.#sfp && (esdp & R.ESDP_SDP3_DIR) !== 0 && (esdp & R.ESDP_SDP3) !== 0) return false;
      since = Math.max(since, this.#anRestartedAt, this.#sfp ? this.#laserOnAt : 0);
    } else {
      since = Math.max(since, this.#resetDoneAt);
    }
    return performance.now() >= since + this.#linkUpDelayMs;
  }

  /** Whether link mode `lms` can carry the partner's speed on this board. */
  #lmsCarries(lms: number): boolean {
    if (!this.#sfp) return lms === this.#nvmLms; // backplane: only the mode the board is wired for
    if (lms === R.AUTOC_LMS_10G_SERIAL) return this.#partnerSpeed === 10_000;
    if (lms === R.AUTOC_LMS_1G_NO_AN) return this.#partnerSpeed === 1000;
    return false;
  }

  /** 8.2.3.22.20: LINKS for the current state. */
  #links(): number {
    if (!this.linkUp) return 0;
    const speed = this.#partnerSpeed;
    const bits = speed === 10_000 || speed === 2500 ? R.LINKS_LINK_SPEED_10G : speed === 1000 ? R.LINKS_LINK_SPEED_1G : R.LINKS_LINK_SPEED_100M;
    return (R.LINKS_LINK_UP | bits | (speed === 2500 || speed === 5000 ? R.LINKS_NON_STD : 0)) >>> 0;
  }

  /** Plugs (true) or pulls (false) the cable. The link comes back linkUpDelayMs after plugging. */
  setLink(up: boolean): void {
    this.#cablePlugged = up;
    this.#cableChangedAt = performance.now();
    if (up && !this.asynchronous) this.#kickAllTx();
  }

  /** Wires this port back to back with another: what one sends, the other receives. */
  connect(other: Ixgbe82599Model): void {
    if (other === this) throw new RangeError(`${this.address}: cannot connect a port to itself`);
    if (this.#peer !== null) this.#peer.#peer = null;
    if (other.#peer !== null) other.#peer.#peer = null;
    this.#peer = other;
    other.#peer = this;
  }

  /**
   * Lets the device work. Asynchronous mode: every transmit queue with pending descriptors
   * processes a chunk of random size (1 .. all of them), writing DD back where RS is set; returns
   * the number of descriptors processed (0: nothing to do, or blocked). Synchronous mode: sends
   * whatever a fault or a down link held back; returns the descriptors processed likewise.
   */
  step(): number {
    let done = 0;
    for (let q = 0; q < IXGBE_MODEL_QUEUES; q++) {
      const pending = this.#pendingTx(q);
      if (pending === 0) continue;
      const limit = this.asynchronous ? 1 + Math.floor(this.#random() * pending) : pending;
      done += this.#transmit(q, limit);
    }
    return done;
  }

  /** step() until the device has nothing left it can do; returns the descriptors processed. */
  drain(): number {
    let total = 0;
    for (let n = this.step(); n > 0; n = this.step()) total += n;
    return total;
  }

  #pendingTx(q: number): number {
    const size = this.regs.peek32(R.TDLEN(q)) / R.DESCRIPTOR_SIZE;
    if (size === 0) return 0;
    return (this.regs.peek32(R.TDT(q)) - this.regs.peek32(R.TDH(q)) + size) % size;
  }

  #violation(message: string): void {
    if (this.#violationSeen.has(message) || this.#violations.length >= MAX_VIOLATIONS) return;
    this.#violationSeen.add(message);
    this.#violations.push(message);
  }

  /** Whether the device performs a register access now (see GatedRegisters). */
  #gate(offset: number, write: boolean): boolean {
    if (!this.#gateArmed || ALWAYS_ACCESSIBLE.has(offset)) return true;
    const now = performance.now();
    if (now >= this.#settledAt && !this.#needsSecondReset) {
      this.#gateArmed = false; // out of reset and settled: no clock reads on the data path
      return true;
    }
    if (now < this.#resetDoneAt) {
      this.#violation(`${write ? "write to" : "read of"} register ${hex(offset)} while the device resets (CTRL.RST still 1): ` +
        `poll CTRL until the reset bits clear (ixgbe_reset_hw_82599), the access has no effect`);
      return false;
    }
    if (this.#needsSecondReset) {
      this.#violation(`${write ? "write to" : "read of"} register ${hex(offset)} after a single reset issued while STATUS.GIO ` +
        `never cleared: reset twice in a row (82599 specification update, Linux IXGBE_FLAGS_DOUBLE_RESET_REQUIRED)`);
    }
    if (now < this.#settledAt) {
      this.#violation(`${write ? "write to" : "read of"} register ${hex(offset)} ${(now - this.#resetDoneAt).toFixed(1)} ms after ` +
        `the reset completed, before the device settled (${this.#resetSettleMs} ms; Linux sleeps 50 ms on the 82599)`);
    }
    return true;
  }

  /**
   * A frame arrives from the wire (without its CRC). Without `queue`, the device picks the queue
   * as hardware does: by RSS when MRQC enables it, else queue 0. With `queue`, the frame goes to
   * that receive queue whatever RSS says (for tests that need a frame in one queue). Returns true when
   * the model wrote it to host memory, false when it was dropped: missed for want of a
   * descriptor (QPRDC with SRRCTL.DROP_EN, else MPC) or with receive disabled (MPC), too short or
   * too long (RLEC), refused by the address filter (FCTRL, RAL/RAH), or the link is down.
   * Throws DmaFaultError when a descriptor or buffer address is not mapped.
   */
  inject(frame: Uint8Array, queue?: number): boolean {
    if (!(frame instanceof Uint8Array)) throw new TypeError(`${this.address}: inject() needs a Uint8Array frame`);
    if (queue !== undefined && (!Number.isInteger(queue) || queue < 0 || queue >= IXGBE_MODEL_QUEUES)) {
      throw new RangeError(`${this.address}: receive queue must be an integer from 0 to ${IXGBE_MODEL_QUEUES - 1}, got ${queue}`);
    }
    const regs = this.regs;
    if (!this.linkUp) {
      this.#stats.linkDown();
      return false;
    }
    // 8.2.3.22.13 MAXFRS: frame size limits count the CRC; a VLAN tag may add 4 bytes.
    const hlreg0 = regs.peek32(R.HLREG0);
    const tagged = frame.length >= 14 && ((frame[12]! << 8) | frame[13]!) === VLAN_TPID;
    const maxFrame = ((hlreg0 & R.HLREG0_JUMBOEN) !== 0 ? regs.peek32(R.MAXFRS) >>> R.MAXFRS_MFS_SHIFT : 1518) + (tagged ? 4 : 0);
    if (frame.length < MIN_FRAME || frame.length + 4 > maxFrame) {
      this.#stats.lengthError(frame.length >= MIN_FRAME);
      return false;
    }
    // 7.1.1 / 8.2.3.7.1: the L2 filter. Broadcast needs FCTRL.BAM, multicast FCTRL.MPE (the
    // multicast table is not modelled), unicast FCTRL.UPE or a valid receive address.
    if (!this.#passesFilter(frame)) {
      this.#stats.filtered();
      return false;
    }
    // 7.1.2.8: RSS (MRQC.MRQE = 0001b) picks the queue by the Toeplitz hash and RETA.
    const mrqc = regs.peek32(R.MRQC);
    const mrqe = mrqc & R.MRQC_MRQE_MASK;
    if (mrqe !== 0 && mrqe !== R.MRQC_MRQE_RSS) {
      throw new NotSupportedError(`${this.address}: MRQC.MRQE = ${mrqe}: the model implements only 0 (one queue) and 1 (RSS)`);
    }
    const rssOn = mrqe === R.MRQC_MRQE_RSS;
    if (rssOn) this.#readRssKey();
    const rss = classifyRss(frame, rssOn ? mrqc : 0, this.#rssKey);
    if (queue === undefined) {
      // 7.1.2: Flow Director's decision comes before RSS's.
      const fdir = this.#fdir.steer(frame);
      if (fdir.dropped) return false;
      queue = fdir.queue >= 0 ? fdir.queue : rssOn ? this.#retaEntry(rss.hash & 0x7f) : 0;
    }
    const rssField = rssOn && (regs.peek32(R.RXCSUM) & R.RXCSUM_PCSD) !== 0 ? rss.hash : 0;
    if ((regs.peek32(R.RXCTRL) & R.RXCTRL_RXEN) === 0 || (regs.peek32(R.RXDCTL(queue)) & R.RXDCTL_ENABLE) === 0 ||
      (regs.peek32(R.SECRXCTRL) & R.SECRXCTRL_RX_DIS) !== 0 || !this.#dmaAllowed() || this.faults.rxBufferFull === true) {
      this.#stats.missed();
      return false;
    }
    const srrctl = regs.peek32(R.SRRCTL(queue));
    if ((srrctl & R.SRRCTL_DESCTYPE_MASK) !== R.SRRCTL_DESCTYPE_ADV_ONEBUF) {
      throw new NotSupportedError(
        `${this.address}: the model implements only advanced one-buffer receive descriptors; SRRCTL(${queue}) = 0x${srrctl.toString(16)}`,
      );
    }
    const bufferSize = (srrctl & R.SRRCTL_BSIZEPACKET_MASK) << R.SRRCTL_BSIZEPACKET_SHIFT;
    if (bufferSize === 0) throw new DeviceProtocolError(`${this.address}: SRRCTL(${queue}).BSIZEPACKET is 0`);
    if ((regs.peek32(R.DCA_RXCTRL(queue)) & (R.DCA_RXCTRL_DATA_WRO_EN | R.DCA_RXCTRL_HEAD_WRO_EN)) !== 0) {
      this.#violation(`RX queue ${queue} writes with relaxed ordering (DCA_RXCTRL.DATA_WRO_EN/HEAD_WRO_EN set): ` +
        `Linux's ixgbe_start_hw_gen2 clears them so that no write can pass another`);
    }

    const ring = this.#ring(this.#rxRings[queue]!, R.RDBAL(queue), R.RDBAH(queue), R.RDLEN(queue), `RX queue ${queue}`);
    const size = ring.length / R.DESCRIPTOR_SIZE;
    let head = regs.peek32(R.RDH(queue));
    const tail = regs.peek32(R.RDT(queue));
    if (head >= size) throw new DeviceProtocolError(`${this.address}: RDH(${queue}) = ${head} is beyond the ${size}-descriptor ring`);
    // 7.1.9: the model owns the descriptors from RDH up to RDT (exclusive).
    const data = (hlreg0 & R.HLREG0_RXCRCSTRP) !== 0 ? frame : withFcs(frame);
    // 7.1.11: the checksum checks, reported in the last descriptor of the frame.
    const checksums = rxChecksumBits(frame);
    const parts = Math.ceil(data.length / bufferSize);
    if ((tail - head + size) % size < parts) {
      // 8.2.3.8.7 SRRCTL.DROP_EN: a queue without descriptors drops (QPRDC) instead of holding the
      // frame in the packet buffer; without it the buffer fills and MPC counts.
      if ((srrctl & R.SRRCTL_DROP_EN) !== 0) this.#stats.noDescriptor();
      else this.#stats.missed();
      return false;
    }
    const words = ring.words;
    const cache = this.#rxCache[queue]!;
    for (let part = 0, offset = 0; part < parts; part++) {
      const w = head * 4;
      // The buffer address the device fetched when RDT moved past this descriptor (7.1.9:
      // descriptors are prefetched into the on-chip cache); memory written later is not seen.
      let lo = words[w]!;
      let hi = words[w + 1]!;
      if (cache.valid[head] === 1) {
        if (cache.words[w] !== lo || cache.words[w + 1] !== hi) {
          this.#violation(`RX queue ${queue} descriptor ${head} was rewritten after RDT handed it to the device: ` +
            `fill a descriptor before the tail write that passes it`);
        }
        lo = cache.words[w]!;
        hi = cache.words[w + 1]!;
        cache.valid[head] = 0;
      }
      const length = Math.min(bufferSize, data.length - offset);
      const address = join64(lo, hi);
      this.#dma.resolve(address, length, `RX packet write (queue ${queue}, descriptor ${head})`, this.address)
        .set(data.subarray(offset, offset + length));
      offset += length;
      // 7.1.6.2 write-back: RSS type and packet type, the RSS hash (RXCSUM.PCSD; the fragment
      // checksum is not modelled), status, then length and no VLAN tag.
      words[w] = rss.rssType | rss.packetType;
      words[w + 1] = rssField;
      words[w + 3] = length;
      words[w + 2] = (R.RXD_STATUS_DD | (part === parts - 1 ? R.RXD_STATUS_EOP | checksums : 0)) >>> 0;
      head = (head + 1) % size;
    }
    regs.poke32(R.RDH(queue), head);
    this.#stats.received(frame.length + 4);
    // 7.3.4: the write-back raises the cause of the vector IVAR gives the queue.
    this.#irq.rxWriteBack(queue);
    return true;
  }

  /** 8.2.3.7.14: RSSRK(n) holds key bytes 4n .. 4n+3, the first in the low byte. */
  #readRssKey(): void {
    for (let n = 0; n < 10; n++) {
      const v = this.regs.peek32(R.RSSRK(n));
      for (let k = 0; k < 4; k++) this.#rssKey[4 * n + k] = (v >>> (8 * k)) & 0xff;
    }
  }

  /** 8.2.3.7.13: RETA entry `index` (0-127); its bits 3:0 are the queue on the 82599. */
  #retaEntry(index: number): number {
    return (this.regs.peek32(R.RETA(index >>> 2)) >>> (8 * (index & 3))) & 0xf;
  }

  #passesFilter(frame: Uint8Array): boolean {
    const fctrl = this.regs.peek32(R.FCTRL);
    if (frame.length < 6) return false;
    if ((frame[0]! & 1) !== 0) {
      let broadcast = true;
      for (let i = 0; i < 6; i++) if (frame[i] !== 0xff) broadcast = false;
      return (fctrl & (broadcast ? R.FCTRL_BAM : R.FCTRL_MPE)) !== 0;
    }
    if ((fctrl & R.FCTRL_UPE) !== 0) return true;
    const low = (frame[0]! | (frame[1]! << 8) | (frame[2]! << 16) | (frame[3]! << 24)) >>> 0;
    const high = frame[4]! | (frame[5]! << 8);
    for (let n = 0; n < 128; n++) {
      const rah = this.regs.peek32(R.RAH(n));
      if ((rah & R.RAH_AV) !== 0 && (rah & 0xffff) === high && this.regs.peek32(R.RAL(n)) === low) return true;
    }
    return false;
  }

  /** Whether a DMA engine is on: receive or transmit enabled, or any queue. */
  #dmaEngineActive(): boolean {
    const regs = this.regs;
    if ((regs.peek32(R.RXCTRL) & R.RXCTRL_RXEN) !== 0 || (regs.peek32(R.DMATXCTL) & R.DMATXCTL_TE) !== 0) return true;
    for (let q = 0; q < IXGBE_MODEL_QUEUES; q++) {
      if ((regs.peek32(R.RXDCTL(q)) & R.RXDCTL_ENABLE) !== 0 || (regs.peek32(R.TXDCTL(q)) & R.TXDCTL_ENABLE) !== 0) return true;
    }
    return false;
  }

  /** DMA needs bus mastering (PCI command register) and no master disable (CTRL.GIO_DIS). */
  #dmaAllowed(): boolean {
    return this.pci.busMasterEnabled && (this.regs.peek32(R.CTRL) & R.CTRL_GIO_DIS) === 0;
  }

  // ---- registers ----

  #installHooks(): void {
    const regs = this.regs;
    const now = () => performance.now();

    // 8.2.3.1.1 CTRL: RST resets the device and reads 1 until the reset is done. LRST alone is a
    // link reset: MAC, PCS and auto-negotiation restart with the current AUTOC, registers stay.
    regs.onWrite(R.CTRL, (value) => {
      if ((value & R.CTRL_RST) !== 0) {
        // 5.2.5.3.2: disable PCIe mastering (CTRL.GIO_DIS, wait for STATUS.GIO to clear) before
        // a reset, as ixgbe_reset_hw_82599 does through ixgbe_disable_pcie_master: a request in
        // flight at reset time is lost or corrupts memory.
        if ((regs.peek32(R.CTRL) & R.CTRL_GIO_DIS) === 0 && (value & R.CTRL_GIO_DIS) === 0 && this.#dmaEngineActive()) {
          this.#violation("CTRL.RST written with PCIe mastering enabled while DMA may be in flight: set CTRL.GIO_DIS and " +
            "wait for STATUS.GIO to clear first (5.2.5.3.2)");
        }
        // A request was pending: this reset is the first of the two the specification update asks for.
        this.#needsSecondReset = this.faults.masterDisableStuck === true;
        this.faults.masterDisableStuck = false;
        this.#reset();
        this.#resetDoneAt = this.faults.resetStuck === true ? Infinity : now() + this.#resetDelayMs;
        this.#settledAt = this.#resetDoneAt + this.#resetSettleMs;
        this.#gateArmed = true;
        return;
      }
      if ((value & R.CTRL_LRST) !== 0 && this.family === "82599") {
        this.#anRestartedAt = now();
        this.#lmsAtRestart = regs.peek32(R.AUTOC) & R.AUTOC_LMS_MASK;
      }
      regs.poke32(R.CTRL, value & ~R.CTRL_RESET_BITS);
    });
    regs.onRead(R.CTRL, () => regs.peek32(R.CTRL) | (this.resetting ? R.CTRL_RST : 0));
    // 8.2.3.1.2 STATUS.GIO: 1 while the device may master the bus.
    regs.onRead(R.STATUS, () => (this.#dmaAllowed() || this.faults.masterDisableStuck === true ? R.STATUS_GIO : 0) >>> 0);
    regs.onWrite(R.STATUS, () => {});
    // 8.2.3.2.1 EEC: auto-read of the EEPROM is done once the reset is.
    regs.onRead(R.EEC, () => regs.peek32(R.EEC) | (this.resetting ? 0 : R.EEC_AUTO_RD));
    // 8.2.3.8.8 RDRXCTL: DMAIDONE is read-only and set once the DMA init cycle is done.
    regs.onRead(R.RDRXCTL, () => regs.peek32(R.RDRXCTL) | (this.resetting ? 0 : R.RDRXCTL_DMAIDONE));
    regs.onWrite(R.RDRXCTL, (value) => regs.poke32(R.RDRXCTL, value & ~R.RDRXCTL_DMAIDONE));

    // 8.2.3.5 interrupts: model-interrupts.ts installs EICR, EICS, EIMS, EIMC, EIAM and the
    // extended registers of 64 vectors.

    // 4.6.4 / 8.2.3.22.19 AUTOC: RESTART_AN self-clears and (re)starts link establishment with
    // the LMS written. The X540 and X550 run their link through the PHY: Linux never writes
    // AUTOC there (ixgbe_reset_hw_X540), and neither may a driver.
    regs.onWrite(R.AUTOC, (value) => {
      if (this.family !== "82599") {
        this.#violation(`AUTOC written on an ${this.family}: its link is set up through the PHY, not AUTOC (ixgbe_reset_hw_X540)`);
        return;
      }
      if ((value & R.AUTOC_RESTART_AN) !== 0) {
        this.#anRestartedAt = now();
        this.#lmsAtRestart = value & R.AUTOC_LMS_MASK;
      }
      regs.poke32(R.AUTOC, value & ~R.AUTOC_RESTART_AN);
    });
    // 8.2.3.22.20 LINKS: read-only link state.
    regs.onRead(R.LINKS, () => this.#links());
    regs.onWrite(R.LINKS, () => {});
    // 8.2.3.1.4 ESDP: the laser lights up when SDP3 goes low (DPDK: allow 100 ms; linkUpDelayMs here).
    regs.onWrite(R.ESDP, (value) => {
      const old = regs.peek32(R.ESDP);
      if ((old & R.ESDP_SDP3) !== 0 && (value & R.ESDP_SDP3) === 0) this.#laserOnAt = now();
      regs.poke32(R.ESDP, value);
    });

    // SRRCTL, DCA_RXCTRL and RAL/RAH 0-15 answer at two addresses: writing either changes both.
    for (const offset of ALIAS_OF.keys()) regs.onWrite(offset, (value, _offset, width) => this.#store(offset, value, width));

    // 8.2.3.8.10 RXCTRL: the 82599 erratum Linux works around in ixgbe_enable_rx_dma_82599:
    // enabling receive while frames may arrive can hang the RX DMA unit; the security block's
    // receive path must be stopped (SECRXCTRL.RX_DIS, SECRXSTAT.SECRX_RDY) around the change.
    regs.onWrite(R.RXCTRL, (value) => {
      const enabling = (value & R.RXCTRL_RXEN) !== 0 && (regs.peek32(R.RXCTRL) & R.RXCTRL_RXEN) === 0;
      if (enabling && this.family === "82599" && (regs.peek32(R.SECRXCTRL) & R.SECRXCTRL_RX_DIS) === 0) {
        this.#violation("RXCTRL.RXEN set while the receive security path runs: set SECRXCTRL.RX_DIS and wait for " +
          "SECRXSTAT.SECRX_RDY first (82599 erratum, ixgbe_enable_rx_dma_82599)");
      }
      if (enabling && (regs.peek32(R.CTRL_EXT) & R.CTRL_EXT_DRV_LOAD) === 0) {
        this.#violation("receive enabled with CTRL_EXT.DRV_LOAD clear: manageability firmware takes the port as driverless (ixgbe_get_hw_control)");
      }
      regs.poke32(R.RXCTRL, value);
    });
    regs.onRead(R.SECRXSTAT, () => ((regs.peek32(R.SECRXCTRL) & R.SECRXCTRL_RX_DIS) !== 0 ? R.SECRXSTAT_SECRX_RDY : 0));
    regs.onWrite(R.SECRXSTAT, () => {});

    // Transmit engine triggers: the tail doorbell, and anything that may unblock a queue.
    regs.onWrite(R.DMATXCTL, (value) => {
      regs.poke32(R.DMATXCTL, value);
      if (!this.asynchronous) this.#kickAllTx();
    });
    for (let q = 0; q < IXGBE_MODEL_QUEUES; q++) {
      regs.onWrite(R.TDT(q), (value) => {
        const size = regs.peek32(R.TDLEN(q)) / R.DESCRIPTOR_SIZE;
        if (size > 0 && value >= size) {
          throw new DeviceProtocolError(`${this.address}: TDT(${q}) = ${value} written, beyond the ${size}-descriptor ring`);
        }
        regs.poke32(R.TDT(q), value);
        this.#fetchTx(q);
        if (!this.asynchronous) this.#transmit(q, Number.POSITIVE_INFINITY);
      });
      regs.onWrite(R.TDH(q), (value) => this.#headWrite(R.TDH(q), R.TXDCTL(q), R.TXDCTL_ENABLE, `TDH(${q})`, value));
      regs.onWrite(R.RDH(q), (value) => this.#headWrite(R.RDH(q), R.RXDCTL(q), R.RXDCTL_ENABLE, `RDH(${q})`, value));
      // 8.2.3.9.10 TXDCTL: ENABLE latches at once; clearing it completes only once the queue has
      // no pending descriptor, which never happens while the link is down or transmission is
      // paused (Linux's ixgbe_disable_tx does not wait for it then). SWFLSH self-clears.
      regs.onWrite(R.TXDCTL(q), (value) => {
        const wasEnabled = (regs.peek32(R.TXDCTL(q)) & R.TXDCTL_ENABLE) !== 0;
        let stored = value & ~R.TXDCTL_SWFLSH;
        this.#txDisabling[q] = 0;
        if (wasEnabled && (value & R.TXDCTL_ENABLE) === 0 && this.#pendingTx(q) !== 0) {
          this.#txDisabling[q] = 1;
          stored |= R.TXDCTL_ENABLE;
        }
        if (!wasEnabled && (value & R.TXDCTL_ENABLE) !== 0) {
          this.#txCache[q]!.next = regs.peek32(R.TDH(q));
          this.#offloads.clear(q); // an enabled queue starts without contexts: the driver loads them again
        }
        regs.poke32(R.TXDCTL(q), stored);
        if (!wasEnabled && (value & R.TXDCTL_ENABLE) !== 0) this.#fetchTx(q);
        if (!this.asynchronous) this.#transmit(q, Number.POSITIVE_INFINITY);
      });
      // While the driver polls a queue's control register, time passes on the device.
      regs.onRead(R.TXDCTL(q), () => {
        if (this.asynchronous && this.#txDisabling[q] === 1) this.#transmit(q, 1 + Math.floor(this.#random() * this.#pendingTx(q)));
        return regs.peek32(R.TXDCTL(q));
      });
      regs.onWrite(R.RXDCTL(q), (value) => {
        const wasEnabled = (regs.peek32(R.RXDCTL(q)) & R.RXDCTL_ENABLE) !== 0;
        regs.poke32(R.RXDCTL(q), value);
        if (!wasEnabled && (value & R.RXDCTL_ENABLE) !== 0) {
          const cache = this.#rxCache[q]!;
          cache.resize(regs.peek32(R.RDLEN(q)) / R.DESCRIPTOR_SIZE);
          cache.next = regs.peek32(R.RDH(q));
          this.#fetchRx(q);
        }
      });
      regs.onWrite(R.RDT(q), (value) => {
        const size = regs.peek32(R.RDLEN(q)) / R.DESCRIPTOR_SIZE;
        if (size > 0 && value >= size) {
          throw new DeviceProtocolError(`${this.address}: RDT(${q}) = ${value} written, beyond the ${size}-descriptor ring`);
        }
        regs.poke32(R.RDT(q), value);
        this.#fetchRx(q);
      });
    }
  }

  /** 8.2.3.8.4 / 8.2.3.9.8: the head belongs to the device while the queue is enabled. */
  #headWrite(head: number, control: number, enable: number, name: string, value: number): void {
    if ((this.regs.peek32(control) & enable) !== 0) {
      this.#violation(`${name} written while the queue is enabled: only the device moves the head then (7.1.9, 7.2.3.3); the write is ignored`);
      return;
    }
    this.regs.poke32(head, value);
  }

  /** 7.1.9: the device reads the descriptors RDT passed into its cache when RDT is written. */
  #fetchRx(q: number): void {
    const regs = this.regs;
    if ((regs.peek32(R.RXDCTL(q)) & R.RXDCTL_ENABLE) === 0) return;
    const tail = regs.peek32(R.RDT(q));
    const cache = this.#rxCache[q]!;
    if (cache.next === tail) return;
    const ring = this.#ring(this.#rxRings[q]!, R.RDBAL(q), R.RDBAH(q), R.RDLEN(q), `RX queue ${q}`);
    const size = ring.length / R.DESCRIPTOR_SIZE;
    if (cache.valid.length !== size) cache.resize(size);
    for (let i = cache.next % size; i !== tail; i = (i + 1) % size) {
      cache.words[i * 4] = ring.words[i * 4]!;
      cache.words[i * 4 + 1] = ring.words[i * 4 + 1]!;
      cache.valid[i] = 1;
    }
    cache.next = tail;
  }

  /** Asynchronous mode: TX descriptors are read when TDT passes them, checked against memory when processed. */
  #fetchTx(q: number): void {
    if (!this.asynchronous) return;
    const regs = this.regs;
    // A disabled queue fetches nothing (7.2.1.2: descriptors are fetched for an enabled queue):
    // TDT writes to it are only stored, as after a reset behind the driver's back, when the
    // ring registers read 0. Enabling the queue fetches what TDT already covers.
    if ((regs.peek32(R.TXDCTL(q)) & R.TXDCTL_ENABLE) === 0 || !this.#dmaAllowed()) return;
    const tail = regs.peek32(R.TDT(q));
    const cache = this.#txCache[q]!;
    const ring = this.#ring(this.#txRings[q]!, R.TDBAL(q), R.TDBAH(q), R.TDLEN(q), `TX queue ${q}`);
    const size = ring.length / R.DESCRIPTOR_SIZE;
    if (cache.valid.length !== size) {
      cache.resize(size);
      cache.next = regs.peek32(R.TDH(q));
    }
    for (let i = cache.next % size; i !== tail; i = (i + 1) % size) {
      cache.words.set(ring.words.subarray(i * 4, i * 4 + 4), i * 4);
      cache.valid[i] = 1;
    }
    cache.next = tail;
  }

  /** Global reset: every register to its reset value, every engine and counter to zero. */
  #reset(): void {
    const regs = this.regs;
    regs.clear();
    this.#resets++;
    this.#anRestartedAt = Number.NaN;
    this.#lmsAtRestart = -1;
    this.#stats.clear();
    this.#irq.reset();
    this.#fdir.reset();
    for (const ring of this.#rxRings) ring.base = -1;
    for (const ring of this.#txRings) ring.base = -1;
    for (const cache of this.#rxCache) cache.valid.fill(0);
    for (const cache of this.#txCache) cache.valid.fill(0);
    this.#txDisabling.fill(0);
    this.#offloads.clear();
    // Reset values (8.2.3), as far as they are modelled; everything else is 0.
    regs.poke32(R.EEC, R.EEC_EE_PRES);
    regs.poke32(R.RDRXCTL, R.RDRXCTL_RESET);
    regs.poke32(R.HLREG0, R.HLREG0_RESET);
    regs.poke32(R.MAXFRS, R.MAXFRS_RESET);
    // What the NVM loads: the board's link mode, SFI; optionally the link disabled, the laser off.
    regs.poke32(R.AUTOC, this.#nvmLms);
    regs.poke32(R.AUTOC2, (R.AUTOC2_10G_PMA_PMD_SERIAL_SFI | (this.#nvm.linkDisabled === true ? 1 << 30 : 0)) >>> 0);
    if (this.#nvm.laserOff === true) regs.poke32(R.ESDP, R.ESDP_SDP3 | R.ESDP_SDP3_DIR);
    const rxPacketBuffer = (RX_PACKET_BUFFER_KB[this.family] << R.RXPBSIZE_SHIFT) >>> 0;
    for (let i = 0; i < PACKET_BUFFERS; i++) {
      regs.poke32(R.RXPBSIZE(i), rxPacketBuffer);
      regs.poke32(R.TXPBSIZE(i), R.TXPBSIZE_RESET);
    }
    regs.poke32(R.TXPBTHRESH(0), R.TXPBTHRESH0_RESET);
    regs.poke32(R.DTXMXSZRQ, R.DTXMXSZRQ_RESET);
    for (let q = 0; q < IXGBE_MODEL_QUEUES; q++) {
      this.#store(R.SRRCTL(q), R.SRRCTL_RESET);
      this.#store(R.DCA_RXCTRL(q), R.DCA_RXCTRL_RESET);
      regs.poke32(R.DCA_TXCTRL(q), R.DCA_TXCTRL_RESET);
    }
    const mac = this.#mac;
    this.#store(R.RAL(0), (mac[0]! | (mac[1]! << 8) | (mac[2]! << 16) | (mac[3]! << 24)) >>> 0);
    this.#store(R.RAH(0), (mac[4]! | (mac[5]! << 8) | R.RAH_AV) >>> 0);
  }

  /** Stores a register value, and the same value at its 82598-compatible alias if it has one. */
  #store(offset: number, value: number, width: 1 | 2 | 4 = 4): void {
    const poke = width === 4 ? this.regs.poke32 : width === 2 ? this.regs.poke16 : this.regs.poke8;
    poke.call(this.regs, offset, value);
    const alias = ALIAS_OF.get(offset);
    if (alias !== undefined) poke.call(this.regs, alias, value);
  }

  /** The descriptor ring of a queue as 32-bit words; faults if it is not in host memory. */
  #ring(window: RingWindow, bal: number, bah: number, len: number, what: string): RingWindow {
    // The low 7 bits of the base are ignored: rings are 128-byte aligned (7.1.9, 7.2.3.3).
    const base = join64(this.regs.peek32(bal) & ~0x7f, this.regs.peek32(bah));
    const length = this.regs.peek32(len);
    if (this.#dma.closed) throw new DmaFaultError(this.address, base, length, `${what} descriptor access after the DMA memory was released`);
    if (window.base !== base || window.length !== length) {
      if (length === 0 || length % 128 !== 0) {
        throw new DeviceProtocolError(`${this.address}: ${what} ring length ${length} is not a non-zero multiple of 128 bytes`);
      }
      const bytes = this.#dma.resolve(base, length, `${what} descriptor ring`, this.address);
      window.words = new Uint32Array(bytes.buffer, bytes.byteOffset, length >>> 2);
      window.base = base;
      window.length = length;
    }
    return window;
  }

  #kickAllTx(): void {
    for (let q = 0; q < IXGBE_MODEL_QUEUES; q++) {
      if (this.regs.peek32(R.TDT(q)) !== this.regs.peek32(R.TDH(q))) this.#transmit(q, Number.POSITIVE_INFINITY);
    }
  }

  /**
   * 7.2: sends what lies between TDH and TDT of queue q, at most `limit` descriptors (whole
   * frames: a frame started is finished), then hands the frames on. Returns the descriptors done.
   */
  #transmit(q: number, limit: number): number {
    const regs = this.regs;
    if ((regs.peek32(R.DMATXCTL) & R.DMATXCTL_TE) === 0 || (regs.peek32(R.TXDCTL(q)) & R.TXDCTL_ENABLE) === 0 ||
      !this.linkUp || !this.#dmaAllowed() || this.faults.stallTx === true) return 0;
    let head = regs.peek32(R.TDH(q));
    const tail = regs.peek32(R.TDT(q));
    if (head === tail) return 0;
    const ring = this.#ring(this.#txRings[q]!, R.TDBAL(q), R.TDBAH(q), R.TDLEN(q), `TX queue ${q}`);
    const size = ring.length / R.DESCRIPTOR_SIZE;
    if (tail >= size || head >= size) {
      throw new DeviceProtocolError(`${this.address}: TDH(${q}) = ${head} / TDT(${q}) = ${tail} beyond the ${size}-descriptor ring`);
    }
    const words = ring.words;
    const cache = this.#txCache[q]!;
    const sent: Uint8Array[] = [];
    const txpad = (regs.peek32(R.HLREG0) & R.HLREG0_TXPADEN) !== 0;
    const relaxedWriteBack = (regs.peek32(R.DCA_TXCTRL(q)) & R.DCA_TXCTRL_DESC_WRO_EN) !== 0;
    let done = 0;
    while (head !== tail && done < limit) {
      // Gather one frame: data descriptors up to the one with EOP.
      const parts: Uint8Array[] = [];
      let i = head;
      let total = 0;
      let payLength = 0;
      let cmd = 0;
      // Words 2 and 3 of the frame's first data descriptor: its offload fields (7.2.3.2.4).
      let firstCmd = 0;
      let firstOlinfo = 0;
      let complete = false;
      while (i !== tail) {
        const w = i * 4;
        if (this.asynchronous && cache.valid[i] === 1) {
          for (let k = 0; k < 4; k++) {
            if (cache.words[w + k] !== words[w + k]) {
              this.#violation(`TX queue ${q} descriptor ${i} was rewritten after TDT handed it to the device`);
              break;
            }
          }
          cache.valid[i] = 0;
        }
        cmd = words[w + 2]!;
        const where = `TX queue ${q} descriptor ${i}`;
        if ((cmd & R.TXD_DCMD_DEXT) === 0) {
          throw new DeviceProtocolError(`${this.address}: ${where} is a legacy descriptor; the model implements advanced descriptors only`);
        }
        const type = cmd & R.TXD_DTYP_MASK;
        if (type === R.TXD_DTYP_CONTEXT && parts.length === 0) {
          // 7.2.3.2.3: offload settings only, no data; loaded into one of the queue's contexts.
          const problem = this.#offloads.load(q, words[w]!, words[w + 1]!, cmd, words[w + 3]!);
          if (problem !== null) this.#violation(problem);
          complete = true;
          break;
        }
        if (type !== R.TXD_DTYP_DATA) {
          throw new DeviceProtocolError(`${this.address}: ${where} has descriptor type 0x${(type >>> 20).toString(16)}`);
        }
        const length = cmd & R.TXD_DTALEN_MASK;
        if (length === 0) throw new DeviceProtocolError(`${this.address}: ${where} has a data length of 0`);
        if (length > R.TXD_MAX_DATA) {
          this.#violation(`${where} holds ${length} bytes, more than the ${R.TXD_MAX_DATA} a data descriptor may (split the buffer over several)`);
        }
        if (parts.length === 0) {
          payLength = words[w + 3]! >>> R.TXD_PAYLEN_SHIFT;
          firstCmd = cmd;
          firstOlinfo = words[w + 3]!;
        }
        const address = join64(words[w]!, words[w + 1]!);
        parts.push(this.#dma.resolve(address, length, `TX packet read (${where})`, this.address));
        total += length;
        if ((cmd & R.TXD_DCMD_EOP) !== 0) {
          complete = true;
          break;
        }
        i = (i + 1) % size;
      }
      if (!complete) break; // the rest of the frame is not there yet: wait for the next TDT write
      const offloaded = ((firstCmd & R.TXD_DCMD_TSE) | (firstOlinfo & (R.TXD_POPTS_IXSM | R.TXD_POPTS_TXSM))) !== 0;
      if (parts.length > 0) {
        if (payLength !== total && !offloaded) {
          throw new DeviceProtocolError(
            `${this.address}: TX queue ${q}: PAYLEN is ${payLength} but the frame's descriptors hold ${total} bytes`,
          );
        }
        if (total < MIN_TX_LENGTH) {
          // Linux pads to 17 bytes ("the minimum packet size for olinfo paylen is 17"): shorter
          // frames are outside what the hardware is specified for. The model drops them.
          this.#violation(`TX queue ${q}: a ${total}-byte frame, below the 17-byte minimum (Linux pads to 17)`);
        } else {
          const ifcs = (cmd & R.TXD_DCMD_IFCS) !== 0;
          let frame: Uint8Array = new Uint8Array(total);
          let offset = 0;
          for (const part of parts) {
            frame.set(part, offset);
            offset += part.length;
          }
          // 7.2.5 / 7.2.4: checksums and segmentation, before padding and the CRC.
          let frames: Uint8Array[] = [frame];
          if (offloaded) {
            const result = this.#offloads.transmit(q, frame, firstCmd, firstOlinfo);
            if (result.violation !== null) this.#violation(result.violation);
            frames = result.frames;
          }
          for (frame of frames) {
            if (ifcs && txpad && frame.length < MIN_FRAME) {
              const padded = new Uint8Array(MIN_FRAME);
              padded.set(frame);
              frame = padded;
            }
            this.#stats.transmitted(frame.length + (ifcs ? 4 : 0));
            sent.push(frame);
          }
        }
      }
      // 7.2.3.5: write DD back into every descriptor of the frame that asked for it (RS).
      for (let j = head; ; j = (j + 1) % size) {
        if ((words[j * 4 + 2]! & R.TXD_DCMD_RS) !== 0) {
          if (relaxedWriteBack && !this.#roWarned) {
            this.#roWarned = true;
            this.#violation(`TX queue ${q} writes DD back with relaxed ordering (DCA_TXCTRL.DESC_WRO_EN set): ` +
              `Linux's ixgbe_start_hw_gen2 clears it`);
          }
          words[j * 4 + 3] = R.TXD_STA_DD;
        }
        done++;
        if (j === i) break;
      }
      head = (i + 1) % size;
    }
    regs.poke32(R.TDH(q), head);
    // A disable that waited for the queue to drain completes now.
    if (this.#txDisabling[q] === 1 && head === tail) {
      this.#txDisabling[q] = 0;
      regs.poke32(R.TXDCTL(q), regs.peek32(R.TXDCTL(q)) & ~R.TXDCTL_ENABLE);
    }
    // Hand the frames on only now, with the queue's state complete: a sink may call the driver.
    for (const frame of sent) {
      this.onTransmit?.(frame, q);
      const peer = this.#peer;
      if (peer !== null) peer.inject(frame);
    }
    return done;
  }
}
