/**
 * The modern virtio PCI transport (virtio 1.2 §4.1.4): the device describes where its register
 * blocks live through vendor-specific PCI capabilities (cap id 9) — one per structure, each naming
 * a BAR, an offset and a length. The driver maps those BARs (memory BARs: one load or store per
 * register access) and talks to
 *
 *   common configuration  features, status, queue setup (§4.1.4.3)
 *   notification area     one 16-bit doorbell per queue at offset + queue_notify_off * multiplier (§4.1.4.4)
 *   ISR status            interrupt cause; unused by a polling driver (§4.1.4.5)
 *   device configuration  struct virtio_net_config: MAC, link status (§4.1.4.6)
 *
 * Every field is accessed with its own width (8, 16 or 32 bits; 64-bit fields as two 32-bit
 * halves, low first, as §4.1.3.1 requires and allows): devices decode accesses by offset and width.
 */
import { DeviceProtocolError, NotSupportedError } from "../../errors.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { hi32, lo32 } from "../../mem/u64.ts";
import { BarKind, PCI_CAP_ID_VNDR, pciCapabilities, type PciFunction } from "../../pci/pci-function.ts";
import { NO_TRACE, type DriverTrace, type RegisterNames } from "../../pci/register-trace.ts";
import { commonConfigNames, deviceConfigNames, NOTIFY_NAMES } from "./virtio-register-names.ts";
import {
  msixMissingError,
  RESET_TIMEOUT_MS,
  vectorRefusedError,
  waitForZero,
  type NotifyTarget,
  type RingAddresses,
  type VirtioTransport,
} from "./transport.ts";
import {
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_LEN,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_CAP_SIZE,
  VIRTIO_PCI_COMMON_CFGGENERATION,
  VIRTIO_PCI_COMMON_CFG_MIN_SIZE,
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_AVAILHI,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_USEDHI,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_STATUS,
  VIRTIO_PCI_NOTIFY_CAP_MULT,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
} from "./virtio-types.ts";

/** One virtio structure found through a capability: a window of a BAR. */
export interface VirtioStructure {
  readonly bar: number;
  readonly offset: number;
  readonly length: number;
}

export interface VirtioCapabilities {
  readonly common: VirtioStructure;
  readonly notify: VirtioStructure & { readonly multiplier: number };
  readonly isr: VirtioStructure | null;
  readonly device: VirtioStructure | null;
}

/**
 * Walks the PCI capability list for virtio structures (§4.1.4). The first capability of each
 * type that the driver can use wins; capabilities naming a reserved or non-memory BAR are
 * skipped, as §4.1.4 tells drivers to. Returns null when there is no common or notify structure
 * (a legacy-only device).
 */
export function findVirtioCapabilities(pci: PciFunction): VirtioCapabilities | null {
  const config = pci.config;
  let common: VirtioStructure | null = null;
  let notify: (VirtioStructure & { multiplier: number }) | null = null;
  let isr: VirtioStructure | null = null;
  let device: VirtioStructure | null = null;
  for (const [id, at] of pciCapabilities(config)) {
    if (id !== PCI_CAP_ID_VNDR) continue;
    const capLen = config.read8(at + VIRTIO_PCI_CAP_LEN);
    if (capLen < VIRTIO_PCI_CAP_SIZE) continue;
    const type = config.read8(at + VIRTIO_PCI_CAP_CFG_TYPE);
    const bar = config.read8(at + VIRTIO_PCI_CAP_BAR);
    if (bar > 5 || pci.barKind(bar) !== BarKind.memory) continue;
    const where = { bar, offset: config.read32(at + VIRTIO_PCI_CAP_OFFSET), length: config.read32(at + VIRTIO_PCI_CAP_LENGTH) };
    if (type === VIRTIO_PCI_CAP_COMMON_CFG && common === null) common = where;
    else if (type === VIRTIO_PCI_CAP_NOTIFY_CFG && notify === null && capLen >= VIRTIO_PCI_NOTIFY_CAP_SIZE) {
      notify = { ...where, multiplier: config.read32(at + VIRTIO_PCI_NOTIFY_CAP_MULT) };
    } else if (type === VIRTIO_PCI_CAP_ISR_CFG && isr === null) isr = where;
    else if (type === VIRTIO_PCI_CAP_DEVICE_CFG && device === null) device = where;
  }
  if (common === null || notify === null) return null;
  return { common, notify, isr, device };
}

export class ModernTransport implements VirtioTransport {
  readonly kind = "modern";
  readonly hasFeaturesOk = true;
  readonly canResizeQueues = true;
  readonly trace: DriverTrace;
  readonly #name: string;
  readonly #pci: PciFunction;
  /** The BAR that holds the common configuration structure (§4.1.4.3), and where in it that starts. */
  readonly #commonBar: Mmio;
  readonly #commonBase: number;
  readonly #notifyBar: Mmio;
  readonly #notify: VirtioStructure & { readonly multiplier: number };
  /** The BAR that holds the device-specific configuration (virtio_net_config, §4.1.4.6), where it starts, how long it is. */
  readonly #deviceBar: Mmio | null;
  readonly #deviceBase: number;
  readonly #deviceLength: number;

  constructor(pci: PciFunction, trace: DriverTrace = NO_TRACE) {
    this.#name = pci.address;
    this.#pci = pci;
    this.trace = trace;
    const caps = findVirtioCapabilities(pci);
    if (caps === null) {
      throw new NotSupportedError(
        `${pci.address}: no virtio 1.x common/notify capabilities in PCI config space (a legacy-only device?): ` +
          `use transport 'legacy', or give qemu a modern device (virtio-net-pci,disable-legacy=on)`,
      );
    }
    const { common, notify, device } = caps;
    // Trace mode: each structure with the names of its own fields (one BAR may hold them all).
    this.#commonBar = this.#map(pci, "common configuration", common, VIRTIO_PCI_COMMON_CFG_MIN_SIZE, 4, commonConfigNames(common.offset));
    this.#commonBase = common.offset;
    this.#notifyBar = this.#map(pci, "notification area", notify, 2, 2, NOTIFY_NAMES);
    this.#notify = notify;
    this.#deviceBar = device === null ? null : this.#map(pci, "device configuration", device, 0, 4, deviceConfigNames(device.offset));
    this.#deviceBase = device?.offset ?? 0;
    this.#deviceLength = device?.length ?? 0;
  }

  /** Maps the BAR a structure lives in and checks the structure fits it. */
  #map(pci: PciFunction, what: string, s: VirtioStructure, minLength: number, align: number, names: RegisterNames): Mmio {
    const bar = pci.bar(s.bar);
    if (s.length < minLength || s.offset % align !== 0 || s.offset + s.length > bar.size) {
      throw new DeviceProtocolError(
        `${this.#name}: the virtio ${what} capability is malformed (BAR${s.bar}, offset 0x${s.offset.toString(16)}, ` +
          `length 0x${s.length.toString(16)}, BAR size 0x${bar.size.toString(16)})`,
      );
    }
    return this.trace.wrap(bar, names);
  }

  reset(): void {
    // §4.1.4.3.2: after writing 0, wait until device_status reads 0 before reinitializing.
    this.#commonBar.write8(this.#commonBase + VIRTIO_PCI_COMMON_STATUS, 0);
    waitForZero(() => this.getStatus(), `${this.#name}: virtio reset: device_status`, RESET_TIMEOUT_MS);
  }

  getStatus(): number {
    return this.#commonBar.read8(this.#commonBase + VIRTIO_PCI_COMMON_STATUS);
  }

  setStatus(status: number): void {
    this.#commonBar.write8(this.#commonBase + VIRTIO_PCI_COMMON_STATUS, status);
  }

  readDeviceFeatures(): bigint {
    const base = this.#commonBase;
    this.#commonBar.write32(base + VIRTIO_PCI_COMMON_DFSELECT, 0);
    const lo = this.#commonBar.read32(base + VIRTIO_PCI_COMMON_DF);
    this.#commonBar.write32(base + VIRTIO_PCI_COMMON_DFSELECT, 1);
    const hi = this.#commonBar.read32(base + VIRTIO_PCI_COMMON_DF);
    return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  }

  writeDriverFeatures(features: bigint): void {
    const base = this.#commonBase;
    this.#commonBar.write32(base + VIRTIO_PCI_COMMON_GFSELECT, 0);
    this.#commonBar.write32(base + VIRTIO_PCI_COMMON_GF, Number(features & 0xffffffffn));
    this.#commonBar.write32(base + VIRTIO_PCI_COMMON_GFSELECT, 1);
    this.#commonBar.write32(base + VIRTIO_PCI_COMMON_GF, Number((features >> 32n) & 0xffffffffn));
  }

  queueSize(index: number): number {
    this.#commonBar.write16(this.#commonBase + VIRTIO_PCI_COMMON_Q_SELECT, index);
    return this.#commonBar.read16(this.#commonBase + VIRTIO_PCI_COMMON_Q_SIZE);
  }

  activateQueue(index: number, size: number, rings: RingAddresses, vector?: number): NotifyTarget {
    // §4.1.5.1.3, steps 1-7: select, size, ring addresses, enable. Step 5 (queue_msix_vector) only
    // with interrupts: a polling driver leaves every vector at NO_VECTOR, as the reset set them.
    const bar = this.#commonBar;
    const base = this.#commonBase;
    bar.write16(base + VIRTIO_PCI_COMMON_Q_SELECT, index);
    bar.write16(base + VIRTIO_PCI_COMMON_Q_SIZE, size);
    if (vector !== undefined) {
      // §4.1.5.1.2: write the vector, read it back; NO_VECTOR means the device refused it.
      bar.write16(base + VIRTIO_PCI_COMMON_Q_MSIX, vector);
      if (bar.read16(base + VIRTIO_PCI_COMMON_Q_MSIX) !== vector) throw vectorRefusedError(this.#name, `virtqueue ${index}`, vector);
    }
    writeAddress(bar, base + VIRTIO_PCI_COMMON_Q_DESCLO, base + VIRTIO_PCI_COMMON_Q_DESCHI, rings.desc);
    writeAddress(bar, base + VIRTIO_PCI_COMMON_Q_AVAILLO, base + VIRTIO_PCI_COMMON_Q_AVAILHI, rings.avail);
    writeAddress(bar, base + VIRTIO_PCI_COMMON_Q_USEDLO, base + VIRTIO_PCI_COMMON_Q_USEDHI, rings.used);
    const notifyOff = bar.read16(base + VIRTIO_PCI_COMMON_Q_NOFF);
    bar.write16(base + VIRTIO_PCI_COMMON_Q_ENABLE, 1);
    if (bar.read16(base + VIRTIO_PCI_COMMON_Q_ENABLE) !== 1) {
      throw new DeviceProtocolError(`${this.#name}: virtqueue ${index} did not enable (queue_enable reads back 0)`);
    }
    // §4.1.4.4: the doorbell is at cap.offset + queue_notify_off * notify_off_multiplier
    // (a multiplier of 0 means all queues share one doorbell).
    const notify = this.#notify;
    const offset = notify.offset + notifyOff * notify.multiplier;
    if (offset + 2 > notify.offset + notify.length || offset + 2 > this.#notifyBar.size) {
      throw new DeviceProtocolError(
        `${this.#name}: virtqueue ${index}: notify offset 0x${offset.toString(16)} (queue_notify_off ${notifyOff} x ` +
          `multiplier ${notify.multiplier}) lies outside the notification area (BAR${notify.bar} 0x${notify.offset.toString(16)}, ` +
          `length 0x${notify.length.toString(16)})`,
      );
    }
    return { mmio: this.#notifyBar, offset };
  }

  enableInterrupts(vectors: number): readonly number[] {
    const msix = this.#pci.msix;
    if (msix === null || msix.count < vectors) throw msixMissingError(this.#name, vectors, msix?.count ?? null);
    return msix.enable(vectors);
  }

  setConfigVector(vector: number): void {
    // §4.1.5.1.2: msix_config, written and read back like a queue's vector.
    this.#commonBar.write16(this.#commonBase + VIRTIO_PCI_COMMON_MSIX, vector);
    if (this.#commonBar.read16(this.#commonBase + VIRTIO_PCI_COMMON_MSIX) !== vector) throw vectorRefusedError(this.#name, "configuration changes", vector);
  }

  disableInterrupts(): void {
    this.#pci.msix?.disable();
  }

  readConfig8(offset: number): number {
    return this.#deviceConfig(offset, 1).read8(this.#deviceBase + offset);
  }

  readConfig16(offset: number): number {
    return this.#deviceConfig(offset, 2).read16(this.#deviceBase + offset);
  }

  configGeneration(): number {
    return this.#commonBar.read8(this.#commonBase + VIRTIO_PCI_COMMON_CFGGENERATION);
  }

  #deviceConfig(offset: number, width: number): Mmio {
    if (this.#deviceBar === null || offset + width > this.#deviceLength) {
      throw new DeviceProtocolError(
        `${this.#name}: device configuration field at offset ${offset} is missing (device configuration length ` +
          `${this.#deviceLength})`,
      );
    }
    return this.#deviceBar;
  }
}

/** A 64-bit common-configuration field as two 32-bit writes, low half first. */
function writeAddress(mmio: Mmio, lo: number, hi: number, address: number): void {
  mmio.write32(lo, lo32(address));
  mmio.write32(hi, hi32(address));
}
