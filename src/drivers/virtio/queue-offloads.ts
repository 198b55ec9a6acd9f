/**
 * What each queue does for offloads (from the negotiated features and DeviceOptions.offloads),
 * and the error of the transmit loops' TSO check (virtio-tx-queue.ts, packed-tx-queue.ts): cold
 * code, called from the checking pass before anything of the batch is taken.
 */
import { bufHome } from "../../mem/buffer-table.ts";
import { NotSupportedError } from "../../errors.ts";

/** What a transmit queue does for offload requests (the negotiated features, DeviceOptions.offloads). */
export interface TxQueueOffloads {
  /** VIRTIO_NET_F_CSUM negotiated and on: checksum requests go into the header. */
  readonly csum: boolean;
  /** TSO families the device segments: 1 HOST_TSO4, 2 HOST_TSO6 (0: none). */
  readonly tso: number;
}

export const NO_TX_OFFLOADS: TxQueueOffloads = { csum: false, tso: 0 };

export interface RxQueueOffloads {
  /** VIRTIO_NET_F_GUEST_CSUM negotiated and on: the header says DATA_VALID or NEEDS_CSUM. */
  readonly guestCsum: boolean;
  /** VIRTIO_NET_F_MRG_RXBUF negotiated: num_buffers may be above 1. */
  readonly mergeable: boolean;
}

export const NO_RX_OFFLOADS: RxQueueOffloads = { guestCsum: false, mergeable: false };

/** bufs[i] asks for TSO the device does not do: the marks of bufs[0 .. i] go, NotSupportedError. */
export function tsoRefused(what: string, bufs: Int32Array, i: number, tso: number): never {
  for (let j = 0; j <= i; j++) if (bufHome[bufs[j]!] === 2) bufHome[bufs[j]!] = 0;
  const families = tso === 0 ? "no TSO at all" : tso === 1 ? "TSO for IPv4 only (VIRTIO_NET_F_HOST_TSO4)" : "TSO for IPv6 only (VIRTIO_NET_F_HOST_TSO6)";
  throw new NotSupportedError(
    `${what}: bufs[${i}] = ${bufs[i]} asks for TCP segmentation (requestTso), but the device does ${families} ` +
      `(not offered, or turned off with offloads.tso / offloads.txChecksum false; see device.offloads.tso): send ` +
      `frames of at most the MTU instead, or segment them in software (segmentTcp); nothing was sent`,
  );
}
