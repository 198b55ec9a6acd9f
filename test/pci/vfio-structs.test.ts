/**
 * Checks the VFIO struct layouts and ioctl numbers of src/pci/vfio-structs.ts against the
 * kernel's own header (linux/vfio.h from Debian's linux-libc-dev), computing C layout rules
 * (natural alignment of __u32/__u64 fields) from the field declarations found there.
 */
import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import * as S from "../../src/pci/vfio-structs.ts";

const HEADER = "/usr/include/linux/vfio.h";
const header = fs.existsSync(HEADER) ? fs.readFileSync(HEADER, "utf8") : null;
if (!header) console.warn(`skipping VFIO layout checks: ${HEADER} missing (apt-get install linux-libc-dev)`);

/** Field offsets and size of `struct name` per the x86-64 C ABI. */
function layoutFromHeader(name: string): Record<string, number> {
  const m = new RegExp(`struct ${name} \\{([\\s\\S]*?)\\n\\};`).exec(header!);
  if (!m) throw new Error(`struct ${name} not found in ${HEADER}`);
  const result: Record<string, number> = {};
  let offset = 0;
  let maxAlign = 1;
  for (const line of m[1]!.split("\n")) {
    const f = /^\s*__(u|s)(8|16|32|64)\s+(\w+)(\[\])?\s*;/.exec(line);
    if (!f) continue;
    const size = Number(f[2]) / 8;
    offset = Math.ceil(offset / size) * size;
    maxAlign = Math.max(maxAlign, size);
    if (f[4]) continue; // a flexible array member adds nothing to the size
    result[f[3]!] = offset;
    offset += size;
  }
  result.SIZE = Math.ceil(offset / maxAlign) * maxAlign;
  return result;
}

describe.skipIf(!header)("VFIO structs match linux/vfio.h", () => {
  const structs = {
    vfio_group_status: S.vfio_group_status,
    vfio_region_info: S.vfio_region_info,
    vfio_iommu_type1_dma_map: S.vfio_iommu_type1_dma_map,
    vfio_iommu_type1_dma_unmap: S.vfio_iommu_type1_dma_unmap,
    vfio_irq_info: S.vfio_irq_info,
    vfio_irq_set: S.vfio_irq_set,
  };
  for (const [name, ours] of Object.entries(structs)) {
    it(`struct ${name} has the kernel's field offsets and size`, () => {
      expect(layoutFromHeader(name)).toEqual(ours);
    });
  }

  it("struct vfio_device_info starts with the fields we use, at the kernel's offsets", () => {
    // Newer kernels append cap_offset and padding; argsz = 16 asks for the original part only.
    const kernel = layoutFromHeader("vfio_device_info");
    for (const field of ["argsz", "flags", "num_regions", "num_irqs"] as const) {
      expect(kernel[field]).toBe(S.vfio_device_info[field]);
    }
  });

  it("ioctl numbers are _IO(VFIO_TYPE, VFIO_BASE + n) as the header defines them", () => {
    const type = parseInt(/#define VFIO_TYPE\s+\('(.)'\)/.exec(header!)![1]!.charCodeAt(0).toString(), 10);
    const base = parseInt(/#define VFIO_BASE\s+(\d+)/.exec(header!)![1]!, 10);
    for (const [name, value] of Object.entries(S.VFIO)) {
      const m = new RegExp(`#define VFIO_${name}\\s+_IO\\(VFIO_TYPE, VFIO_BASE \\+ (\\d+)\\)`).exec(header!);
      expect(m, `VFIO_${name} in header`).not.toBeNull();
      expect(value, `VFIO_${name}`).toBe((type << 8) | (base + Number(m![1])));
    }
  });

  it("flag and constant values match the header", () => {
    const def = (n: string) => {
      const m = new RegExp(`#define ${n}\\s+\\(?(?:1 << )?(\\d+)\\)?`).exec(header!);
      expect(m, n).not.toBeNull();
      return m![0].includes("<<") ? 1 << Number(m![1]) : Number(m![1]);
    };
    expect(def("VFIO_API_VERSION")).toBe(S.VFIO_API_VERSION);
    expect(def("VFIO_TYPE1v2_IOMMU")).toBe(S.VFIO_TYPE1v2_IOMMU);
    expect(def("VFIO_GROUP_FLAGS_VIABLE")).toBe(S.VFIO_GROUP_FLAGS_VIABLE);
    expect(def("VFIO_REGION_INFO_FLAG_MMAP")).toBe(S.VFIO_REGION_INFO_FLAG_MMAP);
    expect(def("VFIO_DMA_MAP_FLAG_READ")).toBe(S.VFIO_DMA_MAP_FLAG_READ);
    expect(def("VFIO_DMA_MAP_FLAG_WRITE")).toBe(S.VFIO_DMA_MAP_FLAG_WRITE);
    expect(def("VFIO_DEVICE_FLAGS_RESET")).toBe(S.VFIO_DEVICE_FLAGS_RESET);
    for (const name of ["EVENTFD", "MASKABLE", "AUTOMASKED", "NORESIZE"] as const) {
      expect(def(`VFIO_IRQ_INFO_${name}`), name).toBe(S[`VFIO_IRQ_INFO_${name}`]);
    }
    for (const name of ["DATA_NONE", "DATA_BOOL", "DATA_EVENTFD", "ACTION_MASK", "ACTION_UNMASK", "ACTION_TRIGGER"] as const) {
      expect(def(`VFIO_IRQ_SET_${name}`), name).toBe(S[`VFIO_IRQ_SET_${name}`]);
    }
  });

  it("the MSI-X interrupt index is the kernel's VFIO_PCI_MSIX_IRQ_INDEX", () => {
    // An enum in the header: INTX, MSI, MSIX, ERR, REQ in that order.
    const m = /enum \{\s*VFIO_PCI_INTX_IRQ_INDEX,\s*VFIO_PCI_MSI_IRQ_INDEX,\s*VFIO_PCI_MSIX_IRQ_INDEX,/.exec(header!);
    expect(m).not.toBeNull();
    expect([S.VFIO_PCI_INTX_IRQ_INDEX, S.VFIO_PCI_MSI_IRQ_INDEX, S.VFIO_PCI_MSIX_IRQ_INDEX]).toEqual([0, 1, 2]);
  });
});

describe("struct field helpers", () => {
  it("store 64-bit values as two little-endian 32-bit halves", () => {
    const buf = S.newStruct(S.vfio_iommu_type1_dma_map);
    S.setU64(buf, S.vfio_iommu_type1_dma_map.iova, 0x12_3456_789a_bc00);
    S.setU64(buf, S.vfio_iommu_type1_dma_map.vaddr, 0x7fff_1234_5000n);
    expect(S.getU64(buf, S.vfio_iommu_type1_dma_map.iova)).toBe(0x12_3456_789a_bc00);
    expect(S.getU64(buf, S.vfio_iommu_type1_dma_map.vaddr)).toBe(0x7fff_1234_5000);
    expect(Array.from(buf.subarray(16, 24))).toEqual([0x00, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12, 0x00]);
    expect(S.getU32(buf, 0)).toBe(32); // argsz
  });
});
