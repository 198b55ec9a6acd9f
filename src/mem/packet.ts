/**
 * Convenience for code off the hot path (examples, tests, tools): a buffer's frame as a view,
 * copied in or out, its length. Each of these checks its argument and may allocate a view; a hot
 * loop indexes the buffer-table columns directly instead:
 *
 *   poolBytes[bufPool[b]][bufDataOffset[b] + i]    byte i of buffer b's frame
 *   bufLength[b]                                   its length
 */
import { bufDataOffset, bufLength, bufPool, isBufferNumber, poolBytes, poolCapacity, type PacketBuffer } from "./buffer-table.ts";
import { checkInteger, describeValue } from "../validate.ts";

function check(buf: number, what: string): number {
  if (typeof buf !== "number") {
    throw new TypeError(`${what}: a packet buffer is a number (from Mempool.alloc() or rxBatch()), got ${describeValue(buf)}`);
  }
  if (!isBufferNumber(buf)) {
    throw new RangeError(`${what}: ${buf} is not a packet buffer of any open mempool`);
  }
  return bufPool[buf]!;
}

/** The frame in `buf`, bytes 0 .. length, as a view into the DMA memory (not a copy). */
export function frameOf(buf: PacketBuffer): Uint8Array {
  const pool = check(buf, "frameOf");
  const start = bufDataOffset[buf]!;
  return poolBytes[pool]!.subarray(start, start + bufLength[buf]!);
}

/** The whole data area of `buf` (its capacity), as a view. */
export function dataOf(buf: PacketBuffer): Uint8Array {
  const pool = check(buf, "dataOf");
  const start = bufDataOffset[buf]!;
  return poolBytes[pool]!.subarray(start, start + poolCapacity[pool]!);
}

/** A copy of the frame in `buf`. */
export function copyFrame(buf: PacketBuffer): Uint8Array {
  check(buf, "copyFrame");
  return frameOf(buf).slice();
}

/** Copies `frame` into `buf` and sets its length. RangeError if it does not fit. */
export function writeFrame(buf: PacketBuffer, frame: Uint8Array): void {
  const pool = check(buf, "writeFrame");
  if (!(frame instanceof Uint8Array)) throw new TypeError(`writeFrame: the frame must be a Uint8Array, got ${describeValue(frame)}`);
  const capacity = poolCapacity[pool]!;
  if (frame.length > capacity) {
    throw new RangeError(`writeFrame: a ${frame.length}-byte frame does not fit buffer ${buf} (${capacity} bytes)`);
  }
  poolBytes[pool]!.set(frame, bufDataOffset[buf]!);
  bufLength[buf] = frame.length;
}

/** The length of the frame in `buf`. */
export function frameLength(buf: PacketBuffer): number {
  check(buf, "frameLength");
  return bufLength[buf]!;
}

/** Sets the length of the frame in `buf` (0 .. its capacity). */
export function setFrameLength(buf: PacketBuffer, length: number): void {
  const pool = check(buf, "setFrameLength");
  checkInteger(`setFrameLength(${buf})`, "length", length, 0, poolCapacity[pool]!);
  bufLength[buf] = length;
}
