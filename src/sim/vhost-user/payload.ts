/** Reading request payloads and building reply payloads (machine byte order, typed-array views). */
import { FrontEndViolation } from "./errors.ts";

export class Payload {
  readonly bytes: Uint8Array;
  readonly #u32: Uint32Array;
  readonly #u64: BigUint64Array | null;

  /** `bytes` must start an ArrayBuffer of its own (MessageStream's payloads do). */
  constructor(bytes: Uint8Array) {
    if (bytes.byteOffset !== 0) throw new RangeError("Payload: the bytes must start their ArrayBuffer (for aligned views)");
    this.bytes = bytes;
    this.#u32 = new Uint32Array(bytes.buffer, 0, bytes.length >>> 2);
    this.#u64 = bytes.length >= 8 ? new BigUint64Array(bytes.buffer, 0, bytes.length >>> 3) : null;
  }

  get length(): number {
    return this.bytes.length;
  }

  u32(offset: number): number {
    return this.#u32[offset >>> 2]!;
  }

  u64(offset: number): bigint {
    return this.#u64![offset >>> 3]!;
  }

  /** A u64 that must be an address or size this backend can hold in a number (below 2^53). */
  number(offset: number, what: string): number {
    const value = this.u64(offset);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new FrontEndViolation(`${what} 0x${value.toString(16)} is beyond 2^53, no address of this machine`);
    return Number(value);
  }
}

/** A u64 payload (a reply to GET_FEATURES, a REPLY_ACK ack: 0 success, non-zero failure). */
export function u64Payload(value: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new BigUint64Array(bytes.buffer)[0] = value;
  return bytes;
}

/** A vring state description: index, num (u32 each). */
export function statePayload(index: number, num: number): Uint8Array {
  const bytes = new Uint8Array(8);
  const u32 = new Uint32Array(bytes.buffer);
  u32[0] = index;
  u32[1] = num;
  return bytes;
}
