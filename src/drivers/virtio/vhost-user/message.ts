/**
 * vhost-user messages in one private buffer: the encoders write a request and return its bytes,
 * the decoders read the reply the channel received into the same buffer.
 *
 * vhost-user: "Message Specification": | u32 request | u32 flags | u32 size | payload |. The
 * message starts 4 bytes into the buffer, so that its payload, at byte 12 of the message, is
 * 8-aligned for the BigUint64Array view. Every field is one typed-array element access (the
 * house style; nobody else writes this buffer).
 */
import { PayloadSize, PAYLOAD_MAX_SIZE, HEADER_SIZE, VhostUserFlag, type VhostUserRequest } from "./protocol.ts";

/** vhost-user: "Memory regions description": one region, addresses as Numbers (< 2^53). */
export interface MemoryRegionEntry {
  readonly guestAddress: number;
  readonly size: number;
  readonly userAddress: number;
  readonly mmapOffset: number;
}

/** vhost-user: "A vring address description": user addresses of the ring parts. */
export interface VringAddresses {
  readonly desc: number;
  readonly used: number;
  readonly avail: number;
  /** Guest address for logging writes to the used ring (unused without VHOST_VRING_F_LOG: 0). */
  readonly log: number;
}

/** Where the message starts in the buffer: the payload (message byte 12) lands on byte 16. */
const AT = 4;
/** Payload's first u32 and u64 elements. */
const P32 = (AT + HEADER_SIZE) / 4;
const P64 = (AT + HEADER_SIZE) / 8;

export class MessageBuffer {
  /** The whole message area: header and the largest payload. */
  readonly bytes: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #u64: BigUint64Array;

  constructor() {
    const buffer = new ArrayBuffer(Math.ceil((AT + HEADER_SIZE + PAYLOAD_MAX_SIZE) / 8) * 8);
    this.bytes = new Uint8Array(buffer, AT);
    this.#u32 = new Uint32Array(buffer);
    this.#u64 = new BigUint64Array(buffer);
  }

  // --- encoders: each returns the bytes of the whole message ----------------------------------

  /** A request without payload (GET_FEATURES, SET_OWNER, ...). */
  empty(request: VhostUserRequest, flags: number = VhostUserFlag.VERSION): Uint8Array {
    return this.#header(request, flags, 0);
  }

  /** "A single 64-bit integer" (SET_FEATURES, SET_PROTOCOL_FEATURES, SET_VRING_KICK/CALL). */
  u64(request: VhostUserRequest, value: bigint, flags: number = VhostUserFlag.VERSION): Uint8Array {
    this.#u64[P64] = value;
    return this.#header(request, flags, PayloadSize.u64);
  }

  /** "A vring state description" (SET_VRING_NUM/BASE/ENABLE, GET_VRING_BASE). */
  state(request: VhostUserRequest, index: number, num: number, flags: number = VhostUserFlag.VERSION): Uint8Array {
    this.#u32[P32] = index;
    this.#u32[P32 + 1] = num;
    return this.#header(request, flags, PayloadSize.state);
  }

  /** "A vring address description" (SET_VRING_ADDR): index, flags, then desc, used, avail, log. */
  addr(request: VhostUserRequest, index: number, vringFlags: number, a: VringAddresses, flags: number = VhostUserFlag.VERSION): Uint8Array {
    this.#u32[P32] = index;
    this.#u32[P32 + 1] = vringFlags;
    this.#u64[P64 + 1] = BigInt(a.desc);
    this.#u64[P64 + 2] = BigInt(a.used);
    this.#u64[P64 + 3] = BigInt(a.avail);
    this.#u64[P64 + 4] = BigInt(a.log);
    return this.#header(request, flags, PayloadSize.addr);
  }

  /**
   * "Memory regions description" (SET_MEM_TABLE): nregions, padding, then per region guest
   * address, size, user address, mmap offset. Only the regions sent are in `size` (as qemu does).
   */
  memTable(request: VhostUserRequest, regions: readonly MemoryRegionEntry[], flags: number = VhostUserFlag.VERSION): Uint8Array {
    const size = PayloadSize.memoryHeader + regions.length * PayloadSize.memoryRegion;
    if (size > PAYLOAD_MAX_SIZE) throw new RangeError(`a memory table of ${regions.length} regions does not fit a message`);
    this.#u32[P32] = regions.length;
    this.#u32[P32 + 1] = 0;
    regions.forEach((r, i) => {
      const at = P64 + 1 + 4 * i;
      this.#u64[at] = BigInt(r.guestAddress);
      this.#u64[at + 1] = BigInt(r.size);
      this.#u64[at + 2] = BigInt(r.userAddress);
      this.#u64[at + 3] = BigInt(r.mmapOffset);
    });
    return this.#header(request, flags, size);
  }

  /** "Virtio device config space" (GET_CONFIG): offset, size, flags, and `size` zero bytes. */
  config(request: VhostUserRequest, offset: number, size: number, configFlags: number, flags: number = VhostUserFlag.VERSION): Uint8Array {
    this.#u32[P32] = offset;
    this.#u32[P32 + 1] = size;
    this.#u32[P32 + 2] = configFlags;
    const data = HEADER_SIZE + PayloadSize.configHeader;
    this.bytes.fill(0, data, data + size);
    return this.#header(request, flags, PayloadSize.configHeader + size);
  }

  // --- decoders of what was received into `bytes` ---------------------------------------------

  get request(): number {
    return this.#u32[AT / 4]!;
  }
  get flags(): number {
    return this.#u32[AT / 4 + 1]!;
  }
  get size(): number {
    return this.#u32[AT / 4 + 2]!;
  }
  /** The payload as a u64. */
  get payloadU64(): bigint {
    return this.#u64[P64]!;
  }
  /** The payload as a vring state: [index, num]. */
  get stateIndex(): number {
    return this.#u32[P32]!;
  }
  get stateNum(): number {
    return this.#u32[P32 + 1]!;
  }
  /** The payload as a config space description: offset, size, and its data. */
  get configOffset(): number {
    return this.#u32[P32]!;
  }
  get configSize(): number {
    return this.#u32[P32 + 1]!;
  }
  configData(length: number): Uint8Array {
    const data = HEADER_SIZE + PayloadSize.configHeader;
    return this.bytes.subarray(data, data + length);
  }

  #header(request: VhostUserRequest, flags: number, size: number): Uint8Array {
    const h = AT / 4;
    this.#u32[h] = request;
    this.#u32[h + 1] = flags;
    this.#u32[h + 2] = size;
    return this.bytes.subarray(0, HEADER_SIZE + size);
  }
}
