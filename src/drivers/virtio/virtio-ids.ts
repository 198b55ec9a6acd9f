/**
 * PCI device ids (vendor 0x1af4) the virtio driver takes. openDevice() looks a device up here.
 *
 * Left out on purpose: the other virtio device types (block, console, ...: 0x1001-0x103f legacy,
 * 0x1042 and up modern), which are not NICs.
 */
import { VIRTIO_PCI_DEVICE_ID_NET_MODERN, VIRTIO_PCI_DEVICE_ID_NET_TRANSITIONAL, VIRTIO_PCI_VENDOR_ID } from "./virtio-types.ts";

export const VIRTIO_VENDOR_ID = VIRTIO_PCI_VENDOR_ID;

export interface VirtioDeviceId {
  readonly deviceId: number;
  readonly name: string;
  /** The transport createVirtioDevice() picks for it by default. */
  readonly transport: "modern" | "legacy";
}

export const VIRTIO_DEVICE_IDS: readonly VirtioDeviceId[] = Object.freeze([
  // Transitional: legacy I/O BAR0 (DMA bypasses the IOMMU: physical addresses) plus modern capabilities.
  Object.freeze({ deviceId: VIRTIO_PCI_DEVICE_ID_NET_TRANSITIONAL, name: "virtio-net (transitional)", transport: "legacy" as const }),
  // Modern only (qemu: disable-legacy=on); behind the IOMMU with iommu_platform=on.
  Object.freeze({ deviceId: VIRTIO_PCI_DEVICE_ID_NET_MODERN, name: "virtio-net (modern)", transport: "modern" as const }),
]);

/** The entry for a device id, or undefined when the virtio driver does not take it. */
export function findVirtioDeviceId(vendorId: number, deviceId: number): VirtioDeviceId | undefined {
  if (vendorId !== VIRTIO_VENDOR_ID) return undefined;
  return VIRTIO_DEVICE_IDS.find((entry) => entry.deviceId === deviceId);
}
