/**
 * The legacy virtio PCI transport (virtio 0.9.5; virtio 1.2 §4.1.4.8 "Legacy Interfaces"): a
 * fixed register header in the I/O-port BAR0, followed by the device configuration. Through VFIO
 * an I/O BAR cannot be mapped: every register access is a pread/pwrite system call. That is
 * acceptable here because the transport is used at init and for notifications only.
 *
 * Facts that matter on real devices (verified with qemu in the testbed, test/vm/README.md):
 * - Header registers must be accessed at their exact offset with their natural width; qemu
 *   decodes them by offset and answers a byte read of the features register with garbage.
 * - The queue size is the device's (QUEUE_NUM is read-only); the rings are one physically
 *   contiguous area given as a 32-bit page frame number, the used ring at the next 4096 boundary.
 * - A legacy device has no VIRTIO_F_ACCESS_PLATFORM: its DMA bypasses any IOMMU, so the driver
 *   must hand it physical addresses (checked by virtio-device.ts).
 * - There is no FEATURES_OK step: status goes 0, ACKNOWLEDGE, DRIVER, DRIVER_OK (§3.1.2).
 */
import { DmaError, DeviceProtocolError, NotSupportedError } from "../../errors.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { NO_TRACE, type DriverTrace } from "../../pci/register-trace.ts";
import { legacyRegisterNames } from "./virtio-register-names.ts";
import {
  BarKind,
  PCI_CAP_ID_MSIX,
  PCI_COMMAND,
  PCI_COMMAND_IO,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  pciCapabilities,
  type PciFunction,
} from "../../pci/pci-function.ts";
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
  VIRTIO_MSI_CONFIG_VECTOR,
  VIRTIO_MSI_QUEUE_VECTOR,
  VIRTIO_PCI_CONFIG_OFF_MSIX,
  VIRTIO_PCI_CONFIG_OFF_NO_MSIX,
  VIRTIO_PCI_GUEST_FEATURES,
  VIRTIO_PCI_HOST_FEATURES,
  VIRTIO_PCI_QUEUE_ADDR_SHIFT,
  VIRTIO_PCI_QUEUE_NOTIFY,
  VIRTIO_PCI_QUEUE_NUM,
  VIRTIO_PCI_QUEUE_PFN,
  VIRTIO_PCI_QUEUE_SEL,
  VIRTIO_PCI_STATUS,
  VIRTIO_PCI_VRING_ALIGN,
  VIRTQ_DESC_SIZE,
} from "./virtio-types.ts";

export class LegacyTransport implements VirtioTransport {
  readonly kind = "legacy";
  readonly hasFeaturesOk = false;
  readonly canResizeQueues = false;
  readonly trace: DriverTrace;
  readonly #name: string;
  readonly #io: Mmio;
  readonly #pci: PciFunction;
  #configOffset: number;

  constructor(pci: PciFunction, trace: DriverTrace = NO_TRACE) {
    this.#name = pci.address;
    this.#pci = pci;
    this.trace = trace;
    if (pci.barKind(0) !== BarKind.io) {
      throw new NotSupportedError(
        `${pci.address}: BAR0 is not an I/O-port BAR, so the device has no legacy virtio interface ` +
          `(a modern-only 1af4:1041 device?): use transport 'modern'`,
      );
    }
    // VFIO enables I/O decoding when it opens the device; setting the bit again is harmless and
    // makes the dependency explicit.
    const command = pci.config.read16(PCI_COMMAND);
    if ((command & PCI_COMMAND_IO) === 0) pci.config.write16(PCI_COMMAND, command | PCI_COMMAND_IO);
    this.#io = trace.wrap(pci.bar(0), legacyRegisterNames(() => this.#configOffset));
    // The device configuration moves by 4 bytes while MSI-X is enabled (two vector registers).
    this.#configOffset = msixEnabled(pci) ? VIRTIO_PCI_CONFIG_OFF_MSIX : VIRTIO_PCI_CONFIG_OFF_NO_MSIX;
  }

  reset(): void {
    this.#io.write8(VIRTIO_PCI_STATUS, 0);
    waitForZero(() => this.getStatus(), `${this.#name}: legacy virtio reset: status register`, RESET_TIMEOUT_MS);
  }

  getStatus(): number {
    return this.#io.read8(VIRTIO_PCI_STATUS);
  }

  setStatus(status: number): void {
    this.#io.write8(VIRTIO_PCI_STATUS, status);
  }

  readDeviceFeatures(): bigint {
    return BigInt(this.#io.read32(VIRTIO_PCI_HOST_FEATURES) >>> 0);
  }

  writeDriverFeatures(features: bigint): void {
    if (features >> 32n !== 0n) {
      throw new RangeError(`${this.#name}: the legacy interface has only 32 feature bits, got 0x${features.toString(16)}`);
    }
    this.#io.write32(VIRTIO_PCI_GUEST_FEATURES, Number(features));
  }

  queueSize(index: number): number {
    this.#io.write16(VIRTIO_PCI_QUEUE_SEL, index);
    return this.#io.read16(VIRTIO_PCI_QUEUE_NUM);
  }

  activateQueue(index: number, size: number, rings: RingAddresses, vector?: number): NotifyTarget {
    // §2.7.2 (legacy layout): descriptors, then the available ring, then the used ring at the next
    // VIRTIO_PCI_VRING_ALIGN boundary, all in one area the device locates by its first page.
    const avail = rings.desc + VIRTQ_DESC_SIZE * size;
    const used = alignUp(avail + 6 + 2 * size, VIRTIO_PCI_VRING_ALIGN);
    if (rings.desc % VIRTIO_PCI_VRING_ALIGN !== 0 || rings.avail !== avail || rings.used !== used) {
      throw new RangeError(`${this.#name}: virtqueue ${index}: rings are not laid out as the legacy interface requires`);
    }
    const pfn = rings.desc / 2 ** VIRTIO_PCI_QUEUE_ADDR_SHIFT;
    if (pfn > 0xffffffff) {
      throw new DmaError(
        `${this.#name}: virtqueue ${index} at address 0x${rings.desc.toString(16)} is beyond the 2^44 bytes a legacy ` +
          `queue address (a 32-bit page frame number) can reach`,
      );
    }
    this.#io.write16(VIRTIO_PCI_QUEUE_SEL, index);
    if (vector !== undefined) {
      // The selected queue's vector register exists while MSI-X is enabled; read back as on the
      // modern interface (NO_VECTOR: refused).
      this.#io.write16(VIRTIO_MSI_QUEUE_VECTOR, vector);
      if (this.#io.read16(VIRTIO_MSI_QUEUE_VECTOR) !== vector) throw vectorRefusedError(this.#name, `virtqueue ${index}`, vector);
    }
    this.#io.write32(VIRTIO_PCI_QUEUE_PFN, pfn);
    if (this.#io.read32(VIRTIO_PCI_QUEUE_PFN) >>> 0 !== pfn) {
      throw new DeviceProtocolError(`${this.#name}: virtqueue ${index}: the device did not take the queue address (QUEUE_PFN)`);
    }
    return { mmio: this.#io, offset: VIRTIO_PCI_QUEUE_NOTIFY };
  }

  enableInterrupts(vectors: number): readonly number[] {
    const msix = this.#pci.msix;
    if (msix === null || msix.count < vectors) throw msixMissingError(this.#name, vectors, msix?.count ?? null);
    const fds = msix.enable(vectors);
    // §4.1.4.8: with MSI-X enabled, the two vector registers sit at 0x14 and the device
    // configuration moves to 0x18; MSI-X Enable in the capability is what the device goes by.
    this.#configOffset = msixEnabled(this.#pci) ? VIRTIO_PCI_CONFIG_OFF_MSIX : VIRTIO_PCI_CONFIG_OFF_NO_MSIX;
    return fds;
  }

  setConfigVector(vector: number): void {
    this.#io.write16(VIRTIO_MSI_CONFIG_VECTOR, vector);
    if (this.#io.read16(VIRTIO_MSI_CONFIG_VECTOR) !== vector) throw vectorRefusedError(this.#name, "configuration changes", vector);
  }

  disableInterrupts(): void {
    this.#pci.msix?.disable();
    this.#configOffset = msixEnabled(this.#pci) ? VIRTIO_PCI_CONFIG_OFF_MSIX : VIRTIO_PCI_CONFIG_OFF_NO_MSIX;
  }

  readConfig8(offset: number): number {
    return this.#io.read8(this.#configOffset + offset);
  }

  readConfig16(offset: number): number {
    return this.#io.read16(this.#configOffset + offset);
  }

  configGeneration(): number {
    return 0;
  }
}

function msixEnabled(pci: PciFunction): boolean {
  for (const [id, at] of pciCapabilities(pci.config)) {
    if (id === PCI_CAP_ID_MSIX) return (pci.config.read16(at + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_ENABLE) !== 0;
  }
  return false;
}

export function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}
