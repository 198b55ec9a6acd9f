/**
 * Handing a typed array to another thread of the process so that both see the same bytes.
 *
 * Two kinds of memory back the arrays of a queue or a pool:
 * - SharedArrayBuffers (the buffer table, the queues' own state, the device models' DMA memory).
 *   postMessage and workerData pass a typed array over one as a view of the same memory, so such
 *   an array travels as it is.
 * - Memory mapped outside the JavaScript heap: hugepages, a VFIO BAR, vhost-user's shared files.
 *   An ArrayBuffer aliasing it (koffi.view) cannot travel: structured clone would copy the bytes.
 *   Its address can, though, and every thread of a process sees the same virtual memory, so the
 *   receiving thread makes a view of its own at that address (src/sys/libc.ts records where each
 *   view starts). The mapping must outlive the other thread's use of it: the device that owns it
 *   is closed only after the queues handed out have been given back (queue-pair.ts).
 */
import { IxyError } from "../errors.ts";
import { mappedAddress, view } from "../sys/libc.ts";

const ARRAY_TYPES = {
  Uint8Array, Uint16Array, Uint32Array, Int32Array, Float64Array,
} as const;
type ArrayTypeName = keyof typeof ARRAY_TYPES;
export type ShareableArray = InstanceType<(typeof ARRAY_TYPES)[ArrayTypeName]>;

/** A typed array as it crosses to another thread: itself (shared memory) or where it is (mapped memory). */
export type SharedView =
  | { readonly kind: "shared"; readonly array: ShareableArray }
  | { readonly kind: "mapped"; readonly type: ArrayTypeName; readonly address: bigint; readonly length: number };

function typeName(array: ArrayBufferView): ArrayTypeName | null {
  for (const name of Object.keys(ARRAY_TYPES) as ArrayTypeName[]) {
    if (array instanceof ARRAY_TYPES[name]) return name;
  }
  return null;
}

/** True for a typed array whose memory another thread can see (shareView() will not throw). */
export function isShareable(array: ArrayBufferView): boolean {
  return typeName(array) !== null && (array.buffer instanceof SharedArrayBuffer || mappedAddress(array.buffer) !== null);
}

/**
 * `array` for another thread. `owner` names what it belongs to in the error for memory that
 * cannot be shared (an ordinary ArrayBuffer: only this thread's heap can reach it).
 */
export function shareView(array: ArrayBufferView, owner: string): SharedView {
  const type = typeName(array);
  if (type === null) throw new TypeError(`${owner}: a ${array.constructor.name} cannot be shared with another thread`);
  if (array.buffer instanceof SharedArrayBuffer) return { kind: "shared", array: array as ShareableArray };
  const base = mappedAddress(array.buffer);
  if (base === null) {
    throw new IxyError(
      `${owner}: its memory is an ordinary ArrayBuffer, which another thread cannot see: memory for queues that ` +
        `worker threads drive must be DMA memory (hugepages, VFIO, vhost-user) or SharedArrayBuffers`,
    );
  }
  const length = (array as ShareableArray).length;
  return { kind: "mapped", type, address: base + BigInt(array.byteOffset), length };
}

/** This thread's view of a SharedView (the same array for shared memory, a new view of mapped memory). */
export function openView(shared: SharedView): ShareableArray {
  if (shared.kind === "shared") return shared.array;
  const Type = ARRAY_TYPES[shared.type];
  if (shared.length === 0) return new Type(0);
  return new Type(view(shared.address, shared.length * Type.BYTES_PER_ELEMENT));
}
