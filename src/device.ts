/**
 * NicDevice: the interface every driver implements (openDevice() in open-device.ts picks the
 * driver by vendor and device id).
 *
 * Packets are buffer numbers (src/mem/buffer-table.ts) and a batch is an Int32Array of them.
 *
 * Buffer ownership: rxBatch hands received buffers to the caller, who must eventually send them
 * (txBatch) or free them (freeBuffer / Mempool.freeBatch). txBatch takes ownership of the buffers
 * it accepts and returns them to their pools once the device has sent them; buffers it did not
 * accept stay with the caller. A buffer whose length is 0 or larger than its data area is accepted
 * but not sent: it goes straight back to its pool and counts in txErrors. close() gives every
 * buffer in the device's rings back to its pool, so that afterwards each buffer is in its pool or
 * with the caller.
 *
 * Arguments, the same for every driver: `queue` must name an open queue (RangeError); the batch
 * must be an Int32Array (TypeError) and the count an integer from 0 to batch.length (TypeError for
 * NaN or a fraction, RangeError otherwise); txBatch checks every buffer number before it touches a
 * ring or a pool: RangeError for a number that is no buffer, AddressSpaceError for a buffer of a
 * pool whose allocator is of another address space than the device's, and in checked pools
 * BufferOwnershipError for a buffer the caller does not hold (free, twice in the batch, or still
 * held by a device queue); then nothing of the batch is taken. Other arguments and options are
 * checked by src/validate.ts: TypeError for a wrong type, RangeError for a value not allowed.
 * After close(), rxBatch, txBatch, setPromisc, linkSpeed and macAddress throw DeviceClosedError;
 * readStats still reports the totals; close() again does nothing.
 */
import type { DmaAllocator } from "./mem/dma.ts";
import type { HotPathMode } from "./drivers/specialize.ts";
import type { SharedQueuePair } from "./drivers/queue-sharing.ts";
import type { TraceOption } from "./pci/register-trace.ts";
import type { RingState } from "./ring-state.ts";

export interface DeviceStats {
  rxPackets: number;
  txPackets: number;
  /** Bytes of the frames as the application sees them: without the 4-byte Ethernet FCS. */
  rxBytes: number;
  txBytes: number;
  /** Frames the device had to drop for lack of receive buffers (ixgbe MPC, virtio: software). */
  rxMissed: number;
  /** Frames received with errors (CRC, length, ...) or dropped by the driver as malformed. */
  rxErrors: number;
  /** Frames the driver could not send. */
  txErrors: number;
}

/**
 * What a device does for the driver, as decided at open (DeviceOptions.offloads and
 * maxFrameSize; docs/offloads.md). fwd prints it at start.
 */
export interface DeviceOffloads {
  /** Received frames carry the device's checksum verdict (bufRxOffload). */
  readonly rxChecksum: boolean;
  /** Checksum requests (requestChecksum) are done by the device; otherwise by the driver in software. */
  readonly txChecksum: boolean;
  /** TCP segmentation requests (requestTso) are done by the device; otherwise txBatch refuses them. */
  readonly tso: boolean;
  /** The largest frame received and sent, bytes without the FCS (1514: no jumbo frames). */
  readonly maxFrameSize: number;
  /** virtio: a received frame may span several receive buffers (VIRTIO_NET_F_MRG_RXBUF). */
  readonly mergeableRx: boolean;
  /** ixgbe: Flow Director perfect filters are set up (addFlowRule). */
  readonly flowDirector: boolean;
  /** MSI-X interrupts are set up (waitForRx). */
  readonly interrupts: boolean;
}

/** Offloads a device starts from before its driver turns any on. */
export const NO_OFFLOADS: DeviceOffloads = Object.freeze({
  rxChecksum: false,
  txChecksum: false,
  tso: false,
  maxFrameSize: 1514,
  mergeableRx: false,
  flowDirector: false,
  interrupts: false,
});

/** DeviceOptions.offloads: for each, undefined: on if the device offers it; false: off; true: required. */
export interface OffloadOptions {
  readonly rxChecksum?: boolean;
  readonly txChecksum?: boolean;
  readonly tso?: boolean;
}

export function newStats(): DeviceStats {
  return { rxPackets: 0, txPackets: 0, rxBytes: 0, txBytes: 0, rxMissed: 0, rxErrors: 0, txErrors: 0 };
}

export interface NicDevice {
  /** "ixgbe" or "virtio". */
  readonly driver: string;
  /** PCI address, "0000:01:00.0" (or "sim:..." for device models). */
  readonly address: string;
  readonly rxQueues: number;
  readonly txQueues: number;
  /** The allocator the device's memory comes from: make mempools for txBatch from it. */
  readonly dma: DmaAllocator;
  /** Receives up to `max` frames from `queue` into bufs[0 .. n); returns n. Never blocks. */
  rxBatch(queue: number, bufs: Int32Array, max: number): number;
  /** Queues bufs[0 .. count) for sending on `queue`; returns how many were accepted (a prefix). */
  txBatch(queue: number, bufs: Int32Array, count: number): number;
  /** Fills `into` with totals since the device was opened. */
  readStats(into: DeviceStats): void;
  setPromisc(on: boolean): void;
  /** Link speed in Mbit/s; 0 while the link is down. */
  linkSpeed(): number;
  /** The MAC address, 6 bytes. */
  macAddress(): Uint8Array;
  /** What the device offloads, as decided at open. */
  readonly offloads: DeviceOffloads;
  /**
   * Hands queue pair `queue` (RX and TX queue `queue`, and the RX queue's mempool) to a worker
   * thread: send the result to the worker (workerData or postMessage), which drives the pair
   * with attachQueuePair() (src/threads/queue-pair.ts). Afterwards rxBatch/txBatch on `queue`
   * throw QueueSharedError in this thread; readStats, linkSpeed and the rest stay here and see
   * the pair's counters. docs/threads.md has the rules.
   */
  shareQueuePair(queue: number): SharedQueuePair;
  /**
   * Takes pair `queue` back once its worker detached it or exited; returns false if it was not
   * handed out. close() throws QueueSharedError (and closes nothing) while a pair is out.
   */
  reclaimQueuePair(queue: number): boolean;
  /**
   * Arms receive queue `queue`'s interrupt, re-checks the ring (a frame that arrived before
   * arming resolves at once), sleeps without blocking the event loop, disarms on wake. True:
   * frames may be waiting; false: timed out, or close() ended the wait. NotSupportedError on a
   * device opened without interrupts: true.
   */
  waitForRx(queue: number, timeoutMs: number): Promise<boolean>;
  /**
   * Adds a receive steering rule (ixgbe: a Flow Director perfect filter, docs/flow-director.md):
   * IPv4 frames that match `match` go to receive queue `action`, or are dropped by the device
   * ("drop"). Returns the rule's id for removeFlowRule. Needs a device opened with
   * `flowDirector: true` (NotSupportedError otherwise). RangeError for a bad queue, address or
   * port; NotSupportedError for a match the hardware cannot make; FlowTableFullError when the
   * device's table has no room. A rule that fails changes nothing. virtio-net has no flow
   * steering: NotSupportedError.
   */
  addFlowRule(match: FlowMatch, action: FlowAction): number;
  /** Removes the rule `id` returned by addFlowRule (RangeError for an id that names no rule). */
  removeFlowRule(id: number): void;
  /**
   * A read-only snapshot of receive ("rx") or transmit ("tx") queue `queue`'s descriptor ring:
   * who owns each descriptor, head, tail, the driver's indices (src/ring-state.ts,
   * docs/rings.md). For pictures once a second, not for the hot path; changes nothing.
   * QueueSharedError for a queue pair handed to a worker thread.
   */
  ringState(kind: "rx" | "tx", queue: number): RingState;
  /** Stops the queues, resets the device and releases everything it holds. Idempotent. */
  close(): void;
}

/**
 * What a flow rule matches: the L4 protocol ("ip": any IPv4 frame) and, optionally, the IPv4
 * source and destination address (dotted quads) and, for tcp and udp, the ports. A field left out
 * matches anything. IPv6 rules are not implemented (NotSupportedError).
 */
export interface FlowMatch {
  readonly proto: "tcp" | "udp" | "sctp" | "ip";
  readonly src?: string;
  readonly dst?: string;
  readonly srcPort?: number;
  readonly dstPort?: number;
}

/** Where a matching frame goes: a receive queue of the device, or nowhere. */
export type FlowAction = number | "drop";

export interface DeviceOptions {
  /** Receive queues (default 1). */
  readonly rxQueues?: number;
  /** Transmit queues (default 1). */
  readonly txQueues?: number;
  /** Descriptors per receive ring, a power of two (driver default: ixgbe 512, virtio the device's maximum). */
  readonly rxRingSize?: number;
  /** Descriptors per transmit ring, a power of two. */
  readonly txRingSize?: number;
  /** Buffers per receive-queue mempool (default: 4096, at least twice the ring size). */
  readonly mempoolSize?: number;
  /** Mempools throw on double free or foreign buffers. */
  readonly checked?: boolean;
  /**
   * How long to wait for the link at init, in ms (default 10000; 0: do not wait). A link still
   * down then is a DeviceTimeoutError, with every driver.
   */
  readonly linkTimeoutMs?: number;
  /**
   * "specialized" (default): each queue's hot loops are compiled for that queue alone (fast);
   * "shared": one copy for all queues (slower, but debuggers and source maps work in the loops).
   * The environment variable IXY_HOT_PATH=shared sets the default. See src/drivers/specialize.ts.
   */
  readonly hotPath?: HotPathMode;
  /**
   * virtio only: the virtqueue layout. "packed" (virtio 1.1+ VIRTIO_F_RING_PACKED, spec §2.8)
   * needs a device that offers it (qemu: virtio-net-pci,packed=on) and a modern or vhost-user
   * transport; "split" (§2.7, the default) works everywhere. Split is the default because it
   * measured faster (docs/packed-ring.md). The ixgbe driver ignores it.
   */
  readonly ring?: "packed" | "split";
  /**
   * Allow DMA with host physical addresses, past every IOMMU: the device can then read and
   * write any RAM, not only the buffers given to it. Needed for a legacy (transitional) virtio
   * device, whose DMA bypasses the IOMMU. Off by default; openDevice refuses such a device
   * without it and warns (process.emitWarning, code IXY_UNSAFE_NO_IOMMU) with it.
   */
  readonly unsafeNoIommu?: boolean;
  /**
   * ixgbe only: the 40-byte Toeplitz key of receive-side scaling, used when rxQueues > 1
   * (default: a random key for each device, as Linux does). A fixed key makes the queue of each
   * flow predictable, e.g. to test or to give both ports of a forwarder the same spreading.
   */
  readonly rssKey?: Uint8Array;
  /**
   * Checksum and segmentation offloads (docs/offloads.md): for each, undefined (the default) turns
   * it on where the device offers it, false turns it off, true requires it (NotSupportedError at
   * open from a device without it). NicDevice.offloads says what is on.
   */
  readonly offloads?: OffloadOptions;
  /**
   * The largest frame to receive and send, in bytes without the 4-byte FCS (default 1514, no
   * jumbo frames). ixgbe: up to 9014; virtio: as far as the device allows.
   */
  readonly maxFrameSize?: number;
  /**
   * MSI-X interrupts for waitForRx (default false: pure polling): one vector per receive queue
   * plus one for the rest, set up at open; NotSupportedError naming the device if it has none.
   */
  readonly interrupts?: boolean;
  /**
   * ixgbe only: turn the 82599's Flow Director on in perfect-match mode, so that addFlowRule
   * works (default false). It takes 64 KB of the 512 KB receive packet buffer for its filter table
   * (2047 rules), which leaves less room to absorb bursts; that is why it is off by default.
   * true on a virtio device: NotSupportedError at open.
   */
  readonly flowDirector?: boolean;
  /**
   * Trace mode (docs/trace.md): every register access of init and of the control operations
   * (linkSpeed, readStats, setPromisc, close, ...) printed as one line with the register's
   * datasheet name, the value, the bits set and the datasheet or specification section of the
   * step; virtio also decodes the status handshake and the feature negotiation, vhost-user
   * prints its messages. true: lines to stderr, hot-path accesses (doorbells, the statistics
   * poll) summarised as counts once a second; { sink, hotPath: "each" }: lines to `sink`, the
   * hot path one by one too. Off by default, and then nothing is wrapped: no trace code runs.
   * Queue pairs handed to worker threads are not traced.
   */
  readonly trace?: TraceOption;
}
