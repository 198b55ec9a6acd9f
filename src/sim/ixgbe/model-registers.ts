/**
 * The 82599 model's own register map: offsets, indexed registers, fields and reset values.
 *
 * Deliberately not imported from the driver (src/drivers/ixgbe/ixgbe_type.ts): a model that
 * shared the driver's constants would agree with any mistake in them, and every test would pass
 * against a device that does not exist. Written from the 82599 datasheet (section numbers are
 * its own: 8.2.3.x for registers, 7.1.6 / 7.2.3 for descriptors), using the datasheet's register
 * and field names (CTRL.LRST, EEC.AUTO_RD, LINKS.LINK_UP, ...) where Linux's ixgbe_type.h uses
 * others; test/ixgbe/register-map.test.ts checks, name by name, that the driver agrees.
 *
 * Only what the model implements, or stores for a driver to program, is here. Fields are bit
 * masks; a multi-bit field has _MASK (in place) and, where the model shifts it, _SHIFT.
 */

const BANK_STRIDE = 0x40; // per-queue register blocks are 64 bytes apart

/** Receive queues 0-63 and 64-127 live in two banks (8.2.3.8). */
function rxQueueRegister(n: number, low: number, high: number): number {
  return n < 64 ? low + n * BANK_STRIDE : high + (n - 64) * BANK_STRIDE;
}

/* ---- 8.2.3.1 General control ---- */

/** 8.2.3.1.1 Device Control Register. */
export const CTRL = 0x00000;
export const CTRL_GIO_DIS = 1 << 2; // PCIe master disable (5.2.5.3.2)
export const CTRL_LRST = 1 << 3; // link reset; resets the MAC as well, self-clearing
export const CTRL_RST = 1 << 26; // device (software) reset, self-clearing
/** Either bit starts a reset (4.6.3.2); the model treats both as a global reset. */
export const CTRL_RESET_BITS = CTRL_LRST | CTRL_RST;

/** 8.2.3.1.2 Device Status Register (read-only). */
export const STATUS = 0x00008;
/** PCIe master enable status: 0 once CTRL.GIO_DIS took effect and no request is pending. */
export const STATUS_GIO = 1 << 19;

/** 8.2.3.1.3 Extended Device Control Register. */
export const CTRL_EXT = 0x00018;
export const CTRL_EXT_NS_DIS = 1 << 16; // no snoop disable
export const CTRL_EXT_DRV_LOAD = 1 << 28; // driver loaded: tells manageability firmware

/** 8.2.3.1.4 Extended SDP Control: software-definable pins. On SFP+ boards SDP3 drives TX_DISABLE. */
export const ESDP = 0x00020;
export const ESDP_SDP3 = 1 << 3; // pin value: 1 = laser off where SDP3 is wired to TX_DISABLE
export const ESDP_SDP3_DIR = 1 << 11; // 1 = output

/* ---- 8.2.3.2 EEPROM / flash ---- */

/** 8.2.3.2.1 EEPROM/Flash Control Register. */
export const EEC = 0x10010;
export const EEC_EE_PRES = 1 << 8; // EEPROM present (read-only)
export const EEC_AUTO_RD = 1 << 9; // EEPROM auto-read done (read-only)

/* ---- 8.2.3.5 Interrupts ---- */

export const EICR = 0x00800; // 8.2.3.5.1 Extended Interrupt Cause Register (clear on read, write 1 to clear)
export const EICS = 0x00808; // 8.2.3.5.2 Extended Interrupt Cause Set (write-only)
export const EIAC = 0x00810; // 8.2.3.5.5 Extended Interrupt Auto Clear
export const EIMS = 0x00880; // 8.2.3.5.3 Extended Interrupt Mask Set/Read
export const EIMC = 0x00888; // 8.2.3.5.4 Extended Interrupt Mask Clear (write-only)
export const EIAM = 0x00890; // 8.2.3.5.6 Extended Interrupt Auto Mask Enable
export const GPIE = 0x00898; // 8.2.3.5.18 General Purpose Interrupt Enable
/**
 * 8.2.3.5 EICS[n]/EIMS[n]/EIMC[n]/EIAM[n] (n = 1, 2; here i = n - 1): the registers of 64 MSI-X vectors: vector 32i+k in bit k. Bits
 * 15:0 of EICS_EX(0)/EIMS_EX(0)/EIMC_EX(0)/EIAM_EX(0) are the same bits as bits 15:0 of
 * EICS/EIMS/EIMC/EIAM.
 */
export function EICS_EX(i: number): number {
  return 0x00a90 + i * 4;
}
export function EIMS_EX(i: number): number {
  return 0x00aa0 + i * 4;
}
export function EIMC_EX(i: number): number {
  return 0x00ab0 + i * 4;
}
export function EIAM_EX(i: number): number {
  return 0x00ad0 + i * 4;
}
/** EICR bits 15:0, RTxQ: in MSI-X mode, the cause of vectors 0-15 (whichever queues IVAR maps there). */
export const EICR_RTXQ_MASK = 0xffff;
export const EICR_LSC = 1 << 20; // link status change
export const EICR_TCP_TIMER = 1 << 30;
export const EICR_OTHER = 1 << 31; // "other cause": any of bits 29:16
/** GPIE fields (8.2.3.5.18). */
export const GPIE_MULTIPLE_MSIX = 1 << 4; // MSI-X mode: one vector per cause group, through IVAR
export const GPIE_OCD = 1 << 5; // other clear disable
export const GPIE_EIAME = 1 << 30; // auto-mask (EIAM) applies in MSI-X mode too
export const GPIE_PBA_SUPPORT = 1 << 31; // must be set in MSI-X mode
/**
 * 8.2.3.5.12 EITR, n = 0..128 (0-23 at 0x820, the rest at 0x12300): ITR_Interval in bits 11:3,
 * in 2 us units (0: no moderation); CNT_WDIS (bit 31): the write leaves the counter alone.
 */
export function EITR(n: number): number {
  return n <= 23 ? 0x00820 + n * 4 : 0x12300 + (n - 24) * 4;
}
export const EITR_ITR_INTERVAL_MASK = 0x1ff << 3;
export const EITR_ITR_INTERVAL_SHIFT = 3;
export const EITR_INTERVAL_UNIT_US = 2;
export const EITR_CNT_WDIS = 1 << 31;
/**
 * 8.2.3.5 IVAR (Interrupt Vector Allocation), n = 0..63: the vectors of RX queue 2n (bits 7:0), TX queue 2n (15:8), RX queue
 * 2n+1 (23:16), TX queue 2n+1 (31:24); each entry is INT_ALLOC (bits 5:0, the vector) and
 * INT_ALLOC_VAL (bit 7).
 */
export function IVAR(n: number): number {
  return 0x00900 + n * 4;
}
/** 8.2.3.5 IVAR_MISC: TCP timer vector in bits 7:0, other causes in bits 15:8 (same entry format). */
export const IVAR_MISC = 0x00a00;
export const IVAR_INT_ALLOC_MASK = 0x3f;
export const IVAR_INT_ALLOC_VAL = 0x80;

/* ---- 8.2.3.7 Receive filtering ---- */

/** 8.2.3.7.1 Filter Control Register (stored only: the model accepts every frame). */
export const FCTRL = 0x05080;
export const FCTRL_MPE = 1 << 8; // multicast promiscuous
export const FCTRL_UPE = 1 << 9; // unicast promiscuous
export const FCTRL_BAM = 1 << 10; // broadcast accept

/** 8.2.3.7.5 Receive Checksum Control: PCSD = the descriptor's RSS field carries the RSS hash. */
export const RXCSUM = 0x05000;
export const RXCSUM_IPPCSE = 1 << 12; // the fragment checksum covers the IP payload (PCSD clear only)
export const RXCSUM_PCSD = 1 << 13;
/**
 * 8.2.3.7.12 Multiple Receive Queues Command: MRQE (bits 3:0) picks the queue mode, 0001b = RSS
 * only; bits 16-23 enable the hash types (7.1.2.8.1). The model implements MRQE 0000b and 0001b.
 */
export const MRQC = 0x0ec80;
export const MRQC_MRQE_MASK = 0xf;
export const MRQC_MRQE_RSS = 0x1;
export const MRQC_RSS_FIELD_IPV4_TCP = 1 << 16;
export const MRQC_RSS_FIELD_IPV4 = 1 << 17;
export const MRQC_RSS_FIELD_IPV6 = 1 << 20;
export const MRQC_RSS_FIELD_IPV6_TCP = 1 << 21;
export const MRQC_RSS_FIELD_IPV4_UDP = 1 << 22;
export const MRQC_RSS_FIELD_IPV6_UDP = 1 << 23;
/** 8.2.3.7.14 RSS Random Key, n = 0..9: key byte 4n+k in bits 8k+7:8k. */
export function RSSRK(n: number): number {
  return 0x0eb80 + n * 4;
}
/** 8.2.3.7.13 Redirection Table, n = 0..31: entry 4n+k in bits 8k+7:8k, of which bits 3:0 are the queue. */
export function RETA(n: number): number {
  return 0x0eb00 + n * 4;
}

/** 8.2.3.7.8 Receive Address Low, n = 0..127. */
export function RAL(n: number): number {
  return 0x0a200 + n * 8;
}
/** 8.2.3.7.9 Receive Address High, n = 0..127. */
export function RAH(n: number): number {
  return 0x0a204 + n * 8;
}
/** The 82598-compatible addresses of RAL/RAH 0-15, which the 82599 decodes too. */
export function RAL_ALIAS(n: number): number {
  return 0x05400 + n * 8;
}
export function RAH_ALIAS(n: number): number {
  return 0x05404 + n * 8;
}
export const RAH_AV = 0x80000000; // address valid (bit 31)

/* ---- 8.2.3.8 Receive DMA ---- */

export function RDBAL(n: number): number { // 8.2.3.8.1 Receive Descriptor Base Address Low
  return rxQueueRegister(n, 0x01000, 0x0d000);
}
export function RDBAH(n: number): number { // 8.2.3.8.2 Receive Descriptor Base Address High
  return rxQueueRegister(n, 0x01004, 0x0d004);
}
export function RDLEN(n: number): number { // 8.2.3.8.3 Receive Descriptor Length
  return rxQueueRegister(n, 0x01008, 0x0d008);
}
export function RDH(n: number): number { // 8.2.3.8.4 Receive Descriptor Head
  return rxQueueRegister(n, 0x01010, 0x0d010);
}
export function RDT(n: number): number { // 8.2.3.8.5 Receive Descriptor Tail
  return rxQueueRegister(n, 0x01018, 0x0d018);
}
export function RXDCTL(n: number): number { // 8.2.3.8.6 Receive Descriptor Control
  return rxQueueRegister(n, 0x01028, 0x0d028);
}
export const RXDCTL_ENABLE = 1 << 25;

/** 8.2.3.8.7 Split Receive Control, n = 0..127. */
export function SRRCTL(n: number): number {
  return rxQueueRegister(n, 0x01014, 0x0d014);
}
/** The 82598-compatible address of SRRCTL 0-15 (Linux and the driver use it). */
export function SRRCTL_ALIAS(n: number): number {
  return 0x02100 + n * 4;
}
export const SRRCTL_BSIZEPACKET_MASK = 0x1f; // bits 4:0, 1 KB units, 1..16 KB
export const SRRCTL_BSIZEPACKET_SHIFT = 10; // bytes = BSIZEPACKET << 10
export const SRRCTL_DESCTYPE_MASK = 0x7 << 25; // bits 27:25
export const SRRCTL_DESCTYPE_ADV_ONEBUF = 0x1 << 25; // 001b: advanced descriptors, one buffer
export const SRRCTL_DROP_EN = 1 << 28;
/** BSIZEPACKET 2 KB, BSIZEHEADER 4 x 64 = 256 bytes, legacy descriptors. */
export const SRRCTL_RESET = 0x00000402;

/** 8.2.3.8.8 Receive DMA Control Register. */
export const RDRXCTL = 0x02f00;
export const RDRXCTL_CRCSTRIP = 1 << 1;
export const RDRXCTL_DMAIDONE = 1 << 3; // DMA init cycle done (read-only)
export const RDRXCTL_RSCFRSTSIZE = 0x1f << 17; // bits 21:17
export const RDRXCTL_RSCACKC = 1 << 25; // software should set it to 1
export const RDRXCTL_FCOE_WRFIX = 1 << 26; // software should set it to 1
/**
 * 4.6.7 asks software to clear RSCFRSTSIZE "as opposed to its hardware default", i.e. it resets
 * to a non-zero value; 0x10 is the model's choice of that value.
 */
export const RDRXCTL_RESET = 0x10 << 17;

/** 8.2.3.8.9 Receive Packet Buffer Size, n = 0..7: SIZE (bits 19:10) in KB. */
export function RXPBSIZE(n: number): number {
  return 0x03c00 + n * 4;
}
export const RXPBSIZE_SHIFT = 10;
/** "The default size of PB[0] is 512 KB"; PB[1-7] default to 512 KB too. */
export const RXPBSIZE_RESET = 0x200 << RXPBSIZE_SHIFT;

/** 8.2.3.8.10 Receive Control Register. */
export const RXCTRL = 0x03000;
export const RXCTRL_RXEN = 1 << 0;

/* ---- 8.2.3.12 Security (the 82599's IPsec block sits in the receive path) ---- */

/** 8.2.3.12.5 Security Rx Control: RX_DIS stops the receive data path at the security block. */
export const SECRXCTRL = 0x08d00;
export const SECRXCTRL_RX_DIS = 1 << 1;
/** 8.2.3.12.6 Security Rx Status: SECRX_RDY, the receive security path is empty and stopped. */
export const SECRXSTAT = 0x08d04;
export const SECRXSTAT_SECRX_RDY = 1 << 0;

/* ---- 8.2.3.9 Transmit ---- */

/** 8.2.3.9.1 DMA Tx TCP Max Allow Size Requests: Max_byte_num_req, bits 11:0. */
export const DTXMXSZRQ = 0x08100;
export const DTXMXSZRQ_MAX_BYTES_NUM_REQ = 0xfff;
export const DTXMXSZRQ_RESET = 0x010;

/** 8.2.3.9.2 DMA Tx Control. */
export const DMATXCTL = 0x04a80;
export const DMATXCTL_TE = 1 << 0; // transmit enable

/* One bank for all 128 transmit queues. */
export function TDBAL(n: number): number { // 8.2.3.9.5 Transmit Descriptor Base Address Low
  return 0x06000 + n * BANK_STRIDE;
}
export function TDBAH(n: number): number { // 8.2.3.9.6 Transmit Descriptor Base Address High
  return 0x06004 + n * BANK_STRIDE;
}
export function TDLEN(n: number): number { // 8.2.3.9.7 Transmit Descriptor Length
  return 0x06008 + n * BANK_STRIDE;
}
export function TDH(n: number): number { // 8.2.3.9.8 Transmit Descriptor Head
  return 0x06010 + n * BANK_STRIDE;
}
export function TDT(n: number): number { // 8.2.3.9.9 Transmit Descriptor Tail
  return 0x06018 + n * BANK_STRIDE;
}
/** 8.2.3.9.10 Transmit Descriptor Control: PTHRESH 6:0, HTHRESH 14:8, WTHRESH 22:16, ENABLE 25. */
export function TXDCTL(n: number): number {
  return 0x06028 + n * BANK_STRIDE;
}
export const TXDCTL_PTHRESH_SHIFT = 0;
export const TXDCTL_HTHRESH_SHIFT = 8;
export const TXDCTL_WTHRESH_SHIFT = 16;
export const TXDCTL_THRESH_MASK = 0x7f; // each threshold, before shifting
export const TXDCTL_ENABLE = 1 << 25;
export const TXDCTL_SWFLSH = 1 << 26; // software flush of descriptor write-back, self-clearing

/** 8.2.3.9.13 Transmit Packet Buffer Size, n = 0..7: SIZE (bits 19:10) in KB, reset 0xA0 = 160 KB. */
export function TXPBSIZE(n: number): number {
  return 0x0cc00 + n * 4;
}
export const TXPBSIZE_RESET = 0xa0 << 10;

/** 8.2.3.9.15 Multiple Transmit Queues Command Register (stored only). */
export const MTQC = 0x08120;

/** 8.2.3.9.16 Tx Packet Buffer Threshold, n = 0..7: "0x96 for TXPBSIZE0, 0x0 for TXPBSIZE1-7". */
export function TXPBTHRESH(n: number): number {
  return 0x04950 + n * 4;
}
export const TXPBTHRESH0_RESET = 0x96;

/* ---- 8.2.3.10 DCB ---- */

/** 8.2.3.10.2 DCB Transmit Descriptor Plane Control and Status (stored only). */
export const RTTDCS = 0x04900;
export const RTTDCS_ARBDIS = 1 << 6; // arbiter disable

/* ---- 8.2.3.11 DCA ---- */

/** 8.2.3.11.1 Rx DCA Control, n = 0..127. */
export function DCA_RXCTRL(n: number): number {
  return rxQueueRegister(n, 0x0100c, 0x0d00c);
}
/** The 82598-compatible address of DCA_RXCTRL 0-15 (Linux and the driver use it). */
export function DCA_RXCTRL_ALIAS(n: number): number {
  return 0x02200 + n * 4;
}
/** Relaxed ordering of the receive data and header writes (8.2.3.11.1); reset 1. */
export const DCA_RXCTRL_DATA_WRO_EN = 1 << 13;
export const DCA_RXCTRL_HEAD_WRO_EN = 1 << 15;
/** Bit 12 is reserved, resets to 1 and must be cleared by software (4.6.7); bit 9 (descriptor read RO) is 1 too. */
export const DCA_RXCTRL_RESET = (1 << 9) | (1 << 12) | DCA_RXCTRL_DATA_WRO_EN | DCA_RXCTRL_HEAD_WRO_EN;

/** 8.2.3.11.2 Tx DCA Control, n = 0..127. */
export function DCA_TXCTRL(n: number): number {
  return 0x0600c + n * BANK_STRIDE;
}
/** Relaxed ordering of the descriptor write-back (DD): reset 1. */
export const DCA_TXCTRL_DESC_WRO_EN = 1 << 11;
/** Descriptor read (bit 9), write-back (11) and data read (13) relaxed ordering: all 1 at reset. */
export const DCA_TXCTRL_RESET = (1 << 9) | DCA_TXCTRL_DESC_WRO_EN | (1 << 13);

/* ---- 8.2.3.22 MAC ---- */

/** 8.2.3.22.8 MAC Core Control 0. */
export const HLREG0 = 0x04240;
export const HLREG0_TXCRCEN = 1 << 0; // append CRC on transmit
export const HLREG0_RXCRCSTRP = 1 << 1; // strip CRC on receive
export const HLREG0_JUMBOEN = 1 << 2;
export const HLREG0_TXPADEN = 1 << 10; // pad short frames to 64 bytes
/** The modelled bits' reset values: TXCRCEN, RXCRCSTRP and TXPADEN are 1. */
export const HLREG0_RESET = HLREG0_TXCRCEN | HLREG0_RXCRCSTRP | HLREG0_TXPADEN;

/** 8.2.3.22.13 Max Frame Size: MFS (bits 31:16), CRC included, reset 0x5EE = 1518. */
export const MAXFRS = 0x04268;
export const MAXFRS_MFS_SHIFT = 16;
export const MAXFRS_RESET = 1518 << MAXFRS_MFS_SHIFT;

/** 8.2.3.22.19 Auto Negotiation Control. */
export const AUTOC = 0x042a0;
export const AUTOC_RESTART_AN = 1 << 12; // self-clearing
export const AUTOC_LMS_SHIFT = 13; // Link Mode Select, bits 15:13
export const AUTOC_LMS_MASK = 0x7 << AUTOC_LMS_SHIFT;
export const AUTOC_LMS_1G_NO_AN = 0x0 << AUTOC_LMS_SHIFT; // 000b: 1 GbE, no auto-negotiation
export const AUTOC_LMS_10G_SERIAL = 0x3 << AUTOC_LMS_SHIFT; // 011b: 10 GbE serial link
export const AUTOC_LMS_KX4_KX_KR = 0x4 << AUTOC_LMS_SHIFT; // 100b: KX4/KX/KR backplane auto-negotiation

/** 8.2.3.22.20 Link Status (read-only). */
export const LINKS = 0x042a4;
export const LINKS_LINK_SPEED_MASK = 0x3 << 28; // bits 29:28
export const LINKS_LINK_SPEED_10G = 0x3 << 28;
export const LINKS_LINK_SPEED_1G = 0x2 << 28;
export const LINKS_LINK_SPEED_100M = 0x1 << 28;
export const LINKS_LINK_UP = 1 << 30;
/** X550 only: with NON_STD set, LINK_SPEED 10G means 2.5 Gbit/s and 100M means 5 Gbit/s. */
export const LINKS_NON_STD = 1 << 27;

/** 8.2.3.22.22 Auto Negotiation Control 2: 10G_PMA_PMD_Serial, bits 17:16. */
export const AUTOC2 = 0x042a8;
export const AUTOC2_10G_PMA_PMD_SERIAL_SFI = 0x2 << 16; // 10b: SFI
/** Bits 30:28, link disable (in D3 and always), loaded from the NVM; the link stays down while set. */
export const AUTOC2_LINK_DISABLE_MASK = 0x7 << 28;

/* ---- 8.2.3.23 Statistics: clear on read ---- */

export const CRCERRS = 0x04000; // CRC errors
export const ILLERRC = 0x04004; // illegal byte errors
export const ERRBC = 0x04008; // error byte count
/** Missed packets, one counter per receive packet buffer, n = 0..7. */
export function MPC(n: number): number {
  return 0x03fa0 + n * 4;
}
export const RLEC = 0x04040; // receive length errors
export const GPRC = 0x04074; // good packets received
export const GPTC = 0x04080; // good packets transmitted
export const GORCL = 0x04088; // good octets received, low 32 bits
export const GORCH = 0x0408c; // ... high 4 bits
export const GOTCL = 0x04090; // good octets transmitted, low 32 bits
export const GOTCH = 0x04094; // ... high 4 bits
export const RUC = 0x040a4; // receive undersize
export const RFC = 0x040a8; // receive fragments (undersize, bad CRC)
export const ROC = 0x040ac; // receive oversize
export const RJC = 0x040b0; // receive jabber (oversize, bad CRC)
/**
 * 8.2.3.23.x Queue Packets Received Drop Count, n = 0..15 (one per statistics counter; RQSMR maps
 * queues to counters and resets to 0, so every queue counts in QPRDC(0)). With SRRCTL.DROP_EN set,
 * a frame dropped for want of a descriptor counts here, not in MPC.
 */
export function QPRDC(n: number): number {
  return 0x01430 + n * BANK_STRIDE;
}

/* ---- Descriptors: 16 bytes = 4 little-endian 32-bit words ---- */

export const DESCRIPTOR_SIZE = 16;

/* 7.1.6.2 Advanced receive descriptor, write-back format: word 2 holds STATUS (bits 19:0). */
export const RXD_STATUS_DD = 1 << 0; // descriptor done
export const RXD_STATUS_EOP = 1 << 1; // end of packet
export const RXD_STATUS_UDPCS = 1 << 4; // the L4 checksum checked was a UDP one
export const RXD_STATUS_L4CS = 1 << 5; // L4 (TCP/UDP) checksum checked: TCPE is valid
export const RXD_STATUS_IPCS = 1 << 6; // IPv4 header checksum checked: IPE is valid
/* ERRORS, bits 31:20 of word 2. */
export const RXD_ERROR_TCPE = 1 << 30; // TCP/UDP checksum error
export const RXD_ERROR_IPE = 1 << 31; // IPv4 header checksum error (the sign bit: use >>> 0)
/*
 * Word 0 of the write-back (7.1.6.2): RSS Type in bits 3:0, Packet Type in bits 16:4; word 1 is
 * the RSS hash when RXCSUM.PCSD is set. RSS types (7.1.6.2, "RSS Type" table):
 */
export const RXD_RSSTYPE_NONE = 0x0; // no hash computed
export const RXD_RSSTYPE_IPV4_TCP = 0x1;
export const RXD_RSSTYPE_IPV4 = 0x2;
export const RXD_RSSTYPE_IPV6_TCP = 0x3;
export const RXD_RSSTYPE_IPV6 = 0x5;
export const RXD_RSSTYPE_IPV4_UDP = 0x7;
export const RXD_RSSTYPE_IPV6_UDP = 0x8;
/* Packet Type bits (bit 11 of the field clear: an L3/L4 type), in place in word 0. */
export const RXD_PKTTYPE_IPV4 = 1 << 4;
export const RXD_PKTTYPE_IPV4E = 1 << 5; // IPv4 with options
export const RXD_PKTTYPE_IPV6 = 1 << 6;
export const RXD_PKTTYPE_IPV6E = 1 << 7; // IPv6 with extension headers
export const RXD_PKTTYPE_TCP = 1 << 8;
export const RXD_PKTTYPE_UDP = 1 << 9;

/* 7.2.3.2.4 Advanced transmit data descriptor, word 2: DTALEN 15:0, DTYP 23:20, DCMD 31:24. */
export const TXD_DTALEN_MASK = 0xffff;
export const TXD_DTYP_MASK = 0xf << 20;
export const TXD_DTYP_CONTEXT = 0x2 << 20; // 0010b: advanced context descriptor (7.2.3.2.3)
export const TXD_DTYP_DATA = 0x3 << 20; // 0011b: advanced data descriptor
export const TXD_DCMD_EOP = 1 << 24; // end of packet
export const TXD_DCMD_IFCS = 1 << 25; // insert FCS
export const TXD_DCMD_RS = 1 << 27; // report status: write DD back
export const TXD_DCMD_DEXT = 1 << 29; // descriptor extension: 1 = advanced
export const TXD_DCMD_VLE = 1 << 30; // insert the context's VLAN tag
export const TXD_DCMD_TSE = 1 << 31; // TCP segmentation (the sign bit: use >>> 0)
/* Word 3: STA (bits 3:0, DD is bit 0, written back by the device) and PAYLEN (bits 31:14). */
export const TXD_STA_DD = 1 << 0;
export const TXD_PAYLEN_SHIFT = 14;
/* ... IDX (bits 6:4): the context this frame uses; CC (bit 7); POPTS (bits 13:8). */
export const TXD_IDX_SHIFT = 4;
export const TXD_IDX_MASK = 0x7 << 4;
export const TXD_POPTS_IXSM = 1 << 8; // insert the IPv4 header checksum
export const TXD_POPTS_TXSM = 1 << 9; // insert the TCP/UDP checksum

/*
 * 7.2.3.2.3 Advanced transmit context descriptor: word 0 IPLEN (8:0), MACLEN (15:9), VLAN
 * (31:16); word 1 IPsec/FCoE fields (not modelled, must be 0); word 2 TUCMD (19:9), DTYP (23:20)
 * = 0010b, DCMD (31:24) of which only DEXT is defined; word 3 IDX (6:4), L4LEN (15:8), MSS
 * (31:16). The 82599 keeps two contexts per queue: IDX is 0 or 1.
 */
export const TXCTX_IPLEN_MASK = 0x1ff;
export const TXCTX_MACLEN_SHIFT = 9;
export const TXCTX_MACLEN_MASK = 0x7f;
export const TXCTX_TUCMD_IPV4 = 1 << 10; // IPv4: TUCMD bit 1
export const TXCTX_TUCMD_L4T_MASK = 0x3 << 11; // TUCMD bits 3:2
export const TXCTX_TUCMD_L4T_UDP = 0x0 << 11;
export const TXCTX_TUCMD_L4T_TCP = 0x1 << 11;
export const TXCTX_TUCMD_L4T_SCTP = 0x2 << 11;
export const TXCTX_IDX_SHIFT = 4;
export const TXCTX_L4LEN_SHIFT = 8;
export const TXCTX_L4LEN_MASK = 0xff;
export const TXCTX_MSS_SHIFT = 16;
/** Contexts each transmit queue holds on an 82599 (the 82598 had eight). */
export const TX_CONTEXTS = 2;
/**
 * The most bytes the model takes in one transmit data descriptor: 16 KB, Linux's
 * IXGBE_MAX_DATA_PER_TXD and the 82598 datasheet's limit. (The 82599 specification update
 * speaks of 64 KB - 1, the width of DTALEN; the model holds drivers to the smaller figure.)
 */
export const TXD_MAX_DATA = 16384;
