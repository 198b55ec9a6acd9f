/**
 * The registers of the virtio PCI transports by offset, for trace mode (src/pci/register-trace.ts),
 * with the specification's field names (virtio 1.2 §4.1.4.3 struct virtio_pci_common_cfg,
 * §4.1.4.8 the legacy header, §5.1.4 struct virtio_net_config) and the device status bits
 * (§2.1) by name.
 */
import type { RegisterNames } from "../../pci/register-trace.ts";
import { bitNames } from "../../pci/register-trace.ts";
import * as V from "./virtio-types.ts";

/** §2.1 device status bits, as the specification names them. */
const STATUS_BITS = [
  [V.VIRTIO_CONFIG_S_ACKNOWLEDGE, "ACKNOWLEDGE"],
  [V.VIRTIO_CONFIG_S_DRIVER, "DRIVER"],
  [V.VIRTIO_CONFIG_S_FEATURES_OK, "FEATURES_OK"],
  [V.VIRTIO_CONFIG_S_DRIVER_OK, "DRIVER_OK"],
  [V.VIRTIO_CONFIG_S_NEEDS_RESET, "DEVICE_NEEDS_RESET"],
  [V.VIRTIO_CONFIG_S_FAILED, "FAILED"],
] as const;

/** The names of the status bits set in `status` ("ACKNOWLEDGE DRIVER"). */
export function statusNames(status: number): string[] {
  return bitNames(status, STATUS_BITS);
}

const COMMON_FIELDS = new Map<number, string>([
  [V.VIRTIO_PCI_COMMON_DFSELECT, "device_feature_select"],
  [V.VIRTIO_PCI_COMMON_DF, "device_feature"],
  [V.VIRTIO_PCI_COMMON_GFSELECT, "driver_feature_select"],
  [V.VIRTIO_PCI_COMMON_GF, "driver_feature"],
  [V.VIRTIO_PCI_COMMON_MSIX, "config_msix_vector"],
  [V.VIRTIO_PCI_COMMON_NUMQ, "num_queues"],
  [V.VIRTIO_PCI_COMMON_STATUS, "device_status"],
  [V.VIRTIO_PCI_COMMON_CFGGENERATION, "config_generation"],
  [V.VIRTIO_PCI_COMMON_Q_SELECT, "queue_select"],
  [V.VIRTIO_PCI_COMMON_Q_SIZE, "queue_size"],
  [V.VIRTIO_PCI_COMMON_Q_MSIX, "queue_msix_vector"],
  [V.VIRTIO_PCI_COMMON_Q_ENABLE, "queue_enable"],
  [V.VIRTIO_PCI_COMMON_Q_NOFF, "queue_notify_off"],
  [V.VIRTIO_PCI_COMMON_Q_DESCLO, "queue_desc_lo"],
  [V.VIRTIO_PCI_COMMON_Q_DESCHI, "queue_desc_hi"],
  [V.VIRTIO_PCI_COMMON_Q_AVAILLO, "queue_driver_lo"],
  [V.VIRTIO_PCI_COMMON_Q_AVAILHI, "queue_driver_hi"],
  [V.VIRTIO_PCI_COMMON_Q_USEDLO, "queue_device_lo"],
  [V.VIRTIO_PCI_COMMON_Q_USEDHI, "queue_device_hi"],
]);

/** struct virtio_net_config (§5.1.4), by offset; the MAC byte by byte. */
function netConfigName(offset: number): string | null {
  if (offset >= V.VIRTIO_NET_CONFIG_MAC && offset < V.VIRTIO_NET_CONFIG_MAC + 6) return `mac[${offset - V.VIRTIO_NET_CONFIG_MAC}]`;
  if (offset === V.VIRTIO_NET_CONFIG_STATUS) return "status";
  if (offset === V.VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS) return "max_virtqueue_pairs";
  if (offset === V.VIRTIO_NET_CONFIG_MTU) return "mtu";
  return null;
}

/** The common configuration structure at `base` of its BAR (§4.1.4.3). */
export function commonConfigNames(base: number): RegisterNames {
  return {
    name: (offset) => COMMON_FIELDS.get(offset - base) ?? null,
    bits: (offset, value) => (offset - base === V.VIRTIO_PCI_COMMON_STATUS ? statusNames(value) : null),
  };
}

/** The device configuration structure at `base` of its BAR (§4.1.4.6). */
export function deviceConfigNames(base: number): RegisterNames {
  return {
    name: (offset) => netConfigName(offset - base),
    bits: (offset, value) =>
      offset - base === V.VIRTIO_NET_CONFIG_STATUS ? ((value & V.VIRTIO_NET_S_LINK_UP) !== 0 ? ["LINK_UP"] : []) : null,
  };
}

/** The notification area (§4.1.4.4): every doorbell takes the queue index. */
export const NOTIFY_NAMES: RegisterNames = {
  name: () => "queue_notify",
  bits: () => null,
};

const LEGACY_FIELDS = new Map<number, string>([
  [V.VIRTIO_PCI_HOST_FEATURES, "HOST_FEATURES"],
  [V.VIRTIO_PCI_GUEST_FEATURES, "GUEST_FEATURES"],
  [V.VIRTIO_PCI_QUEUE_PFN, "QUEUE_PFN"],
  [V.VIRTIO_PCI_QUEUE_NUM, "QUEUE_NUM"],
  [V.VIRTIO_PCI_QUEUE_SEL, "QUEUE_SEL"],
  [V.VIRTIO_PCI_QUEUE_NOTIFY, "QUEUE_NOTIFY"],
  [V.VIRTIO_PCI_STATUS, "STATUS"],
  [V.VIRTIO_PCI_ISR, "ISR"],
]);

/**
 * The legacy I/O BAR (§4.1.4.8), Linux's names (virtio_pci.h without VIRTIO_PCI_). The device
 * configuration follows at `configOffset()`, which moves when MSI-X is enabled (then the two
 * vector registers sit before it).
 */
export function legacyRegisterNames(configOffset: () => number): RegisterNames {
  return {
    name(offset) {
      const at = configOffset();
      if (offset >= at) return netConfigName(offset - at);
      if (at === V.VIRTIO_PCI_CONFIG_OFF_MSIX && offset === V.VIRTIO_MSI_CONFIG_VECTOR) return "MSI_CONFIG_VECTOR";
      if (at === V.VIRTIO_PCI_CONFIG_OFF_MSIX && offset === V.VIRTIO_MSI_QUEUE_VECTOR) return "MSI_QUEUE_VECTOR";
      return LEGACY_FIELDS.get(offset) ?? null;
    },
    bits(offset, value) {
      if (offset === V.VIRTIO_PCI_STATUS) return statusNames(value);
      if (offset === V.VIRTIO_PCI_HOST_FEATURES || offset === V.VIRTIO_PCI_GUEST_FEATURES) return V.featureShortNames(BigInt(value >>> 0));
      return null;
    },
  };
}
