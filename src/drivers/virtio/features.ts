/**
 * Feature negotiation (virtio 1.2 §2.2, §3.1.1 step 4): the driver accepts exactly the features
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
 *   VIRTIO_NET_F_CSUM         every transport, whenever offered unless offloads.txChecksum is false
 *                             (docs/offloads-virtio.md): the device completes a TCP/UDP checksum
 *                             from csum_start to the end of the frame (§5.1.6.2)
 *   VIRTIO_NET_F_HOST_TSO4/6  whenever offered with CSUM chosen, unless offloads.tso is false
 *                             (§5.1.3.1: they require VIRTIO_NET_F_CSUM)
 *   VIRTIO_NET_F_GUEST_CSUM   whenever offered unless offloads.rxChecksum is false: received frames
 *                             carry DATA_VALID or NEEDS_CSUM (§5.1.6.4)
 *   VIRTIO_NET_F_MRG_RXBUF    whenever offered: the header grows num_buffers (12 bytes on the
 *                             legacy interface too); the receive buffers still hold a whole frame
 *                             of maxFrameSize each, so a device splits only when it wants to, and
 *                             the receive queue copies the pieces back together
 *   VIRTIO_NET_F_MTU          whenever offered: the device's largest MTU bounds maxFrameSize
 *
 * Not accepted: GUEST_TSO4/6 and GUEST_UFO (receive coalescing: frames beyond maxFrameSize, which
 * one buffer per frame cannot hold), EVENT_IDX, INDIRECT_DESC, IN_ORDER (the packed queues take
 * buffers back in any order), RSS.
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
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_CTRL_RX,
  VIRTIO_NET_F_CTRL_VQ,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_HOST_TSO4,
  VIRTIO_NET_F_HOST_TSO6,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_MTU,
  VIRTIO_NET_F_MQ,
  VIRTIO_NET_F_STATUS,
} from "./virtio-types.ts";

/** DeviceOptions.offloads: undefined on when offered, false off, true required. */
export interface OffloadChoice {
  readonly rxChecksum?: boolean | undefined;
  readonly txChecksum?: boolean | undefined;
  readonly tso?: boolean | undefined;
}

/** The features to write to the device, or a clear error when the device cannot be driven. */
export function chooseFeatures(
  device: string,
  offered: bigint,
  transport: TransportKind,
  dma: Pick<DmaAllocator, "name" | "addressing">,
  ring?: "packed" | "split",
  queuePairs = 1,
  offloads: OffloadChoice = {},
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
  wanted |= offloadFeatures(device, offered, offloads);
  let chosen = offered & wanted;
  // §5.1.3.1: CTRL_RX depends on CTRL_VQ.
  if (!hasFeature(chosen, VIRTIO_NET_F_CTRL_VQ)) chosen &= ~feature(VIRTIO_NET_F_CTRL_RX);
  return chosen;
}

/**
 * The offload features to accept, the same on every transport (docs/offloads-virtio.md), with
 * §5.1.3.1's dependencies: HOST_TSO4 and HOST_TSO6 require CSUM. An offload asked for with true
 * that the device does not offer is a NotSupportedError.
 */
function offloadFeatures(device: string, offered: bigint, o: OffloadChoice): bigint {
  const missing = (what: string, needs: string, hint: string): never => {
    throw new NotSupportedError(
      `${device}: offloads.${what} is true, but the device does not offer ${needs} (it offers ${describeFeatures(offered)}): ` +
        `${hint}, or leave offloads.${what} out to use it only where it is offered`,
    );
  };
  let wanted = feature(VIRTIO_NET_F_MRG_RXBUF) | feature(VIRTIO_NET_F_MTU);
  const csum = o.txChecksum !== false && hasFeature(offered, VIRTIO_NET_F_CSUM);
  if (o.txChecksum === true && !csum) missing("txChecksum", "VIRTIO_NET_F_CSUM", "start qemu with -device virtio-net-pci,csum=on and a netdev with a vnet header (tap)");
  if (csum) wanted |= feature(VIRTIO_NET_F_CSUM);
  if (o.tso === true && o.txChecksum === false) {
    throw new NotSupportedError(
      `${device}: offloads.tso is true but offloads.txChecksum is false: virtio TSO (VIRTIO_NET_F_HOST_TSO4/6) needs ` +
        `VIRTIO_NET_F_CSUM (virtio 1.2 §5.1.3.1); turn txChecksum on or tso off`,
    );
  }
  const tso = csum && o.tso !== false ? offered & (feature(VIRTIO_NET_F_HOST_TSO4) | feature(VIRTIO_NET_F_HOST_TSO6)) : 0n;
  if (o.tso === true && tso === 0n) {
    missing("tso", "VIRTIO_NET_F_HOST_TSO4 or VIRTIO_NET_F_HOST_TSO6 with VIRTIO_NET_F_CSUM", "start qemu with -device virtio-net-pci,host_tso4=on and a tap netdev");
  }
  wanted |= tso;
  const guest = o.rxChecksum !== false && hasFeature(offered, VIRTIO_NET_F_GUEST_CSUM);
  if (o.rxChecksum === true && !guest) missing("rxChecksum", "VIRTIO_NET_F_GUEST_CSUM", "start qemu with -device virtio-net-pci,guest_csum=on and a tap netdev");
  if (guest) wanted |= feature(VIRTIO_NET_F_GUEST_CSUM);
  return wanted;
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
