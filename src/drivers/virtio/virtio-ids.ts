/**
 * PCI device ids (vendor 0x1af4) the virtio driver takes. openDevice() looks a device up here.
 *
 * Left out on purpose: the other virtio device types (block, console, ...: 0x1001-0x103f legacy,
 * 0x1042 and up modern), which are not NICs.
 */
import { BarKind } from "../../pci/pci-function.ts";
import { VIRTIO_PCI_DEVICE_ID_NET_MODERN, VIRTIO_PCI_DEVICE_ID_NET_TRANSITIONAL, VIRTIO_PCI_VENDOR_ID } from "./virtio-types.ts";

export const VIRTIO_VENDOR_ID = VIRTIO_PCI_VENDOR_ID;

/** The two PCI transports (vhost-user is not a PCI device and has no entry here). */
export type VirtioPciTransport = "modern" | "legacy";

export interface VirtioDeviceId {
  readonly deviceId: number;
  readonly name: string;
  /**
   * The transport createVirtioDevice() takes for it unless options.transport says otherwise, by
   * the kind of BAR0: a transitional device has its legacy registers in an I/O BAR0, so an I/O
   * BAR0 is what makes the legacy transport possible. Ask virtioTransportFor() rather than reading
   * this, so that the rule is applied in one place.
   */
  readonly transport: { readonly ioBar0: VirtioPciTransport; readonly otherBar0: VirtioPciTransport };
}

export const VIRTIO_DEVICE_IDS: readonly VirtioDeviceId[] = Object.freeze([
  // Transitional: legacy I/O BAR0 (DMA bypasses the IOMMU: physical addresses) plus modern
  // capabilities; driven through the legacy interface when BAR0 is that I/O BAR.
  Object.freeze({
    deviceId: VIRTIO_PCI_DEVICE_ID_NET_TRANSITIONAL,
    name: "virtio-net (transitional)",
    transport: Object.freeze({ ioBar0: "legacy", otherBar0: "modern" } as const),
  }),
  // Modern only (qemu: disable-legacy=on); behind the IOMMU with iommu_platform=on.
  Object.freeze({
    deviceId: VIRTIO_PCI_DEVICE_ID_NET_MODERN,
    name: "virtio-net (modern)",
    transport: Object.freeze({ ioBar0: "modern", otherBar0: "modern" } as const),
  }),
]);

/** The entry for a device id, or undefined when the virtio driver does not take it. */
export function findVirtioDeviceId(vendorId: number, deviceId: number): VirtioDeviceId | undefined {
  if (vendorId !== VIRTIO_VENDOR_ID) return undefined;
  return VIRTIO_DEVICE_IDS.find((entry) => entry.deviceId === deviceId);
}

/** The transport the driver takes for `entry` when its BAR0 is of kind `bar0` (options.transport aside). */
export function virtioTransportFor(entry: VirtioDeviceId, bar0: BarKind): VirtioPciTransport {
  return bar0 === BarKind.io ? entry.transport.ioBar0 : entry.transport.otherBar0;
}

/**
 * Whether `entry` can get the legacy transport, for a caller that must decide before BAR0 can be
 * read (openDevice() picks the DMA allocator, physical addresses for legacy, before it opens the
 * device).
 */
export function mayUseLegacyTransport(entry: VirtioDeviceId): boolean {
  return entry.transport.ioBar0 === "legacy" || entry.transport.otherBar0 === "legacy";
}
