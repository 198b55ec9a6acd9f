/**
 * Typed arrays on SharedArrayBuffers, for a queue's private state (its ring of buffer numbers,
 * its indices, its counters). On shared memory, the same array can be handed to a worker thread
 * that drives the queue from then on (src/threads/queue-pair.ts), while the thread that opened
 * the device still reads the counters and, after the worker has stopped, gives the buffers back.
 *
 * Plain element accesses to a shared typed array compile to the same loads and stores as to an
 * unshared one (V8 only treats Atomics calls differently), so the hot loops pay nothing for it.
 */
export function sharedInt32(length: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(length * 4));
}

export function sharedUint8(length: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(length));
}

export function sharedFloat64(length: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(length * 8));
}
