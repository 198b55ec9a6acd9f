/**
 * NicDevice: the interface every driver implements, and openDevice(), which opens a PCI device
 * through VFIO and picks the driver by vendor and device id.
 *
 * Buffer ownership: rxBatch hands received buffers to the caller, who must eventually send them
 * (txBatch) or free them (buf.pool.free). txBatch takes ownership of the buffers it accepts and
 * returns them to their pools once the device has sent them; buffers it did not accept stay with
 * the caller. A buffer whose length is 0 or larger than its data area is accepted but not sent:
 * it goes straight back to its pool and counts in txErrors.
 */
import type { DmaAllocator } from "./mem/dma.ts";
import type { PacketBuffer } from "./mem/mempool.ts";

export interface DeviceStats {
  rxPackets: number;
  txPackets: number;
  /** Bytes of the frames as the application sees them: without the 4-byte Ethernet FCS. */
  rxBytes: number;
  txBytes: number;
  /** Frames the device had to drop for lack of receive buffers (ixgbe MPC, virtio: software). */
  rxMissed: number;
  /** Frames received with errors (CRC, length, ...) or dropped by the driver as malformed. */
  rxErrors: number;
  /** Frames the driver could not send. */
  txErrors: number;
}

export function newStats(): DeviceStats {
  return { rxPackets: 0, txPackets: 0, rxBytes: 0, txBytes: 0, rxMissed: 0, rxErrors: 0, txErrors: 0 };
}

export interface NicDevice {
  /** "ixgbe" or "virtio". */
  readonly driver: string;
  /** PCI address, "0000:01:00.0" (or "sim:..." for device models). */
  readonly address: string;
  readonly rxQueues: number;
  readonly txQueues: number;
  /** The allocator the device's memory comes from: make mempools for txBatch from it. */
  readonly dma: DmaAllocator;
  /** Receives up to `max` frames from `queue` into bufs[0 .. n); returns n. Never blocks. */
  rxBatch(queue: number, bufs: PacketBuffer[], max: number): number;
  /** Queues bufs[0 .. count) for sending on `queue`; returns how many were accepted (a prefix). */
  txBatch(queue: number, bufs: PacketBuffer[], count: number): number;
  /** Fills `into` with totals since the device was opened. */
  readStats(into: DeviceStats): void;
  setPromisc(on: boolean): void;
  /** Link speed in Mbit/s; 0 while the link is down. */
  linkSpeed(): number;
  /** The MAC address, 6 bytes. */
  macAddress(): Uint8Array;
  /** Stops the queues, resets the device and releases everything it holds. Idempotent. */
  close(): void;
}

export interface DeviceOptions {
  /** Receive queues (default 1). */
  readonly rxQueues?: number;
  /** Transmit queues (default 1). */
  readonly txQueues?: number;
  /** Descriptors per receive ring, a power of two (driver default: ixgbe 512, virtio the device's maximum). */
  readonly rxRingSize?: number;
  /** Descriptors per transmit ring, a power of two. */
  readonly txRingSize?: number;
  /** Buffers per receive-queue mempool (default: 4096, at least twice the ring size). */
  readonly mempoolSize?: number;
  /** Mempools throw on double free or foreign buffers. */
  readonly checked?: boolean;
  /** How long to wait for the link at init, in ms (default 10000; 0: do not wait). */
  readonly linkTimeoutMs?: number;
}
