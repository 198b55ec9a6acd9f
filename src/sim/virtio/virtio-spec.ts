/**
 * The device side's own copy of the virtio 1.2 numbers it needs. Deliberately not imported from
 * the driver (src/drivers/virtio/virtio-types.ts): a model that shared the driver's constants
 * would agree with any mistake in them, and the tests would pass against a device that does not
 * exist. Written from the specification; section numbers are virtio 1.2's (docs/references.md).
 */

// §2.1 device status
export const S_ACKNOWLEDGE = 1;
export const S_DRIVER = 2;
export const S_DRIVER_OK = 4;
export const S_FEATURES_OK = 8;
export const S_NEEDS_RESET = 0x40;
export const S_FAILED = 0x80;

// §6 and §5.1.3 feature bits
export const F = {
  CSUM: 0,
  GUEST_CSUM: 1,
  MTU: 3,
  MAC: 5,
  GUEST_TSO4: 7,
  GUEST_TSO6: 8,
  HOST_TSO4: 11,
  HOST_TSO6: 12,
  MRG_RXBUF: 15,
  STATUS: 16,
  CTRL_VQ: 17,
  CTRL_RX: 18,
  CTRL_VLAN: 19,
  MQ: 22,
  NOTIFY_ON_EMPTY: 24,
  ANY_LAYOUT: 27,
  INDIRECT_DESC: 28,
  EVENT_IDX: 29,
  VERSION_1: 32,
  ACCESS_PLATFORM: 33,
  RING_PACKED: 34,
  ORDER_PLATFORM: 36,
} as const;

export function bit(n: number): bigint {
  return 1n << BigInt(n);
}

/** Features only the legacy interface shows (qemu hides them from the modern one). */
export const LEGACY_ONLY_FEATURES = bit(F.ANY_LAYOUT) | bit(F.NOTIFY_ON_EMPTY);

// §4.1.4 capabilities
export const CAP_COMMON = 1;
export const CAP_NOTIFY = 2;
export const CAP_ISR = 3;
export const CAP_DEVICE = 4;
export const CAP_PCI_CFG = 5;

// §4.1.4.3 common configuration: [offset, width]
export const COMMON = {
  device_feature_select: 0x00,
  device_feature: 0x04,
  driver_feature_select: 0x08,
  driver_feature: 0x0c,
  msix_config: 0x10,
  num_queues: 0x12,
  device_status: 0x14,
  config_generation: 0x15,
  queue_select: 0x16,
  queue_size: 0x18,
  queue_msix_vector: 0x1a,
  queue_enable: 0x1c,
  queue_notify_off: 0x1e,
  queue_desc_lo: 0x20,
  queue_desc_hi: 0x24,
  queue_driver_lo: 0x28,
  queue_driver_hi: 0x2c,
  queue_device_lo: 0x30,
  queue_device_hi: 0x34,
} as const;
export const COMMON_SIZE = 0x38;
export const NO_VECTOR = 0xffff;

// §4.1.4.8 legacy header in the I/O BAR
export const LEGACY = {
  host_features: 0x00,
  guest_features: 0x04,
  queue_pfn: 0x08,
  queue_num: 0x0c,
  queue_sel: 0x0e,
  queue_notify: 0x10,
  status: 0x12,
  isr: 0x13,
  config_no_msix: 0x14,
  config_msix: 0x18,
} as const;
export const LEGACY_VRING_ALIGN = 4096;

// §2.7 split virtqueues
export const DESC_F_NEXT = 1;
export const DESC_F_WRITE = 2;
export const DESC_F_INDIRECT = 4;
export const USED_F_NO_NOTIFY = 1;
export const AVAIL_F_NO_INTERRUPT = 1;

// §5.1 network device
export const NET_CONFIG_SIZE = 12; // mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu
export const NET_S_LINK_UP = 1;
export const CTRL_RX = 0;
export const CTRL_RX_PROMISC = 0;
export const CTRL_RX_ALLMULTI = 1;
export const NET_OK = 0;
export const NET_ERR = 1;

// §5.1.6.5.5 automatic receive steering in multiqueue mode (virtio 1.2)
export const CTRL_MQ = 4;
export const CTRL_MQ_VQ_PAIRS_SET = 0;
export const CTRL_MQ_VQ_PAIRS_MIN = 1;
export const CTRL_MQ_VQ_PAIRS_MAX = 0x8000;
