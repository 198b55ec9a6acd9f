/**
 * VirtioNetModel: a behavioural virtio-net device (virtio 1.2 §5.1) for tests and --sim runs.
 * It has what a driver can observe of qemu's virtio-net-pci:
 *
 * - PCI identity 1af4:1041 (modern) or 1af4:1000 (transitional, `legacy: true`), the modern
 *   interface through vendor capabilities into BAR4 and, for a transitional device, the legacy
 *   interface in the I/O-port BAR0 (modern-interface.ts, legacy-interface.ts);
 * - the status state machine and feature negotiation (virtio-core.ts), refusing features it does
 *   not offer; by default it also offers features it does not implement (receive coalescing
 *   GUEST_TSO4/6, event index, ...) to check that drivers decline them;
 * - the data-path offloads of net-offloads.ts, offered by default as qemu with a tap netdev does:
 *   VIRTIO_NET_F_CSUM and HOST_TSO4/6 on transmit, GUEST_CSUM and MRG_RXBUF on receive (a frame
 *   larger than one receive buffer, or than `mergeSplit`, spans several, num_buffers says how
 *   many), VIRTIO_NET_F_MTU with the `mtu` option;
 * - a receive queue fed by inject() from a traffic source, with the receive filter of the control
 *   queue's VIRTIO_NET_CTRL_RX class (promiscuous on after reset, as in qemu);
 * - a transmit queue processed synchronously when notified, frames handed to onTransmit and to a
 *   connected peer; VIRTQ_USED_F_NO_NOTIFY on request (then poll() plays the device thread);
 * - split virtqueues, and with `packed: true` (qemu's packed=on) packed ones (packed-device-ring.ts)
 *   once the driver accepts VIRTIO_F_RING_PACKED; everything below works on both;
 * - or, with `completion: "async"`, a device that works only when stepped (step(), poll()): it
 *   takes receive buffers ahead and fills them in a seeded-random order, returns used entries in
 *   random chunks, and completes transmitted chains out of order (allowed without
 *   VIRTIO_F_IN_ORDER: split rings §2.7.9, packed rings §2.8.9); control commands complete a few
 *   status reads later;
 * - with `queuePairs: N` (qemu's mq=on,queues=N), VIRTIO_NET_F_MQ: N receive/transmit queue pairs
 *   and the control queue at index 2N once the driver accepts MQ (§5.1.2), one active pair after
 *   reset until VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET (§5.1.6.5.5), received frames spread over the
 *   active receive queues by a flow hash (#steer);
 * - qemu's virtio_error(): the violations qemu treats as fatal break the device (it stops, and
 *   sets DEVICE_NEEDS_RESET for a virtio 1.x driver) until it is reset (virtio-core.ts);
 * - fault modes (`faults`, VirtioNetFaults): bad, repeated and stale used ids, used.idx jumping
 *   ahead or going back, bad used lengths, a stalled device or control queue, a configuration
 *   generation that keeps changing, a slow or stuck reset, refused features and commands.
 */
import { BarKind, PCI_CAP_ID_MSIX, type BarKind as BarKindType } from "../../pci/pci-function.ts";
import type { DeviceAddressSpace } from "../address-space.ts";
import { SimMmio } from "../sim-mmio.ts";
import { SimPciFunction, type SimPciOptions } from "../sim-pci.ts";
import type { Chain, Segment } from "./device-ring.ts";
import type { AnyDeviceRing } from "./virtio-core.ts";
import { attachLegacyInterface, LEGACY_BAR_SIZE } from "./legacy-interface.ts";
import { attachModernInterface, MODERN_BAR_SIZE } from "./modern-interface.ts";
import { VirtioCore } from "./virtio-core.ts";
import { HDR_NUM_BUFFERS, newOffloadCounters, offloadFeatureProblem, receiveHeader, transmitWithHeader, type OffloadCounters,
  type OffloadHost, type PartialChecksum } from "./net-offloads.ts";
import {
  bit,
  CTRL_MQ,
  CTRL_MQ_VQ_PAIRS_MAX,
  CTRL_MQ_VQ_PAIRS_MIN,
  CTRL_MQ_VQ_PAIRS_SET,
  CTRL_RX,
  CTRL_RX_ALLMULTI,
  CTRL_RX_PROMISC,
  F,
  NET_CONFIG_SIZE,
  NET_ERR,
  NET_OK,
  NET_S_LINK_UP,
} from "./virtio-spec.ts";

export interface VirtioNetModelOptions {
  readonly dma: DeviceAddressSpace;
  /** PCI address shown to the driver (default "sim:virtioN"). */
  readonly address?: string;
  readonly mac?: Uint8Array;
  /** Maximum size of the receive and transmit queues, a power of two (default 256). */
  readonly queueSize?: number;
  /** Offered features, as a BigInt or [low 32 bits, high 32 bits]; replaces the default set. */
  readonly features?: bigint | readonly [number, number];
  /** Offer VIRTIO_F_ACCESS_PLATFORM (qemu iommu_platform=on). Default: true unless `legacy`. */
  readonly accessPlatform?: boolean;
  /** A transitional device (1af4:1000) with the legacy I/O BAR0 besides the modern interface. */
  readonly legacy?: boolean;
  /** Doorbell spacing of the notification area (default 4, as qemu; 0: one shared doorbell). */
  readonly notifyOffMultiplier?: number;
  /** Link state at power-on (default up). */
  readonly link?: boolean;
  /** MSI-X table entries (default 2 x queue pairs + 2, as qemu's virtio-net-pci `vectors`). */
  readonly msixVectors?: number;
  /** Offer (and implement) VIRTIO_F_RING_PACKED, as qemu's packed=on (default false, as qemu). */
  readonly packed?: boolean;
  /**
   * What drives the device. "pci" (default): the modern (and legacy) register files of `pci`.
   * "external": no register file is attached (`pci` only names the device); a transport of its
   * own, the vhost-user backend of src/sim/vhost-user/, drives `core` from its messages, and DMA
   * is never gated by bus mastering (there is no bus).
   */
  readonly transport?: "pci" | "external";
  /**
   * Offer VIRTIO_F_ORDER_PLATFORM (bit 36) and, as a PCI add-in card may (§6.1), fail
   * FEATURES_OK when the driver does not accept it. Default false (qemu does not offer it).
   */
  readonly orderPlatform?: boolean;
  /**
   * "instant" (default): transmit and control work is done inside the notification, a received
   * frame is in the used ring when inject() returns. "async": see the file comment.
   */
  readonly completion?: "instant" | "async";
  /** Seed of the asynchronous mode's random choices (default 1). */
  readonly seed?: number;
  /**
   * Offer the data-path offloads of net-offloads.ts (CSUM, GUEST_CSUM, HOST_TSO4/6, MRG_RXBUF)
   * with the default feature set (default true, as qemu with a tap netdev; false: a device
   * without them, like one whose header every test writes itself).
   */
  readonly offloads?: boolean;
  /** Offer VIRTIO_NET_F_MTU with this mtu in the device configuration (qemu's host_mtu); default: not offered. */
  readonly mtu?: number;
  /**
   * Receive/transmit queue pairs (qemu's mq=on with queues=N): above 1, VIRTIO_NET_F_MQ is offered
   * and max_virtqueue_pairs says N (§5.1.4). Default 1: MQ not offered, three queues as before.
   */
  readonly queuePairs?: number;
}

/**
 * Fault injection, for tests and soak runs. Each says what the driver must notice. "Detected"
 * means: never a frame delivered from the bad entry, never a buffer freed that the device still
 * holds, and a DeviceProtocolError from the next call (or the same one).
 */
export interface VirtioNetFaults {
  /** Every MSI-X vector written to msix_config or queue_msix_vector reads back NO_VECTOR (§4.1.5.1.2.1). */
  refuseVectors?: boolean;
  /** Receive: report a used length one byte beyond the buffer the driver posted (counted in rxErrors; the frame is dropped). */
  badUsedLength?: boolean;
  /** Receive and transmit: every used entry names descriptor ring size + 7 instead of the chain used (which is stranded). Detected. */
  badUsedId?: boolean;
  /** Receive, transmit and control: every used entry is written twice (same id and length) and both are published at once. Detected. */
  repeatUsedId?: boolean;
  /**
   * Receive, transmit and control: a used entry names a chain the device completed before and the
   * driver has not made available again, instead of the chain used (stranded); the real one when
   * there is no such chain. Detected.
   */
  staleUsedId?: boolean;
  /**
   * Receive, transmit and control: the next publication of used.idx runs this many entries (below
   * the ring size) beyond what the device wrote, and the device carries on from there; then the
   * fault clears itself. Detected when the jump takes used.idx beyond the buffers the device holds
   * (always on a transmit ring with fewer in flight, a legacy receive ring larger than the
   * driver's share), or when a skipped slot names an id the driver does not hold; a jump within a
   * full receive ring over slots naming held ids is indistinguishable from real completions.
   * Packed rings (no used index): the device marks that many descriptors after the ones it wrote
   * used as well (their id and length are what the driver left there) and carries on after them.
   */
  usedIndexJump?: number;
  /**
   * Receive, transmit and control: the next publication of used.idx is this many entries behind
   * the previous one (the entries are written; the publication after puts it right). Detected once
   * the driver has consumed up to the previous one (otherwise it cannot be told from a late one).
   * Packed rings have no index a device could move back (each used descriptor is published by its
   * own flags): the last this-many entries of the next publication get their flags only with the
   * publication after it, a delay the driver must simply wait out.
   */
  usedIndexBack?: number;
  /** Ignore notifications and traffic: no used-ring updates until cleared and poll() is called. */
  stall?: boolean;
  /**
   * Control queue: commands stay in the ring, untouched and never completed, while set; once
   * cleared, the next notification or poll() processes them with what the descriptors hold then.
   * The driver times out (DeviceTimeoutError) and must not reuse the queue.
   */
  ctrlNeverCompletes?: boolean;
  /** config_generation changes on each of the next this many device-configuration reads (Infinity: every read). Counts down. */
  configGenerationChurn?: number;
  /** A reset (status 0) takes effect only at the this-many-th status read after it (Infinity: never, a stuck reset); the device runs on until then. */
  resetReads?: number;
  /** Refuse every feature set: FEATURES_OK never sticks. */
  refuseFeatures?: boolean;
  /** Answer every control command with VIRTIO_NET_ERR. */
  rejectCtrl?: boolean;
}

export interface VirtioNetCounters extends OffloadCounters {
  rxFrames: number;
  rxBytes: number;
  /** Frames lost for want of a receive buffer (or while the device is not running or stalled). */
  rxDropped: number;
  /** Frames the receive filter rejected (promiscuous mode off). */
  rxFiltered: number;
  /** Frames larger than the receive buffer. */
  rxOversize: number;
  txFrames: number;
  txBytes: number;
  /** Transmitted frames whose virtio_net_hdr the device refused (net-offloads.ts): not sent. */
  txBadHeader: number;
  /** Received frames written over more than one buffer (MRG_RXBUF, num_buffers above 1). */
  rxMerged: number;
  ctrlCommands: number;
  /** Per queue pair: frames written to receiveq(i+1) and sent from transmitq(i+1). */
  rxQueueFrames: number[];
  txQueueFrames: number[];
}

export interface CtrlCommand {
  readonly cls: number;
  readonly command: number;
  readonly data: readonly number[];
  readonly ack: number;
}

/** A SimPciFunction whose listed BARs are I/O-port BARs, as BAR0 of a transitional device. */
class VirtioSimPciFunction extends SimPciFunction {
  readonly #ioBars: ReadonlySet<number>;
  constructor(options: SimPciOptions, ioBars: readonly number[]) {
    super(options);
    this.#ioBars = new Set(ioBars);
  }
  override barKind(index: number): BarKindType {
    const kind = super.barKind(index);
    return kind !== BarKind.none && this.#ioBars.has(index) ? BarKind.io : kind;
  }
  /** Called when bus mastering goes from off to on. */
  onBusMasterEnable: (() => void) | null = null;
  override enableDma(): void {
    const was = this.busMasterEnabled;
    super.enableDma();
    if (!was) this.onBusMasterEnable?.();
  }
}

/** The data-path offloads (net-offloads.ts), offered by default. */
const OFFLOADS = bit(F.CSUM) | bit(F.GUEST_CSUM) | bit(F.HOST_TSO4) | bit(F.HOST_TSO6) | bit(F.MRG_RXBUF);
/** Offered and implemented by the model. */
const IMPLEMENTED =
  bit(F.VERSION_1) | bit(F.ACCESS_PLATFORM) | bit(F.ANY_LAYOUT) | bit(F.MAC) | bit(F.STATUS) | bit(F.CTRL_VQ) | bit(F.CTRL_RX) |
  bit(F.RING_PACKED) | bit(F.MQ) | OFFLOADS | bit(F.MTU);
/** Offered by default like qemu, but not implemented: a driver must leave them alone. */
const IMPLEMENTED_TOO = bit(F.ORDER_PLATFORM);
const BAIT = bit(F.GUEST_TSO4) | bit(F.GUEST_TSO6) | bit(F.CTRL_VLAN) | bit(F.INDIRECT_DESC) | bit(F.EVENT_IDX);
const CTRL_QUEUE_SIZE = 64;
let instances = 0;

export class VirtioNetModel {
  readonly pci: SimPciFunction;
  readonly mac: Uint8Array;
  /** Transitional device (legacy BAR0 present). */
  readonly transitional: boolean;
  readonly faults: VirtioNetFaults = {};
  readonly counters: VirtioNetCounters = {
    rxFrames: 0,
    rxBytes: 0,
    rxDropped: 0,
    rxFiltered: 0,
    rxOversize: 0,
    txFrames: 0,
    txBytes: 0,
    txBadHeader: 0,
    rxMerged: 0,
    ...newOffloadCounters(),
    ctrlCommands: 0,
    rxQueueFrames: [],
    txQueueFrames: [],
  };
  /** Every control command, in order. */
  readonly ctrlLog: CtrlCommand[] = [];
  /** Each transmitted frame (each segment of a TSO frame), with the queue pair it was sent on (0: transmitq1). */
  onTransmit: ((frame: Uint8Array, pair: number) => void) | null = null;
  /**
   * With MRG_RXBUF negotiated: the most bytes (header included) the device writes into one
   * receive buffer, so that a frame spans several even where one would do (a device may split
   * where it likes, §5.1.6.4); null: as much as each buffer holds.
   */
  mergeSplit: number | null = null;
  /** max_virtqueue_pairs (§5.1.4): 1 unless the `queuePairs` option says more. */
  readonly queuePairs: number;
  readonly #dma: DeviceAddressSpace;
  readonly #core: VirtioCore;
  readonly #external: boolean;
  readonly #config = new Uint8Array(NET_CONFIG_SIZE);
  #peer: VirtioNetModel | null = null;
  #promisc = true;
  #allmulti = false;
  readonly #async: boolean;
  #seed: number;
  /** Async mode, per queue pair: receive chains taken from the ring and not filled yet. */
  #rxHeld: Chain[][] = [];
  /** Async mode, per queue pair: filled receive chains and completed transmit chains, not yet in the used ring. */
  #rxDone: Array<Array<[number, number]>> = [];
  #txDone: Array<Array<[number, number]>> = [];
  /** Per virtqueue index: ids returned to the driver and not made available again since (for staleUsedId). */
  readonly #returned: number[][] = [];
  /**
   * Queue pairs in use (§5.1.6.5.5): 1 after reset and FEATURES_OK, then what the driver's
   * VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET says.
   */
  #activePairs = 1;
  /** Transmit queues beyond #activePairs already reported as a violation (once each until the count changes). */
  readonly #reportedInactive = new Set<number>();

  constructor(options: VirtioNetModelOptions) {
    if (typeof options.dma?.resolve !== "function") {
      throw new TypeError("VirtioNetModel: options.dma must be a device address space (a SimDma, or a vhost-user backend's guest memory)");
    }
    const queueSize = options.queueSize ?? 256;
    if (!Number.isInteger(queueSize) || queueSize < 1 || queueSize > 32768 || (queueSize & (queueSize - 1)) !== 0) {
      throw new RangeError(`VirtioNetModel: queueSize must be a power of two from 1 to 32768, got ${queueSize}`);
    }
    const transitional = options.legacy ?? false;
    if (transitional && options.accessPlatform === true) {
      // qemu: "VIRTIO_F_IOMMU_PLATFORM was supported by neither legacy nor transitional device".
      throw new TypeError("VirtioNetModel: a transitional (legacy) device cannot offer VIRTIO_F_ACCESS_PLATFORM");
    }
    const mac = options.mac ?? Uint8Array.of(0x52, 0x54, 0x00, 0x12, 0x34, 0x56);
    if (mac.length !== 6) throw new RangeError(`VirtioNetModel: mac must be 6 bytes, got ${mac.length}`);
    const multiplier = options.notifyOffMultiplier ?? 4;
    if (!Number.isInteger(multiplier) || multiplier < 0 || multiplier % 2 !== 0 || multiplier > 0x400) {
      throw new RangeError(`VirtioNetModel: notifyOffMultiplier must be an even number from 0 to 1024, got ${multiplier}`);
    }
    const external = (options.transport ?? "pci") === "external";
    if (options.transport !== undefined && options.transport !== "pci" && options.transport !== "external") {
      throw new TypeError(`VirtioNetModel: transport must be "pci" or "external", got ${JSON.stringify(options.transport)}`);
    }
    if (external && transitional) throw new TypeError("VirtioNetModel: a transitional (legacy) device needs the PCI transport");
    const completion = options.completion ?? "instant";
    if (completion !== "instant" && completion !== "async") {
      throw new TypeError(`VirtioNetModel: completion must be "instant" or "async", got ${JSON.stringify(completion)}`);
    }
    this.#async = completion === "async";
    this.#seed = (options.seed ?? 1) >>> 0 || 1;
    const pairs = options.queuePairs ?? 1;
    // §5.1.4: max_virtqueue_pairs from 1 to 0x8000 (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX); capped lower
    // here because the model allocates state per queue.
    if (!Number.isInteger(pairs) || pairs < 1 || pairs > 256) {
      throw new RangeError(`VirtioNetModel: queuePairs must be an integer from 1 to 256, got ${pairs}`);
    }
    this.queuePairs = pairs;
    for (let i = 0; i < pairs; i++) {
      this.#rxHeld.push([]);
      this.#rxDone.push([]);
      this.#txDone.push([]);
      this.counters.rxQueueFrames.push(0);
      this.counters.txQueueFrames.push(0);
    }
    for (let i = 0; i <= 2 * pairs; i++) this.#returned.push([]);
    const address = options.address ?? `sim:virtio${instances++}`;
    this.#external = external;
    this.transitional = transitional;
    this.mac = mac.slice();
    this.#dma = options.dma;

    let offered = options.features === undefined
      ? bit(F.VERSION_1) | bit(F.MAC) | bit(F.STATUS) | bit(F.CTRL_VQ) | bit(F.CTRL_RX) | BAIT | (options.offloads === false ? 0n : OFFLOADS) |
        (transitional ? bit(F.ANY_LAYOUT) | bit(F.NOTIFY_ON_EMPTY) : 0n)
      : typeof options.features === "bigint"
        ? options.features
        : (BigInt(options.features[1] >>> 0) << 32n) | BigInt(options.features[0] >>> 0);
    const accessPlatform = options.accessPlatform ?? (options.features === undefined ? !transitional : undefined);
    if (accessPlatform === true) offered |= bit(F.ACCESS_PLATFORM);
    if (accessPlatform === false) offered &= ~bit(F.ACCESS_PLATFORM);
    if (options.orderPlatform === true) offered |= bit(F.ORDER_PLATFORM);
    if (options.mtu !== undefined) {
      if (!Number.isInteger(options.mtu) || options.mtu < 68 || options.mtu > 65535) throw new RangeError(`VirtioNetModel: mtu must be from 68 to 65535, got ${options.mtu}`);
      offered |= bit(F.MTU);
    }
    // qemu: packed=on adds VIRTIO_F_RING_PACKED (modern interface only: it is above bit 31).
    if (options.packed === true) offered |= bit(F.RING_PACKED);
    if (pairs > 1) {
      // §5.1.3.1: VIRTIO_NET_F_MQ requires VIRTIO_NET_F_CTRL_VQ (VQ_PAIRS_SET goes through it).
      if ((offered & bit(F.CTRL_VQ)) === 0n) throw new TypeError("VirtioNetModel: queuePairs above 1 needs VIRTIO_NET_F_CTRL_VQ offered");
      offered |= bit(F.MQ);
    }

    // struct virtio_net_config: mac, status, le16 max_virtqueue_pairs (§5.1.4).
    this.#config.set(this.mac, 0);
    this.#config[6] = (options.link ?? true) ? NET_S_LINK_UP : 0;
    this.#config[8] = pairs & 0xff;
    this.#config[9] = pairs >> 8;
    this.#config[10] = (options.mtu ?? 0) & 0xff;
    this.#config[11] = (options.mtu ?? 0) >> 8;

    const modernBar = new SimMmio(`${address} BAR4`, MODERN_BAR_SIZE);
    const legacyBar = transitional ? new SimMmio(`${address} BAR0`, LEGACY_BAR_SIZE) : null;
    this.pci = new VirtioSimPciFunction(
      {
        address,
        vendorId: 0x1af4,
        deviceId: transitional ? 0x1000 : 0x1041,
        // §4.1.2.1: transitional devices have revision 0, modern-only ones 1 or more.
        classRevision: transitional ? 0x02000000 : 0x02000001,
        bars: [legacyBar, null, null, null, modernBar],
      },
      transitional ? [0] : [],
    );
    const pci = this.pci;
    const hasCtrl = (offered & bit(F.CTRL_VQ)) !== 0n;
    this.#core = new VirtioCore({
      name: address,
      dma: options.dma,
      busMaster: external ? () => true : () => pci.busMasterEnabled,
      offered,
      implemented: IMPLEMENTED | IMPLEMENTED_TOO,
      // §5.1.2: receiveq1, transmitq1, ..., receiveqN, transmitqN, controlq. Which index the
      // control queue has depends on whether the driver accepts MQ (#ctrlIndex): at 2 without it
      // (as qemu, which shrinks to one pair then), at 2N with it.
      queueSizes: [...new Array<number>(2 * pairs).fill(queueSize), ...(hasCtrl ? [CTRL_QUEUE_SIZE] : [])],
      requiredQueues: 2,
      refuseFeatures: () => this.faults.refuseFeatures === true || this.#offloadFeaturesRefused(),
      resetReads: () => this.faults.resetReads ?? 0,
      required: options.orderPlatform === true ? bit(F.ORDER_PLATFORM) : 0n,
    });
    const core = this.#core;
    core.onNotify = (index) => this.#onNotify(index);
    core.onReset = () => {
      // qemu's virtio-net comes out of reset promiscuous.
      this.#promisc = true;
      this.#allmulti = false;
      for (const list of [...this.#rxHeld, ...this.#rxDone, ...this.#txDone, ...this.#returned]) list.length = 0;
      // §5.1.6.5.5: multiqueue is off (one pair) until the driver sends VQ_PAIRS_SET.
      this.#activePairs = 1;
      this.#reportedInactive.clear();
    };
    core.onConfigRead = () => {
      const churn = this.faults.configGenerationChurn ?? 0;
      if (churn > 0) {
        this.faults.configGenerationChurn = churn - 1;
        core.configGeneration = (core.configGeneration + 1) & 0xff;
      }
    };
    core.onStatusRead = () => {
      // Async mode: time passes while the driver polls the status; a control command completes
      // after a few reads.
      if (this.#async && !this.faults.stall && this.#random(2) === 0) this.#processCtrl();
    };
    pci.onReset = () => core.reset();
    (pci as VirtioSimPciFunction).onBusMasterEnable = () => {
      // The rings of whoever drove the device before are still live: with bus mastering back on,
      // the device would go on using them (their memory may belong to someone else by now).
      if (core.status !== 0) {
        core.violation(`bus mastering enabled while the device is not reset (status 0x${core.status.toString(16)}): reset it first`);
      }
    };
    if (external) return;

    // MSI-X capability, table and PBA in BAR1. Its enable bit moves the legacy device
    // configuration from 0x14 to 0x18. Used buffers raise the queue's vector (core.usedBuffers).
    const msix = pci.addMsixCapability(options.msixVectors ?? 2 * pairs + 2);
    core.msixTableSize = pci.msix!.count;
    core.onInterrupt = (vector) => pci.signal(vector);
    core.refuseVectors = () => this.faults.refuseVectors === true;
    attachModernInterface(core, pci, modernBar, {
      notifyOffMultiplier: multiplier,
      config: this.#config,
      configFields: [
        [0, 1, "mac[0]"], [1, 1, "mac[1]"], [2, 1, "mac[2]"], [3, 1, "mac[3]"], [4, 1, "mac[4]"], [5, 1, "mac[5]"],
        [6, 2, "status"], [8, 2, "max_virtqueue_pairs"], [10, 2, "mtu"],
      ],
    });
    if (legacyBar !== null) {
      attachLegacyInterface(core, legacyBar, this.#config, () => (pci.config.peek16(msix + 2) & 0x8000) !== 0);
    }
  }

  /** The transport-independent device, for an "external" transport to drive (see the option). */
  get core(): VirtioCore {
    if (!this.#external) {
      throw new TypeError("VirtioNetModel: the core of a PCI model is driven through its registers; build the model with transport: \"external\" to drive it directly");
    }
    return this.#core;
  }

  // --- State for tests --------------------------------------------------------------------------

  get promisc(): boolean {
    return this.#promisc;
  }
  get allmulti(): boolean {
    return this.#allmulti;
  }
  get status(): number {
    return this.#core.status;
  }
  /** Every value the driver wrote to the device status, in order. */
  get statusLog(): readonly number[] {
    return this.#core.statusLog;
  }
  /** Every status the device took after each write (a write it dropped repeats the old one). */
  get statusHistory(): readonly number[] {
    return this.#core.statusHistory;
  }
  /** Whether a fatal error broke the device (qemu's virtio_error) since the last reset. */
  get broken(): boolean {
    return this.#core.broken;
  }
  /**
   * Interrupts of virtqueue `index` (0: receiveq1): its MSI-X vector (NO_VECTOR 0xffff: none),
   * and the used-buffer notifications it sent, which the driver had not suppressed.
   */
  queueInterrupts(index: number): { vector: number; sent: number } {
    const q = this.#core.queues[index]!;
    return { vector: q.msixVector, sent: q.interrupts };
  }
  /** The configuration-change vector (msix_config). */
  get configVector(): number {
    return this.#core.msixConfig;
  }
  /** Notifications that reached no eventfd: MSI-X disabled, or a vector beyond those enabled. */
  get lostInterrupts(): number {
    return this.#core.lostInterrupts;
  }
  /** Protocol violations observed (empty for a well-behaved driver). */
  get violations(): readonly string[] {
    return this.#core.violations;
  }
  get offeredFeatures(): bigint {
    return this.#core.offered;
  }
  /** The features the driver accepted (since the last reset). */
  get driverFeatures(): bigint {
    return this.#core.driverFeatures;
  }
  /** Whether the driver uses the legacy interface. */
  get legacyMode(): boolean {
    return this.#core.legacy;
  }
  /** Available-buffer notifications per queue: [receive, transmit, control]. */
  get notifications(): readonly number[] {
    return this.#core.queues.map((q) => q.notifications);
  }
  get resets(): number {
    return this.#core.resets;
  }
  get linkUp(): boolean {
    return (this.#config[6]! & NET_S_LINK_UP) !== 0;
  }
  /** Size the driver configured for queue `index` (0 while it is not enabled). */
  queueSize(index: number): number {
    const q = this.#core.queues[index];
    return q?.enabled ? q.size : 0;
  }
  /** Receive buffers the driver has made available on receiveq1 and the device has not used yet. */
  get rxBuffersAvailable(): number {
    return this.rxBuffersAvailableOn(0);
  }
  /** Likewise on the receive queue of pair `pair` (0: receiveq1). */
  rxBuffersAvailableOn(pair: number): number {
    const ring = this.#core.ring(2 * pair);
    return ring === null ? 0 : ring.pending + (this.#rxHeld[pair]?.length ?? 0);
  }
  /** Queue pairs in use: 1 until the driver's VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET (§5.1.6.5.5). */
  get activeQueuePairs(): number {
    return this.#activePairs;
  }
  /**
   * "external" transport only: the queue pairs in use, as the transport decides them. Over
   * vhost-user no VQ_PAIRS_SET reaches the device (the front-end serves the control queue and
   * enables rings with SET_VRING_ENABLE instead), so the backend says: every pair of the layout.
   * Undone by a reset, like VQ_PAIRS_SET.
   */
  setActiveQueuePairs(pairs: number): void {
    if (!this.#external) throw new TypeError("VirtioNetModel: setActiveQueuePairs() is for an external transport; a PCI driver sends VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET");
    if (!Number.isInteger(pairs) || pairs < 1 || pairs > this.#layoutPairs()) {
      throw new RangeError(`VirtioNetModel: setActiveQueuePairs(${pairs}): from 1 to the ${this.#layoutPairs()} pair(s) of the layout`);
    }
    this.#activePairs = pairs;
    this.#reportedInactive.clear();
  }
  /** The control queue's index: 2 * max_virtqueue_pairs with MQ negotiated, else 2 (§5.1.2). */
  get ctrlQueueIndex(): number {
    return this.#ctrlIndex();
  }
  /**
   * Queue `index`'s ring indices while the device runs (null otherwise): avail.idx as the driver
   * published it, the next available entry the device will take, and the used.idx it wrote last.
   * Read-only; for tests that check a call left a ring alone.
   */
  ringIndices(index: number): { readonly availIdx: number; readonly lastAvail: number; readonly usedIdx: number } | null {
    const ring = this.#core.ring(index);
    return ring === null ? null : { availIdx: ring.availIdx, lastAvail: ring.lastAvail, usedIdx: ring.usedIdx };
  }

  /**
   * The device hits an error of its own it cannot recover from: as qemu's virtio_error() (a
   * violation is recorded, the rings stop, DEVICE_NEEDS_RESET for a virtio 1.x driver).
   */
  breakDevice(reason: string): void {
    this.#core.deviceError(reason);
  }

  /** Sets VIRTQ_USED_F_NO_NOTIFY on all queues: the driver should stop notifying. */
  get suppressNotifications(): boolean {
    return this.#core.suppressNotify;
  }
  set suppressNotifications(on: boolean) {
    this.#core.suppressNotify = on;
  }

  // --- The wire ---------------------------------------------------------------------------------

  /** Connects this device's wire to `other`'s: what one sends, the other receives. */
  connect(other: VirtioNetModel): void {
    if (other === this) throw new RangeError("VirtioNetModel: cannot connect a device to itself");
    this.#peer = other;
    other.#peer = this;
  }

  setLink(up: boolean): void {
    this.#config[6] = up ? NET_S_LINK_UP : 0;
    this.#core.configChanged();
  }

  /**
   * A frame arrives from the wire (§5.1.6.4). Returns true when it was written to a receive
   * buffer; false when there was none (counted in rxDropped), the filter rejected it (rxFiltered)
   * or it did not fit (rxOversize). `pair`: the receive queue pair to put it on (0: receiveq1,
   * below the active pair count); by default the device steers it (#steer).
   */
  inject(frame: Uint8Array, pair?: number, partial?: PartialChecksum): boolean {
    if (pair !== undefined && (!Number.isInteger(pair) || pair < 0 || pair >= this.#activePairs)) {
      // §5.1.6.5.5: the device MUST NOT queue packets on receive queues beyond virtqueue_pairs.
      throw new RangeError(`VirtioNetModel: inject() on queue pair ${pair}, but ${this.#activePairs} pair(s) are active`);
    }
    const q = pair ?? this.#steer(frame);
    const rxIndex = 2 * q;
    const c = this.counters;
    const core = this.#core;
    const ring = this.faults.stall ? null : core.ring(rxIndex);
    if (ring === null) {
      c.rxDropped++;
      return false;
    }
    if (!core.busMaster()) {
      core.violation("receive DMA needed while bus mastering is disabled");
      c.rxDropped++;
      return false;
    }
    if (!this.#accepts(frame)) {
      c.rxFiltered++;
      return false;
    }
    const chain = this.#takeRxChain(q, ring);
    if (chain === null) {
      c.rxDropped++;
      return false;
    }
    if (chain.readable.length > 0) core.violation(`receive chain ${chain.head} has device-readable descriptors`);
    const header = new Uint8Array(this.#headerLength());
    // §5.1.6.4: without VIRTIO_NET_F_MRG_RXBUF, num_buffers is 1 (v1 header only).
    if (header.length === 12) header[HDR_NUM_BUFFERS] = 1;
    frame = receiveHeader(this.#offloadHost, header, frame, partial, c);
    const total = header.length + frame.length;
    if (total > chain.writableBytes || (this.mergeSplit !== null && core.negotiated(F.MRG_RXBUF))) {
      if (core.negotiated(F.MRG_RXBUF)) return this.#injectMerged(q, ring, chain, header, frame);
      if (this.#async) this.#rxHeld[q]!.push(chain);
      else ring.unpop();
      c.rxOversize++;
      return false;
    }
    this.#scatter(chain.writable, header, frame);
    const used: [number, number] = [chain.head, this.faults.badUsedLength ? chain.writableBytes + 1 : total];
    if (this.#async) this.#rxDone[q]!.push(used);
    else this.#returnUsed(rxIndex, ring, [used]);
    c.rxFrames++;
    c.rxBytes += frame.length;
    c.rxQueueFrames[q]!++;
    return true;
  }

  /**
   * §5.1.6.4 with VIRTIO_NET_F_MRG_RXBUF: `frame` over as many receive buffers as it takes (each
   * filled up to its size or mergeSplit, the header in the first with num_buffers), returned in
   * one publication. Too few buffers: the frame is dropped and the buffers stay the driver's
   * (qemu checks virtqueue_avail_bytes first, likewise).
   */
  #injectMerged(q: number, ring: AnyDeviceRing, first: Chain, header: Uint8Array, frame: Uint8Array): boolean {
    const c = this.counters;
    const room = (chain: Chain): number => Math.min(chain.writableBytes, this.mergeSplit ?? Infinity);
    const data = new Uint8Array(header.length + frame.length);
    data.set(header);
    data.set(frame, header.length);
    const chains = [first];
    let capacity = room(first);
    if (!this.#async) {
      // All buffers of a ring are alike (this driver's are): are there enough left?
      const needed = Math.ceil((data.length - capacity) / Math.max(1, room(first)));
      if (ring.pending < needed) {
        ring.unpop();
        c.rxDropped++;
        return false;
      }
    }
    while (capacity < data.length) {
      const chain = this.#takeRxChain(q, ring);
      if (chain === null) {
        if (this.#async) this.#rxHeld[q]!.push(...chains);
        else this.#core.deviceError(`receive buffers of unequal sizes: chain ${chains[0]!.head} and the next left a frame unwritten`);
        c.rxDropped++;
        return false;
      }
      if (chain.readable.length > 0) this.#core.violation(`receive chain ${chain.head} has device-readable descriptors`);
      chains.push(chain);
      capacity += room(chain);
    }
    data[HDR_NUM_BUFFERS] = chains.length & 0xff;
    data[HDR_NUM_BUFFERS + 1] = chains.length >> 8;
    const used: Array<[number, number]> = [];
    let at = 0;
    for (const chain of chains) {
      const n = Math.min(room(chain), data.length - at);
      this.#scatter(chain.writable, data.subarray(at, at + n));
      used.push([chain.head, n]);
      at += n;
    }
    if (this.#async) this.#rxDone[q]!.push(...used);
    else this.#returnUsed(2 * q, ring, used);
    c.rxFrames++;
    c.rxBytes += frame.length;
    c.rxQueueFrames[q]!++;
    if (chains.length > 1) c.rxMerged++;
    return true;
  }

  /** The model to the offload code (net-offloads.ts). */
  readonly #offloadHost: OffloadHost = {
    negotiated: (featureBit) => this.#core.negotiated(featureBit),
    violation: (message) => this.#core.violation(message),
    deviceError: (message) => this.#core.deviceError(message),
  };

  /** §5.1.3.1: a feature set whose offloads lack what they depend on is refused (FEATURES_OK does not stick). */
  #offloadFeaturesRefused(): boolean {
    const problem = offloadFeatureProblem(this.#core.driverFeatures);
    if (problem !== null) this.#core.violation(problem);
    return problem !== null;
  }

  /**
   * The receive queue pair for `frame` among the active ones. Without VIRTIO_NET_F_RSS the spec
   * leaves the choice to the device (§5.1.6.5.5 automatic receive steering only says a flow's
   * packets should follow the queue it transmits on; qemu leaves it to its backend, e.g. the tap
   * device's flow hash). This model hashes the flow (FNV-1a, finalized, over the IPv4/IPv6 addresses, the
   * protocol and, for unfragmented TCP/UDP, the ports; other frames: the MAC addresses), so that
   * every frame of a flow lands on one queue, in order.
   */
  #steer(frame: Uint8Array): number {
    const n = this.#activePairs;
    if (n === 1) return 0;
    return flowHash(frame) % n;
  }

  /** The receive chain for the next frame: the next available one, or (async) a random one taken ahead. */
  #takeRxChain(pair: number, ring: AnyDeviceRing): Chain | null {
    if (!this.#async) return this.#popped(2 * pair, ring.pop());
    for (let chain = ring.pop(); chain !== null; chain = ring.pop()) this.#rxHeld[pair]!.push(this.#popped(2 * pair, chain)!);
    const held = this.#rxHeld[pair]!;
    if (held.length === 0) return null;
    const i = this.#random(held.length);
    const chain = held[i]!;
    held[i] = held[held.length - 1]!;
    held.pop();
    if (chain.writable.length === 0) {
      // qemu virtio_net_receive: "receive queue contains no in buffers" (virtio_error).
      this.#core.deviceError(`receive chain ${chain.head} has no device-writable descriptor`);
      return null;
    }
    return chain;
  }

  /** Notes that the driver made `chain` available again (it is no candidate for a stale id). */
  #popped(queue: number, chain: Chain | null): Chain | null {
    if (chain !== null) {
      const returned = this.#returned[queue]!;
      const at = returned.indexOf(chain.head);
      if (at >= 0) returned.splice(at, 1);
    }
    return chain;
  }

  /**
   * §2.7.8 (split) / §2.8.7-2.8.8 (packed): returns `entries` ([id, len]) to the driver in one
   * publication (of used.idx, or of the used descriptors' flags), through the used-ring fault modes.
   */
  #returnUsed(queue: number, ring: AnyDeviceRing, entries: ReadonlyArray<readonly [number, number]>): void {
    const f = this.faults;
    const returned = this.#returned[queue]!;
    for (const [realId, len] of entries) {
      let id = realId;
      if (f.badUsedId) id = ring.size + 7;
      else if (f.staleUsedId) {
        const pending = ring.availablePending();
        for (let k = returned.length - 1; k >= 0; k--) {
          if (!pending.includes(returned[k]!)) {
            id = returned[k]!;
            break;
          }
        }
      }
      ring.write(id, len);
      if (f.repeatUsedId) ring.write(id, len);
      if (id === realId && !returned.includes(id)) returned.push(id);
    }
    const jump = f.usedIndexJump ?? 0;
    const back = f.usedIndexBack ?? 0;
    if (jump > 0) {
      f.usedIndexJump = 0;
      ring.jumpUsed(jump % ring.size);
    } else if (back > 0) {
      f.usedIndexBack = 0;
      ring.publishBehind(back);
    } else ring.publish();
    this.#core.usedBuffers(queue);
  }

  /** Async mode: a random number in [0, n) from the model's seeded generator (xorshift32). */
  #random(n: number): number {
    let x = this.#seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#seed = x >>> 0;
    return this.#seed % n;
  }

  /**
   * Async mode: one piece of the device's pending work, chosen at random — a random-sized prefix
   * of a receive queue's filled buffers into its used ring; or a random number of a transmit
   * queue's chains sent and a random subset of the sent ones completed, in random order; or the
   * control commands. Only virtqueue `queue` (0: receiveq1, 1: transmitq1, 2N: control, §5.1.2)
   * when given. Returns false when there was nothing to do. Instant mode: poll().
   */
  step(queue?: number): boolean {
    if (!this.#async) {
      this.poll(queue);
      return false;
    }
    if (this.faults.stall) return false;
    const core = this.#core;
    const work: number[] = [];
    const all = queue === undefined;
    for (let p = 0; p < this.#layoutPairs(); p++) {
      const rx = core.ring(2 * p);
      if ((all || queue === 2 * p) && rx !== null && this.#rxDone[p]!.length > 0) work.push(2 * p);
      const tx = core.ring(2 * p + 1);
      if ((all || queue === 2 * p + 1) && tx !== null && (tx.pending > 0 || this.#txDone[p]!.length > 0) && this.#txActive(p, tx)) {
        work.push(2 * p + 1);
      }
    }
    const ctrlIndex = this.#ctrlIndex();
    const ctrl = core.ring(ctrlIndex);
    if ((all || queue === ctrlIndex) && ctrl !== null && ctrl.pending > 0 && !this.faults.ctrlNeverCompletes) work.push(ctrlIndex);
    if (work.length === 0) return false;
    const chosen = work[this.#random(work.length)]!;
    const pair = chosen >> 1;
    if (chosen === ctrlIndex) this.#processCtrl();
    else if ((chosen & 1) === 0) {
      const filled = this.#rxDone[pair]!;
      const n = 1 + this.#random(filled.length);
      this.#returnUsed(chosen, core.ring(chosen)!, filled.splice(0, n));
    } else {
      const tx = core.ring(chosen)!;
      this.#processTx(pair, 1 + this.#random(Math.max(1, tx.pending)));
      const done = this.#txDone[pair]!;
      if (done.length > 0) {
        const n = 1 + this.#random(done.length);
        const out: Array<[number, number]> = [];
        for (let k = 0; k < n; k++) out.push(done.splice(this.#random(done.length), 1)[0]!);
        this.#returnUsed(chosen, tx, out);
      }
    }
    return true;
  }

  /**
   * Processes the transmit and control queues as the device's own thread would; only virtqueue
   * `queue` (a transmit queue, or the control queue; async mode: a receive queue too) when given.
   * Async mode: all the pending work, in random pieces (step()).
   */
  poll(queue?: number): void {
    if (this.faults.stall) return;
    if (this.#async) {
      for (let n = 0; this.step(queue); n++) if (n > 1_000_000) throw new Error("VirtioNetModel: poll() found no end of work");
      return;
    }
    for (let p = 0; p < this.#layoutPairs(); p++) if (queue === undefined || queue === 2 * p + 1) this.#processTx(p);
    if (queue === undefined || queue === this.#ctrlIndex()) this.#processCtrl();
  }

  // --- Device internals -------------------------------------------------------------------------

  /** Queue pairs in the layout (§5.1.2): max_virtqueue_pairs with MQ negotiated, else 1. */
  #layoutPairs(): number {
    return this.#core.negotiated(F.MQ) ? this.queuePairs : 1;
  }

  #ctrlIndex(): number {
    return 2 * this.#layoutPairs();
  }

  /**
   * Whether transmitq(pair+1) may be used (pair below the count VQ_PAIRS_SET gave). A driver that
   * queued frames on one beyond it breaks §5.1.6.5.5 (the device uses only the first
   * virtqueue_pairs pairs): a violation, once per queue until the count changes; the frames stay.
   */
  #txActive(pair: number, ring: AnyDeviceRing): boolean {
    if (pair < this.#activePairs) return true;
    if (ring.pending > 0 && !this.#reportedInactive.has(pair)) {
      this.#reportedInactive.add(pair);
      this.#core.violation(
        `transmitq${pair + 1} (queue ${2 * pair + 1}) used while only ${this.#activePairs} queue pair(s) are active ` +
          `(VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET)`,
      );
    }
    return false;
  }

  #onNotify(index: number): void {
    const ctrlIndex = this.#ctrlIndex();
    if (index > ctrlIndex) {
      // qemu has no such virtqueue for the negotiated features (virtio_net_set_multiqueue).
      this.#core.violation(`notification for queue ${index}, which is not in the layout of ${this.#layoutPairs()} queue pair(s) (§5.1.2)`);
      return;
    }
    if (this.faults.stall || this.#async) return;
    if (index === ctrlIndex) this.#processCtrl();
    else if ((index & 1) === 1) this.#processTx(index >> 1);
  }

  #headerLength(): number {
    return this.#core.negotiated(F.VERSION_1) || this.#core.negotiated(F.MRG_RXBUF) ? 12 : 10;
  }

  /** §5.1.6.5.1 receive filtering; qemu's rules, minus the MAC and VLAN tables. */
  #accepts(frame: Uint8Array): boolean {
    if (this.#promisc) return true;
    if (frame.length < 14) return false;
    if ((frame[0]! & 1) !== 0) {
      let broadcast = true;
      for (let i = 0; i < 6; i++) if (frame[i] !== 0xff) broadcast = false;
      return broadcast || this.#allmulti;
    }
    for (let i = 0; i < 6; i++) if (frame[i] !== this.mac[i]) return false;
    return true;
  }

  /**
   * §5.1.6.2: frames from the transmit queue, header stripped, to the wire: up to `max` chains.
   * Instant mode completes each at once; async mode keeps them in #txDone for step().
   */
  #processTx(pair: number, max = Infinity): void {
    const index = 2 * pair + 1;
    const ring = this.#core.ring(index);
    if (ring === null || !this.#txActive(pair, ring)) return;
    const hdr = this.#headerLength();
    const done: Array<[number, number]> = [];
    for (let n = 0; n < max; n++) {
      const chain = this.#popped(index, ring.pop());
      if (chain === null) break;
      if (!this.#dmaAllowed()) {
        ring.unpop();
        break;
      }
      if (chain.writable.length > 0) this.#core.violation(`transmit chain ${chain.head} has device-writable descriptors`);
      const bytes = this.#gather(chain.readable, chain.readableBytes);
      if (bytes.length < hdr) {
        // qemu virtio_net_flush_tx: "virtio-net header incorrect" (virtio_error).
        this.#core.deviceError(`transmit chain ${chain.head} holds ${bytes.length} bytes, less than the ${hdr}-byte header`);
        break;
      }
      done.push([chain.head, 0]);
      // §5.1.6.2: checksum and segmentation as the header asks (net-offloads.ts).
      const frames = transmitWithHeader(this.#offloadHost, bytes.subarray(0, hdr), bytes.subarray(hdr), this.counters);
      if (frames.length === 0) this.counters.txBadHeader++;
      if (this.#core.broken) break;
      for (const frame of frames) {
        this.counters.txFrames++;
        this.counters.txBytes += frame.length;
        this.counters.txQueueFrames[pair]!++;
        this.onTransmit?.(frame, pair);
        this.#peer?.inject(frame);
      }
    }
    if (this.#async) this.#txDone[pair]!.push(...done);
    else if (done.length > 0) this.#returnUsed(index, ring, done); // one publication per notification
  }

  /** §5.1.6.5: class, command, data (device-readable), then the ack byte (device-writable). */
  #processCtrl(): void {
    const ctrlIndex = this.#ctrlIndex();
    const ring = this.#core.ring(ctrlIndex);
    if (ring === null || this.faults.ctrlNeverCompletes) return;
    for (let chain = this.#popped(ctrlIndex, ring.pop()); chain !== null; chain = this.#popped(ctrlIndex, ring.pop())) {
      if (!this.#dmaAllowed()) {
        ring.unpop();
        return;
      }
      this.counters.ctrlCommands++;
      const command = this.#gather(chain.readable, chain.readableBytes);
      if (chain.writableBytes < 1 || command.length < 2) {
        // qemu virtio_net_handle_ctrl: "virtio-net ctrl missing headers" (virtio_error).
        this.#core.deviceError(`control chain ${chain.head}: needs a 2-byte header and a writable ack byte`);
        return;
      }
      const ack = this.#command(command[0]!, command[1]!, command.subarray(2));
      this.ctrlLog.push({ cls: command[0]!, command: command[1]!, data: Array.from(command.subarray(2)), ack });
      this.#scatter(chain.writable, Uint8Array.of(ack));
      this.#returnUsed(ctrlIndex, ring, [[chain.head, 1]]);
    }
  }

  #command(cls: number, command: number, data: Uint8Array): number {
    if (this.faults.rejectCtrl) return NET_ERR;
    if (cls === CTRL_MQ) return this.#setQueuePairs(command, data);
    if (cls !== CTRL_RX || !this.#core.negotiated(F.CTRL_RX) || data.length !== 1) return NET_ERR;
    if (command === CTRL_RX_PROMISC) this.#promisc = data[0] !== 0;
    else if (command === CTRL_RX_ALLMULTI) this.#allmulti = data[0] !== 0;
    else return NET_ERR;
    return NET_OK;
  }

  /**
   * §5.1.6.5.5 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET: le16 virtqueue_pairs, from 1 to
   * max_virtqueue_pairs, only with MQ negotiated (qemu virtio_net_handle_mq answers VIRTIO_NET_ERR
   * otherwise). Receive steering then uses the first virtqueue_pairs receive queues.
   */
  #setQueuePairs(command: number, data: Uint8Array): number {
    if (command !== CTRL_MQ_VQ_PAIRS_SET || !this.#core.negotiated(F.MQ) || data.length !== 2) return NET_ERR;
    const pairs = data[0]! | (data[1]! << 8);
    if (pairs < CTRL_MQ_VQ_PAIRS_MIN || pairs > CTRL_MQ_VQ_PAIRS_MAX || pairs > this.queuePairs) return NET_ERR;
    this.#activePairs = pairs;
    this.#reportedInactive.clear();
    return NET_OK;
  }

  #dmaAllowed(): boolean {
    if (this.#core.busMaster()) return true;
    this.#core.violation("DMA needed while bus mastering is disabled");
    return false;
  }

  /** Device reads: the bytes of `segments`, concatenated (a fresh array the receiver may keep). */
  #gather(segments: readonly Segment[], length: number): Uint8Array {
    const out = new Uint8Array(length);
    let at = 0;
    for (const s of segments) {
      if (s.len === 0) continue;
      out.set(this.#dma.resolve(s.addr, s.len, "transmit buffer read", this.pci.address), at);
      at += s.len;
    }
    return out;
  }

  /** Device writes: `parts` one after the other into `segments` (the caller checked they fit). */
  #scatter(segments: readonly Segment[], ...parts: Uint8Array[]): void {
    let seg = 0;
    let segOffset = 0;
    for (const part of parts) {
      let p = 0;
      while (p < part.length) {
        const s = segments[seg]!;
        const room = s.len - segOffset;
        if (room === 0) {
          seg++;
          segOffset = 0;
          continue;
        }
        const n = Math.min(room, part.length - p);
        this.#dma.resolve(s.addr + segOffset, n, "receive buffer write", this.pci.address).set(part.subarray(p, p + n));
        p += n;
        segOffset += n;
      }
    }
  }
}

/**
 * The flow hash the model steers received frames by (see #steer): FNV-1a, finalized, over the
 * IPv4/IPv6 addresses, the protocol and, for unfragmented TCP/UDP, the ports; other frames: the
 * MAC addresses. Every frame of a flow has the same hash. Exported for the vhost-user backend,
 * which steers over the receive rings the front-end enabled.
 */
export function flowHash(frame: Uint8Array): number {
  let h = 0x811c9dc5;
  const mix = (from: number, to: number): void => {
    for (let i = from; i < to && i < frame.length; i++) h = Math.imul(h ^ frame[i]!, 0x01000193);
  };
  const type = frame.length >= 14 ? (frame[12]! << 8) | frame[13]! : 0;
  if (type === 0x0800 && frame.length >= 34) {
    const l4 = 14 + (frame[14]! & 0x0f) * 4;
    const proto = frame[23]!;
    const fragment = ((frame[20]! & 0x3f) | frame[21]!) !== 0; // MF or a fragment offset: no ports
    mix(26, 34);
    mix(23, 24);
    if ((proto === 6 || proto === 17) && !fragment) mix(l4, l4 + 4);
  } else if (type === 0x86dd && frame.length >= 54) {
    const next = frame[20]!;
    mix(22, 54);
    mix(20, 21);
    if (next === 6 || next === 17) mix(54, 58);
  } else mix(0, 12);
  // FNV-1a's low bits depend only on the low bits of the bytes (the multiplier is odd), and
  // `% n` looks at little else: a final mix (MurmurHash3's fmix32) spreads every bit over them.
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
