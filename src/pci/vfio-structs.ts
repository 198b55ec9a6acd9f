/**
 * VFIO's ioctl numbers and the layouts of the structs they exchange (linux/vfio.h), as byte
 * offsets. Structs live in plain Uint8Arrays; fields are read and written through Uint32Array
 * elements, 64-bit fields as two 32-bit halves (little-endian), so no BigInt arithmetic is needed.
 * test/pci/vfio-structs.test.ts checks every offset and number against the kernel's header.
 */
import { hi32, join64, lo32 } from "../mem/u64.ts";

/** _IO(VFIO_TYPE, VFIO_BASE + n) with VFIO_TYPE ';' (0x3b) and VFIO_BASE 100. */
export const VFIO = {
  GET_API_VERSION: 0x3b64,
  CHECK_EXTENSION: 0x3b65,
  SET_IOMMU: 0x3b66,
  GROUP_GET_STATUS: 0x3b67,
  GROUP_SET_CONTAINER: 0x3b68,
  GROUP_UNSET_CONTAINER: 0x3b69,
  GROUP_GET_DEVICE_FD: 0x3b6a,
  DEVICE_GET_INFO: 0x3b6b,
  DEVICE_GET_REGION_INFO: 0x3b6c,
  DEVICE_GET_IRQ_INFO: 0x3b6d,
  DEVICE_SET_IRQS: 0x3b6e,
  DEVICE_RESET: 0x3b6f,
  IOMMU_GET_INFO: 0x3b70,
  IOMMU_MAP_DMA: 0x3b71,
  IOMMU_UNMAP_DMA: 0x3b72,
} as const;

export const VFIO_API_VERSION = 0;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
/** Region indices of a vfio-pci device: BAR0-5 are 0-5. */
export const VFIO_PCI_ROM_REGION_INDEX = 6;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
/** Interrupt indices of a vfio-pci device (VFIO_PCI_*_IRQ_INDEX). */
export const VFIO_PCI_INTX_IRQ_INDEX = 0;
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;
/** vfio_irq_info.flags. NORESIZE: the vector count is fixed while enabled (MSI, MSI-X). */
export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;
/** vfio_irq_set.flags: one DATA_ type and one ACTION_ type. */
export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;

/** Byte offsets of each struct's fields, and its size. */
export const vfio_group_status = { argsz: 0, flags: 4, SIZE: 8 } as const;
export const vfio_device_info = { argsz: 0, flags: 4, num_regions: 8, num_irqs: 12, SIZE: 16 } as const;
export const vfio_region_info = { argsz: 0, flags: 4, index: 8, cap_offset: 12, size: 16, offset: 24, SIZE: 32 } as const;
export const vfio_iommu_type1_dma_map = { argsz: 0, flags: 4, vaddr: 8, iova: 16, size: 24, SIZE: 32 } as const;
export const vfio_irq_info = { argsz: 0, flags: 4, index: 8, count: 12, SIZE: 16 } as const;
/** Followed by `count` elements of data (__s32 eventfds for DATA_EVENTFD): a flexible array. */
export const vfio_irq_set = { argsz: 0, flags: 4, index: 8, start: 12, count: 16, SIZE: 20 } as const;
export const vfio_iommu_type1_dma_unmap = { argsz: 0, flags: 4, iova: 8, size: 16, SIZE: 24 } as const;

/** A zeroed struct buffer with argsz filled in. */
export function newStruct(layout: { readonly SIZE: number }): Uint8Array {
  const buf = new Uint8Array(layout.SIZE);
  setU32(buf, 0, layout.SIZE);
  return buf;
}

export function getU32(buf: Uint8Array, offset: number): number {
  return new Uint32Array(buf.buffer, buf.byteOffset + offset, 1)[0]!;
}

export function setU32(buf: Uint8Array, offset: number, value: number): void {
  new Uint32Array(buf.buffer, buf.byteOffset + offset, 1)[0] = value >>> 0;
}

/** A 64-bit field as a Number; exact below 2^53, which every size, offset and IOVA here is. */
export function getU64(buf: Uint8Array, offset: number): number {
  const w = new Uint32Array(buf.buffer, buf.byteOffset + offset, 2);
  return join64(w[0]!, w[1]!);
}

export function setU64(buf: Uint8Array, offset: number, value: number | bigint): void {
  const w = new Uint32Array(buf.buffer, buf.byteOffset + offset, 2);
  if (typeof value === "bigint") {
    w[0] = Number(value & 0xffffffffn);
    w[1] = Number(value >> 32n);
  } else {
    w[0] = lo32(value);
    w[1] = hi32(value);
  }
}
