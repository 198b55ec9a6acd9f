/**
 * Constants of the virtio specification (OASIS, "Virtual I/O Device (VIRTIO) Version 1.2"), named as
 * in the specification and Linux's include/uapi/linux/virtio_{config,pci,ring,net}.h. Section
 * numbers below are those of virtio 1.2 (docs/references.md; 1.1 numbers chapter 2 one lower from
 * "Device Reset" on: split virtqueues 1.2 §2.7 = 1.1 §2.7). Only what the driver uses is here.
 */

// --- PCI identity (§4.1.2) -------------------------------------------------------------------

export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** Transitional virtio-net: legacy I/O-port BAR0 plus (in qemu) the modern capabilities. */
export const VIRTIO_PCI_DEVICE_ID_NET_TRANSITIONAL = 0x1000;
/** Modern-only virtio-net: 0x1040 + device type 1 (qemu: disable-legacy=on). */
export const VIRTIO_PCI_DEVICE_ID_NET_MODERN = 0x1041;

// --- Device status field (§2.1) --------------------------------------------------------------

export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
export const VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;
export const VIRTIO_CONFIG_S_FAILED = 0x80;

// --- Feature bits: bit numbers (§6 reserved bits, §5.1.3 network device) ---------------------

/** Legacy only: the device may put header and data in the same descriptor (implied by VERSION_1). */
export const VIRTIO_F_ANY_LAYOUT = 27;
export const VIRTIO_F_NOTIFY_ON_EMPTY = 24;
export const VIRTIO_RING_F_INDIRECT_DESC = 28;
export const VIRTIO_RING_F_EVENT_IDX = 29;
/** The device complies with virtio 1.x (modern interface, little-endian, 12-byte net header). */
export const VIRTIO_F_VERSION_1 = 32;
/** The device's DMA goes through the platform's IOMMU (qemu: iommu_platform=on). */
export const VIRTIO_F_ACCESS_PLATFORM = 33;
export const VIRTIO_F_RING_PACKED = 34;
export const VIRTIO_F_IN_ORDER = 35;
/** The device needs the platform's (not the CPU's SMP) memory ordering for its rings (§6.1). */
export const VIRTIO_F_ORDER_PLATFORM = 36;

export const VIRTIO_NET_F_CSUM = 0;
export const VIRTIO_NET_F_GUEST_CSUM = 1;
export const VIRTIO_NET_F_MTU = 3;
export const VIRTIO_NET_F_MAC = 5;
export const VIRTIO_NET_F_GUEST_TSO4 = 7;
export const VIRTIO_NET_F_GUEST_TSO6 = 8;
export const VIRTIO_NET_F_HOST_TSO4 = 11;
export const VIRTIO_NET_F_HOST_TSO6 = 12;
export const VIRTIO_NET_F_MRG_RXBUF = 15;
export const VIRTIO_NET_F_STATUS = 16;
export const VIRTIO_NET_F_CTRL_VQ = 17;
export const VIRTIO_NET_F_CTRL_RX = 18;
export const VIRTIO_NET_F_CTRL_VLAN = 19;
export const VIRTIO_NET_F_GUEST_ANNOUNCE = 21;
export const VIRTIO_NET_F_MQ = 22;
export const VIRTIO_NET_F_CTRL_MAC_ADDR = 23;

/** The feature bit `bit` as a 64-bit mask (BigInt: init-time only). */
export function feature(bit: number): bigint {
  return 1n << BigInt(bit);
}

export function hasFeature(features: bigint, bit: number): boolean {
  return (features & feature(bit)) !== 0n;
}

const FEATURE_NAMES: Readonly<Record<number, string>> = {
  [VIRTIO_NET_F_CSUM]: "VIRTIO_NET_F_CSUM",
  [VIRTIO_NET_F_GUEST_CSUM]: "VIRTIO_NET_F_GUEST_CSUM",
  [VIRTIO_NET_F_MTU]: "VIRTIO_NET_F_MTU",
  [VIRTIO_NET_F_MAC]: "VIRTIO_NET_F_MAC",
  [VIRTIO_NET_F_GUEST_TSO4]: "VIRTIO_NET_F_GUEST_TSO4",
  [VIRTIO_NET_F_GUEST_TSO6]: "VIRTIO_NET_F_GUEST_TSO6",
  [VIRTIO_NET_F_HOST_TSO4]: "VIRTIO_NET_F_HOST_TSO4",
  [VIRTIO_NET_F_HOST_TSO6]: "VIRTIO_NET_F_HOST_TSO6",
  [VIRTIO_NET_F_MRG_RXBUF]: "VIRTIO_NET_F_MRG_RXBUF",
  [VIRTIO_NET_F_STATUS]: "VIRTIO_NET_F_STATUS",
  [VIRTIO_NET_F_CTRL_VQ]: "VIRTIO_NET_F_CTRL_VQ",
  [VIRTIO_NET_F_CTRL_RX]: "VIRTIO_NET_F_CTRL_RX",
  [VIRTIO_NET_F_CTRL_VLAN]: "VIRTIO_NET_F_CTRL_VLAN",
  [VIRTIO_NET_F_GUEST_ANNOUNCE]: "VIRTIO_NET_F_GUEST_ANNOUNCE",
  [VIRTIO_NET_F_MQ]: "VIRTIO_NET_F_MQ",
  [VIRTIO_NET_F_CTRL_MAC_ADDR]: "VIRTIO_NET_F_CTRL_MAC_ADDR",
  [VIRTIO_F_NOTIFY_ON_EMPTY]: "VIRTIO_F_NOTIFY_ON_EMPTY",
  [VIRTIO_F_ANY_LAYOUT]: "VIRTIO_F_ANY_LAYOUT",
  [VIRTIO_RING_F_INDIRECT_DESC]: "VIRTIO_RING_F_INDIRECT_DESC",
  [VIRTIO_RING_F_EVENT_IDX]: "VIRTIO_RING_F_EVENT_IDX",
  [VIRTIO_F_VERSION_1]: "VIRTIO_F_VERSION_1",
  [VIRTIO_F_ACCESS_PLATFORM]: "VIRTIO_F_ACCESS_PLATFORM",
  [VIRTIO_F_RING_PACKED]: "VIRTIO_F_RING_PACKED",
  [VIRTIO_F_IN_ORDER]: "VIRTIO_F_IN_ORDER",
  [VIRTIO_F_ORDER_PLATFORM]: "VIRTIO_F_ORDER_PLATFORM",
};

/** The names of the feature bits set, short ("VERSION_1", "MAC"), for trace mode. */
export function featureShortNames(features: bigint): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (!hasFeature(features, bit)) continue;
    const name = FEATURE_NAMES[bit];
    // Bit 30 is vhost-user's VHOST_USER_F_PROTOCOL_FEATURES (vhost-user/protocol.ts).
    names.push(name === undefined ? (bit === 30 ? "PROTOCOL_FEATURES" : `bit${bit}`) : name.replace(/^VIRTIO_(NET_F|F|RING_F)_/, ""));
  }
  return names;
}

/** "0x130000020 (VIRTIO_NET_F_MAC, VIRTIO_F_VERSION_1, ...)" for error messages and logs. */
export function describeFeatures(features: bigint): string {
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if (hasFeature(features, bit)) names.push(FEATURE_NAMES[bit] ?? `bit ${bit}`);
  }
  return `0x${features.toString(16)} (${names.length > 0 ? names.join(", ") : "none"})`;
}

// --- Modern PCI transport: vendor capabilities (§4.1.4) --------------------------------------

/** cfg_type values of struct virtio_pci_cap. */
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_PCI_CAP_PCI_CFG = 5;

/** Byte offsets inside struct virtio_pci_cap (and virtio_pci_notify_cap). */
export const VIRTIO_PCI_CAP_LEN = 2;
export const VIRTIO_PCI_CAP_CFG_TYPE = 3;
export const VIRTIO_PCI_CAP_BAR = 4;
export const VIRTIO_PCI_CAP_OFFSET = 8;
export const VIRTIO_PCI_CAP_LENGTH = 12;
export const VIRTIO_PCI_NOTIFY_CAP_MULT = 16;
/** sizeof(struct virtio_pci_cap); the notify capability adds a le32. */
export const VIRTIO_PCI_CAP_SIZE = 16;
export const VIRTIO_PCI_NOTIFY_CAP_SIZE = 20;

/** struct virtio_pci_common_cfg (§4.1.4.3): offsets, with each field's width in the name's comment. */
export const VIRTIO_PCI_COMMON_DFSELECT = 0x00; // le32 device_feature_select
export const VIRTIO_PCI_COMMON_DF = 0x04; // le32 device_feature (read-only)
export const VIRTIO_PCI_COMMON_GFSELECT = 0x08; // le32 driver_feature_select
export const VIRTIO_PCI_COMMON_GF = 0x0c; // le32 driver_feature
export const VIRTIO_PCI_COMMON_MSIX = 0x10; // le16 msix_config
export const VIRTIO_PCI_COMMON_NUMQ = 0x12; // le16 num_queues (read-only)
export const VIRTIO_PCI_COMMON_STATUS = 0x14; // u8 device_status
export const VIRTIO_PCI_COMMON_CFGGENERATION = 0x15; // u8 config_generation (read-only)
export const VIRTIO_PCI_COMMON_Q_SELECT = 0x16; // le16 queue_select
export const VIRTIO_PCI_COMMON_Q_SIZE = 0x18; // le16 queue_size
export const VIRTIO_PCI_COMMON_Q_MSIX = 0x1a; // le16 queue_msix_vector
export const VIRTIO_PCI_COMMON_Q_ENABLE = 0x1c; // le16 queue_enable
export const VIRTIO_PCI_COMMON_Q_NOFF = 0x1e; // le16 queue_notify_off (read-only)
export const VIRTIO_PCI_COMMON_Q_DESCLO = 0x20; // le64 queue_desc, as two le32 halves
export const VIRTIO_PCI_COMMON_Q_DESCHI = 0x24;
export const VIRTIO_PCI_COMMON_Q_AVAILLO = 0x28; // le64 queue_driver (the available ring)
export const VIRTIO_PCI_COMMON_Q_AVAILHI = 0x2c;
export const VIRTIO_PCI_COMMON_Q_USEDLO = 0x30; // le64 queue_device (the used ring)
export const VIRTIO_PCI_COMMON_Q_USEDHI = 0x34;
/** Bytes of the common configuration the driver uses (through queue_device). */
export const VIRTIO_PCI_COMMON_CFG_MIN_SIZE = 0x38;

/** "No MSI-X vector": what a polling driver leaves every vector register at (the reset value). */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

// --- Legacy PCI transport: the I/O-port BAR0 header (§4.1.4.8) ------------------------------

export const VIRTIO_PCI_HOST_FEATURES = 0x00; // le32, read-only
export const VIRTIO_PCI_GUEST_FEATURES = 0x04; // le32
export const VIRTIO_PCI_QUEUE_PFN = 0x08; // le32: ring address >> 12
export const VIRTIO_PCI_QUEUE_NUM = 0x0c; // le16, read-only: the queue size is the device's
export const VIRTIO_PCI_QUEUE_SEL = 0x0e; // le16
export const VIRTIO_PCI_QUEUE_NOTIFY = 0x10; // le16
export const VIRTIO_PCI_STATUS = 0x12; // u8
export const VIRTIO_PCI_ISR = 0x13; // u8, read clears
/** While MSI-X is enabled: the configuration-change vector and the selected queue's vector (le16 each). */
export const VIRTIO_MSI_CONFIG_VECTOR = 0x14;
export const VIRTIO_MSI_QUEUE_VECTOR = 0x16;
/** Device configuration follows the header at 0x14, or at 0x18 while MSI-X is enabled. */
export const VIRTIO_PCI_CONFIG_OFF_NO_MSIX = 0x14;
export const VIRTIO_PCI_CONFIG_OFF_MSIX = 0x18;
export const VIRTIO_PCI_QUEUE_ADDR_SHIFT = 12;
/** Legacy rings: the used ring starts at the next multiple of this (§2.7.2). */
export const VIRTIO_PCI_VRING_ALIGN = 4096;

// --- Split virtqueues (§2.7) -----------------------------------------------------------------

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
/** In used.flags: the device does not want available-buffer notifications (§2.7.10). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;
/** In avail.flags: the driver does not want used-buffer notifications (interrupts) (§2.7.7). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** Bytes per descriptor: le64 addr, le32 len, le16 flags, le16 next (§2.7.5). */
export const VIRTQ_DESC_SIZE = 16;
/** Largest queue size a split ring may have (§2.7). */
export const VIRTQ_MAX_SIZE = 32768;

// --- Network device (§5.1) -------------------------------------------------------------------

/** Virtqueue indices without VIRTIO_NET_F_MQ (§5.1.2). */
export const VIRTIO_NET_RX_QUEUE = 0;
export const VIRTIO_NET_TX_QUEUE = 1;
export const VIRTIO_NET_CTRL_QUEUE = 2;
/** With VIRTIO_NET_F_MQ (§5.1.2): receiveq(k+1) at 2k, transmitq(k+1) at 2k+1, the control queue at 2N (N = max_virtqueue_pairs). */
export function rxQueueIndex(pair: number): number {
  return 2 * pair;
}
export function txQueueIndex(pair: number): number {
  return 2 * pair + 1;
}

/** struct virtio_net_config (§5.1.4). */
export const VIRTIO_NET_CONFIG_MAC = 0; // u8 mac[6]
export const VIRTIO_NET_CONFIG_STATUS = 6; // le16 status
export const VIRTIO_NET_CONFIG_MAX_VIRTQUEUE_PAIRS = 8; // le16, valid with VIRTIO_NET_F_MQ
export const VIRTIO_NET_CONFIG_MTU = 10; // le16, valid with VIRTIO_NET_F_MTU
export const VIRTIO_NET_S_LINK_UP = 1;

/** struct virtio_net_hdr (legacy, without MRG_RXBUF) and virtio_net_hdr_v1 (VERSION_1) (§5.1.6). */
export const VIRTIO_NET_HDR_LEN = 10;
export const VIRTIO_NET_HDR_V1_LEN = 12;
/** The legacy header with VIRTIO_NET_F_MRG_RXBUF: num_buffers appended (virtio_net_hdr_mrg_rxbuf). */
export const VIRTIO_NET_HDR_MRG_LEN = 12;
/** Byte offsets inside the header (§5.1.6): u8 flags, u8 gso_type, le16 hdr_len, gso_size, csum_start, csum_offset, num_buffers. */
export const VIRTIO_NET_HDR_FLAGS = 0;
export const VIRTIO_NET_HDR_GSO_TYPE = 1;
export const VIRTIO_NET_HDR_HDR_LEN = 2;
export const VIRTIO_NET_HDR_GSO_SIZE = 4;
export const VIRTIO_NET_HDR_CSUM_START = 6;
export const VIRTIO_NET_HDR_CSUM_OFFSET = 8;
export const VIRTIO_NET_HDR_NUM_BUFFERS = 10;
/** flags: the checksum from csum_start to the end goes to csum_start + csum_offset (§5.1.6.2). */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** flags, receive only with VIRTIO_NET_F_GUEST_CSUM: the device checked the checksums (§5.1.6.4). */
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;

/** Control virtqueue (§5.1.6.5): class, command, ack. */
export const VIRTIO_NET_CTRL_RX = 0;
export const VIRTIO_NET_CTRL_RX_PROMISC = 0;
export const VIRTIO_NET_CTRL_RX_ALLMULTI = 1;
/** §5.1.6.5.5: automatic receive steering over virtqueue_pairs (le16) queue pairs. */
export const VIRTIO_NET_CTRL_MQ = 4;
export const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET = 0;
export const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN = 1;
export const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX = 0x8000;
export const VIRTIO_NET_OK = 0;
export const VIRTIO_NET_ERR = 1;
