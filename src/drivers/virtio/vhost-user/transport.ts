/**
 * The vhost-user transport: the virtio-net driver (virtio-device.ts) drives a backend in another
 * process (DPDK's vhost library, or the model in src/sim/vhost-user) over a unix socket, with
 * the packet memory shared as file descriptors (qemu docs/interop/vhost-user.rst; the sections
 * named below are that document's).
 *
 * What PCI has and vhost-user has not, and what this transport does instead:
 *
 * - Device status: no register. The status bits are kept here; FEATURES_OK sticks when the
 *   backend accepted SET_FEATURES (acked it, with REPLY_ACK; without, answered the GET_FEATURES
 *   sent after it). DEVICE_NEEDS_RESET reads set once the connection broke.
 * - Queue sizes: no query. Every queue reports QUEUE_MAX_SIZE and the driver picks its size; a
 *   backend with smaller rings refuses SET_VRING_NUM.
 * - Notifications: a kick eventfd per queue (kick-mmio.ts). No call eventfds while the driver
 *   polls (it asks for no interrupts): SET_VRING_CALL says "no fd" (bit 8), which the
 *   specification allows ("polling will be used instead of waiting for the call") and DPDK 22.11
 *   takes. With interrupts, each receive ring gets a call eventfd of its own, which the backend
 *   writes when it used buffers and the driver did not suppress the notification (the ring's
 *   flags or event suppression, as on PCI); the transmit rings keep "no fd".
 * - Device configuration: only with VHOST_USER_PROTOCOL_F_CONFIG (GET_CONFIG), which DPDK's
 *   vhost does not offer. Without it VIRTIO_NET_F_MAC and _STATUS are hidden from the driver
 *   (link always up, while the connection is). A `mac` option supplies the MAC instead: the
 *   driver then sees VIRTIO_NET_F_MAC, which goes to the backend only if it offered it.
 * - The control queue: vhost-user front-ends (qemu, DPDK's virtio-user) handle it themselves,
 *   it never reaches a backend (DPDK 22.11 offers VIRTIO_NET_F_CTRL_VQ but has no code for it;
 *   DPDK's virtio_user_dev_set_features strips it from SET_FEATURES), so features.ts does not
 *   negotiate it: only receive and transmit queues exist.
 * - Multiqueue (vhost-user: "Multiple queue support"): with VHOST_USER_PROTOCOL_F_MQ the backend
 *   says how many queue pairs it has (GET_QUEUE_NUM); that is the device's max_virtqueue_pairs
 *   (offset 8 of struct virtio_net_config, answered here as DPDK's virtio-user does), and
 *   VIRTIO_NET_F_MQ is shown to the driver only then (DPDK: vhost_user_setup hides it without
 *   the protocol feature). The front-end chooses the pairs in use by enabling their rings
 *   (SET_VRING_ENABLE), which is what qemu and DPDK's virtio-user turn the driver's
 *   VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET into (virtio_user_handle_mq): this transport sets up and
 *   enables exactly the rings of the pairs the driver opens, so no VQ_PAIRS_SET is needed.
 * - Ring addresses: SET_VRING_ADDR takes the front-end's user (virtual) addresses of the rings,
 *   the descriptors carry device ("guest") addresses; the backend translates both through the
 *   memory table of the SharedMemoryDmaAllocator (vhost-user: "Memory access").
 */
import { DeviceProtocolError, DmaError, NotSupportedError } from "../../../errors.ts";
import type { SharedMemoryDmaAllocator, SharedRegion } from "../../../mem/shared-dma.ts";
import { close } from "../../../sys/libc.ts";
import { createEventFd } from "../../../sys/eventfd.ts";
import type { NotifyTarget, RingAddresses, VirtioTransport } from "../transport.ts";
import { NO_TRACE, type DriverTrace } from "../../../pci/register-trace.ts";
import {
  describeFeatures,
  feature,
  hasFeature,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_NET_CONFIG_MAC,
  VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MQ,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_F_STATUS,
  VIRTIO_F_RING_PACKED,
  VIRTQ_MAX_SIZE,
} from "../virtio-types.ts";
import { VhostUserChannel } from "./channel.ts";
import { VhostUserDisconnectedError } from "./errors.ts";
import { KickMmio } from "./kick-mmio.ts";
import { onSharedRegionAdded } from "./shared-memory.ts";
import {
  MEMORY_MAX_REGIONS,
  PayloadSize,
  VHOST_USER_F_PROTOCOL_FEATURES,
  VhostUserProtocolFeature,
  VhostUserRequest as R,
  VRING_INDEX_MASK,
  VRING_NOFD,
} from "./protocol.ts";

/**
 * What every queue reports as its maximum size: vhost-user has no way to ask, so the largest a
 * split virtqueue may have (DPDK takes up to that); createVhostUserDevice picks 256 unless told.
 */
export const QUEUE_MAX_SIZE = VIRTQ_MAX_SIZE;
/**
 * The most queue pairs this front-end drives: SET_VRING_KICK and _CALL name the ring in bits 0-7
 * of their payload (vhost-user: SET_VRING_KICK), so rings 0 to 255, 128 pairs (DPDK's
 * VHOST_MAX_QUEUE_PAIRS, which its GET_QUEUE_NUM answers, is 128 too).
 */
export const MAX_QUEUE_PAIRS = (VRING_INDEX_MASK + 1) / 2;
/** Protocol features this front-end uses, when offered. */
const WANTED_PROTOCOL_FEATURES =
  feature(VhostUserProtocolFeature.REPLY_ACK) | feature(VhostUserProtocolFeature.MQ) | feature(VhostUserProtocolFeature.CONFIG);
/** SET_VRING_BASE of a new packed ring: index 0, wrap counter 1 in bit 15. */
const PACKED_RING_BASE = 0x8000;
/** How long close() waits for each GET_VRING_BASE: a backend that hangs must not hang close(). */
const STOP_TIMEOUT_MS = 1000;

export interface VhostUserTransportOptions {
  /** The backend's socket. */
  readonly path: string;
  /** Names the device in errors ("vhost-user:/run/vhost.sock"). */
  readonly name: string;
  /** The memory the rings and buffers come from: its regions are the memory table. */
  readonly dma: SharedMemoryDmaAllocator;
  /** How long to wait for the backend to listen, and for each reply (ms). */
  readonly timeoutMs: number;
  /** The MAC address to report when the backend has none to give. */
  readonly mac?: Uint8Array;
  /** Trace mode: the messages go here (default NO_TRACE). */
  readonly trace?: DriverTrace;
}

interface ActiveQueue {
  readonly index: number;
  readonly kickFd: number;
}

export class VhostUserTransport implements VirtioTransport {
  readonly kind = "vhost-user";
  readonly hasFeaturesOk = true;
  readonly canResizeQueues = true;
  readonly trace: DriverTrace;
  /** What GET_FEATURES answered. */
  readonly backendFeatures: bigint;
  /** The protocol features negotiated (0 when the backend has none). */
  readonly protocolFeatures: bigint;
  /**
   * Queue pairs the backend has: GET_QUEUE_NUM's answer (capped at MAX_QUEUE_PAIRS) with
   * VHOST_USER_PROTOCOL_F_MQ, else 1 (vhost-user: "Multiple queue support").
   */
  readonly maxQueuePairs: number;
  readonly #name: string;
  readonly #channel: VhostUserChannel;
  readonly #dma: SharedMemoryDmaAllocator;
  readonly #mac: Uint8Array | null;
  readonly #config: boolean;
  readonly #queues: ActiveQueue[] = [];
  /** Kick eventfds made so far; closed by close(). */
  readonly #kickFds: number[] = [];
  /** Call eventfds of enableInterrupts(), by vector; closed by disableInterrupts() and close(). */
  #callFds: number[] = [];
  #unsubscribe: (() => void) | null = null;
  #status = 0;
  #featuresAccepted = false;
  /** VHOST_USER_F_PROTOCOL_FEATURES went out with SET_FEATURES: rings need SET_VRING_ENABLE. */
  #ringsStartDisabled = false;
  #memTableSent = false;
  #closed = false;
  /** VIRTIO_F_RING_PACKED went out with SET_FEATURES: ring bases carry a wrap counter. */
  #packed = false;

  /**
   * Connects and does the session set-up that comes before the virtio initialization:
   * SET_OWNER, GET_FEATURES, GET/SET_PROTOCOL_FEATURES (and GET_QUEUE_NUM with MQ). On error
   * the socket is closed again.
   */
  constructor(options: VhostUserTransportOptions) {
    this.#name = options.name;
    this.#dma = options.dma;
    this.#mac = options.mac ?? null;
    const channel = VhostUserChannel.connect(options.path, options.name, options.timeoutMs);
    this.trace = options.trace ?? NO_TRACE;
    channel.trace = this.trace;
    this.#channel = channel;
    this.trace.step("vhost-user", "session set-up");
    try {
      // "SET_OWNER: Issued when a new connection is established."
      channel.command(R.SET_OWNER, (m, f) => m.empty(R.SET_OWNER, f));
      this.backendFeatures = channel.query(R.GET_FEATURES, (m, f) => m.empty(R.GET_FEATURES, f), PayloadSize.u64).payloadU64;
      this.protocolFeatures = 0n;
      let maxPairs = 1;
      if (hasFeature(this.backendFeatures, VHOST_USER_F_PROTOCOL_FEATURES)) {
        // "GET_PROTOCOL_FEATURES: Only legal if feature bit VHOST_USER_F_PROTOCOL_FEATURES is
        // present in VHOST_USER_GET_FEATURES. It does not need to be acknowledged by SET_FEATURES."
        const offered = channel.query(R.GET_PROTOCOL_FEATURES, (m, f) => m.empty(R.GET_PROTOCOL_FEATURES, f), PayloadSize.u64).payloadU64;
        this.protocolFeatures = offered & WANTED_PROTOCOL_FEATURES;
        const chosen = this.protocolFeatures;
        channel.command(R.SET_PROTOCOL_FEATURES, (m, f) => m.u64(R.SET_PROTOCOL_FEATURES, chosen, f));
        // REPLY_ACK is in force for the requests after the one that negotiated it.
        if (hasFeature(chosen, VhostUserProtocolFeature.REPLY_ACK)) channel.enableReplyAck();
        // GET_QUEUE_NUM: "This request should be sent only when VHOST_USER_PROTOCOL_F_MQ is set
        // in queried protocol features". For vhost-user-net the answer counts queue pairs (qemu
        // compares it with its queues=, DPDK answers VHOST_MAX_QUEUE_PAIRS).
        if (hasFeature(chosen, VhostUserProtocolFeature.MQ)) {
          const pairs = channel.query(R.GET_QUEUE_NUM, (m, f) => m.empty(R.GET_QUEUE_NUM, f), PayloadSize.u64).payloadU64;
          if (pairs < 1n) throw new DeviceProtocolError(`${this.#name}: the backend has ${pairs} queue pairs (GET_QUEUE_NUM); at least 1 is needed`);
          maxPairs = pairs > BigInt(MAX_QUEUE_PAIRS) ? MAX_QUEUE_PAIRS : Number(pairs);
        }
      }
      this.maxQueuePairs = maxPairs;
      this.#config = hasFeature(this.protocolFeatures, VhostUserProtocolFeature.CONFIG);
      this.#unsubscribe = onSharedRegionAdded((region, table) => this.#announce(region, table));
    } catch (e) {
      channel.close();
      throw e;
    }
  }

  /**
   * Stops the rings: GET_VRING_BASE for each queue set up ("Ring states": it stops the ring; the
   * reply is the ring's last available index). Then the status is 0 and the queues may be set up
   * again. Never throws (close() must work on a dead backend): a failure breaks the channel,
   * getStatus() reads DEVICE_NEEDS_RESET, and close() disconnects, after which backends (DPDK's,
   * the model) stop and unmap our memory.
   */
  reset(): void {
    for (const q of this.#queues.splice(0)) {
      if (this.#channel.broken !== null) break;
      try {
        const m = this.#channel.query(R.GET_VRING_BASE, (m, f) => m.state(R.GET_VRING_BASE, q.index, 0, f), PayloadSize.state, STOP_TIMEOUT_MS);
        if (m.stateIndex !== q.index) {
          // Not worth an exception at reset: the stream is suspect, so stop talking.
          this.#channel.close();
        }
      } catch {
        // The channel is broken now and says why at the next control call.
      }
    }
    this.#status = 0;
    this.#featuresAccepted = false;
  }

  getStatus(): number {
    return this.#status | (this.#channel.broken !== null ? VIRTIO_CONFIG_S_NEEDS_RESET : 0);
  }

  /** Keeps the status; FEATURES_OK only sticks once the backend accepted the features. */
  setStatus(status: number): void {
    this.#status = this.#featuresAccepted ? status : status & ~VIRTIO_CONFIG_S_FEATURES_OK;
  }

  /**
   * The backend's features as the driver may use them: VIRTIO_NET_F_MAC and _STATUS only with a
   * configuration space to read them from (CONFIG), VIRTIO_NET_F_MAC also with a `mac` option;
   * VIRTIO_NET_F_MQ only with VHOST_USER_PROTOCOL_F_MQ (GET_QUEUE_NUM gives its
   * max_virtqueue_pairs; DPDK's virtio-user hides MQ likewise).
   */
  readDeviceFeatures(): bigint {
    let features = this.backendFeatures;
    // (VIRTIO_NET_F_MTU too: its field is in the configuration space.)
    if (!this.#config) features &= ~(feature(VIRTIO_NET_F_MAC) | feature(VIRTIO_NET_F_STATUS) | feature(VIRTIO_NET_F_MTU));
    if (!hasFeature(this.protocolFeatures, VhostUserProtocolFeature.MQ)) features &= ~feature(VIRTIO_NET_F_MQ);
    if (this.#mac !== null) features |= feature(VIRTIO_NET_F_MAC);
    return features;
  }

  /** SET_FEATURES with the driver's choice, of which the backend gets only what it offered. */
  writeDriverFeatures(features: bigint): void {
    const sent = features & this.backendFeatures;
    const ack = this.#channel.commandAck(R.SET_FEATURES, (m, f) => m.u64(R.SET_FEATURES, sent, f));
    // Without REPLY_ACK, a backend that refuses closes the connection (DPDK does): a reply to
    // GET_FEATURES proves it took SET_FEATURES, as qemu checks it.
    if (!this.#channel.replyAck) this.#channel.query(R.GET_FEATURES, (m, f) => m.empty(R.GET_FEATURES, f), PayloadSize.u64);
    this.#featuresAccepted = ack === 0n;
    this.#ringsStartDisabled = hasFeature(sent, VHOST_USER_F_PROTOCOL_FEATURES);
    this.#packed = hasFeature(sent, VIRTIO_F_RING_PACKED);
  }

  /** Receive and transmit queues of every pair the backend has (§5.1.2: 2k and 2k+1); no control queue. */
  queueSize(index: number): number {
    return index < 2 * this.maxQueuePairs ? QUEUE_MAX_SIZE : 0;
  }

  /**
   * vhost-user: the memory table first (once), then per ring, in qemu's order: SET_VRING_NUM,
   * SET_VRING_BASE (the rings are new), SET_VRING_ADDR (packed rings: descriptor ring, driver
   * area as "avail", device area as "used"), SET_VRING_KICK, SET_VRING_CALL, and
   * SET_VRING_ENABLE when the rings start disabled ("Ring states"). Every queue pair the driver
   * opens is set up this way and enabled ("Multiple queue support": "The front-end enables
   * queues by sending message VHOST_USER_SET_VRING_ENABLE"); pairs it does not open are left
   * stopped, and the backend never hands frames to a stopped or disabled ring.
   */
  activateQueue(index: number, size: number, rings: RingAddresses, vector?: number): NotifyTarget {
    if (index >= 2 * this.maxQueuePairs) {
      throw new NotSupportedError(
        `${this.#name}: virtqueue ${index}: the backend has ${this.maxQueuePairs} queue pair(s) (rings 0 to ${2 * this.maxQueuePairs - 1}; ` +
          `no control queue over vhost-user)`,
      );
    }
    const c = this.#channel;
    if (!this.#memTableSent) {
      this.#sendMemTable(this.#dma.regions());
      this.#memTableSent = true;
    }
    c.command(R.SET_VRING_NUM, (m, f) => m.state(R.SET_VRING_NUM, index, size, f), [], `queue ${index}, size ${size}`,
      "its rings may be smaller (vhost-user cannot ask): open the device with a smaller rxRingSize/txRingSize");
    // A packed ring's base is the next available index in bits 0-14 and the wrap counter in bit 15
    // (qemu and DPDK: GET/SET_VRING_BASE); a new ring starts at 0 with the counter 1 (§2.8.2).
    const base = this.#packed ? PACKED_RING_BASE : 0;
    c.command(R.SET_VRING_BASE, (m, f) => m.state(R.SET_VRING_BASE, index, base, f), [], `queue ${index}`);
    const user = { desc: this.#userAddress(rings.desc), used: this.#userAddress(rings.used), avail: this.#userAddress(rings.avail), log: 0 };
    c.command(R.SET_VRING_ADDR, (m, f) => m.addr(R.SET_VRING_ADDR, index, 0, user, f), [], `queue ${index}`);
    const kickFd = createEventFd(`${this.#name}: kick eventfd of queue ${index}`);
    this.#kickFds.push(kickFd);
    c.command(R.SET_VRING_KICK, (m, f) => m.u64(R.SET_VRING_KICK, BigInt(index), f), [kickFd], `queue ${index}`);
    const callFd = vector === undefined ? undefined : this.#callFds[vector];
    if (vector !== undefined && callFd === undefined) throw new RangeError(`${this.#name}: queue ${index}: no call eventfd for vector ${vector}`);
    if (callFd === undefined) {
      c.command(R.SET_VRING_CALL, (m, f) => m.u64(R.SET_VRING_CALL, BigInt(index | VRING_NOFD), f), [], `queue ${index}, no fd`);
    } else {
      c.command(R.SET_VRING_CALL, (m, f) => m.u64(R.SET_VRING_CALL, BigInt(index), f), [callFd], `queue ${index}, call eventfd`);
    }
    if (this.#ringsStartDisabled) c.command(R.SET_VRING_ENABLE, (m, f) => m.state(R.SET_VRING_ENABLE, index, 1, f), [], `queue ${index}`);
    this.#queues.push({ index, kickFd });
    return { mmio: new KickMmio(`${this.#name} queue ${index} kick`, kickFd), offset: 0 };
  }

  readConfig8(offset: number): number {
    const mac = this.#macByte(offset);
    return mac ?? this.#getConfig(offset, 1)[0]!;
  }

  readConfig16(offset: number): number {
    // max_virtqueue_pairs is the front-end's to give (GET_QUEUE_NUM), as DPDK's virtio-user
    // answers it (virtio_user_read_dev_config): a backend's configuration space need not have it.
    if (offset === VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS) return this.maxQueuePairs;
    const bytes = this.#getConfig(offset, 2);
    return bytes[0]! | (bytes[1]! << 8);
  }

  /** No configuration generation over vhost-user: GET_CONFIG reads a field in one message. */
  configGeneration(): number {
    return 0;
  }

  /**
   * vhost-user has no MSI-X: a "vector" is one of the call eventfds made here, which the backend
   * gets with SET_VRING_CALL (activateQueue). Any number can be had.
   */
  enableInterrupts(vectors: number): readonly number[] {
    this.disableInterrupts();
    for (let i = 0; i < vectors; i++) this.#callFds.push(createEventFd(`${this.#name}: call eventfd ${i}`));
    return this.#callFds.slice();
  }

  /** No configuration-change interrupt over vhost-user (the backend has no config space to change here). */
  setConfigVector(_vector: number): void {}

  disableInterrupts(): void {
    for (const fd of this.#callFds.splice(0)) {
      try {
        close(fd);
      } catch {
        // already gone
      }
    }
  }

  /** A VhostUserDisconnectedError once the backend is gone (the control calls check it). */
  checkConnected(what: string): void {
    this.#channel.checkConnected(what);
  }

  /** Closes the connection and the kick eventfds; stops announcing memory. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    this.#channel.close();
    this.disableInterrupts();
    for (const fd of this.#kickFds.splice(0)) {
      try {
        close(fd);
      } catch {
        // already gone
      }
    }
  }

  /** vhost-user: SET_MEM_TABLE with every region's fd (one per region, in table order). */
  #sendMemTable(table: readonly SharedRegion[]): void {
    if (table.length === 0 || table.length > MEMORY_MAX_REGIONS) {
      throw new DmaError(`${this.#name}: a memory table of ${table.length} regions cannot be sent (1 to ${MEMORY_MAX_REGIONS})`);
    }
    this.#channel.command(
      R.SET_MEM_TABLE,
      (m, f) => m.memTable(R.SET_MEM_TABLE, table, f),
      table.map((r) => r.fd),
      `${table.length} regions`,
    );
  }

  /**
   * A region was added to the shared memory (by any device): this backend must map it before any
   * address in it reaches a ring. A backend already gone is left alone (its device reports it);
   * one that refuses fails the allocation.
   */
  #announce(_region: SharedRegion, table: readonly SharedRegion[]): void {
    if (!this.#memTableSent || this.#closed || this.#channel.broken !== null) return;
    try {
      this.#sendMemTable(table);
    } catch (e) {
      if (e instanceof VhostUserDisconnectedError) return;
      throw e;
    }
  }

  #userAddress(guestAddress: number): number {
    return this.#dma.userAddressOf(guestAddress);
  }

  #macByte(offset: number): number | null {
    if (this.#mac === null || offset < VIRTIO_NET_CONFIG_MAC || offset >= VIRTIO_NET_CONFIG_MAC + 6) return null;
    return this.#mac[offset - VIRTIO_NET_CONFIG_MAC]!;
  }

  /** vhost-user: GET_CONFIG of `size` bytes at `offset` of struct virtio_net_config. */
  #getConfig(offset: number, size: number): Uint8Array {
    if (!this.#config) {
      throw new DeviceProtocolError(
        `${this.#name}: device configuration field at offset ${offset} read, but the backend has no configuration ` +
          `space (no VHOST_USER_PROTOCOL_F_CONFIG; features ${describeFeatures(this.backendFeatures)})`,
      );
    }
    const m = this.#channel.query(R.GET_CONFIG, (m, f) => m.config(R.GET_CONFIG, offset, size, 0, f), PayloadSize.configHeader + size);
    if (m.configOffset !== offset || m.configSize !== size) {
      throw new DeviceProtocolError(
        `${this.#name}: VHOST_USER_GET_CONFIG: asked for ${size} bytes at ${offset}, the reply describes ` +
          `${m.configSize} bytes at ${m.configOffset}`,
      );
    }
    return m.configData(size).slice();
  }
}
