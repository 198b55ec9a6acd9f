/**
 * The errors ixy.ts throws. A subclass exists only for a condition a caller may want to catch;
 * a malformed argument is a TypeError and an out-of-range one a RangeError (as in Deno std).
 * Messages name the device and the operation, and say what the user can do.
 */

/** Base class of every error specific to ixy.ts. */
export class IxyError extends Error {
  override name = "IxyError";
}

/** A libc call failed. Carries the call, the errno number, its symbolic name and text. */
export class SyscallError extends IxyError {
  override name = "SyscallError";
  readonly call: string;
  readonly errno: number;
  readonly code: string;
  constructor(call: string, errno: number, code: string, text: string, context?: string) {
    super(`${context ? context + ": " : ""}${call}() failed: ${code} (${text})`);
    this.call = call;
    this.errno = errno;
    this.code = code;
  }
}

/** VFIO is missing, misconfigured, or refused an operation. */
export class VfioError extends IxyError {
  override name = "VfioError";
}

/** Hugepages, pagemap or DMA mapping could not be had. */
export class DmaError extends IxyError {
  override name = "DmaError";
}

/**
 * A buffer whose device address belongs to another address space than the device's (another
 * VFIO container, physical addresses for an IOMMU device, another SimDma): txBatch refuses it.
 */
export class AddressSpaceError extends DmaError {
  override name = "AddressSpaceError";
}

/** An operation on a DMA allocator after close() (a DmaError, as its memory is gone). */
export class AllocatorClosedError extends DmaError {
  override name = "AllocatorClosedError";
}

/** An operation on a mempool after close(), or after its DMA allocator was closed. */
export class PoolClosedError extends IxyError {
  override name = "PoolClosedError";
}

/** A device (or device model) touched memory outside every DMA allocation. */
export class DmaFaultError extends IxyError {
  override name = "DmaFaultError";
  readonly iova: number;
  readonly length: number;
  constructor(device: string, iova: number, length: number, what: string) {
    super(`${device}: DMA fault: ${what} of ${length} bytes at IOVA 0x${iova.toString(16)} is outside every DMA allocation`);
    this.iova = iova;
    this.length = length;
  }
}

/** A register did not reach the expected state in time. */
export class DeviceTimeoutError extends IxyError {
  override name = "DeviceTimeoutError";
}

/** The device, or a feature it was asked for, is not supported by ixy.ts. */
export class NotSupportedError extends IxyError {
  override name = "NotSupportedError";
}

/** Root privileges are required for the operation. */
export class PermissionError extends IxyError {
  override name = "PermissionError";
}

/** A buffer was freed twice or handed to a pool it does not belong to (checked mempools). */
export class BufferOwnershipError extends IxyError {
  override name = "BufferOwnershipError";
}

/** The device (or model) broke the protocol: refused features, wrote an impossible value. */
export class DeviceProtocolError extends IxyError {
  override name = "DeviceProtocolError";
}

/** An operation on a device after close(). */
export class DeviceClosedError extends IxyError {
  override name = "DeviceClosedError";
}

/** No device at the given PCI address. */
export class DeviceNotFoundError extends IxyError {
  override name = "DeviceNotFoundError";
}

/**
 * A queue pair is driven by a worker thread (NicDevice.shareQueuePair), and this thread asked
 * for something that needs it back: rxBatch/txBatch on it, sharing it twice, or close() before
 * the worker gave it back (reclaimQueuePair).
 */
export class QueueSharedError extends IxyError {
  override name = "QueueSharedError";
}

/** The device's flow rule table (ixgbe Flow Director) has no room for another rule: remove one first. */
export class FlowTableFullError extends IxyError {
  override name = "FlowTableFullError";
}
