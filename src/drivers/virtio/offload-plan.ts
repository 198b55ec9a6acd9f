/**
 * What the negotiated features (features.ts) mean for the queues and for NicDevice.offloads, and
 * how large the receive buffers are (docs/offloads-virtio.md):
 *
 * - maxFrameSize (default 1514, the frame without FCS): every receive buffer holds a whole frame
 *   of that size, so the device never has to split one (without VIRTIO_NET_F_MRG_RXBUF it may
 *   not, §5.1.6.3.1; with it, it may, and the receive queue copies the pieces back together).
 *   The receive pool's entries are the smallest power of two with room for the 64-byte headroom
 *   and maxFrameSize (2048 up to 1984 bytes, 16384 for a 9014-byte jumbo frame).
 * - VIRTIO_NET_F_MTU (§5.1.4.1): the device's mtu, plus the 14-byte Ethernet header, bounds
 *   maxFrameSize (a larger one is a NotSupportedError naming the mtu); without maxFrameSize the
 *   device's mtu lowers the default 1514 when it is below 1500.
 * - CSUM, HOST_TSO4/6, GUEST_CSUM: what the transmit and receive loops do with requests and flags.
 */
import { DeviceProtocolError, NotSupportedError } from "../../errors.ts";
import type { DeviceOffloads } from "../../device.ts";
import type { RxQueueOffloads, TxQueueOffloads } from "./queue-offloads.ts";
import {
  hasFeature,
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_HOST_TSO4,
  VIRTIO_NET_F_HOST_TSO6,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_MTU,
} from "./virtio-types.ts";

/** The frame without FCS that fits a standard 1500-byte MTU. */
export const DEFAULT_MAX_FRAME_SIZE = 1514;
/** struct ethhdr: what the MTU does not count (§5.1.4.1 "plus low level ethernet header length"). */
const ETH_HLEN = 14;
/** §5.1.4: mtu is at least 68 (RFC 791's minimum IPv4 MTU). */
const MIN_MTU = 68;
/** Mempool: the headroom in front of each buffer's data, and the largest entry. */
const HEADROOM = 64;
const MAX_ENTRY = 65536;
const MIN_ENTRY = 2048;

export interface OffloadPlan {
  readonly offloads: DeviceOffloads;
  readonly rx: RxQueueOffloads;
  readonly tx: TxQueueOffloads;
  /** Mempool entrySize of the receive pools. */
  readonly rxEntrySize: number;
}

export function planOffloads(device: string, features: bigint, maxFrameSize: number | undefined, readMtu: () => number): OffloadPlan {
  if (maxFrameSize !== undefined && (!Number.isInteger(maxFrameSize) || maxFrameSize < 60 || maxFrameSize > MAX_ENTRY - HEADROOM)) {
    throw new RangeError(
      `${device}: maxFrameSize ${maxFrameSize} must be an integer from 60 to ${MAX_ENTRY - HEADROOM} (the largest frame, ` +
        `without FCS, that one receive buffer holds)`,
    );
  }
  let frame = maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
  if (hasFeature(features, VIRTIO_NET_F_MTU)) {
    const mtu = readMtu();
    if (mtu < MIN_MTU) throw new DeviceProtocolError(`${device}: the device's mtu is ${mtu} (VIRTIO_NET_F_MTU; §5.1.4: at least ${MIN_MTU})`);
    if (frame > mtu + ETH_HLEN) {
      if (maxFrameSize !== undefined) {
        throw new NotSupportedError(
          `${device}: maxFrameSize ${maxFrameSize}, but the device's mtu is ${mtu} (VIRTIO_NET_F_MTU), so its frames stop at ` +
            `${mtu + ETH_HLEN} bytes: use maxFrameSize ${mtu + ETH_HLEN} or less, or give the device a larger MTU ` +
            `(qemu: -device virtio-net-pci,host_mtu=${maxFrameSize - ETH_HLEN})`,
        );
      }
      frame = mtu + ETH_HLEN;
    }
  }
  let entry = MIN_ENTRY;
  while (entry - HEADROOM < frame) entry *= 2;
  const csum = hasFeature(features, VIRTIO_NET_F_CSUM);
  const tso = (hasFeature(features, VIRTIO_NET_F_HOST_TSO4) ? 1 : 0) | (hasFeature(features, VIRTIO_NET_F_HOST_TSO6) ? 2 : 0);
  const guestCsum = hasFeature(features, VIRTIO_NET_F_GUEST_CSUM);
  const mergeable = hasFeature(features, VIRTIO_NET_F_MRG_RXBUF);
  return {
    offloads: {
      rxChecksum: guestCsum,
      txChecksum: csum,
      tso: tso !== 0,
      maxFrameSize: frame,
      mergeableRx: mergeable,
      flowDirector: false,
      interrupts: false,
    },
    rx: { guestCsum, mergeable },
    tx: { csum, tso },
    rxEntrySize: entry,
  };
}
