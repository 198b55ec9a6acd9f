/**
 * The ixgbe statistics registers (datasheet 8.2.3.23). They clear on read, so every register is
 * read exactly once per update(), with one 32-bit access, and added to running totals; reading
 * one twice would lose whatever the first read cleared.
 */
import { newStats, type DeviceStats } from "../../device.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { getReg32 } from "../../pci/regs.ts";
import {
  IXGBE_CRCERRS,
  IXGBE_ERRBC,
  IXGBE_GORCH,
  IXGBE_GORCL,
  IXGBE_GOTCH,
  IXGBE_GOTCL,
  IXGBE_GPRC,
  IXGBE_GPTC,
  IXGBE_ILLERRC,
  IXGBE_MPC,
  IXGBE_RLEC,
} from "./ixgbe_type.ts";

const TWO_POW_32 = 0x1_0000_0000;
const FCS_LENGTH = 4;

export class IxgbeStats {
  /** Totals of the device counters since reset() (driver-side drops are added by the device). */
  readonly totals: DeviceStats = newStats();
  readonly #mmio: Mmio;

  constructor(mmio: Mmio) {
    this.#mmio = mmio;
  }

  /** 4.6.5: reads (and so clears) every counter and starts the totals from zero. */
  reset(): void {
    this.update();
    Object.assign(this.totals, newStats());
  }

  /** Reads every counter once and adds it to the totals. */
  update(): void {
    const mmio = this.#mmio;
    const t = this.totals;
    const rxPackets = getReg32(mmio, IXGBE_GPRC);
    const txPackets = getReg32(mmio, IXGBE_GPTC);
    t.rxPackets += rxPackets;
    t.txPackets += txPackets;
    // The octet counters are 36 bits wide: read the low half first, then the high half. They
    // count from the destination address through the CRC; DeviceStats counts frames as the
    // application sees them (as virtio does), so the 4-byte FCS of each packet comes off.
    const gorcl = getReg32(mmio, IXGBE_GORCL);
    t.rxBytes += gorcl + getReg32(mmio, IXGBE_GORCH) * TWO_POW_32 - rxPackets * FCS_LENGTH;
    const gotcl = getReg32(mmio, IXGBE_GOTCL);
    t.txBytes += gotcl + getReg32(mmio, IXGBE_GOTCH) * TWO_POW_32 - txPackets * FCS_LENGTH;
    // Missed packets: frames the device had no descriptor for, one counter per packet buffer.
    for (let i = 0; i < 8; i++) t.rxMissed += getReg32(mmio, IXGBE_MPC(i));
    // Receive errors, as Linux sums them: CRC, illegal symbols, error symbols, length (too
    // short or longer than MAXFRS). The device drops these frames itself.
    t.rxErrors += getReg32(mmio, IXGBE_CRCERRS) + getReg32(mmio, IXGBE_ILLERRC) +
      getReg32(mmio, IXGBE_ERRBC) + getReg32(mmio, IXGBE_RLEC);
  }
}
