/**
 * InterruptWait: sleeping until one interrupt eventfd (an MSI-X vector through VFIO or a model,
 * a vhost-user call fd) is signalled, without blocking Node's event loop. Drivers make one per
 * receive queue; the sleeping itself is shared by all of a thread's waits (./irq-poller.ts).
 *
 * The wait only reports that the eventfd was written; whether frames arrived is for the driver
 * to check in its ring (interrupts may be spurious, and one may stand for many frames).
 */
import { irqPoller } from "./irq-poller.ts";

export class InterruptWait {
  /** What the interrupt is, for errors ("0000:00:02.0 receive queue 0"). */
  readonly name: string;
  readonly fd: number;
  #waiting = false;
  #closed = false;

  /** `fd`: a nonblocking eventfd, which the caller keeps owning (and closes after close()). */
  constructor(fd: number, name: string) {
    this.fd = fd;
    this.name = name;
  }

  /** Whether a wait is parked now. */
  get waiting(): boolean {
    return this.#waiting;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Resolves true when the eventfd has been signalled (at once if it already was: signals are
   * counted, none is lost between two waits), false after `timeoutMs` or when close() ends the
   * wait. After close(): false at once. One wait at a time: a second one while the first is
   * parked is a TypeError naming the interrupt.
   */
  async wait(timeoutMs: number): Promise<boolean> {
    if (typeof timeoutMs !== "number" || Number.isNaN(timeoutMs)) {
      throw new TypeError(`${this.name}: the timeout must be a number of milliseconds, got ${String(timeoutMs)}`);
    }
    if (this.#closed) return false;
    if (this.#waiting) throw new TypeError(`${this.name}: a wait is already pending; wait for one at a time`);
    this.#waiting = true;
    try {
      return await irqPoller().wait(this.fd, timeoutMs);
    } finally {
      this.#waiting = false;
    }
  }

  /** Ends a parked wait (it resolves false); later waits resolve false at once. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#waiting) irqPoller().cancel(this.fd);
  }
}
