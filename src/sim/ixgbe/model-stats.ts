/**
 * The statistics block of the 82599 model (datasheet 8.2.3.23): clear-on-read counters in the
 * register file, plus the same counts kept for tests, which reading the registers does not clear.
 */
import {
  CRCERRS,
  ERRBC,
  GORCH,
  GORCL,
  GOTCH,
  GOTCL,
  GPRC,
  GPTC,
  ILLERRC,
  MPC,
  QPRDC,
  RFC,
  RJC,
  RLEC,
  ROC,
  RUC,
} from "./model-registers.ts";
import type { SimMmio } from "../sim-mmio.ts";
import { hi32, lo32 } from "../../mem/u64.ts";

/** What the model counted since its last reset; tests compare these with the driver's stats. */
export interface Ixgbe82599Counters {
  /** Frames written to host memory (GPRC). */
  rxPackets: number;
  /** Their length on the wire, CRC included (GORC). */
  rxBytes: number;
  /**
   * Frames dropped for want of a descriptor or with receive disabled: MPC, or QPRDC for a queue
   * with SRRCTL.DROP_EN set (rxNoDescriptor counts that part).
   */
  rxMissed: number;
  /** The part of rxMissed counted in QPRDC: descriptor starvation of a DROP_EN queue. */
  rxNoDescriptor: number;
  /** Frames the address filter (FCTRL, RAL/RAH) refused: counted in no register. */
  rxFiltered: number;
  /** Frames dropped as shorter than 64 or longer than the maximum frame size (RLEC, RUC/ROC). */
  rxLengthErrors: number;
  /** Frames injected while the link was down: they never reached the device and count nowhere. */
  rxLinkDown: number;
  /** Frames sent (GPTC). */
  txPackets: number;
  /** Their length on the wire, CRC included (GOTC). */
  txBytes: number;
}

function zeroCounters(): Ixgbe82599Counters {
  return {
    rxPackets: 0, rxBytes: 0, rxMissed: 0, rxNoDescriptor: 0, rxFiltered: 0, rxLengthErrors: 0, rxLinkDown: 0,
    txPackets: 0, txBytes: 0,
  };
}

/** Plain 32-bit counters: they live in the register file and wrap around. */
const COUNTERS_32 = [
  CRCERRS, ILLERRC, ERRBC, RLEC, GPRC, GPTC, RUC, RFC, ROC, RJC,
  ...Array.from({ length: 8 }, (_, i) => MPC(i)),
  ...Array.from({ length: 16 }, (_, i) => QPRDC(i)),
];

/**
 * A 36-bit octet counter split over a low and a high register. Reading the low half returns it,
 * latches the high half for the next read of the high register and clears the counter; so a
 * driver must read low, then high (as Linux and ixy do).
 */
class OctetCounter {
  #value = 0;
  #latchedHigh = 0;
  constructor(regs: SimMmio, low: number, high: number) {
    regs.onRead(low, () => {
      const v = this.#value % 2 ** 36;
      this.#value = 0;
      this.#latchedHigh = hi32(v);
      return lo32(v);
    });
    regs.onRead(high, () => {
      const v = this.#latchedHigh;
      this.#latchedHigh = 0;
      return v;
    });
  }
  add(n: number): void {
    this.#value += n;
  }
  clear(): void {
    this.#value = 0;
    this.#latchedHigh = 0;
  }
}

export class ModelStatistics {
  readonly counters: Ixgbe82599Counters = zeroCounters();
  readonly #regs: SimMmio;
  readonly #gorc: OctetCounter;
  readonly #gotc: OctetCounter;
  /** GORC/GOTC add every byte this many times (Ixgbe82599ModelOptions.octetScale). */
  readonly #octetScale: number;

  constructor(regs: SimMmio, octetScale = 1) {
    this.#regs = regs;
    this.#octetScale = octetScale;
    for (const reg of COUNTERS_32) {
      // Any read, of any width, returns the counter and clears all of it: the reason drivers
      // must never read these registers byte by byte (docs/performance.md).
      regs.onRead(reg, () => {
        const v = regs.peek32(reg);
        regs.poke32(reg, 0);
        return v;
      });
    }
    this.#gorc = new OctetCounter(regs, GORCL, GORCH);
    this.#gotc = new OctetCounter(regs, GOTCL, GOTCH);
  }

  /** Device reset: every counter back to zero. */
  clear(): void {
    for (const reg of COUNTERS_32) this.#regs.poke32(reg, 0);
    this.#gorc.clear();
    this.#gotc.clear();
    Object.assign(this.counters, zeroCounters()); // in place: tests may hold the object
  }

  received(wireLength: number): void {
    this.#add(GPRC, 1);
    this.#gorc.add(wireLength * this.#octetScale);
    this.counters.rxPackets++;
    this.counters.rxBytes += wireLength;
  }

  /**
   * A frame the packet buffer could not take (receive disabled, buffer full, or a queue without
   * DROP_EN starved). One receive packet buffer in use (no DCB): every miss counts against buffer
   * 0. GPRC counts it too: Linux and FreeBSD subtract MPC from GPRC ("hardware workaround, gprc
   * counts missed packets", ixgbe_update_stats).
   */
  missed(): void {
    this.#add(MPC(0), 1);
    this.#add(GPRC, 1);
    this.counters.rxMissed++;
  }

  /** A frame dropped because queue's ring had no descriptor and SRRCTL.DROP_EN is set: QPRDC (RQSMR = 0: counter 0). */
  noDescriptor(): void {
    this.#add(QPRDC(0), 1);
    this.counters.rxMissed++;
    this.counters.rxNoDescriptor++;
  }

  filtered(): void {
    this.counters.rxFiltered++;
  }

  lengthError(oversize: boolean): void {
    this.#add(RLEC, 1);
    this.#add(oversize ? ROC : RUC, 1);
    this.counters.rxLengthErrors++;
  }

  linkDown(): void {
    this.counters.rxLinkDown++;
  }

  transmitted(wireLength: number): void {
    this.#add(GPTC, 1);
    this.#gotc.add(wireLength * this.#octetScale);
    this.counters.txPackets++;
    this.counters.txBytes += wireLength;
  }

  #add(reg: number, n: number): void {
    this.#regs.poke32(reg, (this.#regs.peek32(reg) + n) >>> 0);
  }
}
