/**
 * The legacy virtio PCI interface of a transitional model (virtio 1.2 §4.1.4.8): the fixed
 * register header in the I/O-port BAR0, then the device configuration — at 0x14, or at 0x18 while
 * MSI-X is enabled (the two vector registers take its place). Like qemu, header registers take
 * only accesses of their own width at their own offset; the configuration takes any aligned one.
 */
import { DeviceProtocolError } from "../../errors.ts";
import type { SimMmio } from "../sim-mmio.ts";
import { defineRegisters, loadLE, type Field } from "./registers.ts";
import type { VirtioCore } from "./virtio-core.ts";
import { LEGACY, NO_VECTOR } from "./virtio-spec.ts";

/** qemu's BAR0 size for virtio-net: 0x18 bytes of header (with MSI-X) + mac and status. */
export const LEGACY_BAR_SIZE = 0x20;

export function attachLegacyInterface(core: VirtioCore, bar: SimMmio, config: Uint8Array, msixEnabled: () => boolean): void {
  const readOnly = (f: Field): void => core.violation(`write to read-only legacy register ${f.name}`);
  const queue = () => core.selectedQueue;
  defineRegisters(bar, 0, LEGACY.config_no_msix, [
    { name: "HOST_FEATURES", offset: LEGACY.host_features, width: 4, read: () => Number(core.offered & 0xffffffffn) },
    {
      name: "GUEST_FEATURES",
      offset: LEGACY.guest_features,
      width: 4,
      read: () => Number(core.driverFeatures & 0xffffffffn),
      write: (v) => core.writeLegacyFeatures(v),
    },
    {
      name: "QUEUE_PFN",
      offset: LEGACY.queue_pfn,
      width: 4,
      read: () => (queue()?.enabled ? queue()!.desc / 4096 : 0),
      write: (v) => core.setLegacyQueue(v >>> 0),
    },
    { name: "QUEUE_NUM", offset: LEGACY.queue_num, width: 2, read: () => queue()?.maxSize ?? 0 },
    { name: "QUEUE_SEL", offset: LEGACY.queue_sel, width: 2, read: () => core.queueSelect, write: (v) => (core.queueSelect = v) },
    { name: "QUEUE_NOTIFY", offset: LEGACY.queue_notify, width: 2, read: () => 0, write: (v) => core.notify(v) },
    { name: "STATUS", offset: LEGACY.status, width: 1, read: () => core.readStatus(), write: (v) => core.writeStatus(v, true) },
    {
      name: "ISR",
      offset: LEGACY.isr,
      width: 1,
      read: () => {
        const isr = core.isr;
        core.isr = 0;
        return isr;
      },
    },
  ], readOnly);

  // 0x14..: MSI-X vectors (when enabled), then the device configuration.
  for (let at = LEGACY.config_no_msix; at < LEGACY_BAR_SIZE; at++) {
    bar.onRead(at, (_o, width) => {
      const msix = msixEnabled();
      if (msix && at < LEGACY.config_msix) {
        if (width !== 2 || at % 2 !== 0) throw new DeviceProtocolError(`${bar.name}: ${width * 8}-bit read of an MSI-X vector register at 0x${at.toString(16)}`);
        return at === 0x14 ? core.msixConfig : (queue()?.msixVector ?? NO_VECTOR);
      }
      if (at % width !== 0) throw new DeviceProtocolError(`${bar.name}: misaligned ${width * 8}-bit read at 0x${at.toString(16)}`);
      return loadLE(config, at - (msix ? LEGACY.config_msix : LEGACY.config_no_msix), width);
    });
    bar.onWrite(at, (value, _o, width) => {
      if (msixEnabled() && at < LEGACY.config_msix && width === 2) {
        if (at === 0x14) core.msixConfig = core.mapVector(value);
        else {
          const q = queue();
          if (q !== null) q.msixVector = core.mapVector(value);
        }
        return;
      }
      core.violation(`write of 0x${value.toString(16)} to the read-only device configuration at BAR0 0x${at.toString(16)}`);
    });
  }
}
