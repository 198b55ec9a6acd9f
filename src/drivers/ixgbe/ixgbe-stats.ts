/**
 * The ixgbe statistics registers (datasheet 8.2.3.23). They clear on read, so every register is
 * read exactly once per update(), with one 32-bit access, and added to running totals; reading
 * one twice would lose whatever the first read cleared.
 *
 * Wrap-around: a clear-on-read counter holds what arrived since the last read, modulo its width
 * (GPRC/GPTC and the others 32 bits, GORC/GOTC 36 bits). The totals are right as long as less
 * than 2^32 frames (2^36 bytes) arrive between two reads. At 10 Gbit/s the 36-bit GORC wraps in
 * 55 s and GPRC in 289 s at 14.88 Mpps, so readStats alone (called when the application likes)
 * is not enough: the queues call update() every STATS_POLL_CALLS (1024) rxBatch/txBatch calls
 * too. Between two calls the device can place at most one ring (4096 descriptors) of frames of
 * at most 1522 bytes, so 1024 calls bound the growth at 4096 x 1522 x 1024 = 6.4 GB, a tenth of
 * 2^36 bytes (68.7 GB), and 4.2 M frames, a thousandth of 2^32. An application that stops
 * calling both for minutes while traffic arrives loses nothing either: with no descriptors, the
 * device counts nothing in GPRC/GORC, only drops (QPRDC: 32 bits, 289 s at line rate; call
 * readStats at least every few minutes while idle).
 */
import { newStats, type DeviceStats } from "../../device.ts";
import type { Mmio } from "../../pci/mmio.ts";
import { getReg32 } from "../../pci/regs.ts";
import { join64 } from "../../mem/u64.ts";
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
  IXGBE_QPRDC,
  IXGBE_RFC,
  IXGBE_RJC,
  IXGBE_RLEC,
  IXGBE_ROC,
  IXGBE_RUC,
} from "./ixgbe_type.ts";

const FCS_LENGTH = 4;

/** Counters of the device beyond DeviceStats, totals since the device was opened. */
export interface IxgbeHwCounters {
  /** MPC(0-7): frames the packet buffer could not take (also in DeviceStats.rxMissed). */
  rxMissedPacketBuffer: number;
  /** QPRDC(0-15): frames dropped for want of a descriptor (SRRCTL.DROP_EN; Linux's rx_no_dma_resources; also in rxMissed). */
  rxNoDmaResources: number;
  /** RUC: frames under 64 bytes with a good CRC. */
  rxUndersize: number;
  /** RFC: frames under 64 bytes with a bad CRC. */
  rxFragments: number;
  /** ROC: frames over the maximum size with a good CRC. */
  rxOversize: number;
  /** RJC: frames over the maximum size with a bad CRC. */
  rxJabbers: number;
}

function newHwCounters(): IxgbeHwCounters {
  return { rxMissedPacketBuffer: 0, rxNoDmaResources: 0, rxUndersize: 0, rxFragments: 0, rxOversize: 0, rxJabbers: 0 };
}

export class IxgbeStats {
  /** Totals of the device counters since reset() (driver-side drops are added by the device). */
  readonly totals: DeviceStats = newStats();
  readonly hw: IxgbeHwCounters = newHwCounters();
  readonly #mmio: Mmio;

  constructor(mmio: Mmio) {
    this.#mmio = mmio;
  }

  /** 4.6.5: reads (and so clears) every counter and starts the totals from zero. */
  reset(): void {
    this.update();
    Object.assign(this.totals, newStats());
    Object.assign(this.hw, newHwCounters());
  }

  /** Reads every counter once and adds it to the totals. */
  update(): void {
    const mmio = this.#mmio;
    const t = this.totals;
    const hw = this.hw;
    // Missed packets: frames the packet buffer could not take, one counter per packet buffer.
    let mpc = 0;
    for (let i = 0; i < 8; i++) mpc += getReg32(mmio, IXGBE_MPC(i));
    // With SRRCTL.DROP_EN (as configured), frames dropped for want of a descriptor count in
    // QPRDC, not MPC (Linux sums them as rx_no_dma_resources; Snabb's rxdrop): both are missed.
    let qprdc = 0;
    for (let i = 0; i < 16; i++) qprdc += getReg32(mmio, IXGBE_QPRDC(i));
    hw.rxMissedPacketBuffer += mpc;
    hw.rxNoDmaResources += qprdc;
    t.rxMissed += mpc + qprdc;
    // "Hardware workaround, gprc counts missed packets" (Linux/FreeBSD ixgbe_update_stats):
    // GPRC includes the frames MPC counts, so they come off.
    const rxPackets = getReg32(mmio, IXGBE_GPRC) - mpc;
    const txPackets = getReg32(mmio, IXGBE_GPTC);
    t.rxPackets += rxPackets;
    t.txPackets += txPackets;
    // The octet counters are 36 bits wide: read the low half first, then the high half. They
    // count from the destination address through the CRC; DeviceStats counts frames as the
    // application sees them (as virtio does), so the 4-byte FCS of each packet comes off.
    const gorcl = getReg32(mmio, IXGBE_GORCL);
    t.rxBytes += join64(gorcl, getReg32(mmio, IXGBE_GORCH)) - rxPackets * FCS_LENGTH;
    const gotcl = getReg32(mmio, IXGBE_GOTCL);
    t.txBytes += join64(gotcl, getReg32(mmio, IXGBE_GOTCH)) - txPackets * FCS_LENGTH;
    // Receive errors, as Linux sums them: CRC, illegal symbols, error symbols, length (too
    // short or longer than MAXFRS). The device drops these frames itself. RUC/RFC/ROC/RJC
    // break the length errors down (RLEC already counts them): read to clear, kept in hw.
    t.rxErrors += getReg32(mmio, IXGBE_CRCERRS) + getReg32(mmio, IXGBE_ILLERRC) +
      getReg32(mmio, IXGBE_ERRBC) + getReg32(mmio, IXGBE_RLEC);
    hw.rxUndersize += getReg32(mmio, IXGBE_RUC);
    hw.rxFragments += getReg32(mmio, IXGBE_RFC);
    hw.rxOversize += getReg32(mmio, IXGBE_ROC);
    hw.rxJabbers += getReg32(mmio, IXGBE_RJC);
  }
}
