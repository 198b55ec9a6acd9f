/**
 * The flags of the offload columns of the buffer table (bufTxOffload, bufRxOffload; see
 * buffer-table.ts). src/mem/offload.ts re-exports them with the functions that set them.
 */

/** What the next send of a buffer asks of the device (bufTxOffload[b]). */
export const TX_OFFLOAD = {
  /** Fill in the IPv4 header checksum. */
  ipChecksum: 1,
  /** Fill in the TCP checksum. */
  tcpChecksum: 2,
  /** Fill in the UDP checksum. */
  udpChecksum: 4,
  /** Cut the TCP segment into frames of bufMss payload bytes each (implies tcpChecksum, and ipChecksum for IPv4). */
  tso: 8,
  /** The L3 header is IPv6 (so there is no IP header checksum to fill in). */
  ipv6: 16,
} as const;

/** What the device said about a received frame (bufRxOffload[b]); 0: nothing known. */
export const RX_OFFLOAD = {
  ipChecksumGood: 1,
  ipChecksumBad: 2,
  l4ChecksumGood: 4,
  l4ChecksumBad: 8,
  /**
   * virtio's NEEDS_CSUM on receive: the frame's TCP/UDP checksum is not computed yet (it came from
   * a local sender that left it to offload). The receive driver also sets bufTxOffload and the
   * lengths, so sending the buffer on completes the checksum on the next device or in its driver.
   */
  l4ChecksumPartial: 16,
} as const;

/** A TX_OFFLOAD mask: any checksum request (the cheap test a transmit loop makes per request). */
export const TX_CHECKSUM_REQUESTS = TX_OFFLOAD.ipChecksum | TX_OFFLOAD.tcpChecksum | TX_OFFLOAD.udpChecksum;
