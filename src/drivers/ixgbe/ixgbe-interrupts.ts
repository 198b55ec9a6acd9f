/**
 * MSI-X interrupts of the 82599 for waitForRx (DeviceOptions.interrupts; docs/ixgbe-interrupts.md).
 *
 * Setup (82599 datasheet 7.3; Linux's ixgbe_configure_msix and ixgbe_setup_gpie, in that order):
 * - MSI-X on with one vector per receive queue plus one for the other causes (link status and
 *   the rest), each delivered as an eventfd by VFIO (or the model's SimPciFunction).
 * - GPIE (8.2.3.5.18): Multiple_MSIX (MSI-X mode: causes go to vectors through IVAR),
 *   PBA_support (required in MSI-X mode), EIAME (auto-mask applies in MSI-X mode), OCD.
 * - IVAR (7.3.4): RX queue q -> vector q, INT_ALLOC_VAL set; IVAR_MISC: other causes -> the last
 *   vector. TX queues raise nothing (their entries stay invalid): transmit completion is polled.
 * - EITR (7.3.2.1): each queue vector's moderation interval (IXGBE_DEFAULT_ITR_US).
 * - EIAC (7.3.1.3): a queue vector's cause clears when its message is sent (auto-clear), and
 *   EIAM_EX: its EIMS bit too (auto-mask), so that one arming gives at most one interrupt. The
 *   other-causes vector is neither (Linux: "do not auto-clear other causes").
 * - Every vector stays masked (EIMC): a queue's interrupt is armed only while a wait sleeps on it.
 *
 * One wait (waitForRx), in the order that loses no frame:
 * 1. take back a stale eventfd count (an interrupt that fired after the last wait was over);
 * 2. clear the queue's cause in EICR (write 1): a write-back of a frame the caller already took
 *    must not end the sleep at once;
 * 3. arm: EIMS_EX(0) bit q. A frame written back between 2 and 3 left its cause set, and the
 *    unmask fires it at once (7.3.1.2);
 * 4. re-check the ring: the DD bit of the next descriptor. A frame written back before 2 had its
 *    cause cleared by 2: only this look finds it (the lost wake-up of a driver that sleeps
 *    without it). Found: disarm and return true at once;
 * 5. sleep on the eventfd (src/irq: never blocks the event loop), bounded by the timeout;
 * 6. disarm (EIMC_EX(0) bit q): after an interrupt auto-mask did it already; after a timeout the
 *    vector must not stay armed.
 */
import { NotSupportedError } from "../../errors.ts";
import type { Mmio } from "../../pci/mmio.ts";
import type { PciFunction } from "../../pci/pci-function.ts";
import { setReg32 } from "../../pci/regs.ts";
import {
  IXGBE_EIAC,
  IXGBE_EIAM_EX,
  IXGBE_EICR,
  IXGBE_EIMC,
  IXGBE_EIMC_EX,
  IXGBE_EIMS_EX,
  IXGBE_EITR,
  IXGBE_EITR_ITR_INT_MASK,
  IXGBE_GPIE,
  IXGBE_GPIE_EIAME,
  IXGBE_GPIE_MSIX_MODE,
  IXGBE_GPIE_OCD,
  IXGBE_GPIE_PBA_SUPPORT,
  IXGBE_IRQ_CLEAR_MASK,
  IXGBE_IVAR,
  IXGBE_IVAR_ALLOC_VAL,
  IXGBE_IVAR_MISC,
} from "./ixgbe_type.ts";
import { InterruptWait } from "../../irq/interrupt-wait.ts";
import { eventfdRead } from "../../sys/eventfd.ts";

/**
 * Queue vectors: EICR's RTxQ bits 15:0 carry the causes of vectors 0-15, and the 82599 spreads
 * flows (RSS) over at most 16 queues; one more vector takes the other causes.
 */
export const IXGBE_MAX_IRQ_QUEUES = 16;

/**
 * The default moderation interval of a queue vector, in microseconds: at most one interrupt per
 * 50 us (20 000 per second, Linux's IXGBE_20K_ITR). A wait is armed only when a poll found the
 * ring empty, so the first frame after a quiet spell is never held back (the interval since the
 * last interrupt is long over); the interval only batches the wake-ups of a loop that sleeps
 * between frames arriving faster than 20k/s, each of which costs a thread-pool round trip
 * (tens of microseconds of CPU) — at that rate polling is the better mode anyway.
 */
export const IXGBE_DEFAULT_ITR_US = 50;

export class IxgbeInterrupts {
  readonly #mmio: Mmio;
  readonly #pci: PciFunction;
  readonly #address: string;
  readonly #waiters: InterruptWait[] = [];
  /** Per queue: a wait is parked (one at a time). */
  readonly #parked: boolean[];
  #closed = false;

  /** Enables MSI-X on `pci` and programs the device for it (the header says how); every vector masked. */
  constructor(mmio: Mmio, pci: PciFunction, address: string, rxQueues: number, itrUs = IXGBE_DEFAULT_ITR_US) {
    this.#mmio = mmio;
    this.#pci = pci;
    this.#address = address;
    const msix = pci.msix;
    const vectors = rxQueues + 1;
    if (msix === null) {
      throw new NotSupportedError(`${address}: the device has no MSI-X capability: open it without interrupts (poll)`);
    }
    if (rxQueues > IXGBE_MAX_IRQ_QUEUES || vectors > msix.count) {
      throw new NotSupportedError(
        `${address}: interrupts need one MSI-X vector per receive queue plus one (${vectors}); the driver uses at most ` +
          `${Math.min(IXGBE_MAX_IRQ_QUEUES, msix.count - 1)} queues with interrupts: open fewer rxQueues or without interrupts`,
      );
    }
    const fds = msix.enable(vectors);
    fds.forEach((fd, v) => this.#waiters.push(new InterruptWait(fd, `${address} MSI-X vector ${v}${v < rxQueues ? ` (receive queue ${v})` : " (other causes)"}`)));
    this.#parked = new Array<boolean>(rxQueues).fill(false);

    const queueBits = ((1 << rxQueues) - 1) >>> 0;
    // 8.2.3.5.18 GPIE: MSI-X mode, with the pending-bit array and auto-mask (ixgbe_setup_gpie).
    setReg32(mmio, IXGBE_GPIE, (IXGBE_GPIE_MSIX_MODE | IXGBE_GPIE_PBA_SUPPORT | IXGBE_GPIE_EIAME | IXGBE_GPIE_OCD) >>> 0);
    // 7.3.1.3: auto-mask of the queue vectors only.
    setReg32(mmio, IXGBE_EIAM_EX(0), queueBits);
    setReg32(mmio, IXGBE_EIAM_EX(1), 0);
    // 7.3.4 IVAR: RX queue q (entry byte 2 x (q & 1) of IVAR(q >> 1)) to vector q.
    for (let q = 0; q < rxQueues; q++) {
      const shift = (q & 1) * 16;
      const reg = IXGBE_IVAR(q >>> 1);
      const ivar = this.#mmio.read32(reg);
      setReg32(mmio, reg, ((ivar & ~(0xff << shift)) | ((q | IXGBE_IVAR_ALLOC_VAL) << shift)) >>> 0);
      // 7.3.2.1 EITR: the interval field holds microseconds / 2 in bits 11:3, i.e. us << 2.
      setReg32(mmio, IXGBE_EITR(q), (itrUs << 2) & IXGBE_EITR_ITR_INT_MASK);
    }
    // IVAR_MISC bits 15:8: the other causes to the last vector.
    setReg32(mmio, IXGBE_IVAR_MISC, ((rxQueues | IXGBE_IVAR_ALLOC_VAL) << 8) >>> 0);
    // 7.3.1.3 EIAC: auto-clear of the queue causes, not of the other causes.
    setReg32(mmio, IXGBE_EIAC, queueBits);
    // Everything masked until a wait arms its queue; no stale cause.
    setReg32(mmio, IXGBE_EIMC, IXGBE_IRQ_CLEAR_MASK);
    setReg32(mmio, IXGBE_EIMC_EX(0), IXGBE_IRQ_CLEAR_MASK);
    setReg32(mmio, IXGBE_EIMC_EX(1), IXGBE_IRQ_CLEAR_MASK);
    setReg32(mmio, IXGBE_EICR, IXGBE_IRQ_CLEAR_MASK);
  }

  /**
   * Sleeps until receive queue `queue` may have frames (true) or `timeoutMs` passed (false); the
   * steps are in the header. `hasFrame` looks at the ring (IxgbeRxQueue.hasFrame). Resolves false
   * when close() ends it.
   */
  async wait(queue: number, hasFrame: () => boolean, timeoutMs: number): Promise<boolean> {
    if (this.#parked[queue] === true) {
      throw new TypeError(`${this.#address}: waitForRx(${queue}) while another wait on the queue is parked: one at a time`);
    }
    const mmio = this.#mmio;
    const bit = 1 << queue;
    const waiter = this.#waiters[queue]!;
    eventfdRead(waiter.fd, waiter.name); // 1 (nonblocking: 0 when there was none)
    setReg32(mmio, IXGBE_EICR, bit); // 2
    setReg32(mmio, IXGBE_EIMS_EX(0), bit); // 3
    if (hasFrame()) { // 4
      setReg32(mmio, IXGBE_EIMC_EX(0), bit);
      return true;
    }
    this.#parked[queue] = true;
    let fired: boolean;
    try {
      fired = await waiter.wait(timeoutMs); // 5
    } finally {
      this.#parked[queue] = false;
    }
    if (this.#closed) return false;
    setReg32(mmio, IXGBE_EIMC_EX(0), bit); // 6
    return fired || hasFrame();
  }

  /**
   * Ends every parked wait (they resolve false) and disables MSI-X. Called by the device's
   * close() before the reset; the registers are left to the reset.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#waiters) w.close();
    this.#pci.msix?.disable();
  }
}
