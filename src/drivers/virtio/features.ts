/**
 * Feature negotiation (virtio 1.1 §2.2, §3.1.1 step 4): the driver accepts exactly the features
 * it implements, out of those the device offers — nothing more.
 *
 *   VIRTIO_F_VERSION_1        modern and vhost-user transports: required (little-endian 1.x
 *                             layout, 12-byte header)
 *   VIRTIO_F_ACCESS_PLATFORM  modern: accepted whenever offered: the device's DMA then goes through
 *                             the IOMMU, which is what VFIO IOVAs need (§6.1: a driver that does not
 *                             accept it gets a device that bypasses the IOMMU). Never over
 *                             vhost-user: the backend would then want IOTLB messages, not the
 *                             memory table
 *   VIRTIO_F_ORDER_PLATFORM   modern: accepted whenever offered (§6.1: a driver SHOULD, and a
 *                             device, a PCI add-in card in particular, MAY fail without it). It
 *                             asks for the platform's ordering of ring accesses against the
 *                             device, not just the CPUs' among themselves; on x86-64 the
 *                             drivers' ordering already is that (src/drivers/memory-order.ts)
 *   VIRTIO_F_ANY_LAYOUT       legacy transport: required (header and frame share a descriptor)
 *   VHOST_USER_F_PROTOCOL_FEATURES (bit 30)  vhost-user: whenever offered (vhost-user
 *                             "Communication": protocol features, rings enabled explicitly)
 *   VIRTIO_F_RING_PACKED      modern and vhost-user: packed virtqueues (§2.8), only with
 *                             DeviceOptions.ring "packed" (then required). Not the default: on the
 *                             instant-device benchmark the packed queues are slower than the split
 *                             ones (docs/packed-ring.md). The legacy interface has no packed rings
 *   VIRTIO_NET_F_MAC          MAC address from the device configuration
 *   VIRTIO_NET_F_STATUS       link status from the device configuration
 *   VIRTIO_NET_F_CTRL_VQ      the control virtqueue ...
 *   VIRTIO_NET_F_CTRL_RX      ... with its receive-mode class (promiscuous mode). PCI only: over
 *                             vhost-user the control queue is the front-end's own (qemu and DPDK's
 *                             virtio-user serve it themselves) and never reaches the backend;
 *                             DPDK 22.11 offers CTRL_VQ but has no code to serve it
 *   VIRTIO_NET_F_MQ           only when more than one queue pair is asked for (then required;
 *                             on PCI with CTRL_VQ, §5.1.3.1, over vhost-user without: the
 *                             front-end plays the control queue and enables the rings of the
 *                             pairs in use, vhost-user/transport.ts). With one pair it is left
 *                             alone, so the device keeps the layout of §5.1.2 for one pair
 *
 * Not accepted: checksum and segmentation offloads, MRG_RXBUF (one buffer per frame is enough for
 * standard frames), EVENT_IDX, INDIRECT_DESC, IN_ORDER (the packed queues take buffers back in any order), RSS.
 */
import { DmaError, NotSupportedError } from "../../errors.ts";
import type { DmaAllocator } from "../../mem/dma.ts";
import type { TransportKind } from "./transport.ts";
import { VHOST_USER_F_PROTOCOL_FEATURES } from "./vhost-user/protocol.ts";
import {
  describeFeatures,
  feature,
  hasFeature,
  VIRTIO_F_ACCESS_PLATFORM,
  VIRTIO_F_ANY_LAYOUT,
  VIRTIO_F_ORDER_PLATFORM,
  VIRTIO_F_RING_PACKED,
  VIRTIO_F_VERSION_1,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MQ,
  VIRTIO_NET_F_STATUS,
} from "./virtio_types.ts";

/** The features to write to the device, or a clear error when the device cannot be driven. */
export function chooseFeatures(
  device: string,
  offered: bigint,
  transport: TransportKind,
  dma: Pick<DmaAllocator, "name" | "addressing">,
  ring?: "packed" | "split",
  queuePairs = 1,
): bigint {
  if (ring === "packed") {
    if (transport === "legacy") {
      throw new NotSupportedError(
        `${device}: ring 'packed' needs the modern interface (the legacy interface of virtio 0.9.5 has only split ` +
          `rings): open the device with transport 'modern' or ring 'split'`,
      );
    }
    if (!hasFeature(offered, VIRTIO_F_RING_PACKED)) {
      throw new NotSupportedError(
        `${device}: ring 'packed', but the device does not offer VIRTIO_F_RING_PACKED (it offers ` +
          `${describeFeatures(offered)}): start qemu with -device virtio-net-pci,packed=on, or use ring 'split'`,
      );
    }
  }
  const packed = ring === "packed" ? feature(VIRTIO_F_RING_PACKED) : 0n;
  let wanted = feature(VIRTIO_NET_F_MAC) | feature(VIRTIO_NET_F_STATUS) | feature(VIRTIO_NET_F_CTRL_VQ) | feature(VIRTIO_NET_F_CTRL_RX);
  if (transport === "vhost-user") {
    if (!hasFeature(offered, VIRTIO_F_VERSION_1)) {
      throw new NotSupportedError(
        `${device}: the vhost-user backend does not offer VIRTIO_F_VERSION_1 (it offers ${describeFeatures(offered)}); ` +
          `this driver needs the virtio 1.x layout over vhost-user: use a newer backend`,
      );
    }
    if (dma.addressing !== "shared") {
      throw new DmaError(
        `${device}: a vhost-user backend reaches only memory shared with it through the memory table, but ` +
          `${dma.name} is ${dma.addressing} memory: use a SharedMemoryDmaAllocator (createVhostUserDevice does)`,
      );
    }
    wanted = feature(VIRTIO_NET_F_MAC) | feature(VIRTIO_NET_F_STATUS) | feature(VIRTIO_F_VERSION_1) | feature(VHOST_USER_F_PROTOCOL_FEATURES) | packed;
  } else if (transport === "modern") {
    if (!hasFeature(offered, VIRTIO_F_VERSION_1)) {
      throw new NotSupportedError(
        `${device}: the device does not offer VIRTIO_F_VERSION_1 on its modern interface (it offers ` +
          `${describeFeatures(offered)}); drive it with transport 'legacy' instead`,
      );
    }
    wanted |= feature(VIRTIO_F_VERSION_1) | feature(VIRTIO_F_ACCESS_PLATFORM) | feature(VIRTIO_F_ORDER_PLATFORM) | packed;
    if (!hasFeature(offered, VIRTIO_F_ACCESS_PLATFORM) && dma.addressing === "iommu") {
      throw new DmaError(
        `${device}: the device does not offer VIRTIO_F_ACCESS_PLATFORM, so its DMA would bypass the IOMMU and ` +
          `the IOVAs of ${dma.name} would mean nothing to it: start qemu with ` +
          `-device virtio-net-pci,disable-legacy=on,iommu_platform=on, or open the device with a ` +
          `physical-address DMA allocator`,
      );
    }
  } else {
    if (!hasFeature(offered, VIRTIO_F_ANY_LAYOUT)) {
      throw new NotSupportedError(
        `${device}: the legacy device does not offer VIRTIO_F_ANY_LAYOUT (it offers ${describeFeatures(offered)}); ` +
          `this driver puts the net header and the frame in one descriptor: use transport 'modern'`,
      );
    }
    wanted |= feature(VIRTIO_F_ANY_LAYOUT);
  }
  if (queuePairs > 1 && transport === "vhost-user") {
    // The transport shows VIRTIO_NET_F_MQ only when the backend offers it and
    // VHOST_USER_PROTOCOL_F_MQ (createVhostUserDevice says which of the two is missing).
    if (!hasFeature(offered, VIRTIO_NET_F_MQ)) {
      throw new NotSupportedError(
        `${device}: ${queuePairs} queue pairs, but the vhost-user backend offers no multiqueue (VIRTIO_NET_F_MQ with ` +
          `VHOST_USER_PROTOCOL_F_MQ; it offers ${describeFeatures(offered)}): use rxQueues and txQueues 1, or give the ` +
          `backend ${queuePairs} queue pairs (dpdk-testpmd --vdev net_vhost0,iface=PATH,queues=${queuePairs})`,
      );
    }
    wanted |= feature(VIRTIO_NET_F_MQ);
  } else if (queuePairs > 1) {
    // §5.1.3.1: VIRTIO_NET_F_MQ requires VIRTIO_NET_F_CTRL_VQ (VQ_PAIRS_SET travels on it).
    if (!hasFeature(offered, VIRTIO_NET_F_MQ) || !hasFeature(offered, VIRTIO_NET_F_CTRL_VQ)) {
      throw new NotSupportedError(
        `${device}: ${queuePairs} queue pairs, but the device does not offer VIRTIO_NET_F_MQ with VIRTIO_NET_F_CTRL_VQ ` +
          `(it offers ${describeFeatures(offered)}): start qemu with -netdev tap,...,queues=${queuePairs} and ` +
          `-device virtio-net-pci,mq=on,vectors=${2 * queuePairs + 2} (a vhost-user netdev: give its backend ` +
          `${queuePairs} queue pairs and queues=${queuePairs}), or use rxQueues and txQueues 1`,
      );
    }
    wanted |= feature(VIRTIO_NET_F_MQ);
  }
  let chosen = offered & wanted;
  // §5.1.3.1: CTRL_RX depends on CTRL_VQ.
  if (!hasFeature(chosen, VIRTIO_NET_F_CTRL_VQ)) chosen &= ~feature(VIRTIO_NET_F_CTRL_RX);
  return chosen;
}

/** Why a legacy device cannot use `dma`, or null when it can. */
export function legacyDmaProblem(device: string, dma: Pick<DmaAllocator, "name" | "addressing">): string | null {
  if (dma.addressing !== "iommu") return null;
  return (
    `${device}: a legacy virtio device has no VIRTIO_F_ACCESS_PLATFORM, so its DMA bypasses the IOMMU and ` +
    `needs physical addresses, but ${dma.name} hands out IOMMU addresses: open it with a physical-address ` +
    `DMA allocator (hugepages and /proc/self/pagemap, as root), or use a modern device ` +
    `(virtio-net-pci,disable-legacy=on,iommu_platform=on) with transport 'modern'`
  );
}
