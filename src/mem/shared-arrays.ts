/**
 * Typed arrays on SharedArrayBuffers, for a queue's private state (its ring of buffer numbers,
 * its indices, its counters). On shared memory, the same array can be handed to a worker thread
 * that drives the queue from then on (src/threads/queue-pair.ts), while the thread that opened
 * the device still reads the counters and, after the worker has stopped, gives the buffers back.
 *
 * Plain element accesses to a shared typed array compile to the same loads and stores as to an
 * unshared one (V8 only treats Atomics calls differently), so the hot loops pay nothing for it.
 *
 * Each array sits between PAD bytes of padding on both sides of its own SharedArrayBuffer. The
 * backing stores of small buffers are ordinary heap allocations that may lie next to each other,
 * so without it the indices of one worker's queue could share a cache line with the counters of
 * another worker's (false sharing: the line would move between their cores at every batch).
 * With 128 bytes on each side, the data of two such arrays are always more than a line pair
 * apart (128 bytes: Intel's L2 prefetcher fetches lines in pairs).
 */
const PAD = 128;

function padded(bytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(PAD + bytes + PAD);
}

export function sharedInt32(length: number): Int32Array {
  return new Int32Array(padded(length * 4), PAD, length);
}

export function sharedUint8(length: number): Uint8Array {
  return new Uint8Array(padded(length), PAD, length);
}

export function sharedFloat64(length: number): Float64Array {
  return new Float64Array(padded(length * 8), PAD, length);
}
