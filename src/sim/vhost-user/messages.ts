/**
 * The backend's own copy of the vhost-user numbers (qemu docs/interop/vhost-user.rst), written
 * from the specification and deliberately not shared with the driver's front-end
 * (src/drivers/virtio/vhost-user/): a backend that shared the front-end's constants would agree
 * with any mistake in them. All numbers are in the machine's byte order (little-endian here).
 */

/** vhost-user: Message Specification / Header: request, flags, size (u32 each). */
export const HEADER_SIZE = 12;
/** Payloads beyond this are nonsense for every request this backend knows (the largest is 264). */
export const MAX_PAYLOAD = 4096;

/** vhost-user: Header / flags. */
export const Flags = {
  /** Lower 2 bits: the version, currently 1. */
  VERSION_MASK: 0x3,
  VERSION: 0x1,
  /** Bit 2: set on every reply from the back-end. */
  REPLY: 0x4,
  /** Bit 3: the front-end wants a u64 ack (REPLY_ACK). */
  NEED_REPLY: 0x8,
} as const;

/** vhost-user: Front-end message types (their ids). */
export const Request = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  RESET_OWNER: 4,
  SET_MEM_TABLE: 5,
  SET_LOG_BASE: 6,
  SET_LOG_FD: 7,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  SET_VRING_ERR: 14,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  SEND_RARP: 19,
  NET_SET_MTU: 20,
  SET_BACKEND_REQ_FD: 21,
  IOTLB_MSG: 22,
  SET_VRING_ENDIAN: 23,
  GET_CONFIG: 24,
  SET_CONFIG: 25,
  CREATE_CRYPTO_SESSION: 26,
  CLOSE_CRYPTO_SESSION: 27,
  POSTCOPY_ADVISE: 28,
  POSTCOPY_LISTEN: 29,
  POSTCOPY_END: 30,
  GET_INFLIGHT_FD: 31,
  SET_INFLIGHT_FD: 32,
  GPU_SET_SOCKET: 33,
  RESET_DEVICE: 34,
  VRING_KICK: 35,
  GET_MAX_MEM_SLOTS: 36,
  ADD_MEM_REG: 37,
  REM_MEM_REG: 38,
  SET_STATUS: 39,
  GET_STATUS: 40,
} as const;

const requestNames = new Map<number, string>(Object.entries(Request).map(([name, id]) => [id, name]));

/** "SET_VRING_ADDR (9)", or "request 999" for a number the specification does not define. */
export function requestName(request: number): string {
  const name = requestNames.get(request);
  return name === undefined ? `request ${request}` : `${name} (${request})`;
}

/** vhost-user: Communication: the feature bit that announces GET/SET_PROTOCOL_FEATURES. */
export const F_PROTOCOL_FEATURES = 30;

/** vhost-user: Protocol features (bit numbers). */
export const ProtocolFeature = {
  MQ: 0,
  LOG_SHMFD: 1,
  RARP: 2,
  REPLY_ACK: 3,
  MTU: 4,
  BACKEND_REQ: 5,
  CROSS_ENDIAN: 6,
  CRYPTO_SESSION: 7,
  PAGEFAULT: 8,
  CONFIG: 9,
  BACKEND_SEND_FD: 10,
  HOST_NOTIFIER: 11,
  INFLIGHT_SHMFD: 12,
  RESET_DEVICE: 13,
  INBAND_NOTIFICATIONS: 14,
  CONFIGURE_MEM_SLOTS: 15,
  STATUS: 16,
} as const;

/** vhost-user: SET_VRING_KICK / SET_VRING_CALL / SET_VRING_ERR: the u64 payload. */
export const VRING_IDX_MASK = 0xff;
export const VRING_NOFD_MASK = 0x100;

/** vhost-user: Memory regions description: at most 8 regions without CONFIGURE_MEM_SLOTS. */
export const MAX_REGIONS = 8;
/** num regions (u32) and padding (u32), then per region guest address, size, user address, mmap offset (u64 each). */
export const MEMORY_HEADER_SIZE = 8;
export const MEMORY_REGION_SIZE = 32;

/** vhost-user: A vring address description (struct vhost_vring_addr): byte offsets. */
export const VringAddr = {
  index: 0,
  flags: 4,
  desc: 8,
  used: 16,
  avail: 24,
  log: 32,
  SIZE: 40,
} as const;
/** vhost_vring_addr.flags bit 0: log the used ring (needs VHOST_F_LOG_ALL, never offered here). */
export const VRING_F_LOG = 1;

/** Payload sizes: u64, a vring state description (index, num: u32 each). */
export const U64_SIZE = 8;
export const VRING_STATE_SIZE = 8;
