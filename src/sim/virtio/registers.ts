/**
 * Register files for the virtio models: every byte offset of a block gets a hook, so that an
 * access at the wrong offset or with the wrong width fails loudly — qemu decodes virtio
 * registers by offset and width, and a driver that reads a 32-bit field with byte loads gets
 * garbage there (test/vm/README.md). Here it gets a DeviceProtocolError naming the field.
 */
import { DeviceProtocolError } from "../../errors.ts";
import type { SimMmio } from "../sim-mmio.ts";

export interface Field {
  readonly name: string;
  readonly offset: number;
  readonly width: 1 | 2 | 4;
  readonly read?: () => number;
  /** Absent: the field is read-only, and a write is reported through `readOnlyWrite`. */
  readonly write?: (value: number) => void;
}

/** Hooks every offset of [base, base + span) of `mmio`; fields are relative to `base`. */
export function defineRegisters(
  mmio: SimMmio,
  base: number,
  span: number,
  fields: readonly Field[],
  readOnlyWrite: (field: Field, value: number) => void,
): void {
  const byOffset = new Map<number, Field>();
  for (const f of fields) byOffset.set(f.offset, f);
  for (let offset = 0; offset < span; offset++) {
    const field = byOffset.get(offset);
    const at = base + offset;
    mmio.onRead(at, (_o, width) => {
      check(mmio, at, width, field, "read");
      return field!.read ? field!.read() : 0;
    });
    mmio.onWrite(at, (value, _o, width) => {
      check(mmio, at, width, field, "write");
      if (field!.write) field!.write(value);
      else readOnlyWrite(field!, value);
    });
  }
}

function check(mmio: SimMmio, at: number, width: number, field: Field | undefined, op: string): void {
  if (field === undefined) {
    throw new DeviceProtocolError(`${mmio.name}: ${width * 8}-bit ${op} at 0x${at.toString(16)} is not at the start of any register`);
  }
  if (width !== field.width) {
    throw new DeviceProtocolError(
      `${mmio.name}: ${width * 8}-bit ${op} of ${field.name} at 0x${at.toString(16)}, a ${field.width * 8}-bit register`,
    );
  }
}

/** Little-endian load of `width` bytes from `bytes` at `offset` (zero beyond the end). */
export function loadLE(bytes: Uint8Array, offset: number, width: number): number {
  let value = 0;
  for (let i = width - 1; i >= 0; i--) value = value * 256 + (bytes[offset + i] ?? 0);
  return value;
}
