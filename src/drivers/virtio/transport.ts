/**
 * What the virtio-net driver needs of a virtio transport. Two PCI implementations: the modern
 * interface of virtio 1.x (transport-modern.ts: capabilities pointing into a memory BAR) and the
 * legacy interface of virtio 0.9.5 (transport-legacy.ts: registers in the I/O-port BAR0); and
 * vhost-user (vhost-user/transport.ts: a backend process behind a unix socket).
 * Everything here runs at init time, except the notification, which the queues do themselves
 * through the NotifyTarget they get from activateQueue().
 */
import { DeviceTimeoutError, NotSupportedError } from "../../errors.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { pollUntil } from "../../pci/regs.ts";
import type { DriverTrace } from "../../pci/register-trace.ts";

export type TransportKind = "modern" | "legacy" | "vhost-user";

/** Device addresses of the three parts of a split virtqueue (§2.7). */
export interface RingAddresses {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
}

/** Where a queue's available-buffer notification goes: a 16-bit write of the queue index. */
export interface NotifyTarget {
  readonly mmio: Mmio;
  readonly offset: number;
}

export interface VirtioTransport {
  readonly kind: TransportKind;
  /**
   * Trace mode (DeviceOptions.trace): the trace the transport's registers or messages go to,
   * which the device announces its steps to as well; absent or NO_TRACE when off.
   */
  readonly trace?: DriverTrace;
  /** Writes 0 to the device status and waits until the device reads back 0 (it stopped DMA). */
  reset(): void;
  getStatus(): number;
  setStatus(status: number): void;
  /** The features the device offers: 64 bits on the modern interface, 32 on the legacy one. */
  readDeviceFeatures(): bigint;
  writeDriverFeatures(features: bigint): void;
  /** Modern devices confirm features with FEATURES_OK (§3.1.1 steps 5-6); legacy ones cannot. */
  readonly hasFeaturesOk: boolean;
  /** Modern drivers may shrink a queue; a legacy queue has the device's size. */
  readonly canResizeQueues: boolean;
  /** The queue's maximum (modern) or fixed (legacy) size; 0 if the queue does not exist. */
  queueSize(index: number): number;
  /**
   * Gives the device a queue's rings and enables it; returns where to notify it. `vector`
   * (interrupts only): the interrupt vector of enableInterrupts() the queue's used-buffer
   * notifications go to, programmed and read back before the queue is enabled.
   */
  activateQueue(index: number, size: number, rings: RingAddresses, vector?: number): NotifyTarget;
  /**
   * Interrupts (DeviceOptions.interrupts), after the reset and before any queue is activated:
   * sets up `vectors` interrupt vectors and returns one nonblocking eventfd per vector, which the
   * transport owns until disableInterrupts(). PCI: MSI-X through the PciFunction; vhost-user:
   * call eventfds. NotSupportedError naming the device when it has not that many.
   */
  enableInterrupts(vectors: number): readonly number[];
  /** Configuration-change notifications go to `vector` (modern/legacy: msix_config, read back). */
  setConfigVector(vector: number): void;
  /** Releases what enableInterrupts() set up (after the reset of close(); idempotent). */
  disableInterrupts(): void;
  /** Device-specific configuration (struct virtio_net_config) at byte `offset`. */
  readConfig8(offset: number): number;
  readConfig16(offset: number): number;
  /** Changes whenever the device changes its configuration (legacy devices have none: 0). */
  configGeneration(): number;
  /**
   * Throws a typed error when the device is gone for good (a vhost-user backend that closed the
   * connection); the driver's control calls check it. PCI transports leave it out.
   */
  checkConnected?(what: string): void;
}

/** Polls `read` until it returns 0; throws a DeviceTimeoutError naming `what` after `timeoutMs`. */
export function waitForZero(read: () => number, what: string, timeoutMs: number): void {
  let value = 0;
  pollUntil(() => (value = read()) === 0, {
    timeoutMs,
    pollMs: 1,
    onTimeout: () =>
      new DeviceTimeoutError(
        `${what}: still 0x${value.toString(16)} after ${timeoutMs} ms; the device does not respond: ` +
          `check that it is not stuck (a function-level reset or a guest reboot clears it)`,
      ),
  });
}

/** How long a device may take to acknowledge a reset. */
export const RESET_TIMEOUT_MS = 1000;

/**
 * A vector register that reads back NO_VECTOR after a write (virtio 1.2 §4.1.5.1.2.1: the device
 * could not map the vector, e.g. qemu for a vector beyond its `vectors=` count).
 */
export function vectorRefusedError(name: string, what: string, vector: number): NotSupportedError {
  return new NotSupportedError(
    `${name}: the device refused MSI-X vector ${vector} for ${what} (it reads back NO_VECTOR, virtio 1.2 §4.1.5.1.2.1): ` +
      `it cannot deliver the interrupts interrupts: true needs (one vector per receive queue plus one); give it more ` +
      `vectors (qemu: -device virtio-net-pci,vectors=N) or open it without interrupts`,
  );
}

/** enableInterrupts() on a PCI function whose MSI-X cannot give `vectors` vectors. */
export function msixMissingError(name: string, vectors: number, has: number | null): NotSupportedError {
  return new NotSupportedError(
    has === null
      ? `${name}: the device has no MSI-X capability (VFIO reports no MSI-X interrupts), so interrupts: true cannot be ` +
          `honoured: open it without interrupts (polling)`
      : `${name}: interrupts: true needs ${vectors} MSI-X vectors (one per receive queue plus one), the device has ${has}: ` +
          `open fewer queues, give the device more (qemu: -device virtio-net-pci,vectors=${vectors}), or open it without interrupts`,
  );
}
