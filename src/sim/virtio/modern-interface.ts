/**
 * The modern virtio PCI interface of the model (virtio 1.2 §4.1.4), laid out the way qemu lays
 * out virtio-net-pci: vendor capabilities in config space pointing into one 16 KiB memory BAR
 * (BAR4), with the common configuration, ISR, device configuration and notification area
 * 4 KiB apart.
 */
import { PCI_CAP_ID_VNDR } from "../../pci/pci-function.ts";
import type { SimMmio } from "../sim-mmio.ts";
import { hi32, join64, lo32 } from "../../mem/u64.ts";
import type { SimPciFunction } from "../sim-pci.ts";
import { defineRegisters, loadLE, type Field } from "./registers.ts";
import type { VirtioCore } from "./virtio-core.ts";
import { CAP_COMMON, CAP_DEVICE, CAP_ISR, CAP_NOTIFY, CAP_PCI_CFG, COMMON, COMMON_SIZE } from "./virtio-spec.ts";

export const MODERN_BAR = 4;
export const MODERN_BAR_SIZE = 0x4000;
const COMMON_AT = 0x0000;
const ISR_AT = 0x1000;
const DEVICE_AT = 0x2000;
const NOTIFY_AT = 0x3000;
const BLOCK = 0x1000;

/** struct virtio_pci_cap after cap_vndr/cap_next, plus a trailing le32 when given (notify multiplier, pci_cfg_data). */
function capBody(type: number, bar: number, offset: number, length: number, multiplier?: number): Uint8Array {
  const capLen = multiplier === undefined ? 16 : 20;
  const body = new Uint8Array(capLen - 2);
  body[0] = capLen;
  body[1] = type;
  body[2] = bar;
  putLE32(body, 6, offset);
  putLE32(body, 10, length);
  if (multiplier !== undefined) putLE32(body, 14, multiplier);
  return body;
}

function putLE32(bytes: Uint8Array, at: number, value: number): void {
  for (let i = 0; i < 4; i++) bytes[at + i] = (value >>> (8 * i)) & 0xff;
}

export interface ModernInterfaceOptions {
  /** Bytes between two queues' doorbells; 0: one doorbell for all, the value names the queue. */
  readonly notifyOffMultiplier: number;
  /** struct virtio_net_config, live (the model changes the link status in place). */
  readonly config: Uint8Array;
  /** Natural widths of the device configuration fields: [offset, width]. */
  readonly configFields: readonly (readonly [number, 1 | 2, string])[];
}

export function attachModernInterface(core: VirtioCore, pci: SimPciFunction, bar: SimMmio, options: ModernInterfaceOptions): void {
  const multiplier = options.notifyOffMultiplier;
  pci.addCapability(PCI_CAP_ID_VNDR, capBody(CAP_COMMON, MODERN_BAR, COMMON_AT, BLOCK));
  pci.addCapability(PCI_CAP_ID_VNDR, capBody(CAP_ISR, MODERN_BAR, ISR_AT, BLOCK));
  pci.addCapability(PCI_CAP_ID_VNDR, capBody(CAP_DEVICE, MODERN_BAR, DEVICE_AT, BLOCK));
  pci.addCapability(PCI_CAP_ID_VNDR, capBody(CAP_NOTIFY, MODERN_BAR, NOTIFY_AT, BLOCK, multiplier));
  // The PCI configuration access capability (a window into the BARs through config space):
  // drivers that map BARs ignore it; it is here so that they have to.
  pci.addCapability(PCI_CAP_ID_VNDR, capBody(CAP_PCI_CFG, 0, 0, 0, 0));

  const readOnly = (f: Field): void => core.violation(`write to read-only ${f.name}`);
  const queue = () => core.selectedQueue;
  const queueConfig = (name: string, write: (v: number) => void) => (v: number) => {
    const q = queue();
    if (q === null) core.violation(`${name} written for queue ${core.queueSelect}, which does not exist`);
    else if (q.enabled) core.violation(`${name} of queue ${q.index} written while the queue is enabled`);
    else write(v);
  };
  const half = (get: () => number, high: boolean) => (high ? hi32(get()) : lo32(get()));
  const setHalf = (old: number, v: number, high: boolean) => (high ? join64(lo32(old), v) : join64(v, hi32(old)));
  const addressField = (name: string, offset: number, high: boolean, key: "desc" | "avail" | "used"): Field => ({
    name,
    offset,
    width: 4,
    read: () => half(() => queue()?.[key] ?? 0, high),
    write: queueConfig(name, (v) => {
      const q = queue()!;
      q[key] = setHalf(q[key], v, high);
    }),
  });

  defineRegisters(bar, COMMON_AT, COMMON_SIZE, [
    { name: "device_feature_select", offset: COMMON.device_feature_select, width: 4, read: () => core.deviceFeatureSelect, write: (v) => (core.deviceFeatureSelect = v) },
    { name: "device_feature", offset: COMMON.device_feature, width: 4, read: () => core.readDeviceFeatureWord() },
    { name: "driver_feature_select", offset: COMMON.driver_feature_select, width: 4, read: () => core.driverFeatureSelect, write: (v) => (core.driverFeatureSelect = v) },
    { name: "driver_feature", offset: COMMON.driver_feature, width: 4, read: () => core.readDriverFeatureWord(), write: (v) => core.writeDriverFeatureWord(v) },
    { name: "msix_config", offset: COMMON.msix_config, width: 2, read: () => core.msixConfig, write: (v) => (core.msixConfig = core.mapVector(v)) },
    { name: "num_queues", offset: COMMON.num_queues, width: 2, read: () => core.queues.length },
    { name: "device_status", offset: COMMON.device_status, width: 1, read: () => core.readStatus(), write: (v) => core.writeStatus(v, false) },
    { name: "config_generation", offset: COMMON.config_generation, width: 1, read: () => core.configGeneration },
    { name: "queue_select", offset: COMMON.queue_select, width: 2, read: () => core.queueSelect, write: (v) => (core.queueSelect = v) },
    { name: "queue_size", offset: COMMON.queue_size, width: 2, read: () => queue()?.size ?? 0, write: queueConfig("queue_size", (v) => (queue()!.size = v)) },
    { name: "queue_msix_vector", offset: COMMON.queue_msix_vector, width: 2, read: () => queue()?.msixVector ?? 0, write: queueConfig("queue_msix_vector", (v) => (queue()!.msixVector = core.mapVector(v))) },
    {
      name: "queue_enable",
      offset: COMMON.queue_enable,
      width: 2,
      read: () => (queue()?.enabled ? 1 : 0),
      write: (v) => (v === 1 ? core.enableQueue() : core.violation(`queue_enable written with ${v} (§4.1.4.3.2: only 1 may be written)`)),
    },
    { name: "queue_notify_off", offset: COMMON.queue_notify_off, width: 2, read: () => queue()?.index ?? 0 },
    addressField("queue_desc_lo", COMMON.queue_desc_lo, false, "desc"),
    addressField("queue_desc_hi", COMMON.queue_desc_hi, true, "desc"),
    addressField("queue_driver_lo", COMMON.queue_driver_lo, false, "avail"),
    addressField("queue_driver_hi", COMMON.queue_driver_hi, true, "avail"),
    addressField("queue_device_lo", COMMON.queue_device_lo, false, "used"),
    addressField("queue_device_hi", COMMON.queue_device_hi, true, "used"),
  ], readOnly);

  defineRegisters(bar, ISR_AT, 1, [{
    name: "isr_status",
    offset: 0,
    width: 1,
    read: () => {
      const isr = core.isr;
      core.isr = 0; // §4.1.4.5: reading clears
      return isr;
    },
  }], readOnly);

  const config = options.config;
  defineRegisters(
    bar,
    DEVICE_AT,
    config.length,
    options.configFields.map(([offset, width, name]) => ({
      name,
      offset,
      width,
      read: () => {
        core.onConfigRead();
        return loadLE(config, offset, width);
      },
    })),
    readOnly,
  );

  // §4.1.4.4: queue q's doorbell is at cap.offset + queue_notify_off(q) * multiplier.
  const doorbells: Field[] = [];
  if (multiplier === 0) {
    doorbells.push({ name: "queue_notify", offset: 0, width: 2, write: (v) => core.notify(v) });
  } else {
    for (const q of core.queues) {
      doorbells.push({
        name: `queue_notify[${q.index}]`,
        offset: q.index * multiplier,
        width: 2,
        write: (v) => {
          if (v !== q.index) core.violation(`doorbell of queue ${q.index} written with ${v}, not the queue index`);
          core.notify(q.index);
        },
      });
    }
  }
  defineRegisters(bar, NOTIFY_AT, Math.max(2, core.queues.length * multiplier), doorbells, readOnly);
}
