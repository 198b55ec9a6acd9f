/**
 * The one place that sleeps on interrupts: an epoll instance per JavaScript thread, waited on by
 * ONE libuv threadpool thread (a koffi async epoll_wait) for however many eventfds are being
 * waited for. The JavaScript thread's event loop never blocks: it adds an fd with epoll_ctl
 * (which takes effect even in a wait already parked on another thread) and learns of the result
 * when the threadpool call completes.
 *
 * Why one shared wait and not one per eventfd: each parked call holds a threadpool thread, the
 * pool has UV_THREADPOOL_SIZE threads (4 by default) for the whole process, and fs, dns, crypto
 * and zlib queue behind busy ones. Four waiting queues would have stalled every file read of the
 * process, silently. Here a thread (main or worker) holds one pool thread while it has waits
 * pending, and none otherwise (docs/interrupts.md).
 *
 * A private wake eventfd is in the epoll set too: writing it ends the parked call at once. That
 * is how a wait with an earlier deadline than the parked one gets its timeout, how the pool
 * thread is released when the last wait goes, and how process exit does not hang: libuv joins
 * the threadpool at exit, so a thread asleep in epoll_wait would keep the process alive until
 * its timeout. The 'exit' handler writes the wake fd before that join.
 */
import { eventfdRead, eventfdWrite, createEventFd } from "../sys/eventfd.ts";
import {
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLLIN,
  epoll_event,
  epollCreate1,
  epollCtl,
  epollWaitAsync,
} from "../sys/libc.ts";

/** Ready events one epoll_wait reports at most; more stay ready for the next call. */
const MAX_EVENTS = 64;
/** epoll_wait's timeout is an int: at most about 24.8 days. */
const MAX_TIMEOUT_MS = 0x7fffffff;

interface PendingWait {
  readonly fd: number;
  readonly deadline: number;
  readonly resolve: (ready: boolean) => void;
}

export class IrqPoller {
  readonly #epfd: number;
  readonly #wakeFd: number;
  readonly #events = new Uint8Array(MAX_EVENTS * epoll_event.SIZE);
  readonly #eventWords = new DataView(this.#events.buffer);
  readonly #ctl = new Uint8Array(epoll_event.SIZE);
  readonly #ctlWords = new DataView(this.#ctl.buffer);
  readonly #pending = new Map<number, PendingWait>();
  #parked = false;
  #parkedUntil = Infinity;
  #exiting = false;
  /** Threadpool calls made (for tests: one per sleep, not one per wait). */
  parks = 0;

  constructor() {
    this.#epfd = epollCreate1(EPOLL_CLOEXEC, "creating the interrupt poller's epoll instance");
    this.#wakeFd = createEventFd("the interrupt poller's wake eventfd");
    this.#add(this.#wakeFd);
    // A worker thread's process object emits 'exit' when the worker ends, the main thread's when
    // the process does: either way the parked call must end before libuv tears the pool down.
    process.once("exit", () => {
      this.#exiting = true;
      if (this.#parked) eventfdWrite(this.#wakeFd, 1, "waking the interrupt poller at exit");
    });
  }

  /** Waits being waited for now. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Whether a threadpool thread is parked in epoll_wait for this thread. */
  get parked(): boolean {
    return this.#parked;
  }

  /**
   * Resolves true once eventfd `fd` is signalled (its counter is read back to 0), false after
   * `timeoutMs` or when cancel(fd) is called. A counter already above 0 resolves at once, without
   * the threadpool. One wait per fd at a time (TypeError otherwise).
   */
  wait(fd: number, timeoutMs: number): Promise<boolean> {
    if (this.#pending.has(fd)) throw new TypeError(`eventfd ${fd} already has a wait pending: wait for it to end first`);
    if (eventfdRead(fd, "reading an interrupt eventfd") > 0) return Promise.resolve(true);
    if (timeoutMs <= 0 || this.#exiting) return Promise.resolve(false);
    const deadline = performance.now() + timeoutMs;
    return new Promise<boolean>((resolve) => {
      this.#add(fd);
      this.#pending.set(fd, { fd, deadline, resolve });
      if (!this.#parked) this.#park();
      else if (deadline < this.#parkedUntil) this.#wake(); // the parked call would sleep past it
    });
  }

  /** Ends the wait on `fd`, if any: it resolves false. */
  cancel(fd: number): void {
    const w = this.#pending.get(fd);
    if (w === undefined) return;
    this.#finish(w, false);
    if (this.#pending.size === 0 && this.#parked) this.#wake(); // give the pool thread back now
  }

  #add(fd: number): void {
    const ev = this.#ctlWords;
    ev.setUint32(epoll_event.events, EPOLLIN, true);
    ev.setUint32(epoll_event.data, fd, true);
    ev.setUint32(epoll_event.data + 4, 0, true);
    epollCtl(this.#epfd, EPOLL_CTL_ADD, fd, this.#ctl, `adding eventfd ${fd} to the interrupt poller`);
  }

  #finish(w: PendingWait, ready: boolean): void {
    this.#pending.delete(w.fd);
    try {
      epollCtl(this.#epfd, EPOLL_CTL_DEL, w.fd, this.#ctl);
    } catch {
      // Closed already (close() removes an fd from every epoll set): nothing left to remove.
    }
    if (ready) {
      try {
        eventfdRead(w.fd);
      } catch {
        // Closed between the event and now: the wake-up still happened.
      }
    }
    w.resolve(ready);
  }

  #park(): void {
    let until = Infinity;
    for (const w of this.#pending.values()) if (w.deadline < until) until = w.deadline;
    const timeout = until === Infinity ? -1 : Math.min(MAX_TIMEOUT_MS, Math.max(0, Math.ceil(until - performance.now())));
    this.#parked = true;
    this.#parkedUntil = until;
    this.parks++;
    epollWaitAsync(this.#epfd, this.#events, MAX_EVENTS, timeout, (n) => this.#woke(n));
  }

  #wake(): void {
    eventfdWrite(this.#wakeFd, 1, "waking the interrupt poller");
  }

  #woke(n: number): void {
    this.#parked = false;
    for (let i = 0; i < n; i++) {
      const fd = this.#eventWords.getUint32(i * epoll_event.SIZE + epoll_event.data, true);
      if (fd === this.#wakeFd) {
        eventfdRead(this.#wakeFd);
        continue;
      }
      // Absent: cancelled or timed out while the event was on its way; the counter stays for
      // the next wait, which then returns at once (a spurious wake-up, which callers allow).
      const w = this.#pending.get(fd);
      if (w !== undefined) this.#finish(w, true);
    }
    const now = performance.now();
    for (const w of this.#pending.values()) if (w.deadline <= now) this.#finish(w, false);
    if (this.#pending.size > 0 && !this.#exiting) this.#park();
  }
}

let poller: IrqPoller | null = null;

/** This thread's poller, made on first use. */
export function irqPoller(): IrqPoller {
  return (poller ??= new IrqPoller());
}
