/**
 * The 82599 model's interrupt logic in MSI-X mode (datasheet 7.3): causes, masks, the mapping of
 * receive queues to vectors, auto-clear, auto-mask and moderation, and the MSI-X message itself
 * (SimPciFunction.signal, which delivers nothing while MSI-X is disabled in the function's
 * capability or the vector has no eventfd).
 *
 * - A receive descriptor written back (7.1.6, the model's inject) sets the cause of the vector
 *   that IVAR assigns to its queue (7.3.4: INT_ALLOC with INT_ALLOC_VAL); an entry without
 *   INT_ALLOC_VAL raises nothing. Software sets causes with EICS/EICS_EX too.
 * - Causes live in EICR bits 15:0 (RTxQ: vectors 0-15 in MSI-X mode, 7.3.1.1); EICR clears on
 *   read and where 1 is written.
 * - A vector fires when its cause is set and its EIMS bit is set (7.3.1.2): at the cause, at the
 *   EIMS write that unmasks a pending cause, or when its moderation interval runs out.
 * - Firing (7.3.1.3): the message goes out, the cause bits set in EIAC clear (auto-clear), and with
 *   GPIE.EIAME the vector's EIAM bit clears its EIMS bit (auto-mask: one interrupt per arming).
 * - EITR (7.3.2.1): after a vector fired, the next message waits until ITR_Interval x 2 us have
 *   passed; a cause that comes sooner fires when the interval ends (if still set and unmasked).
 * - Strict: nothing fires unless GPIE.Multiple_MSIX is set (the model implements no INTx/MSI
 *   mode); firing with GPIE.PBA_support clear is a violation (the datasheet asks for it in
 *   MSI-X mode). Vectors 16-63 and the TCP timer are not modelled: an IVAR entry naming a vector
 *   above 15 is refused when the queue's cause is raised (NotSupportedError).
 *
 * Register offsets and bits are the model's own (model-registers.ts).
 */
import * as R from "./model-registers.ts";
import { NotSupportedError } from "../../errors.ts";
import type { SimMmio } from "../sim-mmio.ts";

/** Vectors whose cause the model keeps: EICR's RTxQ bits. */
export const MODEL_QUEUE_VECTORS = 16;

export interface InterruptSink {
  /** Sends MSI-X message `vector` (SimPciFunction.signal); false: it went nowhere (MSI-X off). */
  signal(vector: number): boolean;
  /** Records what a correct driver would not do. */
  violation(message: string): void;
}

export class ModelInterrupts {
  readonly #regs: SimMmio;
  readonly #sink: InterruptSink;
  readonly #address: string;
  /** When each vector last fired (performance.now()), for EITR; -Infinity: never. */
  readonly #lastFired = new Float64Array(MODEL_QUEUE_VECTORS).fill(Number.NEGATIVE_INFINITY);
  /** A moderation timer per vector, pending while a cause waits for the interval to end. */
  readonly #timers: (ReturnType<typeof setTimeout> | null)[] = new Array(MODEL_QUEUE_VECTORS).fill(null);
  /** MSI-X messages delivered per vector (to an enabled vector's eventfd) since the last reset. */
  readonly fired = new Float64Array(MODEL_QUEUE_VECTORS);
  /** The bits 31:16 of EIMS_EX(0)/EIAM_EX(0) and all of EIMS_EX(1)/EIAM_EX(1): stored, unused. */
  readonly #exStore = new Uint32Array(4);

  constructor(regs: SimMmio, address: string, sink: InterruptSink) {
    this.#regs = regs;
    this.#address = address;
    this.#sink = sink;
    this.#install();
  }

  /** After a device reset: every register is 0 again (regs.clear()), and no timer is left. */
  reset(): void {
    for (let v = 0; v < MODEL_QUEUE_VECTORS; v++) {
      const t = this.#timers[v];
      if (t !== null && t !== undefined) clearTimeout(t);
      this.#timers[v] = null;
    }
    this.#lastFired.fill(Number.NEGATIVE_INFINITY);
    this.fired.fill(0);
    this.#exStore.fill(0);
  }

  /** 7.3.4: a receive descriptor of `queue` was written back: the cause of its IVAR vector. */
  rxWriteBack(queue: number): void {
    const entry = (this.#regs.peek32(R.IVAR(queue >>> 1)) >>> ((queue & 1) * 16)) & 0xff;
    if ((entry & R.IVAR_INT_ALLOC_VAL) === 0) return;
    const vector = entry & R.IVAR_INT_ALLOC_MASK;
    if (vector >= MODEL_QUEUE_VECTORS) {
      throw new NotSupportedError(`${this.#address}: IVAR maps RX queue ${queue} to MSI-X vector ${vector}; the model implements vectors 0-15`);
    }
    this.#setCause(1 << vector);
  }

  #setCause(bits: number): void {
    const regs = this.#regs;
    regs.poke32(R.EICR, (regs.peek32(R.EICR) | bits) >>> 0);
    for (let v = 0; v < MODEL_QUEUE_VECTORS; v++) if ((bits & (1 << v)) !== 0) this.#evaluate(v);
  }

  /** Fires vector v if its cause is set, it is unmasked, MSI-X mode is on and its interval is over. */
  #evaluate(v: number): void {
    const regs = this.#regs;
    const bit = 1 << v;
    if ((regs.peek32(R.EICR) & bit) === 0 || (regs.peek32(R.EIMS) & bit) === 0) return;
    const gpie = regs.peek32(R.GPIE);
    if ((gpie & R.GPIE_MULTIPLE_MSIX) === 0) return; // INTx/MSI mode: not modelled, nothing is sent
    const intervalMs = (((regs.peek32(R.EITR(v)) & R.EITR_ITR_INTERVAL_MASK) >>> R.EITR_ITR_INTERVAL_SHIFT) * R.EITR_INTERVAL_UNIT_US) / 1000;
    const now = performance.now();
    const due = this.#lastFired[v]! + intervalMs;
    if (now < due) {
      // 7.3.2.1: moderation holds the message until the interval is over.
      if (this.#timers[v] === null) {
        const t = setTimeout(() => {
          this.#timers[v] = null;
          this.#evaluate(v);
        }, due - now);
        t.unref?.();
        this.#timers[v] = t;
      }
      return;
    }
    if ((gpie & R.GPIE_PBA_SUPPORT) === 0) {
      this.#sink.violation("an MSI-X interrupt with GPIE.PBA_support clear: the datasheet asks for it to be set in MSI-X mode (8.2.3.5.18)");
    }
    this.#lastFired[v] = now;
    // 7.3.1.3: auto-clear of the cause (EIAC), auto-mask of the vector (EIAM with GPIE.EIAME).
    if ((regs.peek32(R.EIAC) & bit) !== 0) regs.poke32(R.EICR, (regs.peek32(R.EICR) & ~bit) >>> 0);
    if ((gpie & R.GPIE_EIAME) !== 0 && (regs.peek32(R.EIAM) & bit) !== 0) regs.poke32(R.EIMS, (regs.peek32(R.EIMS) & ~bit) >>> 0);
    if (this.#sink.signal(v)) this.fired[v]!++;
  }

  /** Sets EIMS bits; newly unmasked vectors with a pending cause fire (7.3.1.2). */
  #unmask(bits: number): void {
    const regs = this.#regs;
    const before = regs.peek32(R.EIMS);
    regs.poke32(R.EIMS, (before | bits) >>> 0);
    const raised = bits & ~before & R.EICR_RTXQ_MASK;
    for (let v = 0; v < MODEL_QUEUE_VECTORS; v++) if ((raised & (1 << v)) !== 0) this.#evaluate(v);
  }

  #mask(bits: number): void {
    this.#regs.poke32(R.EIMS, (this.#regs.peek32(R.EIMS) & ~bits) >>> 0);
  }

  #install(): void {
    const regs = this.#regs;
    const low = R.EICR_RTXQ_MASK;
    // 8.2.3.5.1 EICR: clear on read; writing 1 clears a bit.
    regs.onRead(R.EICR, () => {
      const v = regs.peek32(R.EICR);
      regs.poke32(R.EICR, 0);
      return v;
    });
    regs.onWrite(R.EICR, (value) => regs.poke32(R.EICR, (regs.peek32(R.EICR) & ~value) >>> 0));
    // 8.2.3.5.2 EICS: software sets causes (write-only).
    regs.onWrite(R.EICS, (value) => this.#setCause(value >>> 0));
    regs.onRead(R.EICS, () => 0);
    // 8.2.3.5.3 / 8.2.3.5.4 EIMS, EIMC.
    regs.onWrite(R.EIMS, (value) => this.#unmask(value >>> 0));
    regs.onWrite(R.EIMC, (value) => this.#mask(value >>> 0));
    regs.onRead(R.EIMC, () => 0);
    // The extended registers of vectors 0-63: bits 15:0 of the first are the RTxQ bits above.
    regs.onWrite(R.EICS_EX(0), (value) => this.#setCause(value & low));
    regs.onWrite(R.EICS_EX(1), () => {});
    regs.onRead(R.EICS_EX(0), () => 0);
    regs.onRead(R.EICS_EX(1), () => 0);
    regs.onWrite(R.EIMS_EX(0), (value) => {
      this.#exStore[0] = (this.#exStore[0]! | (value & ~low)) >>> 0;
      this.#unmask(value & low);
    });
    regs.onWrite(R.EIMS_EX(1), (value) => {
      this.#exStore[1] = (this.#exStore[1]! | value) >>> 0;
    });
    regs.onWrite(R.EIMC_EX(0), (value) => {
      this.#exStore[0] = (this.#exStore[0]! & ~(value & ~low)) >>> 0;
      this.#mask(value & low);
    });
    regs.onWrite(R.EIMC_EX(1), (value) => {
      this.#exStore[1] = (this.#exStore[1]! & ~value) >>> 0;
    });
    regs.onRead(R.EIMS_EX(0), () => ((regs.peek32(R.EIMS) & low) | this.#exStore[0]!) >>> 0);
    regs.onRead(R.EIMS_EX(1), () => this.#exStore[1]!);
    regs.onRead(R.EIMC_EX(0), () => 0);
    regs.onRead(R.EIMC_EX(1), () => 0);
    // EIAM_EX(0) bits 15:0 are EIAM's.
    regs.onWrite(R.EIAM_EX(0), (value) => {
      this.#exStore[2] = (value & ~low) >>> 0;
      regs.poke32(R.EIAM, ((regs.peek32(R.EIAM) & ~low) | (value & low)) >>> 0);
    });
    regs.onRead(R.EIAM_EX(0), () => ((regs.peek32(R.EIAM) & low) | this.#exStore[2]!) >>> 0);
    regs.onWrite(R.EIAM_EX(1), (value) => {
      this.#exStore[3] = value >>> 0;
    });
    regs.onRead(R.EIAM_EX(1), () => this.#exStore[3]!);
    // EITR: ITR_Interval and CNT_WDIS are stored; a write may end a wait early only by a later
    // evaluation (the counter itself is not modelled), so a shorter interval takes effect at the
    // next cause or unmask.
  }
}
