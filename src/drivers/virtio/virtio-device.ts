/**
 * The virtio-net driver: device initialization (virtio 1.2 §3.1.1, network device §5.1.5), then
 * receive and transmit queues driven by polling (virtio-rx-queue.ts, virtio-tx-queue.ts): one pair,
 * or with rxQueues = txQueues = N > 1 N pairs through VIRTIO_NET_F_MQ (virtio 1.2 §5.1.6.5.5),
 * a control queue for the receive mode (ctrl-queue.ts), MAC and link status from the device
 * configuration.
 *
 * Three transports reach the same device: the modern one (virtio 1.x capabilities in a memory BAR,
 * for 1af4:1041 devices behind the IOMMU), the legacy one (I/O-port BAR0, for transitional
 * 1af4:1000 devices, whose DMA bypasses the IOMMU and so needs physical addresses), and vhost-user
 * (a backend process behind a unix socket, sharing our memory: vhost-user-device.ts).
 *
 * Read this file top to bottom next to the specification: the constructor is the list of steps.
 * Which specification versions the § numbers are from, and where to get them: docs/references.md.
 */
import { PairStatus, QueueSharing, type SharedQueuePair } from "../queue-sharing.ts";
import type { HotPathMode } from "../specialize.ts";
import { DeviceClosedError, DeviceProtocolError, DeviceTimeoutError, DmaError, NotSupportedError } from "../../errors.ts";
import { InterruptWait } from "../../irq/interrupt-wait.ts";
import type { DeviceOffloads, DeviceOptions, DeviceStats, FlowAction, FlowMatch, NicDevice } from "../../device.ts";
import type { RingState } from "../../ring-state.ts";
import type { DmaAllocator } from "../../mem/dma.ts";
import { Mempool } from "../../mem/mempool.ts";
import { pollUntil } from "../../pci/regs.ts";
import type { PciFunction } from "../../pci/pci-function.ts";
import { driverTrace, NO_TRACE, type DriverTrace } from "../../pci/register-trace.ts";
import { statusNames } from "./virtio-register-names.ts";
import { CTRL_COMMAND_AREA_SIZE, CtrlQueue } from "./ctrl-queue.ts";
import { chooseFeatures, legacyDmaProblem } from "./features.ts";
import { planOffloads } from "./offload-plan.ts";
import { checkOffloadOptions } from "../offload-options.ts";
import { findVirtioDeviceId, virtioTransportFor } from "./virtio-ids.ts";
import { LegacyTransport } from "./transport-legacy.ts";
import { ModernTransport } from "./transport-modern.ts";
import type { TransportKind, VirtioTransport } from "./transport.ts";
import { badBatchCall, checkPromiscArgument, checkStatsTarget, goodBatch } from "../batch-args.ts";
import { checkDeviceOptionTypes, checkInteger, checkNonNegative, checkOneOf, checkPowerOfTwo } from "../../validate.ts";
import { requireStrongMemoryOrder } from "../memory-order.ts";
import { RxCounter, RxQueue } from "./virtio-rx-queue.ts";
import { TxCounter, TxQueue } from "./virtio-tx-queue.ts";
import { ringLayout, VirtqueueRing } from "./virtqueue.ts";
import { PackedCtrlQueue } from "./packed-ctrl-queue.ts";
import { packedRingLayout, PackedRing } from "./packed-ring.ts";
import { PackedRxQueue } from "./packed-rx-queue.ts";
import { PackedTxQueue } from "./packed-tx-queue.ts";
import {
  describeFeatures,
  featureShortNames,
  hasFeature,
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FAILED,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_VERSION_1,
  VIRTIO_NET_CONFIG_MAC,
  VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS,
  VIRTIO_NET_CONFIG_STATUS,
  VIRTIO_NET_CTRL_MQ,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN,
  VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
  VIRTIO_NET_CTRL_QUEUE,
  VIRTIO_NET_CTRL_RX,
  VIRTIO_NET_CTRL_RX_PROMISC,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MQ,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_CONFIG_MTU,
  VIRTIO_NET_HDR_LEN,
  VIRTIO_NET_HDR_MRG_LEN,
  VIRTIO_NET_HDR_V1_LEN,
  VIRTIO_NET_S_LINK_UP,
  rxQueueIndex,
  txQueueIndex,
  VIRTQ_MAX_SIZE,
} from "./virtio-types.ts";

export { VIRTIO_DEVICE_IDS, VIRTIO_VENDOR_ID } from "./virtio-ids.ts";

/** PCI transports only: vhost-user devices come from createVhostUserDevice (vhost-user-device.ts). */
export type VirtioDeviceOptions = DeviceOptions & { readonly transport?: Exclude<TransportKind, "vhost-user"> };

/** The control queue needs a handful of entries; more would only cost memory. */
const CTRL_QUEUE_MAX_SIZE = 64;
/** Virtio-net without VIRTIO_NET_F_SPEED_DUPLEX has no speed; report what ixy reports. */
const NOMINAL_LINK_SPEED = 1000;

/**
 * Opens the virtio-net device `pci` with memory from `dma`. Transport: options.transport, or what
 * the id table says for the device and its BAR0 (virtioTransportFor in virtio-ids.ts: 'legacy' for
 * a transitional device, 1af4:1000, whose BAR0 is an I/O BAR, 'modern' otherwise). The caller keeps ownership of
 * `pci` and `dma`: close() resets the device but closes neither.
 */
export function createVirtioDevice(pci: PciFunction, dma: DmaAllocator, options: VirtioDeviceOptions = {}): NicDevice {
  options = checkOptions(pci.address, options);
  const id = findVirtioDeviceId(pci.vendorId, pci.deviceId);
  if (id === undefined) {
    throw new NotSupportedError(
      `${pci.address}: ${hex4(pci.vendorId)}:${hex4(pci.deviceId)} is not a virtio-net device ` +
        `(expected 1af4:1000 or 1af4:1041)`,
    );
  }
  // The id table says which transport a device gets (virtio-ids.ts); the option overrides it.
  const transport = options.transport ?? virtioTransportFor(id, pci.barKind(0));
  if (transport === "legacy") {
    const problem = legacyDmaProblem(pci.address, dma);
    if (problem !== null) throw new DmaError(problem);
    if (dma.addressing === "physical" && options.unsafeNoIommu !== true) {
      throw new NotSupportedError(
        `${pci.address}: the legacy virtio transport puts host physical addresses on the rings (its DMA bypasses ` +
          `the IOMMU, so the device can reach all of RAM): pass unsafeNoIommu: true to accept that, or use a ` +
          `modern device with transport 'modern'`,
      );
    }
  }
  const trace = driverTrace(options.trace, pci.address);
  const driven: VirtioTransport = transport === "legacy" ? new LegacyTransport(pci, trace) : new ModernTransport(pci, trace);
  // Bus mastering only once the device is reset (the constructor's first step): a device left
  // running by an earlier driver would otherwise go on writing into that driver's rings.
  return new VirtioNetDevice(driven, pci.address, dma, options, () => pci.enableDma());
}

export class VirtioNetDevice implements NicDevice {
  readonly driver = "virtio";
  readonly address: string;
  /** Queue pairs in use: rxQueues = txQueues (virtio-net queues come in pairs, §5.1.2). */
  readonly rxQueues: number;
  readonly txQueues: number;
  /** max_virtqueue_pairs (§5.1.4) when VIRTIO_NET_F_MQ was negotiated, else 1. */
  readonly maxQueuePairs: number;
  readonly dma: DmaAllocator;
  readonly transport: TransportKind;
  /** Features offered by the device and the subset negotiated (BigInt: read once at init). */
  readonly offeredFeatures: bigint;
  readonly features: bigint;
  /** Bytes of virtio_net_hdr in front of every frame: 12 (VERSION_1, or legacy with MRG_RXBUF) or 10 (legacy). */
  readonly headerLength: number;
  /** What is on (docs/offloads-virtio.md): checksums, TSO, maxFrameSize, mergeable receive buffers. */
  readonly offloads: DeviceOffloads;
  /** The virtqueue layout negotiated: "packed" with VIRTIO_F_RING_PACKED (§2.8), else "split" (§2.7). */
  readonly ring: "packed" | "split";
  readonly #transport: VirtioTransport;
  /** Per queue pair k: receiveq(k+1) and transmitq(k+1). */
  readonly #rxs: Array<RxQueue | PackedRxQueue> = [];
  readonly #txs: Array<TxQueue | PackedTxQueue> = [];
  /** What rxBatch/txBatch look the queue up in: #rxs and #txs but the pairs shared with workers. */
  #rxBy: readonly (RxQueue | PackedRxQueue | undefined)[] = [];
  #txBy: readonly (TxQueue | PackedTxQueue | undefined)[] = [];
  readonly #sharing: QueueSharing;
  readonly #hotPath: HotPathMode | undefined;
  readonly #ctrl: CtrlQueue | PackedCtrlQueue | null;
  readonly #mac: Uint8Array;
  readonly #hasStatus: boolean;
  #closed = false;
  /** close() reset the device and gave the rings' buffers back (a reset that timed out leaves it false: retry). */
  #released = false;
  /** Interrupts: one wait per receive queue (its MSI-X vector's or call eventfd); empty when polling. */
  readonly #irqWaits: InterruptWait[] = [];
  /** Why the device cannot be used any more (it needs a reset), or null. */
  #broken: DeviceProtocolError | null = null;
  /** Trace mode: the transport's trace, which the steps below are announced to (NO_TRACE when off). */
  readonly #trace: DriverTrace;

  /**
   * Initializes the device behind `transport` (any VirtioTransport: PCI modern or legacy, or
   * another one that reaches a virtio-net device). `address` names the device in errors.
   * `afterReset` runs right after the reset of step 1 (PCI: enables bus mastering).
   */
  constructor(transport: VirtioTransport, address: string, dma: DmaAllocator, options: DeviceOptions, afterReset?: () => void) {
    const name = address;
    const kind = transport.kind;
    this.address = name;
    this.dma = dma;
    this.transport = kind;
    this.#transport = transport;
    const trace = transport.trace ?? NO_TRACE;
    this.#trace = trace;
    // The queues' plain loads of used.idx and used.flags are correct on x86-64 only.
    requireStrongMemoryOrder(name);

    // §3.1.1 step 1: reset the device (and wait until it says so).
    trace.step("3.1.1", "1. reset");
    transport.reset();
    afterReset?.();
    let status = 0;
    // checkDeviceOptions: rxQueues === txQueues.
    const pairs = options.rxQueues ?? 1;
    const interrupts = options.interrupts === true;
    this.rxQueues = this.txQueues = pairs;
    this.#hotPath = options.hotPath;
    this.#sharing = new QueueSharing(name, pairs);
    const pools: Mempool[] = [];
    // What the allocator held before: a failed init gives back everything it took.
    const mark = dma.mark?.();
    const addStatus = (bit: number): void => {
      status |= bit;
      // vhost-user has no status register to show: say what it would hold.
      if (kind === "vhost-user") trace.note(`device status = ${statusNames(status).join(" ")} (kept by the front-end)`);
      transport.setStatus(status);
    };
    try {
      if (interrupts) {
        // Interrupts (docs/interrupts.md): vector 0 for configuration changes, 1 + k for receive
        // queue k; transmit and control queues keep NO_VECTOR (they are polled). MSI-X goes on
        // before anything reads the device configuration: on the legacy interface it moves.
        // The vectors themselves are programmed after this reset and before DRIVER_OK (§4.1.5.1.2).
        trace.step("4.1.5.1.2", "MSI-X vectors");
        const fds = transport.enableInterrupts(pairs + 1);
        transport.setConfigVector(0);
        for (let k = 0; k < pairs; k++) this.#irqWaits.push(new InterruptWait(fds[1 + k]!, `${name} RX queue ${k} interrupt`));
      }
      // Steps 2 and 3: we noticed the device, and we know how to drive it.
      trace.step("3.1.1", "2. ACKNOWLEDGE");
      addStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
      trace.step("3.1.1", "3. DRIVER");
      addStatus(VIRTIO_CONFIG_S_DRIVER);

      // Step 4: read the device's features, write the subset this driver implements.
      trace.step("3.1.1", "4. feature negotiation");
      this.offeredFeatures = transport.readDeviceFeatures();
      this.features = chooseFeatures(name, this.offeredFeatures, kind, dma, options.ring, pairs, options.offloads);
      trace.note(`features: device offers ${featureShortNames(this.offeredFeatures).join(" ")}; driver accepts ${featureShortNames(this.features).join(" ")}`);
      transport.writeDriverFeatures(this.features);

      // Steps 5 and 6 (modern only; §3.1.2: legacy devices have no FEATURES_OK): the device
      // accepts the features by keeping FEATURES_OK set when we read the status back.
      if (transport.hasFeaturesOk) {
        trace.step("3.1.1", "5.-6. FEATURES_OK");
        addStatus(VIRTIO_CONFIG_S_FEATURES_OK);
        if ((transport.getStatus() & VIRTIO_CONFIG_S_FEATURES_OK) === 0) {
          throw new DeviceProtocolError(
            `${name}: the device refused the features ${describeFeatures(this.features)} (FEATURES_OK did not ` +
              `stick; it offered ${describeFeatures(this.offeredFeatures)})`,
          );
        }
      }

      // Step 7, device-specific setup (§5.1.5): virtqueues, receive buffers, MAC address.
      trace.step("5.1.5", "7. device-specific setup");
      // §5.1.6: 12 bytes with VERSION_1 or (legacy) MRG_RXBUF's num_buffers, 10 without either.
      const mergeable = hasFeature(this.features, VIRTIO_NET_F_MRG_RXBUF);
      this.headerLength = hasFeature(this.features, VIRTIO_F_VERSION_1)
        ? VIRTIO_NET_HDR_V1_LEN
        : mergeable ? VIRTIO_NET_HDR_MRG_LEN : VIRTIO_NET_HDR_LEN;
      const offloadPlan = planOffloads(name, this.features, options.maxFrameSize, () => this.#transport.readConfig16(VIRTIO_NET_CONFIG_MTU));
      this.offloads = offloadPlan.offloads;
      this.#hasStatus = hasFeature(this.features, VIRTIO_NET_F_STATUS);
      // §2.8: with VIRTIO_F_RING_PACKED every virtqueue of the device is packed.
      const packed = hasFeature(this.features, VIRTIO_F_RING_PACKED);
      this.ring = packed ? "packed" : "split";
      const hasCtrl = hasFeature(this.features, VIRTIO_NET_F_CTRL_VQ);
      // §5.1.4: max_virtqueue_pairs is valid (and the layout has that many pairs) only with MQ.
      const mq = hasFeature(this.features, VIRTIO_NET_F_MQ);
      this.maxQueuePairs = mq ? this.#readMaxQueuePairs() : 1;
      if (pairs > this.maxQueuePairs) {
        throw new NotSupportedError(
          `${name}: rxQueues and txQueues ${pairs}, but the device has at most ${this.maxQueuePairs} queue pairs ` +
            `(max_virtqueue_pairs): use at most ${this.maxQueuePairs}, or give the device more (qemu: -netdev ...,queues=${pairs} ` +
            `and -device virtio-net-pci,mq=on,vectors=${2 * pairs + 2})`,
        );
      }
      // §5.1.2: receiveq1, transmitq1, ..., receiveqN, transmitqN, then the control queue, at 2N
      // for N = max_virtqueue_pairs with MQ (also when fewer pairs are used), at 2 without.
      const ctrlIndex = mq ? 2 * this.maxQueuePairs : VIRTIO_NET_CTRL_QUEUE;
      const queueName = (what: string, pair: number): string => (pairs === 1 ? what : `${what} (pair ${pair})`);
      const rxs: Array<{ size: number; capacity: number }> = [];
      const txs: Array<{ size: number; capacity: number }> = [];
      for (let k = 0; k < pairs; k++) {
        rxs.push(queueGeometry(name, transport, rxQueueIndex(k), options.rxRingSize, queueName("receive", k)));
        txs.push(queueGeometry(name, transport, txQueueIndex(k), options.txRingSize, queueName("transmit", k)));
      }
      const ctrl = hasCtrl ? queueGeometry(name, transport, ctrlIndex, CTRL_QUEUE_MAX_SIZE, "control") : null;

      // One pool per receive queue: a queue pair may be driven by a thread of its own.
      for (let k = 0; k < pairs; k++) {
        const rx = rxs[k]!;
        const poolSize = options.mempoolSize ?? Math.max(4096, 2 * rx.capacity);
        if (poolSize <= rx.capacity) {
          // Every buffer would sit in the ring: a received one could never be swapped for a fresh
          // one, so every frame would be dropped as missed (ixgbe refuses it likewise).
          throw new RangeError(
            `${name}: mempoolSize ${poolSize} must be larger than the receive ring (${rx.capacity} buffers): the ring ` +
              `keeps every buffer posted and swaps a received one for a free one, so a pool no larger than the ring ` +
              `would deliver no frame at all; use at least twice the ring size`,
          );
        }
        pools.push(new Mempool(dma, {
          count: poolSize, checked: options.checked ?? false, name: `${name} RX queue ${k} mempool`, entrySize: offloadPlan.rxEntrySize,
        }));
      }

      // All rings (and the control command area) in one area the device sees contiguously:
      // receive and transmit ring of each pair, the control ring, the command area.
      const layoutBytes = (size: number): number => (packed ? packedRingLayout(size).bytes : ringLayout(size).bytes);
      const rxOffsets: number[] = [];
      const txOffsets: number[] = [];
      let offset = 0;
      for (let k = 0; k < pairs; k++) {
        rxOffsets.push(offset);
        offset += layoutBytes(rxs[k]!.size);
        txOffsets.push(offset);
        offset += layoutBytes(txs[k]!.size);
      }
      const ctrlOffset = offset;
      const cmdOffset = ctrlOffset + (ctrl === null ? 0 : layoutBytes(ctrl.size));
      const region = dma.allocate(cmdOffset + CTRL_COMMAND_AREA_SIZE, { align: 4096, contiguous: true });
      const cmd = region.bytes.subarray(cmdOffset, cmdOffset + CTRL_COMMAND_AREA_SIZE);
      const checkDevice = (): void => this.#checkDevice();
      // §4.1.5.1.3 (modern) / §4.1.4.8 (legacy): each queue's rings, then enable it.
      trace.step(kind === "legacy" ? "4.1.4.8" : kind === "modern" ? "4.1.5.1.3" : "5.1.5", "7. virtqueue setup");
      for (let k = 0; k < pairs; k++) {
        const rx = rxs[k]!;
        const tx = txs[k]!;
        const rxIndex = rxQueueIndex(k);
        const txIndex = txQueueIndex(k);
        if (packed) {
          // Packed rings (§2.8): same queues, same order of steps; the transport passes the driver
          // and device areas where a split ring's available and used rings would go (§4.1.4.3).
          const rxRing = new PackedRing(region, rxOffsets[k]!, rxIndex, rx.size);
          const txRing = new PackedRing(region, txOffsets[k]!, txIndex, tx.size);
          const rxNotify = transport.activateQueue(rxIndex, rx.size, rxRing.addresses, interrupts ? 1 + k : undefined);
          const txNotify = transport.activateQueue(txIndex, tx.size, txRing.addresses);
          this.#rxs.push(new PackedRxQueue(`${name} RX queue ${k}`, rxRing, rxNotify, pools[k]!, this.headerLength, options.hotPath,
            checkDevice, offloadPlan.rx));
          this.#txs.push(new PackedTxQueue(`${name} TX queue ${k}`, txRing, txNotify, this.headerLength, options.hotPath, dma,
            checkDevice, offloadPlan.tx));
        } else {
          const rxRing = new VirtqueueRing(region, rxOffsets[k]!, rxIndex, rx.size);
          const txRing = new VirtqueueRing(region, txOffsets[k]!, txIndex, tx.size);
          // §4.1.5.1.3 (modern) / §4.1.4.8 (legacy): give each queue its rings and enable it.
          const rxNotify = transport.activateQueue(rxIndex, rx.size, rxRing.addresses, interrupts ? 1 + k : undefined);
          const txNotify = transport.activateQueue(txIndex, tx.size, txRing.addresses);
          this.#rxs.push(new RxQueue(`${name} RX queue ${k}`, rxRing, rxNotify, pools[k]!, rx.capacity, this.headerLength,
            options.hotPath, checkDevice, offloadPlan.rx));
          this.#txs.push(new TxQueue(`${name} TX queue ${k}`, txRing, txNotify, tx.capacity, this.headerLength, options.hotPath, dma,
            checkDevice, offloadPlan.tx));
        }
      }
      if (ctrl === null) this.#ctrl = null;
      else if (packed) {
        const ctrlRing = new PackedRing(region, ctrlOffset, ctrlIndex, ctrl.size);
        const ctrlNotify = transport.activateQueue(ctrlIndex, ctrl.size, ctrlRing.addresses);
        this.#ctrl = new PackedCtrlQueue(`${name} control queue`, ctrlRing, ctrlNotify, cmd, region.iovaOf(cmdOffset), checkDevice);
      } else {
        const ctrlRing = new VirtqueueRing(region, ctrlOffset, ctrlIndex, ctrl.size);
        const ctrlNotify = transport.activateQueue(ctrlIndex, ctrl.size, ctrlRing.addresses);
        this.#ctrl = new CtrlQueue(`${name} control queue`, ctrlRing, ctrlNotify, cmd, region.iovaOf(cmdOffset), checkDevice);
      }
      trace.step("5.1.5", "7. MAC address (struct virtio_net_config)");
      this.#mac = this.#readMac();

      // Step 8: the driver is ready. Only now may it notify the device (§3.1.1).
      trace.step("3.1.1", "8. DRIVER_OK");
      addStatus(VIRTIO_CONFIG_S_DRIVER_OK);
      if ((transport.getStatus() & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0) {
        throw new DeviceProtocolError(`${name}: the device needs a reset right after DRIVER_OK (DEVICE_NEEDS_RESET)`);
      }
      for (const rx of this.#rxs) rx.kick();
      this.#dispatch();

      // §5.1.6.5.5: after reset the device uses receiveq1 and transmitq1 only; VQ_PAIRS_SET tells
      // it to spread received frames over the first `pairs` receive queues (Linux
      // virtnet_set_queues). Its queues are configured already, as the spec asks. A refusal
      // (VIRTIO_NET_ERR) fails the open: frames for queues the device does not use would never come.
      // Over vhost-user there is no control queue: the transport enabled the rings of exactly
      // these pairs (SET_VRING_ENABLE), which is what front-ends turn VQ_PAIRS_SET into.
      if (pairs > 1 && kind !== "vhost-user") {
        trace.step("5.1.6.5.5", "VQ_PAIRS_SET");
        this.#ctrl!.command(
          VIRTIO_NET_CTRL_MQ,
          VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
          Uint8Array.of(pairs & 0xff, pairs >> 8),
          `VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET ${pairs} (of max_virtqueue_pairs ${this.maxQueuePairs})`,
        );
      }

      // Like ixy: receive everything (qemu's default too, but say so rather than rely on it).
      // §5.1.6.5: receive filtering is best effort, so a device that refuses the command is
      // warned about, not given up on (setPromisc() stays strict).
      if (hasFeature(this.features, VIRTIO_NET_F_CTRL_RX)) {
        try {
          this.setPromisc(true);
        } catch (error) {
          // Only a refusal (an ack other than VIRTIO_NET_OK) is survivable; a broken queue or
          // device is not.
          if (!(error instanceof DeviceProtocolError) || this.#ctrl?.broken === true || this.#broken !== null) throw error;
          process.emitWarning(
            `${name}: the device refused promiscuous mode at init (${error.message}); it may filter frames not ` +
              `addressed to ${formatMac(this.#mac)}`,
            { type: "IxyWarning", code: "IXY_VIRTIO_PROMISC_REFUSED" },
          );
        }
      }
      trace.step("5.1.4", "wait for the link (status)");
      this.#waitForLink(options.linkTimeoutMs ?? 10000);
      // From here on, what no control operation announces is the hot path's.
      trace.hotPath();
      if (interrupts) this.offloads = { ...this.offloads, interrupts: true };
    } catch (error) {
      // §3.1.1: tell the device we gave up, then reset it so that it stops touching our memory.
      // Not with a FEATURES_OK the device refused: qemu validates the features again on a write
      // that sets it and drops the whole write, so FAILED would never stick.
      try {
        const kept = transport.getStatus() & VIRTIO_CONFIG_S_FEATURES_OK;
        transport.setStatus((status & ~VIRTIO_CONFIG_S_FEATURES_OK) | kept | VIRTIO_CONFIG_S_FAILED);
        transport.reset();
        // After the reset: the device sends nothing more to the eventfds that go now.
        for (const w of this.#irqWaits) w.close();
        if (interrupts) transport.disableInterrupts();
      } catch {
        // The original error says more than a failure to reset after it.
      }
      try {
        // As close() does: the receive rings' buffers go back to their pools (nothing was sent).
        for (const rx of this.#rxs) rx.releaseBuffers();
        // Then the pools and the rings go back to the allocator (not if a pool cannot be
        // closed: memory kept is safer than memory unmapped under a live pool).
        for (const pool of pools) pool.close();
        if (mark !== undefined) dma.releaseSince?.(mark);
      } catch {
        // likewise
      }
      trace.close();
      throw error;
    }
  }

  /**
   * §2.1.2: a device that hit an error it cannot recover from sets DEVICE_NEEDS_RESET (qemu's
   * virtio_error) and stops processing its queues; one reset behind our back reads back 0 (or
   * without DRIVER_OK). Either way rxBatch and txBatch would return 0 forever: called where a
   * register read costs nothing on the hot path (readStats, linkSpeed, setPromisc, a TX ring full
   * after a reclaim, an RX ring empty for 65536 polls), it breaks both queues and throws. Over
   * vhost-user the same places notice a backend that died (VhostUserDisconnectedError).
   */
  #checkDevice(): void {
    if (this.#broken === null) {
      // vhost-user: a backend that died (one poll(2) that does not wait) is broken for good.
      try {
        this.#transport.checkConnected?.("a look at the device status");
      } catch (error) {
        if (!(error instanceof DeviceProtocolError)) throw error;
        this.#broken = error;
        this.#breakQueues(error);
        throw error;
      }
      const status = this.#transport.getStatus();
      const needsReset = (status & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0;
      if (!needsReset && (status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0) return;
      this.#broken = new DeviceProtocolError(
        needsReset
          ? `${this.address}: the device set DEVICE_NEEDS_RESET (device status 0x${status.toString(16)}): it hit an ` +
              `error it cannot recover from and stopped processing its queues; close the device and open it again`
          : `${this.address}: the device was reset behind the driver's back (device status 0x${status.toString(16)}, ` +
              `DRIVER_OK is clear): it no longer processes its queues; close the device and open it again`,
      );
      this.#breakQueues(this.#broken);
    }
    throw this.#broken;
  }

  #breakQueues(error: DeviceProtocolError): void {
    for (const rx of this.#rxs) rx.breakWith(error);
    for (const tx of this.#txs) tx.breakWith(error);
    this.#sharing.stopAll(PairStatus.broken);
  }

  /**
   * Hands queue pair `queue` (receiveq and transmitq of the pair, and the receive pool) to a
   * worker thread, which drives it with attachQueuePair() (src/threads/queue-pair.ts); from now
   * on rxBatch/txBatch on it throw QueueSharedError here. This thread keeps the device: its
   * readStats() sums the pair's counters (shared memory) and notices a device that needs a
   * reset, which stops the worker's queues too; close() needs every pair back first
   * (reclaimQueuePair).
   */
  shareQueuePair(queue: number): SharedQueuePair {
    if (this.#closed) throw new DeviceClosedError(`${this.address}: shareQueuePair() on a closed device; open it again`);
    if (this.#broken !== null) throw this.#broken;
    checkInteger(this.address, "shareQueuePair()'s queue pair", queue, 0, this.rxQueues - 1);
    const rx = this.#rxs[queue]!;
    const tx = this.#txs[queue]!;
    const pair = this.#sharing.share(queue, (control) => ({
      driver: this.driver, device: this.address, queue, rx: rx.share(), tx: tx.share(), rxPool: rx.pool.share(), control,
      hotPath: this.#hotPath,
    }));
    this.#dispatch();
    return pair;
  }

  /** Takes queue pair `queue` back once its worker detached it (or exited); false if it was not out. */
  reclaimQueuePair(queue: number): boolean {
    if (!this.#sharing.reclaim(queue)) return false;
    this.#dispatch();
    return true;
  }

  /** NicDevice.ringState: queue `queue`'s receiveq or transmitq, split or packed. */
  ringState(kind: "rx" | "tx", queue: number): RingState {
    if (this.#closed) throw new DeviceClosedError(`${this.address}: ringState() on a closed device; open it again`);
    checkInteger(this.address, "ringState()'s queue", queue, 0, (kind === "rx" ? this.rxQueues : this.txQueues) - 1);
    if (this.#sharing.isShared(queue)) this.#sharing.refuse(queue, "ringState");
    return kind === "rx" ? this.#rxs[queue]!.ringState(queue) : this.#txs[queue]!.ringState(queue);
  }

  /** What rxBatch/txBatch may use: every queue but those of shared pairs. */
  #dispatch(): void {
    this.#rxBy = this.#rxs.map((q, i) => (this.#sharing.isShared(i) ? undefined : q));
    this.#txBy = this.#txs.map((q, i) => (this.#sharing.isShared(i) ? undefined : q));
  }

  /** Queue `queue` is receiveq(queue+1), of queue pair `queue`. */
  rxBatch(queue: number, bufs: Int32Array, max: number): number {
    const rx = this.#rxBy[queue];
    if (rx === undefined || this.#closed || !goodBatch(bufs, max)) {
      if (!this.#closed && this.#sharing.isShared(queue)) this.#sharing.refuse(queue, "rxBatch");
      badBatchCall(this.address, "rxBatch", this.#closed, queue, this.rxQueues, bufs, max);
    }
    return rx.receive(bufs, max);
  }

  /** Queue `queue` is transmitq(queue+1), of queue pair `queue`. */
  txBatch(queue: number, bufs: Int32Array, count: number): number {
    const tx = this.#txBy[queue];
    if (tx === undefined || this.#closed || !goodBatch(bufs, count)) {
      if (!this.#closed && this.#sharing.isShared(queue)) this.#sharing.refuse(queue, "txBatch");
      badBatchCall(this.address, "txBatch", this.#closed, queue, this.txQueues, bufs, count);
    }
    return tx.send(bufs, count);
  }

  /**
   * Sleeps until receive queue `queue` has frames, at most `timeoutMs` (docs/interrupts.md): arms
   * the queue's interrupt, looks at the ring once more (arm(): a frame that came before the arm
   * resolves at once), parks on the interrupt's eventfd without blocking the event loop, and
   * disarms on waking. True: frames may be waiting (rxBatch them); false: the timeout passed, or
   * close() ended the wait. NotSupportedError unless opened with interrupts: true.
   */
  async waitForRx(queue: number, timeoutMs: number): Promise<boolean> {
    if (this.#closed) throw new DeviceClosedError(`${this.address}: waitForRx() on a closed device; open it again with openDevice()`);
    if (this.#irqWaits.length === 0) {
      throw new NotSupportedError(`${this.address}: waitForRx() needs interrupts: open the device with interrupts: true`);
    }
    checkInteger(this.address, "waitForRx()'s queue", queue, 0, this.rxQueues - 1);
    checkNonNegative(this.address, "waitForRx()'s timeoutMs", timeoutMs, "milliseconds");
    if (this.#sharing.isShared(queue)) this.#sharing.refuse(queue, "waitForRx");
    const rx = this.#rxs[queue]!;
    if (rx.arm()) return true;
    try {
      return await this.#irqWaits[queue]!.wait(timeoutMs);
    } finally {
      // Not after close(): the rings may belong to the allocator's next user by now.
      if (!this.#released) rx.disarm();
    }
  }

  /** Totals since the device was opened, counted by the driver (virtio-net has no counters). */
  readStats(into: DeviceStats): void {
    checkStatsTarget(this.address, into);
    this.#fillStats(into);
    // After the counters, so that a broken device's last totals are there when this throws.
    if (!this.#closed) this.#control("2.1", "device status (readStats)", () => this.#checkDevice());
  }

  /** The sums over all queues. */
  #fillStats(into: DeviceStats): void {
    into.rxPackets = into.rxBytes = into.rxMissed = into.rxErrors = 0;
    into.txPackets = into.txBytes = into.txErrors = 0;
    for (const { counters: rx } of this.#rxs) {
      into.rxPackets += rx[RxCounter.packets]!;
      into.rxBytes += rx[RxCounter.bytes]!;
      into.rxMissed += rx[RxCounter.missed]!;
      into.rxErrors += rx[RxCounter.errors]!;
    }
    for (const { counters: tx } of this.#txs) {
      into.txPackets += tx[TxCounter.packets]!;
      into.txBytes += tx[TxCounter.bytes]!;
      into.txErrors += tx[TxCounter.errors]!;
    }
  }

  /** virtio-net has no flow steering: NotSupportedError (after the usual closed-device check). */
  addFlowRule(_match: FlowMatch, _action: FlowAction): number {
    this.#checkOpen("addFlowRule");
    throw new NotSupportedError(noFlowSteering(this.address, "addFlowRule()"));
  }

  removeFlowRule(_id: number): void {
    this.#checkOpen("removeFlowRule");
    throw new NotSupportedError(noFlowSteering(this.address, "removeFlowRule()"));
  }

  /** §5.1.6.5.1: VIRTIO_NET_CTRL_RX_PROMISC through the control queue. vhost-user: always on. */
  setPromisc(on: boolean): void {
    this.#checkOpen("setPromisc");
    checkPromiscArgument(this.address, on);
    if (this.transport === "vhost-user") {
      // No control queue over vhost-user (features.ts), and backends filter nothing.
      if (on) return;
      throw new NotSupportedError(
        `${this.address}: a vhost-user backend has no receive filter (it hands the driver every frame), so ` +
          `promiscuous mode cannot be turned off`,
      );
    }
    if (this.#ctrl === null || !hasFeature(this.features, VIRTIO_NET_F_CTRL_RX)) {
      throw new NotSupportedError(
        `${this.address}: the device does not offer VIRTIO_NET_F_CTRL_VQ and VIRTIO_NET_F_CTRL_RX, so its receive ` +
          `filter cannot be changed`,
      );
    }
    this.#trace.enter("5.1.6.5.1", `promiscuous mode ${on ? "on" : "off"}`);
    try {
      this.#setPromisc(this.#ctrl, on);
    } finally {
      this.#trace.leave();
    }
  }

  #setPromisc(ctrl: CtrlQueue | PackedCtrlQueue, on: boolean): void {
    this.#checkDevice();
    ctrl.command(VIRTIO_NET_CTRL_RX, VIRTIO_NET_CTRL_RX_PROMISC, Uint8Array.of(on ? 1 : 0), `promiscuous mode ${on ? "on" : "off"}`);
  }

  linkSpeed(): number {
    this.#checkOpen("linkSpeed");
    return this.#control("5.1.4", "link status (linkSpeed)", () => {
      this.#checkDevice();
      return this.#linkUp() ? NOMINAL_LINK_SPEED : 0;
    });
  }

  macAddress(): Uint8Array {
    this.#checkOpen("macAddress");
    return this.#mac.slice();
  }

  /** Descriptors free on transmit queue 0 (after its last reclaim). */
  get txFree(): number {
    return this.#txs[0]!.free;
  }

  /** Notifications sent so far on queue pair 0: [receive, transmit]. */
  get notifications(): readonly [number, number] {
    return this.queueNotifications(0);
  }

  /** Notifications sent so far on queue pair `pair`: [receive, transmit]. */
  queueNotifications(pair: number): readonly [number, number] {
    return [this.#rxs[pair]!.counters[RxCounter.notifications]!, this.#txs[pair]!.counters[TxCounter.notifications]!];
  }

  /** Ring entries the device reads on queue pair 0: [receive, transmit]. */
  get ringCapacity(): readonly [number, number] {
    return [this.#rxs[0]!.capacity, this.#txs[0]!.capacity];
  }

  /**
   * Resets the device (status 0): it stops all DMA. Then gives the buffers in both rings back to
   * their pools: the receive ring's, and the transmit ring's, in flight or sent and not reclaimed
   * yet (they may come from any pool). The caller still owns and closes pci and dma. When the
   * reset fails (a device that does not acknowledge it), the buffers stay with the device, which
   * may still be using them, and the error says so.
   */
  close(): void {
    if (this.#released) return;
    // Not while a worker may be inside a loop over the rings this releases (queue-sharing.ts).
    this.#sharing.checkNoneOut();
    this.#closed = true;
    // Parked waits end now (false); the eventfds stay open until the device is reset.
    for (const w of this.#irqWaits) w.close();
    try {
      this.#trace.step("3.1.1", "close: reset");
      this.#transport.reset();
      this.#trace.close();
    } catch (error) {
      if (error instanceof DeviceTimeoutError) {
        error.message += `; ${this.address}: close(): the buffers in its rings stay with the device, which may still use them; ` +
          `close() again retries the reset and gives them back once it succeeds`;
      }
      throw error;
    }
    this.#released = true;
    this.#transport.disableInterrupts();
    for (const tx of this.#txs) tx.releaseBuffers();
    for (const rx of this.#rxs) rx.releaseBuffers();
  }

  /** §5.1.4: max_virtqueue_pairs, which a device offering MQ sets from 1 to 0x8000. */
  #readMaxQueuePairs(): number {
    const max = this.#transport.readConfig16(VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS);
    if (max < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || max > VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX) {
      throw new DeviceProtocolError(
        `${this.address}: the device offers VIRTIO_NET_F_MQ with max_virtqueue_pairs ${max} (§5.1.4: 1 to 0x8000); ` +
          `it cannot be driven with more than one queue pair: use rxQueues and txQueues 1`,
      );
    }
    return max;
  }

  /** §5.1.4: the link is up if STATUS was not negotiated, or VIRTIO_NET_S_LINK_UP says so. */
  #linkUp(): boolean {
    if (!this.#hasStatus) return true;
    return (this.#transport.readConfig16(VIRTIO_NET_CONFIG_STATUS) & VIRTIO_NET_S_LINK_UP) !== 0;
  }

  /** Waits for the link (0: do not wait); still down after `timeoutMs` is a DeviceTimeoutError. */
  #waitForLink(timeoutMs: number): void {
    if (timeoutMs <= 0) return;
    pollUntil(() => this.#linkUp(), {
      timeoutMs,
      pollMs: 10,
      onTimeout: () =>
        new DeviceTimeoutError(
          `${this.address}: the link did not come up within ${timeoutMs} ms (VIRTIO_NET_S_LINK_UP is clear): ` +
            `check the backend the device is connected to, raise linkTimeoutMs (the apps' --link-timeout MS), ` +
            `or pass linkTimeoutMs: 0 to open the device without waiting`,
        ),
    });
  }

  /**
   * §5.1.5 step 5: the MAC from the device configuration, read until config_generation is the same
   * before and after (§2.5.1: a multi-byte field may change between byte reads). Without
   * VIRTIO_NET_F_MAC, a random locally administered unicast address.
   */
  #readMac(): Uint8Array {
    const mac = new Uint8Array(6);
    if (!hasFeature(this.features, VIRTIO_NET_F_MAC)) {
      crypto.getRandomValues(mac);
      mac[0] = (mac[0]! & 0xfe) | 0x02;
      return mac;
    }
    for (let attempt = 0; attempt < 100; attempt++) {
      const generation = this.#transport.configGeneration();
      for (let i = 0; i < 6; i++) mac[i] = this.#transport.readConfig8(VIRTIO_NET_CONFIG_MAC + i);
      if (this.#transport.configGeneration() === generation) return mac;
    }
    throw new DeviceProtocolError(`${this.address}: the device configuration kept changing while the MAC address was read`);
  }

  /** A control operation: its accesses are traced as `section` `what` (trace mode). */
  #control<T>(section: string, what: string, operation: () => T): T {
    this.#trace.enter(section, what);
    try {
      return operation();
    } finally {
      this.#trace.leave();
    }
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new DeviceClosedError(`${this.address}: ${what}() on a closed device; open it again with openDevice()`);
    this.#transport.checkConnected?.(`${what}()`);
  }
}

/** Queue size and number of entries in use: the device's size, capped by the option (§4.1.5.1.3). */
function queueGeometry(
  name: string,
  transport: VirtioTransport,
  index: number,
  cap: number | undefined,
  what: string,
): { size: number; capacity: number } {
  const max = transport.queueSize(index);
  if (max === 0) throw new DeviceProtocolError(`${name}: the device has no ${what} virtqueue (queue ${index} has size 0)`);
  if (max > VIRTQ_MAX_SIZE || (max & (max - 1)) !== 0) {
    throw new DeviceProtocolError(`${name}: the ${what} virtqueue's size ${max} is not a power of two up to ${VIRTQ_MAX_SIZE}`);
  }
  const capacity = cap === undefined ? max : Math.min(max, cap);
  // A legacy queue keeps the device's size; fewer entries are simply never made available.
  return { size: transport.canResizeQueues ? capacity : max, capacity };
}

function checkOptions(address: string, options: VirtioDeviceOptions): VirtioDeviceOptions {
  options = checkDeviceOptions(address, options);
  checkOneOf(address, "transport", options.transport, ["modern", "legacy"]);
  if (options.transport === "legacy" && options.ring === "packed") {
    throw new NotSupportedError(`${address}: ring 'packed' needs transport 'modern': the legacy interface has only split rings`);
  }
  return options;
}

/**
 * The DeviceOptions checks of every virtio transport (the constructor does not repeat them);
 * returns the options ({} when left out).
 */
/** Why virtio-net cannot take a flow rule. */
function noFlowSteering(address: string, what: string): string {
  return `${address}: ${what}: virtio-net has no flow steering to program (the device spreads flows over the queue pairs ` +
    `itself, virtio 1.2 §5.1.6.5.6 (VIRTIO_NET_F_RSS) offers a hash, not per-flow rules); steer in software, or use an ixgbe port`;
}

export function checkDeviceOptions<T extends DeviceOptions>(address: string, options: T | undefined): T {
  const o = checkDeviceOptionTypes(address, options);
  // §5.1.2: virtio-net queues come in pairs (VQ_PAIRS_SET counts pairs, up to 0x8000).
  const rxQueues = checkInteger(address, "rxQueues", o.rxQueues ?? 1, 1, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX);
  const txQueues = checkInteger(address, "txQueues", o.txQueues ?? 1, 1, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX);
  if (rxQueues !== txQueues) {
    throw new NotSupportedError(
      `${address}: rxQueues ${rxQueues} and txQueues ${txQueues}: virtio-net multiqueue (VIRTIO_NET_F_MQ) works in ` +
        `receive/transmit queue pairs, received frames steered over every pair in use: give both the same number`,
    );
  }
  if (o.flowDirector === true) throw new NotSupportedError(noFlowSteering(address, "flowDirector: true"));
  for (const key of ["rxRingSize", "txRingSize"] as const) {
    if (o[key] !== undefined) checkPowerOfTwo(address, key, o[key], 1, VIRTQ_MAX_SIZE);
  }
  checkOneOf(address, "ring", o.ring, ["packed", "split"]);
  checkOffloadOptions(address, o.offloads);
  if (o.mempoolSize !== undefined) checkInteger(address, "mempoolSize", o.mempoolSize, 1, 1 << 24);
  if (o.linkTimeoutMs !== undefined) checkNonNegative(address, "linkTimeoutMs", o.linkTimeoutMs, "milliseconds");
  return o;
}

function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(":");
}

function hex4(value: number): string {
  return value.toString(16).padStart(4, "0");
}
