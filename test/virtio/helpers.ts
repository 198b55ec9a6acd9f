import { createVirtioDevice, VirtioNetDevice, type VirtioDeviceOptions } from "../../src/drivers/virtio/virtio-device.ts";
import type { DmaAllocator, DmaAddressing } from "../../src/mem/dma.ts";
import { freeBuffers } from "../../src/mem/mempool.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel, type VirtioNetModelOptions } from "../../src/sim/virtio/virtio-model.ts";

export interface Rig {
  readonly dma: SimDma;
  readonly model: VirtioNetModel;
  readonly dev: VirtioNetDevice;
}

/** A model and the driver on it; the link is not waited for unless asked. */
export function openRig(
  model: Omit<VirtioNetModelOptions, "dma"> = {},
  device: VirtioDeviceOptions = {},
  dma = new SimDma("sim DMA"),
): Rig {
  const m = new VirtioNetModel({ dma, ...model });
  const dev = createVirtioDevice(m.pci, dma, { linkTimeoutMs: 0, ...device });
  if (!(dev instanceof VirtioNetDevice)) throw new Error("createVirtioDevice did not return a VirtioNetDevice");
  return { dma, model: m, dev };
}

/** The same SimDma memory, but claiming another addressing mode (to test the driver's checks). */
export function withAddressing(dma: SimDma, addressing: DmaAddressing): DmaAllocator {
  return {
    name: `${dma.name} (posing as ${addressing})`,
    addressing,
    space: dma.space,
    get closed() {
      return dma.closed;
    },
    allocate: (size, options) => dma.allocate(size, options),
    close: () => dma.close(),
  };
}

/** Frees bufs[0 .. n) to their pools. */
export function freeAll(bufs: Int32Array, n: number): void {
  freeBuffers(bufs, 0, n);
}

/** A frame of `length` bytes: a 4-byte big-endian sequence number, then bytes from `fill`. */
export function frame(seq: number, length: number, fill: () => number): Uint8Array {
  const f = new Uint8Array(length);
  for (let i = 4; i < length; i++) f[i] = (fill() * 256) | 0;
  f[0] = seq >>> 24;
  f[1] = (seq >>> 16) & 0xff;
  f[2] = (seq >>> 8) & 0xff;
  f[3] = seq & 0xff;
  return f;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
