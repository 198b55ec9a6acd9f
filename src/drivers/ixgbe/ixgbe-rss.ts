/**
 * Receive-side scaling on the 82599 (datasheet 7.1.2.8): the device hashes each received IPv4 or
 * IPv6 frame with the Toeplitz function over its addresses (and TCP/UDP ports), looks the hash's
 * low 7 bits up in a 128-entry redirection table and puts the frame into the queue named there.
 * All frames of one flow (same addresses and ports) therefore land in one queue, in order.
 *
 * The steps follow Linux's ixgbe_setup_mrqc / ixgbe_setup_reta (and DPDK's ixgbe_rss_configure)
 * for the 82599 without DCB, SR-IOV or VMDq:
 * 1. RSSRK(0..9): the 40-byte key (7.1.2.8.1, 8.2.3.7.14), byte 4n+k in bits 8k+7:8k of RSSRK(n);
 * 2. RETA(0..31): 128 entries, four a register (7.1.2.8.2, 8.2.3.7.13); on the 82599 an entry is
 *    a 4-bit queue index, so RSS spreads over at most 16 queues (ixgbe_max_rss_indices: 16);
 * 3. RXCSUM.PCSD: the descriptor's RSS field carries the hash instead of the fragment checksum
 *    (8.2.3.7.5; "Disable indicating checksum in descriptor, enables RSS hash" in ixgbe_setup_mrqc);
 * 4. MRQC: MRQE = 0001b (RSS only) and the hash types IPv4, IPv4/TCP, IPv6, IPv6/TCP, IPv4/UDP
 *    and IPv6/UDP (8.2.3.7.12; Linux adds the UDP ones with IXGBE_FLAG2_RSS_FIELD_IPV*_UDP).
 * Not written: PSRTYPE. Its header-type bits matter only for header split, which this driver
 * does not use (one-buffer descriptors), and its RQPL field only in VMDq (pool) mode (8.2.3.7.4);
 * with MRQE = RSS only the RETA entry is the queue.
 * All of this is programmed during 4.6.7 receive initialization, before RXCTRL.RXEN.
 */
import type { Mmio } from "../../pci/mmio.ts";
import { setReg32, getReg32 } from "../../pci/regs.ts";
import {
  IXGBE_MRQC,
  IXGBE_MRQC_RSSEN,
  IXGBE_MRQC_RSS_FIELD_IPV4,
  IXGBE_MRQC_RSS_FIELD_IPV4_TCP,
  IXGBE_MRQC_RSS_FIELD_IPV4_UDP,
  IXGBE_MRQC_RSS_FIELD_IPV6,
  IXGBE_MRQC_RSS_FIELD_IPV6_TCP,
  IXGBE_MRQC_RSS_FIELD_IPV6_UDP,
  IXGBE_RETA,
  IXGBE_RSSRK,
  IXGBE_RXCSUM,
  IXGBE_RXCSUM_PCSD,
} from "./ixgbe_type.ts";

/** 7.1.2.8.1: the Toeplitz key is 40 bytes (320 bits), held in RSSRK(0..9). */
export const IXGBE_RSS_KEY_SIZE = 40;
/** 7.1.2.8.2: the redirection table has 128 entries, indexed by the hash's 7 low bits. */
export const IXGBE_RETA_ENTRIES = 128;
/** An 82599 RETA entry is 4 bits wide: RSS reaches queues 0-15 (Linux: ixgbe_max_rss_indices). */
export const IXGBE_MAX_RSS_QUEUES = 16;

/** MRQC as written: RSS only, hashing IPv4 and IPv6, each alone and with TCP or UDP ports. */
export const IXGBE_RSS_MRQC = (IXGBE_MRQC_RSSEN | IXGBE_MRQC_RSS_FIELD_IPV4 | IXGBE_MRQC_RSS_FIELD_IPV4_TCP |
  IXGBE_MRQC_RSS_FIELD_IPV4_UDP | IXGBE_MRQC_RSS_FIELD_IPV6 | IXGBE_MRQC_RSS_FIELD_IPV6_TCP | IXGBE_MRQC_RSS_FIELD_IPV6_UDP) >>> 0;

/** A fresh random key, as Linux's netdev_rss_key_fill gives every device. */
export function randomRssKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(IXGBE_RSS_KEY_SIZE));
}

/**
 * The RETA contents for `queues` receive queues: entry i names queue i mod min(queues, 16), as
 * ixgbe_setup_reta fills it (round robin over the RSS queues).
 */
export function rssRedirectionTable(queues: number): Uint8Array {
  const spread = Math.min(queues, IXGBE_MAX_RSS_QUEUES);
  const table = new Uint8Array(IXGBE_RETA_ENTRIES);
  for (let i = 0; i < IXGBE_RETA_ENTRIES; i++) table[i] = i % spread;
  return table;
}

/** Programs RSS over `queues` receive queues with `key` (40 bytes); steps 1-4 above. */
export function setupRss(mmio: Mmio, queues: number, key: Uint8Array): void {
  // 1. RSSRK: key byte 0 (the leftmost bits of the Toeplitz key) in the low byte of RSSRK(0).
  for (let n = 0; n < IXGBE_RSS_KEY_SIZE / 4; n++) {
    const b = 4 * n;
    setReg32(mmio, IXGBE_RSSRK(n), (key[b]! | (key[b + 1]! << 8) | (key[b + 2]! << 16) | (key[b + 3]! << 24)) >>> 0);
  }
  // 2. RETA: entry 4n+k in bits 8k+7:8k of RETA(n).
  const table = rssRedirectionTable(queues);
  for (let n = 0; n < IXGBE_RETA_ENTRIES / 4; n++) {
    const e = 4 * n;
    setReg32(mmio, IXGBE_RETA(n), (table[e]! | (table[e + 1]! << 8) | (table[e + 2]! << 16) | (table[e + 3]! << 24)) >>> 0);
  }
  // 3. RXCSUM.PCSD: report the RSS hash in the receive descriptor.
  setReg32(mmio, IXGBE_RXCSUM, (getReg32(mmio, IXGBE_RXCSUM) | IXGBE_RXCSUM_PCSD) >>> 0);
  // 4. MRQC last: the device starts steering only once key and table are in place.
  setReg32(mmio, IXGBE_MRQC, IXGBE_RSS_MRQC);
}
