/**
 * Both drivers share memory with their device without a single fence instruction, and that is
 * only correct on x86-64. There, stores become visible to other agents (the device included) in
 * program order, and loads are not reordered with older loads (Intel SDM vol. 3, 8.2.2), so:
 *   - descriptors written before the tail/notify store are visible before the device sees it
 *     (Linux needs a wmb() there; on x86 it compiles to a compiler barrier only);
 *   - a status bit (ixgbe DD, virtio used.idx) read before the length or id it guards is read
 *     first (Linux: dma_rmb() / virtio_rmb(), again free on x86).
 * JavaScript has no fence that orders plain typed-array accesses against a device; Atomics
 * operations are sequentially consistent only among agents that use Atomics too. A port to a
 * weakly ordered CPU (arm64, riscv64, ppc64) would need a real barrier at each of the places
 * marked "x86-64 ordering" in the queue files. Until then a device is refused elsewhere, loudly,
 * instead of losing frames silently.
 */
import { NotSupportedError } from "../errors.ts";

/** The CPUs whose memory model the drivers rely on. */
export const STRONGLY_ORDERED_ARCHES = ["x64"] as const;

/** Throws NotSupportedError naming the device when this CPU is not x86-64. */
export function requireStrongMemoryOrder(device: string, arch: string = process.arch): void {
  if ((STRONGLY_ORDERED_ARCHES as readonly string[]).includes(arch)) return;
  throw new NotSupportedError(
    `${device}: ixy.ts drivers run on x86-64 only (this CPU is ${arch}): they rely on x86's ordering of ` +
      `stores and loads to and from DMA memory and have no barriers for a weakly ordered CPU`,
  );
}
