/**
 * ixy.ts: the public API in one place. Start reading at examples/fwd.ts, then src/open-device.ts.
 */
export { openDevice, driverFor, devicePlacement, type DevicePlacement, type OpenOptions } from "./open-device.ts";
export { deviceCpus, numaPlacement, parseCpuList, readNumaTopology, type NumaNode, type NumaPlacement, type NumaTopology } from "./mem/numa.ts";
export { newStats, NO_OFFLOADS, type DeviceOffloads, type DeviceOptions, type DeviceStats, type FlowAction, type FlowMatch, type NicDevice, type OffloadOptions } from "./device.ts";
export { RingOwner, type RingLayoutName, type RingState } from "./ring-state.ts";
export { clearOffloadRequest, requestChecksum, requestTso, rxChecksumOf, RX_OFFLOAD, TSO_MAX_FRAME, TX_OFFLOAD, type RxChecksum } from "./mem/offload.ts";
export { checkFrameChecksums, completeChecksums, internetChecksum, type ChecksumVerdict } from "./net/checksum.ts";
export { segmentTcp } from "./net/tcp-segment.ts";
export { parseFrameHeaders, type FrameHeaders } from "./net/headers.ts";
export * from "./errors.ts";
export { Mempool, MEMPOOL_HEADROOM, NO_BUFFER, attachPool, freeBuffer, freeBuffers, poolNameOf, type MempoolOptions, type SharedPool } from "./mem/mempool.ts";
export {
  bufDataOffset,
  bufIovaHi,
  bufIovaLo,
  bufLength,
  bufPool,
  bufTxOffload,
  bufRxOffload,
  bufL2Len,
  bufL3Len,
  bufL4Len,
  bufMss,
  poolBytes,
  poolSpace,
  isBufferNumber,
  BUFFER_TABLE_ROWS,
  type PacketBuffer,
} from "./mem/buffer-table.ts";
export { copyFrame, dataOf, frameLength, frameOf, setFrameLength, writeFrame } from "./mem/packet.ts";
export { HotPathMode } from "./drivers/specialize.ts";
export {
  DmaAddressing,
  PHYSICAL_ADDRESS_SPACE,
  addressSpaceName,
  newAddressSpace,
  type DmaAllocator,
  type DmaRegion,
  type AllocateOptions,
} from "./mem/dma.ts";
export { VfioDmaAllocator } from "./mem/vfio-dma.ts";
export { PhysicalDmaAllocator } from "./mem/physical-dma.ts";
export { PciAddress } from "./pci/pci-address.ts";
export { TypedArrayMmio, type Mmio } from "./pci/mmio.ts";
export { MmioOp, TracingMmio, type MmioAccessSink, type RegisterAccess } from "./pci/tracing-mmio.ts";
export {
  driverTrace,
  NO_TRACE,
  SUMMARY_INTERVAL_MS,
  type DriverTrace,
  type RegisterNames,
  type TraceOption,
  type TraceOptions,
  type TraceSink,
} from "./pci/register-trace.ts";
export { IXGBE_REGISTER_NAMES } from "./drivers/ixgbe/ixgbe-register-names.ts";
export { commonConfigNames, deviceConfigNames, legacyRegisterNames, statusNames } from "./drivers/virtio/virtio-register-names.ts";
export { describeRequest as describeVhostUserRequest } from "./drivers/virtio/vhost-user/message-trace.ts";
export type { MsixVectors, PciFunction } from "./pci/pci-function.ts";
export { InterruptWait } from "./irq/interrupt-wait.ts";
export * from "./pci/regs.ts";
export { createIxgbeDevice, IXGBE_DEVICE_IDS } from "./drivers/ixgbe/index.ts";
export { createVirtioDevice, VIRTIO_DEVICE_IDS } from "./drivers/virtio/index.ts";
export { createVhostUserDevice, VHOST_USER_PREFIX, type VhostUserOptions } from "./drivers/virtio/vhost-user-device.ts";
export { VhostUserBackendNotFoundError, VhostUserDisconnectedError } from "./drivers/virtio/vhost-user/errors.ts";
export { SharedMemoryDmaAllocator, type SharedRegion, type SharedMemoryOptions } from "./mem/shared-dma.ts";
export { SimDma } from "./sim/sim-dma.ts";
export { SimMmio, deliverPostedWrites } from "./sim/sim-mmio.ts";
export { SimPciFunction } from "./sim/sim-pci.ts";
export { Ixgbe82599Model } from "./sim/ixgbe/index.ts";
export { VirtioNetModel } from "./sim/virtio/index.ts";
export { SpscRing, MAX_RING_CAPACITY, type SharedRing, type SpscRingOptions } from "./threads/spsc-ring.ts";
export { allowedCores, formatCoreList, getAffinity, onlineCores, parseCoreList, pinThread } from "./threads/affinity.ts";
export { startTsWorker } from "./threads/ts-worker.ts";
export { AttachedQueuePair, attachQueuePair } from "./threads/queue-pair.ts";
export type { SharedQueuePair } from "./drivers/queue-sharing.ts";
