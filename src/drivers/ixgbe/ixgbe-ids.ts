/**
 * PCI device ids (vendor 0x8086) the ixgbe driver takes, with the names Linux's ixgbe_type.h gives
 * them. openDevice() looks a device up here.
 *
 * Left out on purpose: the 82598 (a different register layout for several blocks), the virtual
 * functions (they are driven through the PF's mailbox, not like this), and the X550EM parts (their
 * NVM registers such as EEC move to 0x15FF8 on X550EM_a, and their link is run by firmware/PHY
 * commands rather than AUTOC).
 *
 * Listed but refused: the X540 and X550 (10GBASE-T). openDevice() hands them to the ixgbe driver,
 * which throws NotSupportedError with `unsupported` as the reason. They differ from the 82599 in
 * ways that need a real part to get right and that the model cannot check well: reset under the
 * PHY software/firmware semaphore with CTRL.RST only and a 100 ms settle (ixgbe_reset_hw_X540),
 * no AUTOC writes (link setup through the internal PHY, which must be powered up first: DPDK's
 * ixgbe_set_phy_power), a 384 KB receive packet buffer, and on the X550 LINKS.NON_STD (2.5G/5G).
 */

export const IXGBE_VENDOR_ID = 0x8086;

export interface IxgbeDeviceId {
  readonly deviceId: number;
  readonly name: string;
  /** Set for a part the driver recognizes but refuses: why (createIxgbeDevice throws NotSupportedError). */
  readonly unsupported?: string;
}

const COPPER_PHY = "its reset (PHY semaphore, CTRL.RST only, 100 ms settle) and link setup (internal PHY, no AUTOC) " +
  "differ from the 82599's and are not implemented";

export const IXGBE_DEVICE_IDS: readonly IxgbeDeviceId[] = Object.freeze([
  // 82599 family (the X520 adapters are 82599ES SFP+ parts: 0x10FB)
  { deviceId: 0x10f7, name: "82599 KX4" },
  { deviceId: 0x1514, name: "82599 KX4 mezzanine" },
  { deviceId: 0x1517, name: "82599 KR" },
  { deviceId: 0x10f8, name: "82599 combo backplane" },
  { deviceId: 0x10f9, name: "82599 CX4" },
  { deviceId: 0x10fb, name: "82599ES SFP+ (X520)" },
  { deviceId: 0x152a, name: "82599 backplane FCoE" },
  { deviceId: 0x1529, name: "82599 SFP+ FCoE" },
  { deviceId: 0x1507, name: "82599 SFP+ EM" },
  { deviceId: 0x154d, name: "82599 SFP+ SF2" },
  { deviceId: 0x154a, name: "82599 SFP+ SF QP" },
  { deviceId: 0x1558, name: "82599 QSFP+ SF QP" },
  { deviceId: 0x1557, name: "82599EN SFP+ (X520)" },
  { deviceId: 0x10fc, name: "82599 XAUI LOM" },
  { deviceId: 0x151c, name: "82599 10GBASE-T3 LOM" },
  { deviceId: 0x154f, name: "82599 LS" },
  // X540 (10GBASE-T, internal PHY)
  { deviceId: 0x1528, name: "X540-T", unsupported: COPPER_PHY },
  { deviceId: 0x1560, name: "X540-T1", unsupported: COPPER_PHY },
  // X550 (10GBASE-T, internal PHY; LINKS.NON_STD for 2.5G/5G)
  { deviceId: 0x1563, name: "X550-T", unsupported: COPPER_PHY },
  { deviceId: 0x15d1, name: "X550-T1", unsupported: COPPER_PHY },
].map((entry) => Object.freeze(entry)));

/** The entry for a device id, or undefined when the ixgbe driver does not take it. */
export function findIxgbeDeviceId(vendorId: number, deviceId: number): IxgbeDeviceId | undefined {
  if (vendorId !== IXGBE_VENDOR_ID) return undefined;
  return IXGBE_DEVICE_IDS.find((entry) => entry.deviceId === deviceId);
}

/**
 * 82599 parts whose link partner is a backplane or on-board PHY, not an SFP+ cage: their NVM's
 * AUTOC is the link mode the board is wired for and is kept (KX4, KX4 mezzanine, KR, combo
 * backplane, backplane FCoE, CX4, XAUI LOM, 10GBASE-T3 LOM). Every other 82599 id is an SFP+ part.
 */
export const IXGBE_BACKPLANE_DEVICE_IDS: readonly number[] = Object.freeze([0x10f7, 0x1514, 0x1517, 0x10f8, 0x152a, 0x10f9, 0x10fc, 0x151c]);
