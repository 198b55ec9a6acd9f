// Named ixgbe_type.ts, not kebab-case like the rest of src/, because it mirrors Linux's ixgbe_type.h.
/**
 * Registers, bits and descriptor fields of the Intel 82599 family (82599, X520, X540, X550) that
 * ixy.ts uses. Names and values follow the 82599 datasheet (section 8.2.3 for registers, 7.1.6 and
 * 7.2.3 for descriptors) and Linux's drivers/net/ethernet/intel/ixgbe/ixgbe_type.h, so a reader can
 * look any name up in either. Only what the driver or the device model uses is here: the C header
 * has about 4000 lines.
 *
 * Indexed registers are functions of the queue (or pool, or buffer) number. Some of them live in
 * more than one register bank, e.g. receive queues 0-63 at 0x01000 + 0x40 * i and 64-127 at
 * 0x0D000 + 0x40 * (i - 64); the functions encode that.
 */

/* ---- General registers (8.2.3.1) ---- */
export const IXGBE_CTRL = 0x00000;
export const IXGBE_CTRL_EXT = 0x00018;

/* CTRL bits */
export const IXGBE_CTRL_LNK_RST = 0x00000008; // link reset: resets the MAC and link as well
export const IXGBE_CTRL_RST = 0x04000000; // device (software) reset, self-clearing
export const IXGBE_CTRL_RST_MASK = IXGBE_CTRL_LNK_RST | IXGBE_CTRL_RST;
export const IXGBE_CTRL_GIO_DIS = 0x00000004; // PCIe master disable
export const IXGBE_STATUS = 0x00008;
export const IXGBE_STATUS_GIO = 0x00080000; // PCIe master enable status
export const IXGBE_ESDP = 0x00020;
export const IXGBE_ESDP_SDP3 = 0x00000008; // SDP3: TX_DISABLE of the SFP+ laser on X520 boards
export const IXGBE_ESDP_SDP3_DIR = 0x00000800; // SDP3 is an output

/* CTRL_EXT bits */
export const IXGBE_CTRL_EXT_NS_DIS = 0x00010000; // no snoop disable
export const IXGBE_CTRL_EXT_DRV_LOAD = 0x10000000; // a driver is loaded (for manageability firmware)

/* ---- EEPROM/flash (8.2.3.2) ---- */
export const IXGBE_EEC = 0x10010;
export const IXGBE_EEC_PRES = 0x00000100; // EEPROM present
export const IXGBE_EEC_ARD = 0x00000200; // EEPROM auto-read done

/* ---- Interrupts (8.2.3.5) ---- */
export const IXGBE_EICR = 0x00800;
export const IXGBE_EIMS = 0x00880;
export const IXGBE_EIMC = 0x00888;
export const IXGBE_IRQ_CLEAR_MASK = 0xffffffff;
export const IXGBE_EICS = 0x00808;
export const IXGBE_EIAC = 0x00810;
export const IXGBE_EIAM = 0x00890;
export const IXGBE_GPIE = 0x00898;
/** The registers of MSI-X vectors 0-63 (82599): vector 32i+k in bit k of register i. */
export function IXGBE_EICS_EX(i: number): number {
  return 0x00a90 + i * 4;
}
export function IXGBE_EIMS_EX(i: number): number {
  return 0x00aa0 + i * 4;
}
export function IXGBE_EIMC_EX(i: number): number {
  return 0x00ab0 + i * 4;
}
export function IXGBE_EIAM_EX(i: number): number {
  return 0x00ad0 + i * 4;
}
export const IXGBE_EICR_RTX_QUEUE = 0x0000ffff; // RTxQ: vectors 0-15 in MSI-X mode
export const IXGBE_EICR_LSC = 0x00100000; // link status change
export const IXGBE_EICR_TCP_TIMER = 0x40000000;
export const IXGBE_EICR_OTHER = 0x80000000;
export const IXGBE_GPIE_MSIX_MODE = 0x00000010; // the datasheet's Multiple_MSIX
export const IXGBE_GPIE_OCD = 0x00000020; // other clear disable
export const IXGBE_GPIE_EIAME = 0x40000000; // auto-mask in MSI-X mode
export const IXGBE_GPIE_PBA_SUPPORT = 0x80000000;
export function IXGBE_EITR(i: number): number {
  return (i <= 23 ? 0x00820 + i * 4 : 0x12300 + (i - 24) * 4);
}
export const IXGBE_EITR_ITR_INT_MASK = 0x00000ff8; // ITR_Interval, bits 11:3, 2 us units
export const IXGBE_EITR_CNT_WDIS = 0x80000000;
export function IXGBE_IVAR(i: number): number {
  return 0x00900 + i * 4;
}
export const IXGBE_IVAR_MISC = 0x00a00;
export const IXGBE_IVAR_INT_ALLOC_MASK = 0x3f; // the vector of an IVAR entry (Linux has no name)
export const IXGBE_IVAR_ALLOC_VAL = 0x80;

/* ---- Receive DMA (8.2.3.8) ---- */
function rxQueueBank(i: number, low: number, high: number): number {
  return i < 64 ? low + i * 0x40 : high + (i - 64) * 0x40;
}
export function IXGBE_RDBAL(i: number): number {
  return rxQueueBank(i, 0x01000, 0x0d000);
}
export function IXGBE_RDBAH(i: number): number {
  return rxQueueBank(i, 0x01004, 0x0d004);
}
export function IXGBE_RDLEN(i: number): number {
  return rxQueueBank(i, 0x01008, 0x0d008);
}
export function IXGBE_RDH(i: number): number {
  return rxQueueBank(i, 0x01010, 0x0d010);
}
export function IXGBE_RDT(i: number): number {
  return rxQueueBank(i, 0x01018, 0x0d018);
}
export function IXGBE_RXDCTL(i: number): number {
  return rxQueueBank(i, 0x01028, 0x0d028);
}
/** SRRCTL: queues 0-15 also have (and Linux uses) the 82598-compatible block at 0x02100. */
export function IXGBE_SRRCTL(i: number): number {
  return (i <= 15 ? 0x02100 + i * 4 : rxQueueBank(i, 0x01014, 0x0d014));
}
/** DCA_RXCTRL: queues 0-15 at 0x02200, like SRRCTL. */
export function IXGBE_DCA_RXCTRL(i: number): number {
  return (i <= 15 ? 0x02200 + i * 4 : rxQueueBank(i, 0x0100c, 0x0d00c));
}
export const IXGBE_RDRXCTL = 0x02f00;
/** Receive packet buffer sizes, 8 buffers (one per traffic class). */
export function IXGBE_RXPBSIZE(i: number): number {
  return 0x03c00 + i * 4;
}
export const IXGBE_RXCTRL = 0x03000;
export const IXGBE_SECRXCTRL = 0x08d00;
export const IXGBE_SECRXCTRL_RX_DIS = 0x00000002;
export const IXGBE_SECRXSTAT = 0x08d04;
export const IXGBE_SECRXSTAT_SECRX_RDY = 0x00000001;
export const IXGBE_DCA_RXCTRL_DATA_WRO_EN = 1 << 13; // relaxed ordering of data writes
export const IXGBE_DCA_RXCTRL_HEAD_WRO_EN = 1 << 15; // relaxed ordering of header writes
/** Tx DCA control (82599 address). */
export function IXGBE_DCA_TXCTRL_82599(i: number): number {
  return 0x0600c + i * 0x40;
}
export const IXGBE_DCA_TXCTRL_DESC_WRO_EN = 1 << 11; // relaxed ordering of descriptor write-back

/* RDRXCTL bits */
export const IXGBE_RDRXCTL_CRCSTRIP = 0x00000002;
export const IXGBE_RDRXCTL_DMAIDONE = 0x00000008; // DMA init cycle done
export const IXGBE_RDRXCTL_RSCFRSTSIZE = 0x003e0000; // reads as non-zero, must be written as zero
export const IXGBE_RDRXCTL_RSCACKC = 0x02000000; // reads as zero, must be written as one
export const IXGBE_RDRXCTL_FCOE_WRFIX = 0x04000000; // reads as zero, must be written as one

/* RXCTRL and RXDCTL bits */
export const IXGBE_RXCTRL_RXEN = 0x00000001;
export const IXGBE_RXDCTL_ENABLE = 0x02000000;

/* RXPBSIZE values */
export const IXGBE_RXPBSIZE_SHIFT = 10; // the SIZE field counts KB
export const IXGBE_RXPBSIZE_128KB = 0x00020000;
export const IXGBE_RXPBSIZE_MAX = 0x00080000; // 512 KB: the whole 82599 receive packet buffer

/* SRRCTL bits */
export const IXGBE_SRRCTL_BSIZEPKT_SHIFT = 10; // BSIZEPACKET counts KB
export const IXGBE_SRRCTL_BSIZEPKT_MASK = 0x0000007f;
export const IXGBE_SRRCTL_DROP_EN = 0x10000000;
export const IXGBE_SRRCTL_DESCTYPE_MASK = 0x0e000000;
export const IXGBE_SRRCTL_DESCTYPE_ADV_ONEBUF = 0x02000000;

/* ---- Receive filtering (8.2.3.7) ---- */
export const IXGBE_FCTRL = 0x05080;
export const IXGBE_FCTRL_MPE = 0x00000100; // multicast promiscuous
export const IXGBE_FCTRL_UPE = 0x00000200; // unicast promiscuous
export const IXGBE_FCTRL_BAM = 0x00000400; // broadcast accept mode
/** Receive address registers 0-15 at 0x05400, 16-127 at 0x0A200. */
export function IXGBE_RAL(i: number): number {
  return (i <= 15 ? 0x05400 + i * 8 : 0x0a200 + i * 8);
}
export function IXGBE_RAH(i: number): number {
  return (i <= 15 ? 0x05404 + i * 8 : 0x0a204 + i * 8);
}
export const IXGBE_RAH_AV = 0x80000000; // address valid

/* ---- Receive-side scaling (datasheet 7.1.2.8; registers 8.2.3.7.x; Linux ixgbe_setup_mrqc) ---- */
/** Receive Checksum Control; PCSD puts the RSS hash into the descriptor instead of the fragment checksum. */
export const IXGBE_RXCSUM = 0x05000;
export const IXGBE_RXCSUM_PCSD = 0x00002000;
export const IXGBE_RXCSUM_IPPCSE = 0x00001000; // IP payload checksum enable (the fragment checksum, PCSD clear)
/** Multiple Receive Queues Command register: MRQE (bits 3:0) and the hash field enables. */
export const IXGBE_MRQC = 0x0ec80;
export const IXGBE_MRQC_MRQE_MASK = 0x0000000f;
export const IXGBE_MRQC_RSSEN = 0x00000001; // MRQE = 0001b: RSS only (no DCB, no VMDq)
export const IXGBE_MRQC_RSS_FIELD_IPV4_TCP = 0x00010000;
export const IXGBE_MRQC_RSS_FIELD_IPV4 = 0x00020000;
export const IXGBE_MRQC_RSS_FIELD_IPV6_EX_TCP = 0x00040000;
export const IXGBE_MRQC_RSS_FIELD_IPV6_EX = 0x00080000;
export const IXGBE_MRQC_RSS_FIELD_IPV6 = 0x00100000;
export const IXGBE_MRQC_RSS_FIELD_IPV6_TCP = 0x00200000;
export const IXGBE_MRQC_RSS_FIELD_IPV4_UDP = 0x00400000;
export const IXGBE_MRQC_RSS_FIELD_IPV6_UDP = 0x00800000;
export const IXGBE_MRQC_RSS_FIELD_IPV6_EX_UDP = 0x01000000;

/* ---- Flow Director (7.1.2.7, registers 8.2.3.21) ---- */
export const IXGBE_FDIRCTRL = 0x0ee00;
export const IXGBE_FDIRHKEY = 0x0ee68; // bucket hash key
export const IXGBE_FDIRSKEY = 0x0ee6c; // signature hash key
export const IXGBE_FDIRDIP4M = 0x0ee3c;
export const IXGBE_FDIRSIP4M = 0x0ee40;
export const IXGBE_FDIRTCPM = 0x0ee44;
export const IXGBE_FDIRUDPM = 0x0ee48;
export const IXGBE_FDIRIP6M = 0x0ee74;
export const IXGBE_FDIRM = 0x0ee70;
export const IXGBE_FDIRFREE = 0x0ee38;
export const IXGBE_FDIRLEN = 0x0ee4c;
export const IXGBE_FDIRUSTAT = 0x0ee50;
export const IXGBE_FDIRFSTAT = 0x0ee54;
export const IXGBE_FDIRMATCH = 0x0ee58;
export const IXGBE_FDIRMISS = 0x0ee5c;
export function IXGBE_FDIRSIPv6(i: number): number {
  return 0x0ee0c + i * 4; // 0-2
}
export const IXGBE_FDIRIPSA = 0x0ee18;
export const IXGBE_FDIRIPDA = 0x0ee1c;
export const IXGBE_FDIRPORT = 0x0ee20;
export const IXGBE_FDIRVLAN = 0x0ee24;
export const IXGBE_FDIRHASH = 0x0ee28;
export const IXGBE_FDIRCMD = 0x0ee2c;
export const IXGBE_FDIRCTRL_PBALLOC_64K = 0x00000001;
export const IXGBE_FDIRCTRL_PBALLOC_MASK = 0x00000003;
export const IXGBE_FDIRCTRL_INIT_DONE = 0x00000008;
export const IXGBE_FDIRCTRL_PERFECT_MATCH = 0x00000010;
export const IXGBE_FDIRCTRL_DROP_Q_SHIFT = 8;
export const IXGBE_FDIRCTRL_FLEX_SHIFT = 16;
export const IXGBE_FDIRCTRL_MAX_LENGTH_SHIFT = 24;
export const IXGBE_FDIRCTRL_FULL_THRESH_SHIFT = 28;
export const IXGBE_FDIRM_VLANID = 0x00000001;
export const IXGBE_FDIRM_VLANP = 0x00000002;
export const IXGBE_FDIRM_POOL = 0x00000004;
export const IXGBE_FDIRM_L4P = 0x00000008;
export const IXGBE_FDIRM_FLEX = 0x00000010;
export const IXGBE_FDIRM_DIPv6 = 0x00000020;
export const IXGBE_FDIRFREE_FREE_MASK = 0x0000ffff;
export const IXGBE_FDIRFSTAT_FADD_MASK = 0x000000ff;
export const IXGBE_FDIRPORT_DESTINATION_SHIFT = 16;
export const IXGBE_FDIRHASH_SIG_SW_INDEX_SHIFT = 16;
export const IXGBE_FDIRCMD_CMD_MASK = 0x00000003;
export const IXGBE_FDIRCMD_CMD_ADD_FLOW = 0x00000001;
export const IXGBE_FDIRCMD_CMD_REMOVE_FLOW = 0x00000002;
export const IXGBE_FDIRCMD_CMD_QUERY_REM_FILT = 0x00000003;
export const IXGBE_FDIRCMD_FILTER_VALID = 0x00000004;
export const IXGBE_FDIRCMD_DROP = 0x00000200;
export const IXGBE_FDIRCMD_LAST = 0x00000800;
export const IXGBE_FDIRCMD_COLLISION = 0x00001000;
export const IXGBE_FDIRCMD_QUEUE_EN = 0x00008000;
export const IXGBE_FDIRCMD_FLOW_TYPE_SHIFT = 5; // L4TYPE (6:5) and IPV6 (7)
export const IXGBE_FDIRCMD_RX_QUEUE_SHIFT = 16;
/** Flow types (FDIRCMD bits 7:5 and byte 1 of the hash input): L4 type, +4 for IPv6. */
export const IXGBE_ATR_FLOW_TYPE_IPV4 = 0x0;
export const IXGBE_ATR_FLOW_TYPE_UDPV4 = 0x1;
export const IXGBE_ATR_FLOW_TYPE_TCPV4 = 0x2;
export const IXGBE_ATR_FLOW_TYPE_SCTPV4 = 0x3;
/** The bucket and signature hash keys Linux and DPDK program (ixgbe_fdir_enable_82599). */
export const IXGBE_ATR_BUCKET_HASH_KEY = 0x3dad14e2;
export const IXGBE_ATR_SIGNATURE_HASH_KEY = 0x174d3614;
/** RSS Random Key registers, 10 x 32 bits = the 40-byte Toeplitz key; byte 4n+k in bits 8k+7:8k of RSSRK(n). */
export function IXGBE_RSSRK(i: number): number {
  return 0x0eb80 + i * 4;
}
/** Redirection table: 32 registers of four 8-bit entries (entry 4n+k in bits 8k+7:8k of RETA(n)). */
export function IXGBE_RETA(i: number): number {
  return 0x0eb00 + i * 4;
}

/* ---- Transmit DMA (8.2.3.9): one bank for all 128 queues ---- */
export function IXGBE_TDBAL(i: number): number {
  return 0x06000 + i * 0x40;
}
export function IXGBE_TDBAH(i: number): number {
  return 0x06004 + i * 0x40;
}
export function IXGBE_TDLEN(i: number): number {
  return 0x06008 + i * 0x40;
}
export function IXGBE_TDH(i: number): number {
  return 0x06010 + i * 0x40;
}
export function IXGBE_TDT(i: number): number {
  return 0x06018 + i * 0x40;
}
export function IXGBE_TXDCTL(i: number): number {
  return 0x06028 + i * 0x40;
}
export const IXGBE_DMATXCTL = 0x04a80;
export const IXGBE_DTXMXSZRQ = 0x08100;
export const IXGBE_MTQC = 0x08120;
export function IXGBE_TXPBSIZE(i: number): number {
  return 0x0cc00 + i * 4;
}
export function IXGBE_TXPBTHRESH(i: number): number {
  return 0x04950 + i * 4;
}
export const IXGBE_RTTDCS = 0x04900;

export const IXGBE_DMATXCTL_TE = 0x00000001; // transmit enable
export const IXGBE_RTTDCS_ARBDIS = 0x00000040; // DCB arbiter disable
export const IXGBE_MTQC_64Q_1PB = 0x00000000; // 64 queues, one packet buffer (no DCB, no VT)
export const IXGBE_TXPBSIZE_MAX = 0x00028000; // 160 KB: the whole transmit packet buffer
export const IXGBE_TXDCTL_ENABLE = 0x02000000;
export const IXGBE_TXDCTL_SWFLSH = 0x04000000; // software flush of descriptor write-back
/* TXDCTL threshold fields (7.2.3.4.1); ixgbe_type.h only names the WTHRESH shift. */
export const IXGBE_TXDCTL_PTHRESH_SHIFT = 0;
export const IXGBE_TXDCTL_HTHRESH_SHIFT = 8;
export const IXGBE_TXDCTL_WTHRESH_SHIFT = 16;
export const IXGBE_TXDCTL_THRESH_MASK = 0x7f; // each threshold is 7 bits wide
/* DTXMXSZRQ.Max_byte_num_req (bits 11:0). */
export const IXGBE_DTXMXSZRQ_MAX_BYTES_NUM_REQ = 0x00000fff;

/* ---- MAC (8.2.3.22) ---- */
export const IXGBE_HLREG0 = 0x04240;
export const IXGBE_MAXFRS = 0x04268;
export const IXGBE_AUTOC = 0x042a0;
export const IXGBE_LINKS = 0x042a4;
export const IXGBE_AUTOC2 = 0x042a8;

export const IXGBE_HLREG0_TXCRCEN = 0x00000001; // append CRC to transmitted frames
export const IXGBE_HLREG0_RXCRCSTRP = 0x00000002; // strip CRC from received frames
export const IXGBE_HLREG0_JUMBOEN = 0x00000004;
export const IXGBE_HLREG0_TXPADEN = 0x00000400; // pad short frames to 64 bytes
export const IXGBE_MHADD_MFS_SHIFT = 16; // MAXFRS.MFS, max frame size including CRC
export const IXGBE_MHADD_MFS_MASK = 0xffff0000;

export const IXGBE_AUTOC_AN_RESTART = 0x00001000;
export const IXGBE_AUTOC_LMS_SHIFT = 13;
export const IXGBE_AUTOC_LMS_10G_SERIAL = 0x3 << IXGBE_AUTOC_LMS_SHIFT;
export const IXGBE_AUTOC_LMS_MASK = 0x7 << IXGBE_AUTOC_LMS_SHIFT;
export const IXGBE_AUTOC_LMS_1G_NO_AN = 0x0 << IXGBE_AUTOC_LMS_SHIFT;
export const IXGBE_AUTOC_LMS_KX4_KX_KR = 0x4 << IXGBE_AUTOC_LMS_SHIFT;
export const IXGBE_AUTOC2_10G_SFI = 2 << 16;
export const IXGBE_AUTOC2_LINK_DISABLE_MASK = 0x70000000;

export const IXGBE_LINKS_UP = 0x40000000;
export const IXGBE_LINKS_SPEED_82599 = 0x30000000;
export const IXGBE_LINKS_SPEED_10G_82599 = 0x30000000;
export const IXGBE_LINKS_SPEED_1G_82599 = 0x20000000;
export const IXGBE_LINKS_SPEED_100_82599 = 0x10000000;
export const IXGBE_LINKS_SPEED_NON_STD = 0x08000000; // X550: 10G means 2.5G, 100M means 5G

/* ---- Statistics (8.2.3.23): all clear on read ---- */
export const IXGBE_CRCERRS = 0x04000;
export const IXGBE_ILLERRC = 0x04004;
export const IXGBE_ERRBC = 0x04008;
/** Missed packets, one counter per receive packet buffer (8). */
export function IXGBE_MPC(i: number): number {
  return 0x03fa0 + i * 4;
}
export const IXGBE_RLEC = 0x04040;
export const IXGBE_GPRC = 0x04074;
export const IXGBE_GPTC = 0x04080;
export const IXGBE_GORCL = 0x04088;
export const IXGBE_GORCH = 0x0408c;
export const IXGBE_GOTCL = 0x04090;
export const IXGBE_GOTCH = 0x04094;
export const IXGBE_RUC = 0x040a4;
export const IXGBE_ROC = 0x040ac;
export const IXGBE_RFC = 0x040a8;
export const IXGBE_RJC = 0x040b0;
/** Queue packets received drop count, i = 0..15 (per statistics counter, RQSMR maps queues). */
export function IXGBE_QPRDC(i: number): number {
  return 0x01430 + i * 0x40;
}

/* ---- Advanced receive descriptor (7.1.6), 16 bytes = 4 little-endian 32-bit words ----
 *
 *  read format (driver -> device)         write-back format (device -> driver)
 *  word 0  packet buffer address, low     packet type / RSS type
 *  word 1  packet buffer address, high    RSS hash or checksum
 *  word 2  header buffer address, low     STATUS (bits 19:0) and ERRORS (bits 31:20)
 *  word 3  header buffer address, high    PKT_LEN (bits 15:0), VLAN tag (bits 31:16)
 *
 * Writing 0 to word 2 when handing a descriptor to the device clears DD.
 */
export const IXGBE_RXDADV_STAT_DD = 0x00000001; // descriptor done
export const IXGBE_RXDADV_STAT_EOP = 0x00000002; // end of packet
export const IXGBE_RXD_STAT_UDPCS = 0x00000010; // the L4 checksum checked was UDP's
export const IXGBE_RXD_STAT_L4CS = 0x00000020; // L4 checksum checked (TCPE valid)
export const IXGBE_RXD_STAT_IPCS = 0x00000040; // IPv4 header checksum checked (IPE valid)
export const IXGBE_RXDADV_ERR_TCPE = 0x40000000; // TCP/UDP checksum error
export const IXGBE_RXDADV_ERR_IPE = 0x80000000; // IPv4 header checksum error
export const IXGBE_RXDADV_ERR_CE = 0x01000000; // CRC error
export const IXGBE_RXDADV_ERR_LE = 0x02000000; // length error
export const IXGBE_RXDADV_ERR_PE = 0x08000000; // packet (byte) error
export const IXGBE_RXDADV_ERR_OSE = 0x10000000; // oversize
export const IXGBE_RXDADV_ERR_USE = 0x20000000; // undersize
export const IXGBE_RXDADV_ERR_FRAME_ERR_MASK =
  (IXGBE_RXDADV_ERR_CE | IXGBE_RXDADV_ERR_LE | IXGBE_RXDADV_ERR_PE | IXGBE_RXDADV_ERR_OSE | IXGBE_RXDADV_ERR_USE) >>> 0;

/* ---- Advanced transmit data descriptor (7.2.3.2.4), 16 bytes = 4 words ----
 *
 *  read format (driver -> device)                  write-back format (device -> driver)
 *  word 0  buffer address, low                     reserved
 *  word 1  buffer address, high                    reserved
 *  word 2  DTALEN (15:0) DTYP (23:20) DCMD (31:24)  reserved
 *  word 3  STA (3:0) ... PAYLEN (31:14)             STA: DD in bit 0
 */
export const IXGBE_ADVTXD_DTALEN_MASK = 0x0000ffff;
export const IXGBE_ADVTXD_DTYP_MASK = 0x00f00000;
export const IXGBE_ADVTXD_DTYP_CTXT = 0x00200000; // advanced context descriptor
export const IXGBE_ADVTXD_DTYP_DATA = 0x00300000; // advanced data descriptor
export const IXGBE_ADVTXD_DCMD_EOP = 0x01000000; // end of packet
export const IXGBE_ADVTXD_DCMD_IFCS = 0x02000000; // insert FCS (Ethernet CRC)
export const IXGBE_ADVTXD_DCMD_RS = 0x08000000; // report status: write back DD
export const IXGBE_ADVTXD_DCMD_DEXT = 0x20000000; // descriptor extension (1 = advanced)
export const IXGBE_ADVTXD_DCMD_VLE = 0x40000000; // insert the context's VLAN tag
export const IXGBE_ADVTXD_DCMD_TSE = 0x80000000; // TCP segmentation enable
export const IXGBE_ADVTXD_STAT_DD = 0x00000001;
export const IXGBE_ADVTXD_IDX_SHIFT = 4; // the context a data descriptor uses (and a context descriptor loads)
export const IXGBE_ADVTXD_POPTS_IXSM = 0x00000100; // insert the IPv4 header checksum
export const IXGBE_ADVTXD_POPTS_TXSM = 0x00000200; // insert the TCP/UDP checksum
export const IXGBE_ADVTXD_PAYLEN_SHIFT = 14;

/* ---- Advanced transmit context descriptor (7.2.3.2.3) ----
 *
 *  word 0  IPLEN (8:0), MACLEN (15:9), VLAN (31:16)      ("vlan_macip_lens")
 *  word 1  IPsec SA index / FCoE fields: 0 here          ("seqnum_seed")
 *  word 2  TUCMD (19:9), DTYP (23:20) = 0010b, DCMD: DEXT ("type_tucmd_mlhl")
 *  word 3  IDX (6:4), L4LEN (15:8), MSS (31:16)          ("mss_l4len_idx")
 */
export const IXGBE_ADVTXD_MACLEN_SHIFT = 9;
export const IXGBE_ADVTXD_VLAN_SHIFT = 16;
export const IXGBE_ADVTXD_TUCMD_IPV4 = 0x00000400; // IP packet type: 1 IPv4, 0 IPv6
export const IXGBE_ADVTXD_TUCMD_IPV6 = 0x00000000;
export const IXGBE_ADVTXD_TUCMD_L4T_UDP = 0x00000000;
export const IXGBE_ADVTXD_TUCMD_L4T_TCP = 0x00000800;
export const IXGBE_ADVTXD_L4LEN_SHIFT = 8;
export const IXGBE_ADVTXD_MSS_SHIFT = 16;

/** The size of both descriptor formats, in bytes. */
export const IXGBE_DESC_SIZE = 16;
