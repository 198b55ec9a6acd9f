/**
 * The transport-independent half of a virtio device model: the device status state machine
 * (virtio 1.2 §2.1, §3.1), feature negotiation that refuses what the device does not offer
 * (§2.2), virtqueue configuration and notifications. The modern and legacy register files
 * (modern-interface.ts, legacy-interface.ts) translate register accesses into calls here;
 * the network device (virtio-model.ts) supplies what happens on a notification.
 *
 * Protocol mistakes a real device would tolerate silently (or punish unpredictably) are
 * recorded in `violations`, so that tests can insist there are none. Those qemu treats as fatal
 * (virtio_error() in hw/virtio/virtio.c) also break the device: `broken` is set, the rings stop,
 * and with VIRTIO_F_VERSION_1 negotiated DEVICE_NEEDS_RESET appears in the status (§2.1.2;
 * qemu sets it only for virtio 1.x drivers), until the driver resets the device.
 */
import type { DeviceAddressSpace } from "../address-space.ts";
import { DeviceRing, type RingAddresses } from "./device-ring.ts";
import { PackedDeviceRing } from "./packed-device-ring.ts";
import {
  bit,
  F,
  LEGACY_ONLY_FEATURES,
  LEGACY_VRING_ALIGN,
  NO_VECTOR,
  S_ACKNOWLEDGE,
  S_DRIVER,
  S_DRIVER_OK,
  S_FEATURES_OK,
  S_NEEDS_RESET,
} from "./virtio-spec.ts";

/** A queue's ring: split (§2.7) or, with VIRTIO_F_RING_PACKED negotiated, packed (§2.8). */
export type AnyDeviceRing = DeviceRing | PackedDeviceRing;

export interface QueueState {
  readonly index: number;
  readonly maxSize: number;
  size: number;
  desc: number;
  avail: number;
  used: number;
  msixVector: number;
  enabled: boolean;
  ring: AnyDeviceRing | null;
  /** Available-buffer notifications received. */
  notifications: number;
  /** Used-buffer notifications sent (the driver had not suppressed them), whatever became of them. */
  interrupts: number;
}

export interface VirtioCoreOptions {
  readonly name: string;
  readonly dma: DeviceAddressSpace;
  /** Whether bus mastering is enabled (no DMA otherwise). */
  readonly busMaster: () => boolean;
  /** Features offered (the legacy interface shows only the low 32 bits). */
  readonly offered: bigint;
  /** Features the model actually implements; others it offers only to see drivers decline them. */
  readonly implemented: bigint;
  readonly queueSizes: readonly number[];
  /** Queues that must be enabled before DRIVER_OK. */
  readonly requiredQueues: number;
  /** Fault injection: when it returns true, the device refuses any feature set. */
  readonly refuseFeatures?: () => boolean;
  /** Fault injection: reads of the device status a reset takes to complete (Infinity: never). */
  readonly resetReads?: () => number;
  /** Features the device fails FEATURES_OK without, when it offers them (§6.1 ORDER_PLATFORM). */
  readonly required?: bigint;
}

export class VirtioCore {
  readonly name: string;
  readonly dma: DeviceAddressSpace;
  readonly offered: bigint;
  readonly implemented: bigint;
  readonly queues: QueueState[];
  readonly busMaster: () => boolean;
  readonly statusLog: number[] = [];
  /** Every status the device took (after each write was applied, or dropped), in order. */
  readonly statusHistory: number[] = [];
  readonly violations: string[] = [];
  status = 0;
  /** Set by a fatal error (deviceError); cleared by a reset. */
  broken = false;
  driverFeatures = 0n;
  /** The driver talks through the legacy interface (since the last reset). */
  legacy = false;
  deviceFeatureSelect = 0;
  driverFeatureSelect = 0;
  queueSelect = 0;
  msixConfig = NO_VECTOR;
  configGeneration = 0;
  isr = 0;
  resets = 0;
  /**
   * Entries of the PCI function's MSI-X table (0: none). A vector register written with a vector
   * beyond it reads back NO_VECTOR: qemu's msix_vector_use() fails, "so the driver can discover
   * the error" (virtio 1.2 §4.1.5.1.2.1).
   */
  msixTableSize = 0;
  /** Used-buffer notifications whose vector reached no eventfd (MSI-X off, or the vector not enabled). */
  lostInterrupts = 0;
  /** Fault injection: when it returns true, every vector write reads back NO_VECTOR (a device out of vectors). */
  refuseVectors: () => boolean = () => false;
  /** The PCI model raises MSI-X vector `vector`; false when the message went nowhere. */
  onInterrupt: (vector: number) => boolean = () => false;
  #suppressNotify = false;
  readonly #requiredQueues: number;
  readonly #refuseFeatures: () => boolean;
  readonly #resetReads: () => number;
  readonly #required: bigint;
  /** Status reads left until a requested reset completes (0: none pending). */
  #resetPending = 0;
  onNotify: (index: number) => void = () => {};
  onReset: () => void = () => {};
  /** A read of the device-specific configuration (fault injection hooks in here). */
  onConfigRead: () => void = () => {};
  /** A read of the device status (the asynchronous model lets time pass here). */
  onStatusRead: () => void = () => {};

  constructor(options: VirtioCoreOptions) {
    this.name = options.name;
    this.dma = options.dma;
    this.busMaster = options.busMaster;
    this.offered = options.offered;
    this.implemented = options.implemented;
    this.#requiredQueues = options.requiredQueues;
    this.#refuseFeatures = options.refuseFeatures ?? (() => false);
    this.#resetReads = options.resetReads ?? (() => 0);
    this.#required = options.required ?? 0n;
    this.queues = options.queueSizes.map((maxSize, index) => ({
      index,
      maxSize,
      size: maxSize,
      desc: 0,
      avail: 0,
      used: 0,
      msixVector: NO_VECTOR,
      enabled: false,
      ring: null,
      notifications: 0,
      interrupts: 0,
    }));
  }

  violation(message: string): void {
    this.violations.push(`${this.name}: ${message}`);
  }

  /** qemu's virtio_error(): a violation that breaks the device until it is reset. */
  deviceError(message: string): void {
    // Like qemu, a broken device says so once and then ignores the rings.
    if (this.broken) return;
    this.violation(`${message} (fatal: the device needs a reset)`);
    this.broken = true;
    if (this.negotiated(F.VERSION_1)) {
      this.status |= S_NEEDS_RESET;
      this.configChanged();
    }
  }

  /** The device status as the driver reads it; a slow reset completes after some reads. */
  readStatus(): number {
    this.onStatusRead();
    if (this.#resetPending > 0) {
      this.#resetPending--;
      if (this.#resetPending === 0) this.reset();
    }
    return this.status;
  }

  get driverOk(): boolean {
    return (this.status & S_DRIVER_OK) !== 0;
  }

  /** What the modern interface offers: qemu hides the legacy-only bits there. */
  get modernFeatures(): bigint {
    return this.offered & ~LEGACY_ONLY_FEATURES;
  }

  negotiated(featureBit: number): boolean {
    return (this.driverFeatures & bit(featureBit)) !== 0n;
  }

  // --- Features (§2.2, §3.1.1 step 4) -------------------------------------------------------

  readDeviceFeatureWord(): number {
    const sel = this.deviceFeatureSelect;
    return sel > 1 ? 0 : Number((this.modernFeatures >> BigInt(32 * sel)) & 0xffffffffn);
  }

  writeDriverFeatureWord(value: number): void {
    if ((this.status & S_FEATURES_OK) !== 0) {
      this.violation("driver_feature written after FEATURES_OK");
      return;
    }
    if ((this.status & S_DRIVER) === 0) this.violation("driver_feature written before the DRIVER status bit");
    const sel = this.driverFeatureSelect;
    if (sel > 1) {
      if (value !== 0) this.violation(`driver_feature_select ${sel}: feature bits beyond 63`);
      return;
    }
    const shift = BigInt(32 * sel);
    this.driverFeatures = (this.driverFeatures & ~(0xffffffffn << shift)) | (BigInt(value >>> 0) << shift);
  }

  readDriverFeatureWord(): number {
    const sel = this.driverFeatureSelect;
    return sel > 1 ? 0 : Number((this.driverFeatures >> BigInt(32 * sel)) & 0xffffffffn);
  }

  /** Legacy: features take effect as written, minus what was not offered (there is no FEATURES_OK). */
  writeLegacyFeatures(value: number): void {
    this.legacy = true;
    if ((this.status & S_DRIVER_OK) !== 0) this.violation("guest features written after DRIVER_OK");
    const written = BigInt(value >>> 0);
    const offered = this.offered & 0xffffffffn;
    if ((written & ~offered) !== 0n) this.violation(`guest features 0x${written.toString(16)} include bits the device did not offer`);
    this.driverFeatures = written & offered;
    this.#checkImplemented();
  }

  // --- Status (§2.1, §3.1) ------------------------------------------------------------------

  writeStatus(value: number, fromLegacy: boolean): void {
    if (fromLegacy) this.legacy = true;
    this.statusLog.push(value);
    if (value === 0) {
      const reads = this.#resetReads();
      // A device that takes its time: status reads show the old value (and the rings run on).
      // One that is reset already has nothing to take time over.
      if (reads > 0 && this.status !== 0) this.#resetPending = reads;
      else this.reset();
      this.statusHistory.push(this.status);
      return;
    }
    if (this.#resetPending > 0) this.violation(`status 0x${value.toString(16)} written while a reset is still in progress`);
    const old = this.status;
    if ((value & old) !== old) this.violation(`status 0x${value.toString(16)} clears bits of 0x${old.toString(16)} without a reset`);
    const added = value & ~old;
    if ((added & S_DRIVER) !== 0 && (value & S_ACKNOWLEDGE) === 0) this.violation("DRIVER set without ACKNOWLEDGE");
    if ((added & S_FEATURES_OK) !== 0) {
      if (this.legacy) this.violation("FEATURES_OK written through the legacy interface, which has none");
      if ((value & S_DRIVER) === 0) this.violation("FEATURES_OK set before DRIVER");
      if (!this.#acceptFeatures()) {
        // qemu's virtio_set_status validates the features on any write that sets FEATURES_OK
        // and drops the whole write when they fail, whatever else it sets (FAILED too).
        this.statusHistory.push(this.status);
        return;
      }
    }
    if ((added & S_DRIVER_OK) !== 0) {
      if (!this.legacy && (value & S_FEATURES_OK) === 0) this.violation("DRIVER_OK set without FEATURES_OK");
      for (let i = 0; i < this.#requiredQueues; i++) {
        if (!this.queues[i]!.enabled) this.violation(`DRIVER_OK set while queue ${i} is not enabled`);
      }
    }
    // DEVICE_NEEDS_RESET is the device's: it stays until a reset, whatever the driver writes.
    this.status = value | (this.status & S_NEEDS_RESET);
    this.statusHistory.push(this.status);
  }

  /** §3.1.1 step 6: the device refuses a feature set it cannot honour by not keeping FEATURES_OK. */
  #acceptFeatures(): boolean {
    const features = this.driverFeatures;
    const unoffered = features & ~this.modernFeatures;
    if (unoffered !== 0n) {
      this.violation(`driver accepted features the device did not offer: 0x${unoffered.toString(16)}`);
      return false;
    }
    if ((features & bit(F.VERSION_1)) === 0n) {
      this.violation("VIRTIO_F_VERSION_1 not accepted on the modern interface (§6.1: a driver MUST accept it)");
      return false;
    }
    // qemu fails FEATURES_OK when iommu_platform=on and the driver ignores ACCESS_PLATFORM.
    if ((this.offered & bit(F.ACCESS_PLATFORM)) !== 0n && (features & bit(F.ACCESS_PLATFORM)) === 0n) return false;
    const missing = this.offered & this.#required & ~features;
    if (missing !== 0n) return false;
    if (this.#refuseFeatures()) return false;
    this.#checkImplemented();
    return true;
  }

  #checkImplemented(): void {
    const extra = this.driverFeatures & ~this.implemented;
    if (extra !== 0n) this.violation(`driver accepted features 0x${extra.toString(16)}, which it cannot implement either (offered as bait)`);
  }

  reset(): void {
    this.#resetPending = 0;
    this.broken = false;
    this.status = 0;
    this.driverFeatures = 0n;
    this.legacy = false;
    this.deviceFeatureSelect = 0;
    this.driverFeatureSelect = 0;
    this.queueSelect = 0;
    this.msixConfig = NO_VECTOR;
    this.isr = 0;
    for (const q of this.queues) {
      q.size = q.maxSize;
      q.desc = q.avail = q.used = 0;
      q.msixVector = NO_VECTOR;
      q.enabled = false;
      q.ring = null;
    }
    this.resets++;
    this.onReset();
  }

  // --- Queues (§4.1.5.1.3, §4.1.4.8) --------------------------------------------------------

  get selectedQueue(): QueueState | null {
    return this.queues[this.queueSelect] ?? null;
  }

  /** Modern: queue_enable = 1. */
  enableQueue(): void {
    const q = this.selectedQueue;
    if (q === null) {
      this.violation(`queue_enable written for queue ${this.queueSelect}, which does not exist`);
      return;
    }
    if ((this.status & S_FEATURES_OK) === 0) this.violation(`queue ${q.index} enabled before FEATURES_OK`);
    if ((this.status & S_DRIVER_OK) !== 0) this.violation(`queue ${q.index} enabled after DRIVER_OK`);
    if (q.size < 1 || q.size > q.maxSize || (q.size & (q.size - 1)) !== 0) {
      this.violation(`queue ${q.index}: size ${q.size} is not a power of two up to ${q.maxSize}`);
      return;
    }
    this.#activate(q, { desc: q.desc, avail: q.avail, used: q.used });
  }

  /** Legacy: QUEUE_PFN; the rings follow one another in the page-aligned area (§2.7.2). */
  setLegacyQueue(pfn: number): void {
    const q = this.selectedQueue;
    if (q === null) {
      this.violation(`QUEUE_PFN written for queue ${this.queueSelect}, which does not exist`);
      return;
    }
    if (pfn === 0) {
      q.enabled = false;
      q.ring = null;
      q.desc = 0;
      return;
    }
    const desc = pfn * LEGACY_VRING_ALIGN;
    const avail = desc + 16 * q.maxSize;
    const used = Math.ceil((avail + 6 + 2 * q.maxSize) / LEGACY_VRING_ALIGN) * LEGACY_VRING_ALIGN;
    q.size = q.maxSize;
    q.desc = desc;
    q.avail = avail;
    q.used = used;
    this.#activate(q, { desc, avail, used });
  }

  #activate(q: QueueState, at: RingAddresses): void {
    q.ring = this.#newRing(q.index, q.size, at);
    q.ring.setNoNotify(this.#suppressNotify);
    q.enabled = true;
  }

  /** §2.8: once VIRTIO_F_RING_PACKED is negotiated, every queue of the device is packed. */
  #newRing(index: number, size: number, at: RingAddresses): AnyDeviceRing {
    const violation = (m: string): void => this.violation(m);
    const deviceError = (m: string): void => this.deviceError(m);
    if (this.negotiated(F.RING_PACKED)) {
      return new PackedDeviceRing(this.dma, this.name, index, size, at, violation, deviceError, this.negotiated(F.EVENT_IDX));
    }
    return new DeviceRing(this.dma, this.name, index, size, at, violation, deviceError);
  }

  /** The queue's ring while the device runs (DRIVER_OK, enabled, not broken), else null. */
  ring(index: number): AnyDeviceRing | null {
    const q = this.queues[index];
    return q !== undefined && q.enabled && this.driverOk && !this.broken ? q.ring : null;
  }

  /** An available-buffer notification for queue `index` (§4.1.5.2). */
  notify(index: number): void {
    const q = this.queues[index];
    if (q === undefined) {
      this.violation(`notification for queue ${index}, which does not exist`);
      return;
    }
    q.notifications++;
    if (!this.driverOk) {
      this.violation(`notification for queue ${index} before DRIVER_OK`);
      return;
    }
    if (!q.enabled) {
      this.violation(`notification for queue ${index}, which is not enabled`);
      return;
    }
    this.onNotify(index);
  }

  get suppressNotify(): boolean {
    return this.#suppressNotify;
  }

  /** Sets or clears VIRTQ_USED_F_NO_NOTIFY on every queue. */
  set suppressNotify(on: boolean) {
    this.#suppressNotify = on;
    for (const q of this.queues) q.ring?.setNoNotify(on);
  }

  // --- Transports without registers (vhost-user: src/sim/vhost-user/) ----------------------
  // vhost-user has no status register and no queue_enable: its messages say which features were
  // negotiated and which rings run, and the backend translates them into these calls. The PCI
  // register files never use them.

  /**
   * §3.1.1 steps 4-6 in one go: the driver's features, checked as FEATURES_OK would check them
   * (violations recorded). Returns false, leaving features and status as they were, when the
   * device refuses them.
   */
  negotiateFeatures(features: bigint): boolean {
    const before = this.driverFeatures;
    this.driverFeatures = features;
    if (!this.#acceptFeatures()) {
      this.driverFeatures = before;
      return false;
    }
    this.status = (this.status & S_DRIVER_OK) | S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK;
    this.statusLog.push(this.status);
    return true;
  }

  /**
   * Builds queue `index`'s ring at `at` with `size` entries and enables the queue, whatever the
   * device status (vhost-user starts rings one by one). A ring outside the address space is a
   * DmaFaultError, the queue left as it was.
   */
  startQueue(index: number, size: number, at: RingAddresses): AnyDeviceRing {
    const q = this.queues[index];
    if (q === undefined) throw new RangeError(`${this.name}: queue ${index} does not exist (the device has ${this.queues.length})`);
    if (size < 1 || size > q.maxSize || (size & (size - 1)) !== 0) {
      throw new RangeError(`${this.name}: queue ${index}: size ${size} is not a power of two up to ${q.maxSize}`);
    }
    const ring = this.#newRing(q.index, size, at);
    ring.setNoNotify(this.#suppressNotify);
    q.size = size;
    q.desc = at.desc;
    q.avail = at.avail;
    q.used = at.used;
    q.ring = ring;
    q.enabled = true;
    return ring;
  }

  /** Disables queue `index` and drops its ring (and every view it had of driver memory). */
  stopQueue(index: number): void {
    const q = this.queues[index];
    if (q === undefined) return;
    q.enabled = false;
    q.ring = null;
  }

  /** Sets or clears DRIVER_OK: the device runs (or stops) its enabled queues. */
  setDriverOk(on: boolean): void {
    const status = on ? this.status | S_DRIVER_OK : this.status & ~S_DRIVER_OK;
    if (status === this.status) return;
    this.status = status;
    this.statusLog.push(status);
  }

  /** The device changed its configuration: new generation, configuration-change interrupt cause. */
  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) & 0xff;
    this.isr |= 2;
    if (this.msixConfig !== NO_VECTOR && !this.onInterrupt(this.msixConfig)) this.lostInterrupts++;
  }

  /** What a vector register (msix_config, queue_msix_vector) holds after the driver wrote `vector`. */
  mapVector(vector: number): number {
    if (vector === NO_VECTOR) return vector;
    return this.refuseVectors() || vector >= this.msixTableSize ? NO_VECTOR : vector;
  }

  /**
   * The device made used buffers of queue `index` visible (published used.idx, or the used
   * descriptors' flags): the used-buffer notification, unless the driver suppressed it when the
   * device looks — VIRTQ_AVAIL_F_NO_INTERRUPT on a split ring (§2.7.7.2), DISABLE in the packed
   * driver event suppression (§2.8.10). Nothing is sent later for a suppression lifted after
   * this: a driver that arms must look at the ring again itself. With MSI-X the notification is
   * the queue's vector (none for NO_VECTOR), else the ISR bit of INTx (§4.1.4.5), set either way
   * as qemu does.
   */
  usedBuffers(index: number): void {
    const q = this.queues[index];
    const ring = q?.ring;
    if (q === undefined || ring === null || ring === undefined) return;
    if ((ring.availFlags & 1) !== 0) return;
    q.interrupts++;
    this.isr |= 1;
    if (q.msixVector !== NO_VECTOR && !this.onInterrupt(q.msixVector)) this.lostInterrupts++;
  }
}
