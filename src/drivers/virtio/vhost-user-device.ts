/**
 * createVhostUserDevice(): the virtio-net driver on a vhost-user backend — DPDK's vhost library
 * (dpdk-testpmd --vdev net_vhost0,iface=PATH), or the model backend of src/sim/vhost-user —
 * listening on a unix socket. The very same driver as on PCI (virtio-device.ts); only the
 * transport differs (vhost-user/transport.ts).
 *
 * All vhost-user devices of a process share one SharedMemoryDmaAllocator (as PCI devices share
 * one VFIO container), so that a buffer received on one can be sent on another; it is released
 * when the last of them closes (vhost-user/shared-memory.ts).
 */
import { driverTrace } from "../../pci/register-trace.ts";
import type { DeviceOptions, NicDevice } from "../../device.ts";
import { IxyError, NotSupportedError } from "../../errors.ts";
import type { SharedMemoryDmaAllocator } from "../../mem/shared-dma.ts";
import { VirtioNetDevice, checkDeviceOptions } from "./virtio-device.ts";
import { acquireSharedMemory, DEFAULT_MEMORY_BYTES, releaseSharedMemory } from "./vhost-user/shared-memory.ts";
import { MAX_QUEUE_PAIRS, VhostUserTransport } from "./vhost-user/transport.ts";
import { VhostUserProtocolFeature } from "./vhost-user/protocol.ts";
import { describeFeatures, hasFeature, VIRTIO_NET_F_MQ } from "./virtio-types.ts";

/**
 * DeviceOptions (rxRingSize and txRingSize default to 256 here: vhost-user cannot ask the backend
 * for its maximum; DPDK takes up to 32768, the model backend 256 unless started otherwise;
 * rxQueues = txQueues = N > 1 queue pairs need a backend with VHOST_USER_PROTOCOL_F_MQ, at least N
 * pairs by GET_QUEUE_NUM, and VIRTIO_NET_F_MQ) and:
 */
export interface VhostUserOptions extends DeviceOptions {
  /**
   * The MAC address the device reports (6 bytes). DPDK's vhost has none to give; without this
   * option and without one from the backend, a random locally administered address.
   */
  readonly mac?: Uint8Array;
  /**
   * Bytes of hugepage memory per shared memory region (rounded up to 2 MiB; default 32 MiB).
   * The first vhost-user device opened in the process sets it for all; up to 8 regions are made
   * as the mempools need them.
   */
  readonly memoryBytes?: number;
  /** How long to wait for the backend to listen on the socket, and for each of its replies (ms, default 5000). */
  readonly timeoutMs?: number;
}

/** The prefix of vhost-user addresses for openDevice(): "vhost-user:/run/vhost.sock". */
export const VHOST_USER_PREFIX = "vhost-user:";

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_RING_SIZE = 256;

/** Socket paths open in this process: two drivers on one backend connection would fight. */
const openPaths = new Set<string>();

/**
 * Connects to the vhost-user backend at `path` and initializes the virtio-net device behind it.
 * Throws VhostUserBackendNotFoundError when nothing listens there within `timeoutMs`,
 * DeviceProtocolError (VhostUserDisconnectedError when the backend hung up) for a backend that
 * breaks the protocol, DmaError when hugepages are short; nothing stays open after an error.
 */
export function createVhostUserDevice(path: string, options: VhostUserOptions = {}): NicDevice {
  if (typeof path !== "string" || path.length === 0) throw new TypeError(`vhost-user: the socket path must be a non-empty string, got ${String(path)}`);
  const name = VHOST_USER_PREFIX + path;
  // rxQueues === txQueues: virtio-net queues come in pairs (checkDeviceOptions says so otherwise).
  options = checkDeviceOptions(name, options);
  const pairs = options.rxQueues ?? 1;
  if (pairs > MAX_QUEUE_PAIRS) {
    // Before connecting: a missing backend would otherwise be the error shown.
    throw new RangeError(
      `${name}: rxQueues and txQueues ${pairs}: vhost-user names a ring in 8 bits (SET_VRING_KICK), so at most ` +
        `${MAX_QUEUE_PAIRS} queue pairs: use fewer`,
    );
  }
  const { mac, memoryBytes = DEFAULT_MEMORY_BYTES, timeoutMs = DEFAULT_TIMEOUT_MS } = options;
  if (mac !== undefined && (!(mac instanceof Uint8Array) || mac.length !== 6)) {
    throw new TypeError(`${name}: mac must be a Uint8Array of 6 bytes, got ${String(mac)}`);
  }
  if (mac !== undefined && (mac[0]! & 1) !== 0) throw new RangeError(`${name}: mac ${formatMac(mac)} is a multicast address; give a unicast one`);
  if (!Number.isSafeInteger(memoryBytes) || memoryBytes <= 0) throw new RangeError(`${name}: memoryBytes must be a positive integer, got ${memoryBytes}`);
  if (!(timeoutMs >= 0 && timeoutMs !== Infinity)) throw new RangeError(`${name}: timeoutMs must be a finite number of milliseconds >= 0, got ${timeoutMs}`);
  if (openPaths.has(path)) throw new IxyError(`${name} is already open in this process: close() it before opening it again`);

  const dma = acquireSharedMemory(memoryBytes);
  let transport: VhostUserTransport | null = null;
  try {
    transport = new VhostUserTransport({ path, name, dma, timeoutMs, mac: mac?.slice(), trace: driverTrace(options.trace, name) });
    if (pairs > 1) checkQueuePairs(name, path, transport, pairs);
    // vhost-user cannot ask the backend for its ring sizes: 256 unless told, as qemu's and
    // DPDK's virtio-user front-ends default to (and the model backend's maximum).
    const sized = { ...options, rxRingSize: options.rxRingSize ?? DEFAULT_RING_SIZE, txRingSize: options.txRingSize ?? DEFAULT_RING_SIZE };
    const device = new VhostUserNetDevice(transport, name, dma, sized, path);
    openPaths.add(path);
    return device;
  } catch (e) {
    transport?.close();
    releaseSharedMemory();
    // Every error names the device, also those of the shared memory.
    if (e instanceof IxyError && !e.message.includes(name)) e.message = `${name}: ${e.message}`;
    throw e;
  }
}

/**
 * vhost-user: "Multiple queue support": more than one queue pair needs VHOST_USER_PROTOCOL_F_MQ,
 * and "Front-end should stop when the number of requested queues is bigger than" GET_QUEUE_NUM;
 * the backend must also offer VIRTIO_NET_F_MQ (DPDK's vhost drops every ring beyond the first
 * pair at SET_FEATURES without it: vhost_user_set_features).
 */
function checkQueuePairs(name: string, path: string, transport: VhostUserTransport, pairs: number): void {
  const advice =
    `use rxQueues and txQueues ${transport.maxQueuePairs === 1 ? "1" : `of at most ${transport.maxQueuePairs}`}, or start the backend ` +
    `with ${pairs} queue pairs (dpdk-testpmd --vdev 'net_vhost0,iface=${path},queues=${pairs}'; the model backend: --queues ${pairs})`;
  if (!hasFeature(transport.protocolFeatures, VhostUserProtocolFeature.MQ)) {
    throw new NotSupportedError(
      `${name}: rxQueues and txQueues ${pairs}, but the backend does not offer VHOST_USER_PROTOCOL_F_MQ ` +
        `(protocol features 0x${transport.protocolFeatures.toString(16)}), so it has one queue pair: ${advice}`,
    );
  }
  if (pairs > transport.maxQueuePairs) {
    throw new NotSupportedError(`${name}: rxQueues and txQueues ${pairs}, but the backend has at most ${transport.maxQueuePairs} queue pair(s) (VHOST_USER_GET_QUEUE_NUM): ${advice}`);
  }
  if (!hasFeature(transport.backendFeatures, VIRTIO_NET_F_MQ)) {
    throw new NotSupportedError(
      `${name}: rxQueues and txQueues ${pairs}: the backend has ${transport.maxQueuePairs} queue pairs (GET_QUEUE_NUM) but does ` +
        `not offer VIRTIO_NET_F_MQ (features ${describeFeatures(transport.backendFeatures)}): ${advice}`,
    );
  }
}

/** VirtioNetDevice whose close() also ends the session and gives back the shared memory. */
class VhostUserNetDevice extends VirtioNetDevice {
  readonly #vhost: VhostUserTransport;
  readonly #path: string;
  #released = false;

  constructor(transport: VhostUserTransport, name: string, dma: SharedMemoryDmaAllocator, options: DeviceOptions, path: string) {
    super(transport, name, dma, options);
    this.#vhost = transport;
    this.#path = path;
  }

  /** Stops the rings (GET_VRING_BASE), returns the buffers, closes the socket. Never hangs on a dead backend. */
  override close(): void {
    if (this.#released) return;
    this.#released = true;
    try {
      super.close();
    } finally {
      this.#vhost.close();
      openPaths.delete(this.#path);
      releaseSharedMemory();
    }
  }
}

function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join(":");
}
