/** Small helpers for tests that handle packet buffers (numbers in the buffer table). */
import { bufIovaHi, bufIovaLo, ownerOf } from "../../src/mem/buffer-table.ts";
import { Mempool } from "../../src/mem/mempool.ts";

/** The mempool buffer `buf` belongs to; throws for a number that is no live buffer. */
export function poolOf(buf: number): Mempool {
  const owner = ownerOf(buf);
  if (!(owner instanceof Mempool)) throw new Error(`${buf} is not a buffer of any open mempool`);
  return owner;
}

/** The device address of buffer `buf`'s data, from its two halves in the table. */
export function iovaOf(buf: number): number {
  return bufIovaHi[buf]! * 2 ** 32 + (bufIovaLo[buf]! >>> 0);
}
