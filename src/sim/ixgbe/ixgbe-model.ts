/**
 * A behavioural model of an Intel 82599 port: the registers a driver programs, with their reset
 * values and side effects, and the receive and transmit DMA engines, built on SimMmio (BAR0) and
 * SimDma (host memory, behind a pretend IOMMU). It is what the ixgbe driver runs against in tests
 * and in the examples' --sim mode, and it checks what hardware would not forgive: a DMA to an
 * address outside every allocation throws DmaFaultError, a tail pointer beyond the ring or a
 * malformed transmit descriptor throws DeviceProtocolError.
 *
 * Modelled (datasheet sections in brackets):
 * - CTRL.RST / CTRL.LRST reset the whole model and self-clear (4.6.3.2); EEC.AUTO_RD and
 *   RDRXCTL.DMAIDONE read 1 once the reset is done (after options.resetDelayMs, default 0).
 * - The link comes up at 10 Gbit/s (LINKS) linkUpDelayMs after auto-negotiation is restarted
 *   through AUTOC.RESTART_AN (4.6.4); setLink(false) pulls the cable.
 * - Receive (7.1): inject() writes a frame into the buffers of the descriptors between RDH and
 *   RDT of the queue, splits it over several descriptors when it is larger than
 *   SRRCTL.BSIZEPACKET, writes the advanced write-back format back (DD, EOP, length) and moves
 *   RDH. With no free descriptor, or receive disabled, the frame is missed (MPC). Frames shorter
 *   than 64 bytes or longer than MAXFRS (jumbo off: 1518, +4 with a VLAN tag) count as length
 *   errors. The CRC is stripped or appended according to HLREG0.RXCRCSTRP.
 * - Transmit (7.2): a TDT write makes the model read the descriptors from TDH to TDT, DMA-read
 *   the frames, pad short ones (HLREG0.TXPADEN), hand them to onTransmit and to a connected
 *   port, write DD back where RS is set and move TDH — synchronously, inside the write. Transmit
 *   waits while DMATXCTL.TE or TXDCTL.ENABLE is clear or the link is down, and resumes at the
 *   next doorbell (TDT, TXDCTL or DMATXCTL write) or setLink(true).
 * - Statistics count and clear on read (see model-stats.ts); interrupts masks are kept but no
 *   interrupt is ever raised.
 * Not modelled: flow control, filtering by address (the model accepts every frame, as in
 * promiscuous mode), RSS (inject() takes the queue), DCB, offloads, and frames held in the
 * packet buffer when SRRCTL.DROP_EN is clear (they are dropped as if it were set).
 *
 * Register offsets and bits come from model-registers.ts, the model's own copy written from the
 * datasheet, never from the driver's ixgbe_type.ts (see there why).
 */
import {
  AUTOC,
  AUTOC2,
  AUTOC2_10G_PMA_PMD_SERIAL_SFI,
  AUTOC_LMS_10G_SERIAL,
  AUTOC_RESTART_AN,
  CTRL,
  CTRL_RESET_BITS,
  DCA_RXCTRL,
  DCA_RXCTRL_ALIAS,
  DCA_RXCTRL_RESET,
  DESCRIPTOR_SIZE,
  DMATXCTL,
  DMATXCTL_TE,
  DTXMXSZRQ,
  DTXMXSZRQ_RESET,
  EEC,
  EEC_AUTO_RD,
  EEC_EE_PRES,
  EICR,
  EIMC,
  EIMS,
  HLREG0,
  HLREG0_JUMBOEN,
  HLREG0_RESET,
  HLREG0_RXCRCSTRP,
  HLREG0_TXPADEN,
  LINKS,
  LINKS_LINK_SPEED_10G,
  LINKS_LINK_UP,
  MAXFRS,
  MAXFRS_MFS_SHIFT,
  MAXFRS_RESET,
  RAH,
  RAH_ALIAS,
  RAH_AV,
  RAL,
  RAL_ALIAS,
  RDBAH,
  RDBAL,
  RDH,
  RDLEN,
  RDRXCTL,
  RDRXCTL_DMAIDONE,
  RDRXCTL_RESET,
  RDT,
  RXCTRL,
  RXCTRL_RXEN,
  RXDCTL,
  RXDCTL_ENABLE,
  RXD_STATUS_DD,
  RXD_STATUS_EOP,
  RXPBSIZE,
  RXPBSIZE_RESET,
  SRRCTL,
  SRRCTL_ALIAS,
  SRRCTL_BSIZEPACKET_MASK,
  SRRCTL_BSIZEPACKET_SHIFT,
  SRRCTL_DESCTYPE_ADV_ONEBUF,
  SRRCTL_DESCTYPE_MASK,
  SRRCTL_RESET,
  TDBAH,
  TDBAL,
  TDH,
  TDLEN,
  TDT,
  TXDCTL,
  TXDCTL_ENABLE,
  TXD_DCMD_DEXT,
  TXD_DCMD_EOP,
  TXD_DCMD_IFCS,
  TXD_DCMD_RS,
  TXD_DTALEN_MASK,
  TXD_DTYP_CONTEXT,
  TXD_DTYP_DATA,
  TXD_DTYP_MASK,
  TXD_PAYLEN_SHIFT,
  TXD_STA_DD,
  TXPBSIZE,
  TXPBSIZE_RESET,
  TXPBTHRESH,
  TXPBTHRESH0_RESET,
} from "./model-registers.ts";
import { DeviceProtocolError, DmaFaultError, NotSupportedError } from "../../errors.ts";
import { SimDma } from "../sim-dma.ts";
import { SimMmio } from "../sim-mmio.ts";
import { SimPciFunction } from "../sim-pci.ts";
import { withFcs } from "./crc32.ts";
import { ModelStatistics, type Ixgbe82599Counters } from "./model-stats.ts";

export type { Ixgbe82599Counters } from "./model-stats.ts";

export interface Ixgbe82599ModelOptions {
  /** Host memory the model reaches by DMA; the driver must allocate from the same SimDma. */
  readonly dma: SimDma;
  /** PCI address (default "sim:ixgbe<n>"). */
  readonly address?: string;
  /** PCI device id (default 0x10FB, 82599ES SFP+ as on an X520). */
  readonly deviceId?: number;
  /** MAC address the "EEPROM" loads into RAL(0)/RAH(0) (default 02:00:00:82:59:<n>). */
  readonly mac?: Uint8Array;
  /** Time from auto-negotiation restart (or setLink(true)) to link up, in ms (default 0). */
  readonly linkUpDelayMs?: number;
  /** Whether a cable and a link partner are there (default true). */
  readonly linkUp?: boolean;
  /** Time a reset takes: CTRL.RST reads 1 and EEC.AUTO_RD / DMAIDONE read 0 until then (default 0). */
  readonly resetDelayMs?: number;
}

export const IXGBE_MODEL_QUEUES = 128;
/** BAR0 of the 82599: 128 KB of registers. */
export const IXGBE_MODEL_BAR0_SIZE = 0x20000;

const TWO_POW_32 = 0x1_0000_0000;
const MIN_FRAME = 60; // without CRC: 64 on the wire
const VLAN_TPID = 0x8100;
/** Receive and transmit packet buffers, one per traffic class (RXPBSIZE/TXPBSIZE 0-7). */
const PACKET_BUFFERS = 8;

/**
 * The 82599 also decodes the 82598's addresses of SRRCTL, DCA_RXCTRL and RAL/RAH for queues
 * (addresses) 0-15; Linux and the driver use them. Each address maps to its twin.
 */
const ALIAS_OF = new Map<number, number>();
for (const [register, alias] of [[SRRCTL, SRRCTL_ALIAS], [DCA_RXCTRL, DCA_RXCTRL_ALIAS], [RAL, RAL_ALIAS], [RAH, RAH_ALIAS]] as const) {
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

let instances = 0;

export class Ixgbe82599Model {
  readonly pci: SimPciFunction;
  /** BAR0, the register file. Tests may peek and poke. */
  readonly regs: SimMmio;
  readonly address: string;
  /** Receives every frame the port puts on the wire, with the transmit queue it came from. */
  onTransmit: ((frame: Uint8Array, queue: number) => void) | null = null;
  /**
   * Picks the receive queue for a frame arriving from a connected port (a stand-in for RSS and
   * flow director). Default: queue 0.
   */
  rxQueueSelect: ((frame: Uint8Array) => number) | null = null;

  readonly #dma: SimDma;
  readonly #mac: Uint8Array;
  readonly #stats: ModelStatistics;
  readonly #linkUpDelayMs: number;
  readonly #resetDelayMs: number;
  #cablePlugged: boolean;
  #cableChangedAt = 0;
  /** When auto-negotiation was last restarted; NaN after a reset until it is. */
  #anRestartedAt = Number.NaN;
  #resetDoneAt = 0;
  #peer: Ixgbe82599Model | null = null;
  readonly #rxRings: RingWindow[] = [];
  readonly #txRings: RingWindow[] = [];
  #resets = 0;

  constructor(options: Ixgbe82599ModelOptions) {
    if (!(options.dma instanceof SimDma)) throw new TypeError("Ixgbe82599Model needs { dma: SimDma }");
    const n = instances++;
    this.address = options.address ?? `sim:ixgbe${n}`;
    this.#dma = options.dma;
    this.#mac = options.mac ? Uint8Array.from(options.mac) : Uint8Array.of(0x02, 0x00, 0x00, 0x82, 0x59, n & 0xff);
    if (this.#mac.length !== 6) throw new RangeError(`${this.address}: a MAC address has 6 bytes, got ${this.#mac.length}`);
    this.#linkUpDelayMs = options.linkUpDelayMs ?? 0;
    this.#resetDelayMs = options.resetDelayMs ?? 0;
    this.#cablePlugged = options.linkUp ?? true;
    this.regs = new SimMmio(`${this.address} BAR0`, IXGBE_MODEL_BAR0_SIZE);
    this.pci = new SimPciFunction({
      address: this.address,
      vendorId: 0x8086,
      deviceId: options.deviceId ?? 0x10fb,
      bars: [this.regs],
    });
    this.pci.onReset = () => this.#reset();
    for (let q = 0; q < IXGBE_MODEL_QUEUES; q++) {
      this.#rxRings.push(new RingWindow());
      this.#txRings.push(new RingWindow());
    }
    this.#stats = new ModelStatistics(this.regs);
    this.#installHooks();
    this.#reset();
    this.#resets = 0;
  }

  /** What the model counted since its last reset. */
  get counters(): Readonly<Ixgbe82599Counters> {
    return this.#stats.counters;
  }

  /** Device resets (CTRL.RST, CTRL.LRST or function-level) since construction. */
  get resets(): number {
    return this.#resets;
  }

  /** Whether LINKS reports the link up right now. */
  get linkUp(): boolean {
    if (!this.#cablePlugged || Number.isNaN(this.#anRestartedAt)) return false;
    return performance.now() >= Math.max(this.#anRestartedAt, this.#cableChangedAt) + this.#linkUpDelayMs;
  }

  /** Plugs (true) or pulls (false) the cable. The link comes back linkUpDelayMs after plugging. */
  setLink(up: boolean): void {
    this.#cablePlugged = up;
    this.#cableChangedAt = performance.now();
    if (up) this.#kickAllTx();
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
   * A frame arrives from the wire (without its CRC) for receive queue `queue`. Returns true when
   * the model wrote it to host memory, false when it was dropped: missed for want of a
   * descriptor or with receive disabled (counted in MPC), too short or too long (RLEC), or the
   * link is down. Throws DmaFaultError when a descriptor or buffer address is not mapped.
   */
  inject(frame: Uint8Array, queue = 0): boolean {
    if (!(frame instanceof Uint8Array)) throw new TypeError(`${this.address}: inject() needs a Uint8Array frame`);
    if (!Number.isInteger(queue) || queue < 0 || queue >= IXGBE_MODEL_QUEUES) {
      throw new RangeError(`${this.address}: receive queue must be an integer from 0 to ${IXGBE_MODEL_QUEUES - 1}, got ${queue}`);
    }
    const regs = this.regs;
    if (!this.linkUp) {
      this.#stats.linkDown();
      return false;
    }
    // 8.2.3.22.13 MAXFRS: frame size limits count the CRC; a VLAN tag may add 4 bytes.
    const hlreg0 = regs.peek32(HLREG0);
    const tagged = frame.length >= 14 && ((frame[12]! << 8) | frame[13]!) === VLAN_TPID;
    const maxFrame = ((hlreg0 & HLREG0_JUMBOEN) !== 0 ? regs.peek32(MAXFRS) >>> MAXFRS_MFS_SHIFT : 1518) + (tagged ? 4 : 0);
    if (frame.length < MIN_FRAME || frame.length + 4 > maxFrame) {
      this.#stats.lengthError(frame.length >= MIN_FRAME);
      return false;
    }
    if ((regs.peek32(RXCTRL) & RXCTRL_RXEN) === 0 || (regs.peek32(RXDCTL(queue)) & RXDCTL_ENABLE) === 0 ||
      !this.pci.busMasterEnabled) {
      this.#stats.missed();
      return false;
    }
    const srrctl = regs.peek32(SRRCTL(queue));
    if ((srrctl & SRRCTL_DESCTYPE_MASK) !== SRRCTL_DESCTYPE_ADV_ONEBUF) {
      throw new NotSupportedError(
        `${this.address}: the model implements only advanced one-buffer receive descriptors; SRRCTL(${queue}) = 0x${srrctl.toString(16)}`,
      );
    }
    const bufferSize = (srrctl & SRRCTL_BSIZEPACKET_MASK) << SRRCTL_BSIZEPACKET_SHIFT;
    if (bufferSize === 0) throw new DeviceProtocolError(`${this.address}: SRRCTL(${queue}).BSIZEPACKET is 0`);

    const ring = this.#ring(this.#rxRings[queue]!, RDBAL(queue), RDBAH(queue), RDLEN(queue), `RX queue ${queue}`);
    const size = ring.length / DESCRIPTOR_SIZE;
    let head = regs.peek32(RDH(queue));
    const tail = regs.peek32(RDT(queue));
    if (head >= size) throw new DeviceProtocolError(`${this.address}: RDH(${queue}) = ${head} is beyond the ${size}-descriptor ring`);
    // 7.1.9: the model owns the descriptors from RDH up to RDT (exclusive).
    const data = (hlreg0 & HLREG0_RXCRCSTRP) !== 0 ? frame : withFcs(frame);
    const parts = Math.ceil(data.length / bufferSize);
    if ((tail - head + size) % size < parts) {
      this.#stats.missed();
      return false;
    }
    const words = ring.words;
    for (let part = 0, offset = 0; part < parts; part++) {
      const w = head * 4;
      const length = Math.min(bufferSize, data.length - offset);
      const address = words[w]! + words[w + 1]! * TWO_POW_32;
      this.#dma.resolve(address, length, `RX packet write (queue ${queue}, descriptor ${head})`, this.address)
        .set(data.subarray(offset, offset + length));
      offset += length;
      // 7.1.6.2 write-back: no packet type or RSS hash; status, then length and no VLAN tag.
      words[w] = 0;
      words[w + 1] = 0;
      words[w + 3] = length;
      words[w + 2] = RXD_STATUS_DD | (part === parts - 1 ? RXD_STATUS_EOP : 0);
      head = (head + 1) % size;
    }
    regs.poke32(RDH(queue), head);
    this.#stats.received(frame.length + 4);
    return true;
  }

  // ---- registers ----

  #installHooks(): void {
    const regs = this.regs;
    const now = () => performance.now();
    const resetting = () => now() < this.#resetDoneAt;

    // 8.2.3.1.1 CTRL: RST and LRST reset the device and read 1 until the reset is done.
    regs.onWrite(CTRL, (value) => {
      if ((value & CTRL_RESET_BITS) !== 0) this.#reset();
      regs.poke32(CTRL, value & ~CTRL_RESET_BITS);
    });
    regs.onRead(CTRL, () => regs.peek32(CTRL) | (resetting() ? CTRL_RESET_BITS : 0));
    // 8.2.3.2.1 EEC: auto-read of the EEPROM is done once the reset is.
    regs.onRead(EEC, () => regs.peek32(EEC) | (resetting() ? 0 : EEC_AUTO_RD));
    // 8.2.3.8.8 RDRXCTL: DMAIDONE is read-only and set once the DMA init cycle is done.
    regs.onRead(RDRXCTL, () => regs.peek32(RDRXCTL) | (resetting() ? 0 : RDRXCTL_DMAIDONE));
    regs.onWrite(RDRXCTL, (value) => regs.poke32(RDRXCTL, value & ~RDRXCTL_DMAIDONE));

    // 8.2.3.5 interrupts: EIMS sets mask bits, EIMC clears them, EICR clears on read.
    regs.onWrite(EIMS, (value) => regs.poke32(EIMS, regs.peek32(EIMS) | value));
    regs.onWrite(EIMC, (value) => regs.poke32(EIMS, regs.peek32(EIMS) & ~value));
    regs.onRead(EIMC, () => 0); // write-only
    regs.onRead(EICR, () => {
      const v = regs.peek32(EICR);
      regs.poke32(EICR, 0);
      return v;
    });

    // 4.6.4 / 8.2.3.22.19 AUTOC: RESTART_AN self-clears and (re)starts link establishment.
    regs.onWrite(AUTOC, (value) => {
      if ((value & AUTOC_RESTART_AN) !== 0) this.#anRestartedAt = now();
      regs.poke32(AUTOC, value & ~AUTOC_RESTART_AN);
    });
    // 8.2.3.22.20 LINKS: read-only link state.
    regs.onRead(LINKS, () => (this.linkUp ? LINKS_LINK_UP | LINKS_LINK_SPEED_10G : 0));
    regs.onWrite(LINKS, () => {});

    // SRRCTL, DCA_RXCTRL and RAL/RAH 0-15 answer at two addresses: writing either changes both.
    for (const offset of ALIAS_OF.keys()) regs.onWrite(offset, (value, _offset, width) => this.#store(offset, value, width));

    // Transmit engine triggers: the tail doorbell, and anything that may unblock a queue.
    regs.onWrite(DMATXCTL, (value) => {
      regs.poke32(DMATXCTL, value);
      this.#kickAllTx();
    });
    for (let q = 0; q < IXGBE_MODEL_QUEUES; q++) {
      regs.onWrite(TDT(q), (value) => {
        regs.poke32(TDT(q), value);
        this.#transmit(q);
      });
      regs.onWrite(TXDCTL(q), (value) => {
        regs.poke32(TXDCTL(q), value);
        this.#transmit(q);
      });
      regs.onWrite(RDT(q), (value) => {
        const size = regs.peek32(RDLEN(q)) / DESCRIPTOR_SIZE;
        if (size > 0 && value >= size) {
          throw new DeviceProtocolError(`${this.address}: RDT(${q}) = ${value} written, beyond the ${size}-descriptor ring`);
        }
        regs.poke32(RDT(q), value);
      });
    }
  }

  /** Global reset: every register to its reset value, every engine and counter to zero. */
  #reset(): void {
    const regs = this.regs;
    regs.clear();
    this.#resets++;
    this.#resetDoneAt = performance.now() + this.#resetDelayMs;
    this.#anRestartedAt = Number.NaN;
    this.#stats.clear();
    for (const ring of this.#rxRings) ring.base = -1;
    for (const ring of this.#txRings) ring.base = -1;
    // Reset values (8.2.3), as far as they are modelled; everything else is 0.
    regs.poke32(EEC, EEC_EE_PRES);
    regs.poke32(RDRXCTL, RDRXCTL_RESET);
    regs.poke32(HLREG0, HLREG0_RESET);
    regs.poke32(MAXFRS, MAXFRS_RESET);
    // What the EEPROM of an X520 loads: 10 Gbit/s serial link, SFI.
    regs.poke32(AUTOC, AUTOC_LMS_10G_SERIAL);
    regs.poke32(AUTOC2, AUTOC2_10G_PMA_PMD_SERIAL_SFI);
    for (let i = 0; i < PACKET_BUFFERS; i++) {
      regs.poke32(RXPBSIZE(i), RXPBSIZE_RESET);
      regs.poke32(TXPBSIZE(i), TXPBSIZE_RESET);
    }
    regs.poke32(TXPBTHRESH(0), TXPBTHRESH0_RESET);
    regs.poke32(DTXMXSZRQ, DTXMXSZRQ_RESET);
    for (let q = 0; q < IXGBE_MODEL_QUEUES; q++) {
      this.#store(SRRCTL(q), SRRCTL_RESET);
      this.#store(DCA_RXCTRL(q), DCA_RXCTRL_RESET);
    }
    const mac = this.#mac;
    this.#store(RAL(0), (mac[0]! | (mac[1]! << 8) | (mac[2]! << 16) | (mac[3]! << 24)) >>> 0);
    this.#store(RAH(0), (mac[4]! | (mac[5]! << 8) | RAH_AV) >>> 0);
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
    const base = (this.regs.peek32(bal) & ~0x7f) + this.regs.peek32(bah) * TWO_POW_32;
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
      if (this.regs.peek32(TDT(q)) !== this.regs.peek32(TDH(q))) this.#transmit(q);
    }
  }

  /** 7.2: sends what lies between TDH and TDT of queue q, then hands the frames on. */
  #transmit(q: number): void {
    const regs = this.regs;
    if ((regs.peek32(DMATXCTL) & DMATXCTL_TE) === 0 || (regs.peek32(TXDCTL(q)) & TXDCTL_ENABLE) === 0 ||
      !this.linkUp || !this.pci.busMasterEnabled) return;
    let head = regs.peek32(TDH(q));
    const tail = regs.peek32(TDT(q));
    if (head === tail) return;
    const ring = this.#ring(this.#txRings[q]!, TDBAL(q), TDBAH(q), TDLEN(q), `TX queue ${q}`);
    const size = ring.length / DESCRIPTOR_SIZE;
    if (tail >= size || head >= size) {
      throw new DeviceProtocolError(`${this.address}: TDH(${q}) = ${head} / TDT(${q}) = ${tail} beyond the ${size}-descriptor ring`);
    }
    const words = ring.words;
    const sent: Uint8Array[] = [];
    const txpad = (regs.peek32(HLREG0) & HLREG0_TXPADEN) !== 0;
    while (head !== tail) {
      // Gather one frame: data descriptors up to the one with EOP.
      const parts: Uint8Array[] = [];
      let i = head;
      let total = 0;
      let payLength = 0;
      let cmd = 0;
      let complete = false;
      while (i !== tail) {
        const w = i * 4;
        cmd = words[w + 2]!;
        const where = `TX queue ${q} descriptor ${i}`;
        if ((cmd & TXD_DCMD_DEXT) === 0) {
          throw new DeviceProtocolError(`${this.address}: ${where} is a legacy descriptor; the model implements advanced descriptors only`);
        }
        const type = cmd & TXD_DTYP_MASK;
        if (type === TXD_DTYP_CONTEXT && parts.length === 0) {
          complete = true; // a context descriptor carries offload settings only, no data
          break;
        }
        if (type !== TXD_DTYP_DATA) {
          throw new DeviceProtocolError(`${this.address}: ${where} has descriptor type 0x${(type >>> 20).toString(16)}`);
        }
        const length = cmd & TXD_DTALEN_MASK;
        if (length === 0) throw new DeviceProtocolError(`${this.address}: ${where} has a data length of 0`);
        if (parts.length === 0) payLength = words[w + 3]! >>> TXD_PAYLEN_SHIFT;
        const address = words[w]! + words[w + 1]! * TWO_POW_32;
        parts.push(this.#dma.resolve(address, length, `TX packet read (${where})`, this.address));
        total += length;
        if ((cmd & TXD_DCMD_EOP) !== 0) {
          complete = true;
          break;
        }
        i = (i + 1) % size;
      }
      if (!complete) break; // the rest of the frame is not there yet: wait for the next TDT write
      if (parts.length > 0) {
        if (payLength !== total) {
          throw new DeviceProtocolError(
            `${this.address}: TX queue ${q}: PAYLEN is ${payLength} but the frame's descriptors hold ${total} bytes`,
          );
        }
        const ifcs = (cmd & TXD_DCMD_IFCS) !== 0;
        const frame = new Uint8Array(ifcs && txpad ? Math.max(total, MIN_FRAME) : total);
        let offset = 0;
        for (const part of parts) {
          frame.set(part, offset);
          offset += part.length;
        }
        this.#stats.transmitted(frame.length + (ifcs ? 4 : 0));
        sent.push(frame);
      }
      // 7.2.3.5: write DD back into every descriptor of the frame that asked for it (RS).
      for (let j = head; ; j = (j + 1) % size) {
        if ((words[j * 4 + 2]! & TXD_DCMD_RS) !== 0) words[j * 4 + 3] = TXD_STA_DD;
        if (j === i) break;
      }
      head = (i + 1) % size;
    }
    regs.poke32(TDH(q), head);
    // Hand the frames on only now, with the queue's state complete: a sink may call the driver.
    for (const frame of sent) {
      this.onTransmit?.(frame, q);
      const peer = this.#peer;
      if (peer !== null) peer.inject(frame, peer.rxQueueSelect?.(frame) ?? 0);
    }
  }
}
