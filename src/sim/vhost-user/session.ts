/**
 * One front-end's connection to the vhost-user backend: the back-end side of the protocol
 * (qemu docs/interop/vhost-user.rst), translated into calls on the virtio-net model's core
 * instead of register accesses, and the model's rings run on the front-end's shared memory.
 *
 * How vhost-user maps onto the core, which knows PCI's device status and queue_enable:
 * - SET_FEATURES is FEATURES_OK: the core checks the features as it would there (refusing
 *   unoffered ones, insisting on VIRTIO_F_VERSION_1);
 * - a ring starts (vhost-user: Ring states) at SET_VRING_KICK: its DeviceRing is built in the
 *   front-end's memory (core.startQueue), taking available entries from SET_VRING_BASE's index.
 *   The specification starts a ring on the first kick; this backend, like DPDK's and
 *   libvhost-user, starts it when the kick fd arrives, since a polling front-end that is told
 *   VIRTQ_USED_F_NO_NOTIFY need never kick;
 * - vhost-user has no status register: the device runs (DRIVER_OK for the core) while the
 *   memory table is in place and both rings of the first queue pair are started (DPDK's
 *   virtio_is_ready likewise waits for rings 0 and 1 only);
 * - a started ring is "enabled" unless VHOST_USER_F_PROTOCOL_FEATURES was negotiated, in which
 *   case SET_VRING_ENABLE decides. A disabled receive ring gets no frames; a disabled transmit
 *   ring is processed and its frames discarded, without side effects. Stricter than the
 *   specification, which only says what a backend does with such rings: a kick on a disabled
 *   ring, and frames a disabled transmit ring discards, are violations (once per ring until
 *   SET_VRING_ENABLE changes its state), since a front-end that does either forgot to enable it;
 * - multiqueue (vhost-user: "Multiple queue support"): the model's N queue pairs (`queuePairs`)
 *   are GET_QUEUE_NUM's answer; with VIRTIO_NET_F_MQ negotiated rings 0 to 2N-1 are the pairs
 *   (receive 2k, transmit 2k+1) and the control ring is 2N, without it only rings 0, 1 and the
 *   control ring 2 exist (§5.1.2; DPDK's vhost_user_set_features likewise drops the rings beyond
 *   the first pair). Which pairs are in use is the front-end's choice, made by enabling their
 *   rings: no VQ_PAIRS_SET reaches a vhost-user backend (the front-end serves the control queue);
 * - GET_VRING_BASE stops a ring (and, like DPDK and libvhost-user, closes its eventfds).
 *
 * Requests that make no sense are refused: a violation is recorded and, when REPLY_ACK was
 * negotiated and the request asks for an ack, the ack says failure; otherwise the connection is
 * closed, as the specification allows a back-end to do ("If back-end detects some error ... it
 * may also close the connection").
 */
import { DmaFaultError } from "../../errors.ts";
import { close } from "../../sys/libc.ts";
import { eventfdRead, eventfdWrite } from "../../sys/eventfd.ts";
import { setNonBlocking } from "../../sys/unix-socket.ts";
import type { AnyDeviceRing, VirtioCore } from "../virtio/virtio-core.ts";
import type { VirtioNetModel } from "../virtio/virtio-model.ts";
import { AVAIL_F_NO_INTERRUPT, bit, F, S_FEATURES_OK } from "../virtio/virtio-spec.ts";
import { PackedDeviceRing } from "../virtio/packed-device-ring.ts";
import { FrontEndViolation } from "./errors.ts";
import { GuestMemory, type MemoryRegionDescription } from "./guest-memory.ts";
import { END, type Message, MessageStream } from "./message-stream.ts";
import {
  F_PROTOCOL_FEATURES,
  Flags,
  MAX_REGIONS,
  MEMORY_HEADER_SIZE,
  MEMORY_REGION_SIZE,
  ProtocolFeature,
  Request,
  requestName,
  U64_SIZE,
  VRING_F_LOG,
  VRING_IDX_MASK,
  VRING_NOFD_MASK,
  VRING_STATE_SIZE,
  VringAddr,
} from "./messages.ts";
import { Payload, statePayload, u64Payload } from "./payload.ts";
import { Vring, type VringState } from "./vring.ts";

/** The protocol features this backend implements. */
export const OFFERED_PROTOCOL_FEATURES = bit(ProtocolFeature.MQ) | bit(ProtocolFeature.REPLY_ACK);
/** Requests handled per serve() call, so that one chatty front-end cannot starve the datapath. */
const MESSAGES_PER_SERVE = 64;
const RX = 0;
const TX = 1;

/** What a session needs of the backend that accepted it. */
export interface SessionHost {
  readonly model: VirtioNetModel;
  /** Records a protocol violation (prefixed with the backend's name). */
  violation(message: string): void;
  /** A frame the driver transmitted on the enabled transmit ring of queue pair `pair`. */
  transmitted(frame: Uint8Array, pair: number): void;
  /** A frame of a disabled transmit ring, processed and dropped. */
  discarded(frame: Uint8Array, pair: number): void;
  /** Moves waiting frames into the receive ring of queue pair `pair` (it runs and is enabled). */
  deliver(pair: number): void;
}

export interface RingStats {
  readonly index: number;
  readonly state: VringState;
  readonly num: number;
  readonly base: number;
  /** While started: avail.idx as published, the next entry the device takes, used.idx. */
  readonly availIdx: number | null;
  readonly lastAvail: number | null;
  readonly usedIdx: number | null;
  readonly kicks: number;
  readonly calls: number;
  readonly kickFd: boolean;
  readonly callFd: boolean;
  readonly polled: boolean;
}

export interface SessionStats {
  readonly connection: number;
  /** Negotiated virtio features (SET_FEATURES, without VHOST_USER_F_PROTOCOL_FEATURES), hex. */
  readonly features: string | null;
  readonly protocolFeatures: string;
  readonly owner: boolean;
  /** The device runs (the core's DRIVER_OK: the first queue pair's rings are started). */
  readonly running: boolean;
  /** Queue pairs in the layout: the backend's queue pairs with VIRTIO_NET_F_MQ negotiated, else 1. */
  readonly queuePairs: number;
  readonly memoryRegions: readonly MemoryRegionDescription[];
  /** Receive and transmit ring of each queue pair, and the control ring when CTRL_VQ was negotiated (or the front-end used it). */
  readonly rings: readonly RingStats[];
}

interface Handler {
  /** Payload size the request takes (a function when it depends on the payload). */
  readonly size: number | ((p: Payload) => number);
  /** The request has a reply of its own (REPLY_ACK adds none; a refusal closes the connection). */
  readonly replies?: boolean;
  readonly run: (p: Payload, m: Message) => Uint8Array | void;
}

/** Why a session ended: the front-end hung up, or the backend closed the connection. */
export class SessionClosed extends Error {
  override name = "SessionClosed";
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.reason = reason;
  }
}

export class Session {
  readonly connection: number;
  readonly #stream: MessageStream;
  readonly #host: SessionHost;
  readonly #core: VirtioCore;
  readonly #memory: GuestMemory;
  readonly #vrings: Vring[];
  readonly #offered: bigint;
  readonly #handlers: ReadonlyMap<number, Handler>;
  #features: bigint | null = null;
  #protocolFeatures = 0n;
  #owner = false;
  #closed: SessionClosed | null = null;

  constructor(fd: number, connection: number, host: SessionHost, name: string) {
    this.connection = connection;
    this.#stream = new MessageStream(fd, `${name}: connection ${connection}`);
    this.#host = host;
    this.#core = host.model.core;
    this.#memory = new GuestMemory(name);
    this.#vrings = this.#core.queues.map((q) => new Vring(q.index));
    // GET_FEATURES: what the model offers on its modern PCI interface (never ACCESS_PLATFORM:
    // there is no IOTLB here), and the bit that announces GET/SET_PROTOCOL_FEATURES.
    this.#offered = (this.#core.modernFeatures & ~bit(F.ACCESS_PLATFORM)) | bit(F_PROTOCOL_FEATURES);
    this.#handlers = this.#makeHandlers();
    host.model.onTransmit = (frame, pair) => {
      const index = 2 * pair + TX;
      if (this.#state(index) === "enabled") host.transmitted(frame, pair);
      else {
        this.#disabledUse(this.#vrings[index]!, "made frames available on it (discarded: a disabled transmit ring sends nothing)");
        host.discarded(frame, pair);
      }
    };
  }

  /** Set once the connection is gone. */
  get closed(): SessionClosed | null {
    return this.#closed;
  }

  /** The guest memory, for the backend's own checks and tests. */
  get memory(): GuestMemory {
    return this.#memory;
  }

  /** Reads and handles the requests that have arrived. Returns whether there were any. */
  serve(): boolean {
    let handled = 0;
    try {
      for (; handled < MESSAGES_PER_SERVE && this.#closed === null; handled++) {
        const m = this.#stream.receive();
        if (m === null) break;
        if (m === END) {
          this.close("the front-end hung up");
          break;
        }
        this.#handle(m);
      }
    } catch (e) {
      if (e instanceof SessionClosed) this.close(e.reason);
      else if (e instanceof FrontEndViolation) {
        this.#host.violation(e.message);
        this.close(`closed by the backend: ${e.message}`);
      } else this.close(`closed by the backend: ${(e as Error).message}`);
    }
    return handled > 0;
  }

  /**
   * The datapath: reads the kick eventfds, processes the transmit and control rings, fills the
   * receive ring, and writes the call eventfds of the rings whose used index moved (unless the
   * driver set VRING_AVAIL_F_NO_INTERRUPT). Returns whether anything happened.
   */
  process(): boolean {
    if (this.#closed !== null) return false;
    let work = false;
    for (const v of this.#vrings) {
      if (v.kickFd < 0) continue;
      const kicks = eventfdRead(v.kickFd);
      if (kicks > 0) {
        v.kicks += kicks;
        work = true;
        if (v.state(this.#protocolFeaturesNegotiated) === "disabled") this.#disabledUse(v, "kicked it");
      }
    }
    if (!this.#core.driverOk) return work;
    const model = this.#host.model;
    const pairs = this.#layoutPairs();
    // A DMA fault stops its ring, and with it the device: each step checks that it still runs.
    for (let p = 0; p < pairs; p++) {
      const tx = this.#vrings[2 * p + TX]!;
      if (tx.started && this.#core.driverOk) work = this.#run(tx, () => model.poll(tx.index)) || work;
    }
    const ctrlIndex = model.ctrlQueueIndex;
    const ctrl = this.#vrings[ctrlIndex];
    if (ctrl !== undefined && this.#core.driverOk && this.#state(ctrlIndex) === "enabled") work = this.#run(ctrl, () => model.poll(ctrlIndex)) || work;
    for (let p = 0; p < pairs; p++) {
      if (this.receivingOn(p)) work = this.#run(this.#vrings[2 * p + RX]!, () => this.#host.deliver(p)) || work;
    }
    for (const v of this.#vrings) this.#signal(v);
    return work;
  }

  /** Whether the receive ring of queue pair `pair` takes frames now (started and enabled, in the layout). */
  receivingOn(pair: number): boolean {
    return this.#closed === null && this.#core.driverOk && pair < this.#layoutPairs() && this.#state(2 * pair + RX) === "enabled";
  }

  /** The queue pairs whose receive rings take frames now, in order. */
  receivingPairs(): number[] {
    const out: number[] = [];
    for (let p = 0; p < this.#layoutPairs(); p++) if (this.receivingOn(p)) out.push(p);
    return out;
  }

  /**
   * Ends the session: rings stopped (their views of the front-end's memory dropped), eventfds
   * closed, the memory unmapped, the socket closed, and the device reset for the next front-end.
   */
  close(reason: string): void {
    if (this.#closed !== null) return;
    this.#closed = new SessionClosed(reason);
    for (const v of this.#vrings) {
      this.#core.stopQueue(v.index);
      v.ring = null;
      v.closeFds();
    }
    this.#core.reset();
    this.#host.model.onTransmit = null;
    try {
      this.#memory.close();
    } finally {
      this.#stream.close();
    }
  }

  stats(): SessionStats {
    const pf = this.#protocolFeaturesNegotiated;
    return {
      connection: this.connection,
      features: this.#features === null ? null : `0x${this.#features.toString(16)}`,
      protocolFeatures: `0x${this.#protocolFeatures.toString(16)}`,
      owner: this.#owner,
      running: this.#core.driverOk,
      queuePairs: this.#layoutPairs(),
      memoryRegions: this.#memory.regions,
      rings: this.#vrings.filter((v) => this.#listed(v)).map((v) => ({
        index: v.index,
        state: v.state(pf),
        num: v.num,
        base: v.base,
        availIdx: v.ring?.availIdx ?? null,
        lastAvail: v.ring?.lastAvail ?? null,
        usedIdx: v.ring?.usedIdx ?? null,
        kicks: v.kicks,
        calls: v.calls,
        kickFd: v.kickFd >= 0,
        callFd: v.callFd >= 0,
        polled: v.polled,
      })),
    };
  }

  /**
   * virtio 1.2 §5.1.2: the receive and transmit rings of the layout's pairs; the control ring
   * only with VIRTIO_NET_F_CTRL_VQ. Any other ring too once the front-end used it.
   */
  #listed(v: Vring): boolean {
    if (v.index < 2 * this.#layoutPairs()) return true;
    if (v.index === this.#host.model.ctrlQueueIndex && this.#core.negotiated(F.CTRL_VQ)) return true;
    return v.num !== 0 || v.addresses !== null || v.started || v.kickFd >= 0 || v.callFd >= 0 || v.polled;
  }

  /** Queue pairs in the layout (§5.1.2): all of the model's with VIRTIO_NET_F_MQ negotiated, else 1. */
  #layoutPairs(): number {
    return this.#core.negotiated(F.MQ) ? this.#host.model.queuePairs : 1;
  }

  /** A started ring the front-end used while it is disabled: a violation, once until its state changes. */
  #disabledUse(v: Vring, what: string): void {
    if (v.reportedDisabled) return;
    v.reportedDisabled = true;
    this.#host.violation(
      `ring ${v.index}: the front-end ${what} while the ring is disabled (VHOST_USER_F_PROTOCOL_FEATURES was negotiated, so ` +
        `rings start disabled: vhost-user "Ring states"): send VHOST_USER_SET_VRING_ENABLE 1 for it first`,
    );
  }

  // --- Dispatch -----------------------------------------------------------------------------

  get #replyAck(): boolean {
    return (this.#protocolFeatures & bit(ProtocolFeature.REPLY_ACK)) !== 0n;
  }

  /** vhost-user: Ring states: rings start disabled only when VHOST_USER_F_PROTOCOL_FEATURES was negotiated. */
  get #protocolFeaturesNegotiated(): boolean {
    return this.#features !== null && (this.#features & bit(F_PROTOCOL_FEATURES)) !== 0n;
  }

  #state(index: number): VringState {
    return this.#vrings[index]?.state(this.#protocolFeaturesNegotiated) ?? "stopped";
  }

  #handle(m: Message): void {
    const name = requestName(m.request);
    const needReply = (m.flags & Flags.NEED_REPLY) !== 0;
    const ack = needReply && this.#replyAck;
    const handler = this.#handlers.get(m.request);
    if (needReply && !this.#replyAck) {
      this.#host.violation(`${name}: NEED_REPLY is set, but REPLY_ACK was not negotiated (SET_PROTOCOL_FEATURES): no ack will come`);
    }
    let reply: Uint8Array | void;
    try {
      if (handler === undefined) throw new FrontEndViolation(unsupported(m.request));
      const p = new Payload(m.payload);
      const size = typeof handler.size === "number" ? handler.size : handler.size(p);
      if (p.length !== size) throw new FrontEndViolation(`a ${p.length}-byte payload; the request takes ${size} bytes`);
      reply = handler.run(p, m);
    } catch (e) {
      closeAll(m.fds);
      const message = `${name}: ${(e as Error).message}`;
      this.#host.violation(message);
      if (ack && handler?.replies !== true) {
        this.#stream.reply(m.request, u64Payload(1n));
        return;
      }
      throw new SessionClosed(`closed by the backend: ${message}`);
    }
    closeAll(m.fds); // any the handler did not take
    if (reply !== undefined) this.#stream.reply(m.request, reply);
    else if (ack) this.#stream.reply(m.request, u64Payload(0n));
  }

  #makeHandlers(): Map<number, Handler> {
    return new Map<number, Handler>([
      [Request.GET_FEATURES, { size: 0, replies: true, run: () => u64Payload(this.#offered) }],
      [Request.SET_FEATURES, { size: U64_SIZE, run: (p) => this.#setFeatures(p.u64(0)) }],
      [Request.SET_OWNER, { size: 0, run: () => void (this.#owner = true) }],
      // Deprecated; "back-ends either ignore this message, or use it to disable all rings".
      [Request.RESET_OWNER, { size: 0, run: () => this.#stopAll() }],
      [Request.SET_MEM_TABLE, { size: memTableSize, run: (p, m) => this.#setMemTable(p, m) }],
      [Request.SET_VRING_NUM, { size: VRING_STATE_SIZE, run: (p) => this.#setVringNum(p) }],
      [Request.SET_VRING_ADDR, { size: VringAddr.SIZE, run: (p) => this.#setVringAddr(p) }],
      [Request.SET_VRING_BASE, { size: VRING_STATE_SIZE, run: (p) => this.#setVringBase(p) }],
      [Request.GET_VRING_BASE, { size: VRING_STATE_SIZE, replies: true, run: (p) => this.#getVringBase(p) }],
      [Request.SET_VRING_KICK, { size: U64_SIZE, run: (p, m) => this.#setVringFd(p, m, "kick") }],
      [Request.SET_VRING_CALL, { size: U64_SIZE, run: (p, m) => this.#setVringFd(p, m, "call") }],
      [Request.SET_VRING_ERR, { size: U64_SIZE, run: (p, m) => this.#setVringFd(p, m, "err") }],
      [Request.GET_PROTOCOL_FEATURES, { size: 0, replies: true, run: () => u64Payload(OFFERED_PROTOCOL_FEATURES) }],
      [Request.SET_PROTOCOL_FEATURES, { size: U64_SIZE, run: (p) => this.#setProtocolFeatures(p.u64(0)) }],
      // vhost-user: Multiple queue support: "Query how many queues the back-end supports"; for
      // vhost-user-net the queue pairs (qemu compares it with queues=, DPDK answers its maximum of pairs).
      [Request.GET_QUEUE_NUM, { size: 0, replies: true, run: () => u64Payload(BigInt(this.#host.model.queuePairs)) }],
      [Request.SET_VRING_ENABLE, { size: VRING_STATE_SIZE, run: (p) => this.#setVringEnable(p) }],
    ]);
  }

  // --- Features -----------------------------------------------------------------------------

  /** vhost-user: Front-end message types / SET_FEATURES. */
  #setFeatures(features: bigint): void {
    const unoffered = features & ~this.#offered;
    if (unoffered !== 0n) {
      throw new FrontEndViolation(`features 0x${features.toString(16)} include 0x${unoffered.toString(16)}, which GET_FEATURES did not offer (0x${this.#offered.toString(16)})`);
    }
    const virtio = features & ~bit(F_PROTOCOL_FEATURES);
    if (this.#core.driverOk) {
      if (virtio !== this.#core.driverFeatures) {
        throw new FrontEndViolation("changes the features while the rings run: stop them with GET_VRING_BASE first");
      }
    } else if (!this.#core.negotiateFeatures(virtio)) {
      throw new FrontEndViolation(`the device refuses features 0x${virtio.toString(16)}: ${this.#core.violations.at(-1) ?? "see the violations"}`);
    } else {
      // No VQ_PAIRS_SET comes over vhost-user: every pair of the layout may be used, as the
      // front-end enables its rings.
      this.#host.model.setActiveQueuePairs(this.#layoutPairs());
    }
    this.#features = features;
  }

  /** vhost-user: Front-end message types / SET_PROTOCOL_FEATURES. */
  #setProtocolFeatures(features: bigint): void {
    const unoffered = features & ~OFFERED_PROTOCOL_FEATURES;
    if (unoffered !== 0n) {
      throw new FrontEndViolation(`protocol features 0x${features.toString(16)} include 0x${unoffered.toString(16)}, which GET_PROTOCOL_FEATURES did not offer (0x${OFFERED_PROTOCOL_FEATURES.toString(16)})`);
    }
    this.#protocolFeatures = features;
  }

  // --- Memory -------------------------------------------------------------------------------

  /** vhost-user: Front-end message types / SET_MEM_TABLE; the fds come in the region order. */
  #setMemTable(p: Payload, m: Message): void {
    const n = p.u32(0);
    const regions: MemoryRegionDescription[] = [];
    for (let i = 0; i < n; i++) {
      const at = MEMORY_HEADER_SIZE + MEMORY_REGION_SIZE * i;
      regions.push({
        guestAddress: p.number(at, `region ${i} guest address`),
        size: p.number(at + 8, `region ${i} size`),
        userAddress: p.number(at + 16, `region ${i} user address`),
        mmapOffset: p.number(at + 24, `region ${i} mmap offset`),
      });
    }
    const fds = m.fds.splice(0); // the memory takes them, and closes them on failure
    this.#memory.setTable(regions, fds, () => this.#remapRings());
  }

  /** The table changed under started rings: their views move to the new mappings. */
  #remapRings(): void {
    for (const v of this.#vrings) {
      const old = v.ring;
      if (old === null) continue;
      v.ring = null;
      try {
        const ring = this.#attach(v);
        ring.lastAvail = old.lastAvail;
        ring.usedIdx = old.usedIdx;
      } catch (e) {
        this.#core.stopQueue(v.index);
        v.base = old.lastAvail;
        this.#host.violation(`SET_MEM_TABLE: ring ${v.index} stopped: the new table no longer holds it (${(e as Error).message})`);
      }
    }
    this.#updateRunning();
  }

  // --- Rings --------------------------------------------------------------------------------

  /**
   * Ring `index` of the device. Once the features are set, only the rings of their layout
   * (§5.1.2): without VIRTIO_NET_F_MQ, the first pair and the control ring at 2.
   */
  #vring(index: number): Vring {
    const v = this.#vrings[index];
    const pairs = this.#host.model.queuePairs;
    if (v === undefined) {
      throw new FrontEndViolation(
        `ring ${index} does not exist: the device has ${pairs} queue pair(s) (GET_QUEUE_NUM), rings 0 to ${this.#vrings.length - 1} ` +
          `(receive 2k, transmit 2k+1, control last)`,
      );
    }
    if (this.#features !== null && index >= 2 * this.#layoutPairs() && index !== this.#host.model.ctrlQueueIndex) {
      throw new FrontEndViolation(
        `ring ${index} is not in the layout of the features negotiated: without VIRTIO_NET_F_MQ only the first queue pair ` +
          `(rings 0 and 1) and the control ring 2 exist (virtio 1.2 §5.1.2); negotiate VIRTIO_NET_F_MQ to use ${pairs} pairs`,
      );
    }
    return v;
  }

  /** A ring that must be stopped for what the request does to it. */
  #stoppedVring(index: number, doing: string): Vring {
    const v = this.#vring(index);
    if (v.started) throw new FrontEndViolation(`ring ${index} is started: stop it with GET_VRING_BASE before ${doing}`);
    return v;
  }

  /** vhost-user: SET_VRING_NUM: the ring's size. */
  #setVringNum(p: Payload): void {
    const v = this.#stoppedVring(p.u32(0), "changing its size");
    const num = p.u32(4);
    const max = this.#core.queues[v.index]!.maxSize;
    if (num < 1 || num > max || (num & (num - 1)) !== 0) {
      throw new FrontEndViolation(`ring ${v.index}: size ${num}; the device takes a power of two from 1 to ${max}`);
    }
    v.num = num;
  }

  /** vhost-user: SET_VRING_BASE: the next available index the device takes. */
  #setVringBase(p: Payload): void {
    const v = this.#stoppedVring(p.u32(0), "changing its base");
    const base = p.u32(4);
    if (base > 0xffff) throw new FrontEndViolation(`ring ${v.index}: base ${base} is not a 16-bit ring index`);
    v.base = base;
  }

  /**
   * vhost-user: SET_VRING_ADDR: the front-end's virtual addresses of the descriptor table and
   * the used and available rings (in that order in the payload). Checked against the memory
   * table now if there is one, and again when the ring starts.
   */
  #setVringAddr(p: Payload): void {
    const v = this.#stoppedVring(p.u32(VringAddr.index), "moving it");
    const flags = p.u32(VringAddr.flags);
    if ((flags & VRING_F_LOG) !== 0) throw new FrontEndViolation(`ring ${v.index}: VHOST_VRING_F_LOG set, but the backend offers no VHOST_F_LOG_ALL`);
    if (flags !== 0) throw new FrontEndViolation(`ring ${v.index}: flags 0x${flags.toString(16)}; only VHOST_VRING_F_LOG (1) is defined`);
    const addresses = {
      desc: p.number(VringAddr.desc, "descriptor table address"),
      used: p.number(VringAddr.used, "used ring address"),
      avail: p.number(VringAddr.avail, "available ring address"),
    };
    // virtio 1.2 §2.7: alignment 16 (descriptors), 2 (available ring), 4 (used ring).
    if (addresses.desc % 16 !== 0 || addresses.avail % 2 !== 0 || addresses.used % 4 !== 0) {
      throw new FrontEndViolation(
        `ring ${v.index}: misaligned (descriptors 0x${addresses.desc.toString(16)} need 16, available 0x${addresses.avail.toString(16)} 2, used 0x${addresses.used.toString(16)} 4)`,
      );
    }
    if (this.#memory.mapped) this.#translate(v.index, addresses, v.num || 1);
    v.addresses = addresses;
  }

  /** vhost-user: GET_VRING_BASE: stops the ring, replies with the next available index. */
  #getVringBase(p: Payload): Uint8Array {
    const v = this.#vring(p.u32(0));
    this.#stop(v);
    this.#updateRunning();
    return statePayload(v.index, v.base);
  }

  /**
   * vhost-user: SET_VRING_KICK / SET_VRING_CALL / SET_VRING_ERR: bits 0-7 the ring, bit 8 "no
   * fd" (the front-end polls, or wants no calls). A kick fd starts the ring.
   */
  #setVringFd(p: Payload, m: Message, which: "kick" | "call" | "err"): void {
    const value = p.u64(0);
    const index = Number(value & BigInt(VRING_IDX_MASK));
    const noFd = (value & BigInt(VRING_NOFD_MASK)) !== 0n;
    if ((value & ~BigInt(VRING_IDX_MASK | VRING_NOFD_MASK)) !== 0n) {
      throw new FrontEndViolation(`payload 0x${value.toString(16)}: only bits 0-7 (the ring) and 8 (no fd) are defined`);
    }
    const v = this.#vring(index);
    if (m.fds.length !== (noFd ? 0 : 1)) {
      throw new FrontEndViolation(`ring ${index}: ${m.fds.length} file descriptors with the no-fd flag ${noFd ? "set" : "clear"}: send ${noFd ? "none" : "exactly one"}`);
    }
    const fd = noFd ? -1 : m.fds.splice(0, 1)[0]!;
    // The datapath reads kick fds without waiting: a front-end's blocking eventfd would hang it.
    // (O_NONBLOCK is shared with the front-end's fd; it only ever writes a kick fd.)
    if (which === "kick" && fd >= 0) {
      try {
        setNonBlocking(fd, true, `ring ${index} kick fd`);
      } catch (e) {
        close(fd);
        throw new FrontEndViolation(`ring ${index}: the kick fd is not an eventfd the backend can use (${(e as Error).message})`);
      }
    }
    if (which === "call") v.setCall(fd);
    else if (which === "err") v.setErr(fd);
    else {
      v.setKick(fd);
      v.polled = noFd;
      if (!v.started) {
        try {
          this.#start(v);
        } catch (e) {
          v.setKick(-1);
          throw e;
        }
      }
    }
  }

  /** vhost-user: SET_VRING_ENABLE (only with VHOST_USER_F_PROTOCOL_FEATURES negotiated). */
  #setVringEnable(p: Payload): void {
    const v = this.#vring(p.u32(0));
    const num = p.u32(4);
    if (!this.#protocolFeaturesNegotiated) {
      throw new FrontEndViolation("only legal once VHOST_USER_F_PROTOCOL_FEATURES (bit 30) was negotiated in SET_FEATURES; without it, started rings are enabled");
    }
    if (num > 1) throw new FrontEndViolation(`ring ${v.index}: ${num}; 1 enables, 0 disables`);
    if (v.enableRequested !== (num === 1)) v.reportedDisabled = false;
    v.enableRequested = num === 1;
  }

  #start(v: Vring): void {
    if ((this.#core.status & S_FEATURES_OK) === 0) throw new FrontEndViolation(`ring ${v.index} kicked before SET_FEATURES: negotiate the features first`);
    if (!this.#memory.mapped) throw new FrontEndViolation(`ring ${v.index} kicked before SET_MEM_TABLE: share the memory first`);
    if (v.num === 0) throw new FrontEndViolation(`ring ${v.index} kicked before SET_VRING_NUM`);
    if (v.addresses === null) throw new FrontEndViolation(`ring ${v.index} kicked before SET_VRING_ADDR`);
    const ring = this.#attach(v);
    ring.lastAvail = v.base;
    if (ring instanceof PackedDeviceRing) {
      // A packed ring has no used index in memory: the base (index in bits 0-14, wrap counter in
      // bit 15, as qemu and DPDK encode it) says where both the device's positions start.
      if (v.base !== 0x8000 && ring.lastAvail !== v.base) {
        this.#host.violation(`SET_VRING_KICK: packed ring ${v.index}: base 0x${v.base.toString(16)} is no position of a ring of ${v.num}`);
      }
      ring.usedIdx = v.base;
      v.signaledUsed = ring.usedIdx;
      this.#updateRunning();
      return;
    }
    const usedIdx = new Uint16Array(this.#memory.resolve(this.#core.queues[v.index]!.used, 4, `ring ${v.index} used.idx`).slice().buffer)[1]!;
    if (usedIdx !== v.base) {
      this.#host.violation(
        `SET_VRING_KICK: ring ${v.index} starts at available index ${v.base} (SET_VRING_BASE), but its used.idx is ${usedIdx}: a restarted ring keeps its memory and takes the index GET_VRING_BASE returned`,
      );
    }
    ring.usedIdx = usedIdx;
    v.signaledUsed = usedIdx;
    this.#updateRunning();
  }

  /** Builds the ring in the core from the front-end's addresses, translated through the table. */
  #attach(v: Vring): AnyDeviceRing {
    const at = this.#translate(v.index, v.addresses!, v.num);
    try {
      v.ring = this.#core.startQueue(v.index, v.num, at);
    } catch (e) {
      if (e instanceof DmaFaultError) throw new FrontEndViolation(e.message);
      throw e;
    }
    return v.ring;
  }

  /** Guest addresses of a ring given in user addresses; a FrontEndViolation for any part outside the table. */
  #translate(index: number, user: { desc: number; avail: number; used: number }, num: number): { desc: number; avail: number; used: number } {
    const part = (address: number, length: number, what: string): number => {
      const guest = this.#memory.userToGuest(address, length);
      if (guest === null) {
        throw new FrontEndViolation(`ring ${index}: the ${what} at user address 0x${address.toString(16)} (${length} bytes) is outside every region of the memory table`);
      }
      return guest;
    };
    if (this.#core.negotiated(F.RING_PACKED)) {
      // virtio 1.2 §2.8: 16 bytes a descriptor; driver and device areas are 4 bytes each.
      return {
        desc: part(user.desc, 16 * num, "packed descriptor ring"),
        avail: part(user.avail, 4, "driver event suppression area"),
        used: part(user.used, 4, "device event suppression area"),
      };
    }
    // virtio 1.2 §2.7: 16 bytes a descriptor; flags, idx, ring[num], used_event/avail_event (u16 each, the
    // event field counted even without EVENT_IDX); used elements are 8 bytes.
    return {
      desc: part(user.desc, 16 * num, "descriptor table"),
      avail: part(user.avail, 6 + 2 * num, "available ring"),
      used: part(user.used, 6 + 8 * num, "used ring"),
    };
  }

  #stop(v: Vring): void {
    if (v.ring !== null) v.base = v.ring.lastAvail;
    this.#core.stopQueue(v.index);
    v.ring = null;
    v.closeFds();
  }

  #stopAll(): void {
    for (const v of this.#vrings) this.#stop(v);
    this.#updateRunning();
  }

  /** The device runs while the memory is there and both rings of the first queue pair are started. */
  #updateRunning(): void {
    const running = this.#memory.mapped && this.#vrings[RX]!.started && this.#vrings[TX]!.started;
    this.#core.setDriverOk(running);
  }

  // --- Datapath -----------------------------------------------------------------------------

  /** Runs `work` on ring `v`; a DMA fault stops the ring (a driver bug, recorded). Returns whether used.idx moved. */
  #run(v: Vring, work: () => void): boolean {
    const ring = v.ring!;
    const before = ring.usedIdx;
    try {
      work();
    } catch (e) {
      if (!(e instanceof DmaFaultError)) throw e;
      this.#host.violation(`ring ${v.index} stopped: ${e.message}`);
      this.#stop(v);
      this.#updateRunning();
      return true;
    }
    return ring.usedIdx !== before;
  }

  /** vhost-user: SET_VRING_CALL: signal used buffers, unless the driver asked for no interrupts (virtio 1.2 §2.7.7). */
  #signal(v: Vring): void {
    const ring = v.ring;
    if (ring === null || ring.usedIdx === v.signaledUsed) return;
    v.signaledUsed = ring.usedIdx;
    if (v.callFd < 0 || (ring.availFlags & AVAIL_F_NO_INTERRUPT) !== 0) return;
    eventfdWrite(v.callFd);
    v.calls++;
  }
}

/** vhost-user: Memory regions description: num regions, padding, then exactly that many regions (as qemu sends it). */
function memTableSize(p: Payload): number {
  if (p.length < MEMORY_HEADER_SIZE) return MEMORY_HEADER_SIZE;
  const n = p.u32(0);
  if (n < 1 || n > MAX_REGIONS) throw new FrontEndViolation(`${n} regions: send 1 to ${MAX_REGIONS}`);
  return MEMORY_HEADER_SIZE + MEMORY_REGION_SIZE * n;
}

/** Why a request is refused before any handler sees it. */
function unsupported(request: number): string {
  const name = requestName(request);
  if (name.startsWith("request ")) return "not a vhost-user request (vhost-user: Front-end message types): check the request number";
  return "not supported by this backend: it offers no VHOST_F_LOG_ALL and only the protocol features MQ and REPLY_ACK; do not send it";
}

function closeAll(fds: number[]): void {
  for (const fd of fds.splice(0)) {
    try {
      close(fd);
    } catch {
      // already closed
    }
  }
}
