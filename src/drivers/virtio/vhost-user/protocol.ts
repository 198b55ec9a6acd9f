/**
 * The numbers of the vhost-user protocol that the front-end uses (qemu docs/interop/vhost-user.rst;
 * section names below are that document's). All numbers are in the machine's native byte order,
 * which is little-endian on every machine ixy.ts runs on.
 */

/** vhost-user: "Front-end message types": the `request` field of the header. */
export const VhostUserRequest = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  RESET_OWNER: 4,
  SET_MEM_TABLE: 5,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
  GET_CONFIG: 24,
} as const;
export type VhostUserRequest = (typeof VhostUserRequest)[keyof typeof VhostUserRequest];

const REQUEST_NAMES = new Map<number, string>(Object.entries(VhostUserRequest).map(([name, code]) => [code, name]));

/** "VHOST_USER_GET_FEATURES" for 1; "request 99" for a code this front-end never sends. */
export function requestName(code: number): string {
  const name = REQUEST_NAMES.get(code);
  return name === undefined ? `request ${code}` : `VHOST_USER_${name}`;
}

/** vhost-user: "Header": the `flags` field. */
export const VhostUserFlag = {
  /** Bits 0-1: the protocol version, currently 1. */
  VERSION: 0x1,
  VERSION_MASK: 0x3,
  /** Bit 2: set on every reply from the back-end. */
  REPLY: 0x4,
  /** Bit 3: the front-end asks for a u64 ack (vhost-user: "VHOST_USER_PROTOCOL_F_REPLY_ACK"). */
  NEED_REPLY: 0x8,
} as const;

/** Bytes of the header: u32 request, u32 flags, u32 size (of the payload that follows). */
export const HEADER_SIZE = 12;

/**
 * vhost-user: "Communication": feature bit 30 of GET_FEATURES (a reserved virtio bit) says the
 * back-end takes GET_/SET_PROTOCOL_FEATURES. Once negotiated with SET_FEATURES, rings start
 * disabled and need SET_VRING_ENABLE ("Ring states").
 */
export const VHOST_USER_F_PROTOCOL_FEATURES = 30;

/** vhost-user: "Protocol features": the bits this front-end may ask for. */
export const VhostUserProtocolFeature = {
  /** GET_QUEUE_NUM answers. */
  MQ: 0,
  /** NEED_REPLY is honoured: every request can be acknowledged. */
  REPLY_ACK: 3,
  /** GET_CONFIG reads the virtio device configuration space (struct virtio_net_config). */
  CONFIG: 9,
} as const;

/** vhost-user: "Memory regions description": at most 8 regions (one fd each) in SET_MEM_TABLE. */
export const MEMORY_MAX_REGIONS = 8;

/** vhost-user: SET_VRING_KICK / SET_VRING_CALL payload: bits 0-7 the ring, bit 8 "no fd". */
export const VRING_INDEX_MASK = 0xff;
export const VRING_NOFD = 0x100;

/** Payload sizes (vhost-user: "Payload"). */
export const PayloadSize = {
  u64: 8,
  /** Vring state description: u32 index, u32 num. */
  state: 8,
  /** Vring address description: u32 index, u32 flags, u64 desc, used, avail, log. */
  addr: 40,
  /** Memory regions description: u32 nregions, u32 padding; then 32 bytes per region. */
  memoryHeader: 8,
  memoryRegion: 32,
  /** Virtio device config space: u32 offset, u32 size, u32 flags; then `size` bytes. */
  configHeader: 12,
} as const;

/** vhost-user: "Virtio device config space": at most 256 bytes (VHOST_USER_MAX_CONFIG_SIZE). */
export const CONFIG_MAX_SIZE = 256;

/** The largest payload this front-end sends or takes: a full memory table, or a GET_CONFIG reply. */
export const PAYLOAD_MAX_SIZE = Math.max(
  PayloadSize.memoryHeader + MEMORY_MAX_REGIONS * PayloadSize.memoryRegion,
  PayloadSize.configHeader + CONFIG_MAX_SIZE,
);
