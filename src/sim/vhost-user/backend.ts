/**
 * A vhost-user backend built from the project's virtio-net model: a server on a unix socket that
 * accepts one front-end at a time (the next one waits in the listen queue; one that hangs up is
 * followed by the next, so a driver may reconnect), speaks the back-end side of the protocol
 * (session.ts), and runs the model's rings on the front-end's shared memory.
 *
 * Traffic: in "loopback" mode every frame the driver transmits comes back on the receive ring of
 * the same queue pair, byte for byte; in "sink" mode frames are only counted and the last `keep`
 * kept. inject() adds frames from outside; with several queue pairs they are steered by flow
 * (flowHash of virtio-model.ts over the addresses, protocol and ports, modulo the receive rings
 * enabled when the frame is handed on), so that every frame of a flow lands on one queue, in
 * order, as long as the front-end does not change which rings are enabled. Frames for a receive
 * ring wait in its backlog (in order; all backlogs together hold up to `backlog` frames) until
 * the driver posts buffers, so that loopback loses nothing while the driver refills; frames
 * still waiting when the front-end hangs up are dropped (counted in backlogDropped), those
 * injected while none is connected wait for the next.
 *
 * Everything runs on the event loop: start() polls the listening socket, the connection, the
 * kick eventfds and the rings, one step per setImmediate while there is work (and for a while
 * after), one per millisecond when idle, so that the process's stdin is served in between.
 * The used rings carry VIRTQ_USED_F_NO_NOTIFY, as those of a polling backend: the driver need
 * not kick (kicks are read and counted all the same).
 */
import * as fs from "node:fs";
import { close } from "../../sys/libc.ts";
import { acceptUnixConnection, listenUnixSocket, WOULD_BLOCK } from "../../sys/unix-listen.ts";
import { flowHash, VirtioNetModel } from "../virtio/virtio-model.ts";
import type { BackendEvent, BackendMode, BackendStats } from "./control-protocol.ts";
import { MAX_VIOLATION_EVENTS, MAX_VIOLATIONS } from "./control-protocol.ts";
import { Session, type SessionHost } from "./session.ts";

export interface VhostUserBackendOptions {
  /** Path of the unix socket to listen on (a stale socket file there is replaced). */
  readonly socket: string;
  readonly mode?: BackendMode;
  /** Maximum size of the receive and transmit rings, a power of two (default 256). */
  readonly queueSize?: number;
  /**
   * Queue pairs (default 1): GET_QUEUE_NUM's answer, and above 1 VIRTIO_NET_F_MQ is offered
   * (rings 0 to 2N-1, the control ring at 2N). VHOST_USER_PROTOCOL_F_MQ is offered either way.
   */
  readonly queuePairs?: number;
  readonly mac?: Uint8Array;
  /** Offer VIRTIO_F_RING_PACKED (packed virtqueues, as DPDK's vhost does); default false. */
  readonly packed?: boolean;
  /** Transmitted frames kept for transmitted() (default 1024, the latest). */
  readonly keep?: number;
  /** Frames that may wait for receive buffers (default 1024). */
  readonly backlog?: number;
  /** Called with every event (connected, disconnected, violation, error). */
  readonly onEvent?: (event: BackendEvent) => void;
}

/** After work, keep polling at full speed this long before dropping to one step a millisecond. */
const BUSY_MS = 20;

export class VhostUserBackend {
  readonly socket: string;
  readonly mode: BackendMode;
  readonly queueSize: number;
  readonly queuePairs: number;
  readonly model: VirtioNetModel;
  readonly #name: string;
  readonly #keep: number;
  readonly #backlogLimit: number;
  readonly #onEvent: (event: BackendEvent) => void;
  readonly #host: SessionHost;
  #listenFd = -1;
  #session: Session | null = null;
  #connections = 0;
  readonly #violations: string[] = [];
  #violationCount = 0;
  #deviceViolationsSeen = 0;
  readonly #transmitted: Uint8Array[] = [];
  #transmittedCount = 0;
  #transmittedBytes = 0;
  #discarded = 0;
  /** Injected frames not steered to a queue pair yet (no receive ring was enabled). */
  readonly #inbox: Uint8Array[] = [];
  /** Per queue pair: frames steered (or looped back) to its receive ring, waiting for buffers. */
  readonly #backlogs: Uint8Array[][] = [];
  #delivered = 0;
  #backlogDropped = 0;
  #rejected = 0;
  #immediate: NodeJS.Immediate | null = null;
  #timeout: NodeJS.Timeout | null = null;
  #lastWork = 0;
  #closed = false;

  constructor(options: VhostUserBackendOptions) {
    this.socket = options.socket;
    this.mode = options.mode ?? "loopback";
    if (this.mode !== "loopback" && this.mode !== "sink") throw new TypeError(`vhost-user backend: mode must be "loopback" or "sink", got ${JSON.stringify(this.mode)}`);
    this.#keep = positiveInteger(options.keep ?? 1024, "keep");
    this.#backlogLimit = positiveInteger(options.backlog ?? 1024, "backlog");
    this.queueSize = options.queueSize ?? 256;
    this.queuePairs = positiveInteger(options.queuePairs ?? 1, "queuePairs");
    for (let p = 0; p < this.queuePairs; p++) this.#backlogs.push([]);
    this.#name = `vhost-user backend ${this.socket}`;
    this.#onEvent = options.onEvent ?? (() => {});
    this.model = new VirtioNetModel({
      dma: { resolve: (address, length, what, device) => this.#memory().resolve(address, length, what, device) },
      address: `vhost-user:${this.socket}`,
      queueSize: this.queueSize,
      ...(options.mac === undefined ? {} : { mac: options.mac }),
      accessPlatform: false,
      packed: options.packed ?? false,
      queuePairs: this.queuePairs,
      transport: "external",
    });
    // A polling backend: the driver need not kick (virtio 1.2 §2.7.10).
    this.model.suppressNotifications = true;
    this.#host = {
      model: this.model,
      violation: (message) => this.#violation(`${this.#name}: ${message}`),
      transmitted: (frame, pair) => this.#onTransmitted(frame, pair),
      discarded: () => void this.#discarded++,
      deliver: (pair) => this.#deliver(pair),
    };
  }

  /** Binds and listens on the socket path. */
  listen(): void {
    if (this.#listenFd >= 0) return;
    this.#listenFd = listenUnixSocket(this.socket, { backlog: 4, nonBlocking: true }, this.#name);
  }

  /** Polls from the event loop until close(). */
  start(): void {
    this.listen();
    if (this.#immediate === null && this.#timeout === null && !this.#closed) this.#schedule();
  }

  /**
   * One round: accept a waiting front-end if none is connected, serve its requests, run the
   * datapath. Returns whether anything happened.
   */
  step(): boolean {
    if (this.#closed) return false;
    let work = false;
    try {
      if (this.#session === null && this.#listenFd >= 0) {
        const fd = acceptUnixConnection(this.#listenFd, { nonBlocking: true }, this.#name);
        if (fd !== WOULD_BLOCK) {
          this.#session = new Session(fd, ++this.#connections, this.#host, this.#name);
          this.#onEvent({ event: "connected", connection: this.#connections });
          work = true;
        }
      }
      const session = this.#session;
      if (session !== null) {
        work = session.serve() || work;
        if (session.closed === null) work = session.process() || work;
      }
    } catch (e) {
      // A bug here, not the front-end's doing: report it, drop the connection, carry on.
      this.#onEvent({ event: "error", message: (e as Error).stack ?? String(e) });
      this.#session?.close(`closed by the backend after an internal error: ${(e as Error).message}`);
      work = true;
    }
    this.#collectDeviceViolations();
    const session = this.#session;
    if (session !== null && session.closed !== null) {
      this.#session = null;
      // What the old driver would have received is not the next one's.
      for (const backlog of this.#backlogs) {
        this.#backlogDropped += backlog.length;
        backlog.length = 0;
      }
      this.#onEvent({ event: "disconnected", connection: session.connection, reason: session.closed.reason });
    }
    return work;
  }

  /**
   * A frame from the wire for the driver's receive ring: written now if a buffer is free,
   * otherwise kept in the backlog until one is. Returns whether it was written now, and the
   * frames still waiting. A full backlog is a RangeError.
   */
  inject(frame: Uint8Array): { delivered: boolean; backlog: number } {
    if (this.#waiting() >= this.#backlogLimit) {
      throw new RangeError(`${this.#name}: the receive backlog is full (${this.#backlogLimit} frames): let the driver receive, or start the backend with a larger --backlog`);
    }
    const copy = frame.slice();
    this.#inbox.push(copy);
    const pairs = this.#session?.receivingPairs() ?? [];
    try {
      for (const p of pairs) this.#deliver(p);
    } catch {
      // a DMA fault: the next step() stops the ring and records it
    }
    const waiting = this.#inbox.includes(copy) || this.#backlogs.some((b) => b.includes(copy));
    return { delivered: !waiting, backlog: this.#waiting() };
  }

  /** The transmitted frames kept (the latest `keep`), oldest first. */
  transmitted(): Uint8Array[] {
    return this.#transmitted.slice();
  }

  stats(): BackendStats {
    return {
      socket: this.socket,
      mode: this.mode,
      connections: this.#connections,
      connected: this.#session !== null,
      session: this.#session?.stats() ?? null,
      device: { ...this.model.counters },
      transmitted: this.#transmittedCount,
      transmittedBytes: this.#transmittedBytes,
      discarded: this.#discarded,
      delivered: this.#delivered,
      backlog: this.#waiting(),
      backlogDropped: this.#backlogDropped,
      rejected: this.#rejected,
      violations: this.#violations.slice(),
      violationCount: this.#violationCount,
    };
  }

  /** Closes the connection (unmapping its memory), the listening socket, and unlinks the socket path. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#immediate !== null) clearImmediate(this.#immediate);
    if (this.#timeout !== null) clearTimeout(this.#timeout);
    this.#immediate = this.#timeout = null;
    this.#session?.close("the backend is closing");
    this.#session = null;
    if (this.#listenFd >= 0) {
      close(this.#listenFd);
      this.#listenFd = -1;
      fs.rmSync(this.socket, { force: true });
    }
  }

  // ------------------------------------------------------------------------------------------

  #memory() {
    const session = this.#session;
    if (session === null) throw new RangeError(`${this.#name}: no front-end is connected, so there is no guest memory`);
    return session.memory;
  }

  #schedule(): void {
    const tick = () => {
      this.#immediate = this.#timeout = null;
      if (this.#closed) return;
      if (this.step()) this.#lastWork = performance.now();
      this.#schedule();
    };
    if (performance.now() - this.#lastWork < BUSY_MS) this.#immediate = setImmediate(tick);
    else this.#timeout = setTimeout(tick, 1);
  }

  /** Frames waiting: not steered yet, or in a queue pair's backlog. */
  #waiting(): number {
    let n = this.#inbox.length;
    for (const b of this.#backlogs) n += b.length;
    return n;
  }

  /** Loopback: what transmitq(pair+1) sent comes back on receiveq(pair+1). */
  #onTransmitted(frame: Uint8Array, pair: number): void {
    this.#transmittedCount++;
    this.#transmittedBytes += frame.length;
    this.#transmitted.push(frame);
    if (this.#transmitted.length > this.#keep) this.#transmitted.shift();
    if (this.mode !== "loopback") return;
    if (this.#waiting() >= this.#backlogLimit) this.#backlogDropped++;
    else this.#backlogs[pair]!.push(frame);
  }

  /**
   * Steers the injected frames over the receive rings enabled now (flow hash modulo their
   * number), then writes the waiting frames of queue pair `pair` into its receive buffers, in
   * order, until its backlog or its buffers run out.
   */
  #deliver(pair: number): void {
    if (this.#inbox.length > 0) {
      const pairs = this.#session?.receivingPairs() ?? [];
      if (pairs.length > 0) {
        for (const frame of this.#inbox.splice(0)) this.#backlogs[pairs.length === 1 ? pairs[0]! : pairs[flowHash(frame) % pairs.length]!]!.push(frame);
      }
    }
    const backlog = this.#backlogs[pair]!;
    const c = this.model.counters;
    // Only with a buffer posted: inject() without one would count the frame as dropped.
    while (backlog.length > 0 && this.model.rxBuffersAvailableOn(pair) > 0) {
      const rejectedBefore = c.rxFiltered + c.rxOversize;
      if (this.model.inject(backlog[0]!, pair)) {
        backlog.shift();
        this.#delivered++;
      } else if (c.rxFiltered + c.rxOversize !== rejectedBefore) {
        backlog.shift(); // refused for good: it would never fit, or the filter drops it
        this.#rejected++;
      } else {
        return; // the receive ring stopped under it
      }
    }
  }

  #violation(message: string): void {
    this.#violationCount++;
    if (this.#violations.length < MAX_VIOLATIONS) this.#violations.push(message);
    if (this.#violationCount <= MAX_VIOLATION_EVENTS) this.#onEvent({ event: "violation", message });
  }

  /** The model's own violations (rings, descriptors), in the same list as the protocol's. */
  #collectDeviceViolations(): void {
    const device = this.model.violations;
    for (; this.#deviceViolationsSeen < device.length; this.#deviceViolationsSeen++) this.#violation(device[this.#deviceViolationsSeen]!);
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`vhost-user backend: ${name} must be a positive integer, got ${value}`);
  return value;
}
