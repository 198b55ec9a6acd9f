/**
 * The ixgbe driver for the Intel 82599 (X520 SFP+, KX4/KR backplane parts; the X540 and X550 are
 * recognized and refused, see ixgbe-ids.ts): createIxgbeDevice() and the device's control path.
 * Read #init() next to the 82599 datasheet: it is the list of steps of section 4.6, each with its
 * section number, and the Linux function (ixgbe_reset_hw_82599, ...) where it follows Linux. The
 * hot paths are in ixgbe-rx-queue.ts and ixgbe-tx-queue.ts. Which datasheet revision the section
 * numbers are from, and where to get it: docs/references.md.
 *
 * Ownership: the caller (openDevice, a test, an example) opens the PciFunction and the
 * DmaAllocator and closes them after the device. The driver enables DMA, maps BAR0, allocates
 * its rings and receive mempools from the allocator, and on close() stops and resets the device
 * but does not close the PciFunction or the allocator, and cannot free the memory it took from
 * the allocator: that goes away when the allocator is closed.
 */
import { PairStatus, QueueSharing, type SharedQueuePair } from "../queue-sharing.ts";
import type { HotPathMode } from "../specialize.ts";
import { NO_OFFLOADS, type DeviceOffloads, type DeviceOptions, type DeviceStats, type FlowAction, type FlowMatch, type NicDevice } from "../../device.ts";
import type { RingState } from "../../ring-state.ts";
import { DeviceClosedError, DeviceProtocolError, DeviceTimeoutError, NotSupportedError } from "../../errors.ts";
import type { DmaAllocator } from "../../mem/dma.ts";
import type { Mmio } from "../../pci/mmio.ts";
import type { PciFunction } from "../../pci/pci-function.ts";
import { clearFlags32, getReg32, pollUntil, setFlags32, setReg32, sleepMs, waitClearReg32, waitSetReg32 } from "../../pci/regs.ts";
import { badBatchCall, checkPromiscArgument, checkStatsTarget, goodBatch } from "../batch-args.ts";
import { checkDeviceOptionTypes, checkInteger, checkNonNegative, checkPowerOfTwo, checkRssKey } from "../../validate.ts";
import { requireStrongMemoryOrder } from "../memory-order.ts";
import { IXGBE_BACKPLANE_DEVICE_IDS, findIxgbeDeviceId } from "./ixgbe-ids.ts";
import { IXGBE_RSS_KEY_SIZE, randomRssKey, setupRss } from "./ixgbe-rss.ts";
import { FDIR_PACKET_BUFFER_KB, IxgbeFlowDirector } from "./ixgbe-fdir.ts";
import { IxgbeRxQueue } from "./ixgbe-rx-queue.ts";
import { decideIxgbeOffloads, rxBufferLayout, setupFrameSize, type IxgbeDataOffloads } from "./ixgbe-offloads.ts";
import { IxgbeStats, type IxgbeHwCounters } from "./ixgbe-stats.ts";
import { IxgbeTxQueue, TX_RS_INTERVAL } from "./ixgbe-tx-queue.ts";
import { IxgbeInterrupts } from "./ixgbe-interrupts.ts";
import { IXGBE_REGISTER_NAMES } from "./ixgbe-register-names.ts";
import { driverTrace, type DriverTrace } from "../../pci/register-trace.ts";
import {
  IXGBE_AUTOC,
  IXGBE_AUTOC2,
  IXGBE_AUTOC2_LINK_DISABLE_MASK,
  IXGBE_AUTOC_AN_RESTART,
  IXGBE_AUTOC_LMS_10G_SERIAL,
  IXGBE_AUTOC_LMS_KX4_KX_KR,
  IXGBE_AUTOC_LMS_MASK,
  IXGBE_CTRL,
  IXGBE_CTRL_EXT,
  IXGBE_CTRL_EXT_DRV_LOAD,
  IXGBE_CTRL_EXT_NS_DIS,
  IXGBE_CTRL_GIO_DIS,
  IXGBE_CTRL_RST_MASK,
  IXGBE_DCA_RXCTRL,
  IXGBE_DCA_RXCTRL_DATA_WRO_EN,
  IXGBE_DCA_RXCTRL_HEAD_WRO_EN,
  IXGBE_DCA_TXCTRL_82599,
  IXGBE_DCA_TXCTRL_DESC_WRO_EN,
  IXGBE_DMATXCTL,
  IXGBE_DMATXCTL_TE,
  IXGBE_DTXMXSZRQ,
  IXGBE_DTXMXSZRQ_MAX_BYTES_NUM_REQ,
  IXGBE_EEC,
  IXGBE_EEC_ARD,
  IXGBE_EIMC,
  IXGBE_ESDP,
  IXGBE_ESDP_SDP3,
  IXGBE_FCTRL,
  IXGBE_FCTRL_BAM,
  IXGBE_FCTRL_MPE,
  IXGBE_FCTRL_UPE,
  IXGBE_HLREG0,
  IXGBE_HLREG0_RXCRCSTRP,
  IXGBE_HLREG0_TXCRCEN,
  IXGBE_HLREG0_TXPADEN,
  IXGBE_IRQ_CLEAR_MASK,
  IXGBE_LINKS,
  IXGBE_LINKS_SPEED_100_82599,
  IXGBE_LINKS_SPEED_10G_82599,
  IXGBE_LINKS_SPEED_1G_82599,
  IXGBE_LINKS_SPEED_82599,
  IXGBE_LINKS_UP,
  IXGBE_MTQC,
  IXGBE_MTQC_64Q_1PB,
  IXGBE_RAH,
  IXGBE_RAL,
  IXGBE_RDRXCTL,
  IXGBE_RDRXCTL_CRCSTRIP,
  IXGBE_RDRXCTL_DMAIDONE,
  IXGBE_RDRXCTL_FCOE_WRFIX,
  IXGBE_RDRXCTL_RSCACKC,
  IXGBE_RDRXCTL_RSCFRSTSIZE,
  IXGBE_RTTDCS,
  IXGBE_RTTDCS_ARBDIS,
  IXGBE_RXCTRL,
  IXGBE_RXCTRL_RXEN,
  IXGBE_RXPBSIZE,
  IXGBE_RXPBSIZE_MAX,
  IXGBE_RXPBSIZE_SHIFT,
  IXGBE_SECRXCTRL,
  IXGBE_SECRXCTRL_RX_DIS,
  IXGBE_SECRXSTAT,
  IXGBE_SECRXSTAT_SECRX_RDY,
  IXGBE_STATUS,
  IXGBE_STATUS_GIO,
  IXGBE_TXPBSIZE,
  IXGBE_TXPBSIZE_MAX,
} from "./ixgbe_type.ts";

export { IXGBE_DEVICE_IDS, IXGBE_VENDOR_ID, findIxgbeDeviceId, type IxgbeDeviceId } from "./ixgbe-ids.ts";

/** The 82599 has 128 queues of each kind; like ixy, the driver uses the first bank of 64. */
export const IXGBE_MAX_QUEUES = 64;
export const IXGBE_DEFAULT_RING_SIZE = 512;
/** Ring sizes: a power of two from 64 (two TX clean batches) to 4096 (ixy's tested maximum). */
export const IXGBE_MIN_RING_SIZE = 2 * TX_RS_INTERVAL;
export const IXGBE_MAX_RING_SIZE = 4096;
export const IXGBE_DEFAULT_LINK_TIMEOUT_MS = 10_000;

/** Register waits during init and close; generous for hardware, instant for the model. */
const REGISTER_TIMEOUT_MS = 1000;
/** ixgbe_reset_hw_82599: ~1 ms after writing CTRL.RST before the first poll of the bit. */
const RESET_FIRST_POLL_MS = 1;
/** ixgbe_reset_hw_82599: msleep(50) after the reset bits cleared, before touching the device. */
const RESET_SETTLE_MS = 50;
/** ixgbe_disable_pcie_master: up to 800 polls of 100 us for STATUS.GIO to clear. */
const MASTER_DISABLE_TIMEOUT_MS = 80;
/** ixgbe_disable_sec_rx_path_generic: how long to wait for SECRXSTAT.SECRX_RDY (then go on, as Linux does). */
const SECRX_READY_TIMEOUT_MS = 40;
const LINK_POLL_MS = 10;
/**
 * How long close() waits for a transmit queue to drain with the link up: a full 4096-descriptor
 * ring of 1518-byte frames takes 5 ms at 10 Gbit/s. Longer means the partner holds it off.
 */
const TX_DISABLE_TIMEOUT_MS = 100;
/**
 * The statistics registers are read at least every STATS_POLL_CALLS calls of rxBatch (and of
 * txBatch) on each queue, whatever the caller does (see IxgbeStats for why that is enough).
 */
export const STATS_POLL_CALLS = 1024;

/**
 * Opens the 82599-family device behind `pci` with the ixgbe driver: enables DMA, maps BAR0,
 * resets and initializes the device (datasheet 4.6), starts all queues in promiscuous mode and
 * waits for the link (options.linkTimeoutMs, default 10 s; 0 = do not wait).
 * Throws RangeError for bad options, DeviceTimeoutError when the device or the link does not
 * come up, DmaError when memory runs out, NotSupportedError on a CPU other than x86-64 or for an
 * X540/X550 (ixgbe-ids.ts says why).
 *
 * With rxQueues > 1 the driver programs receive-side scaling (ixgbe-rss.ts, datasheet 7.1.2.8):
 * IPv4 and IPv6 frames are spread over the receive queues by a Toeplitz hash of their addresses
 * and TCP/UDP ports (key: options.rssKey, or a random one), every flow always in the same queue;
 * other frames (ARP, non-IP) go to queue 0. The 82599 spreads over at most 16 queues: queues
 * 16 and up receive nothing. With rxQueues = 1 RSS stays off.
 */
export function createIxgbeDevice(pci: PciFunction, dma: DmaAllocator, options: DeviceOptions = {}): NicDevice {
  return new IxgbeDevice(pci, dma, options);
}

function checkCount(address: string, what: string, value: number): number {
  return checkInteger(address, what, value, 0, IXGBE_MAX_QUEUES);
}

function checkRingSize(address: string, what: string, value: number): number {
  return checkPowerOfTwo(address, what, value, IXGBE_MIN_RING_SIZE, IXGBE_MAX_RING_SIZE);
}

export class IxgbeDevice implements NicDevice {
  readonly driver = "ixgbe";
  readonly address: string;
  readonly rxQueues: number;
  readonly txQueues: number;
  readonly dma: DmaAllocator;
  /** What the device offloads (decided in the constructor). */
  offloads: DeviceOffloads = NO_OFFLOADS;
  readonly #mmio: Mmio;
  /** BAR0 itself, never the trace wrapper: ringState reads RDH/TDH here, so an inspector's reads do not show up as the driver's. */
  readonly #bar0: Mmio;
  /** Queue objects by index; emptied by close(), so a closed device has no valid queue. */
  #rx: IxgbeRxQueue[];
  #tx: IxgbeTxQueue[];
  /**
   * What rxBatch/txBatch look the queue up in: #rx and #tx while the device works, empty once it
   * was found reset behind the driver's back (#checkAlive), so that every later call takes the
   * slow path, which throws #broken, at no cost to the hot path.
   */
  #rxBy: readonly (IxgbeRxQueue | undefined)[] = [];
  #txBy: readonly (IxgbeTxQueue | undefined)[] = [];
  /** Queue pairs handed to worker threads (shareQueuePair): left out of #rxBy and #txBy. */
  readonly #sharing: QueueSharing;
  readonly #hotPath: HotPathMode | undefined;
  #broken: DeviceProtocolError | null = null;
  /** The queues of a close() whose reset could not be confirmed: their buffers are still out. */
  #unreleased: { readonly rx: readonly IxgbeRxQueue[]; readonly tx: readonly IxgbeTxQueue[] } | null = null;
  readonly #stats: IxgbeStats;
  /** An SFP+ part (X520): the driver sets the link mode; otherwise the NVM's is kept. */
  readonly #sfp: boolean;
  /** The RSS key programmed into RSSRK when rxQueues > 1 (null: RSS off). */
  readonly #rssKey: Uint8Array | null;
  /** DeviceOptions.interrupts: MSI-X set up at init (ixgbe-interrupts.ts); null: polling only. */
  #irq: IxgbeInterrupts | null = null;
  readonly #pci: PciFunction;
  readonly #wantInterrupts: boolean;
  /** Flow Director perfect filters (ixgbe-fdir.ts); null unless opened with flowDirector: true. */
  readonly #fdir: IxgbeFlowDirector | null;
  /** Checksums, TSO, frame size (ixgbe-offloads.ts). */
  readonly #data: IxgbeDataOffloads;
  #closed = false;
  /** DeviceOptions.trace (NO_TRACE when off): the steps below are announced to it. */
  readonly #trace: DriverTrace;

  constructor(pci: PciFunction, dma: DmaAllocator, options: DeviceOptions) {
    const address = pci.address;
    // x86-64 ordering: the queues have no fences (memory-order.ts); refuse other CPUs up front.
    requireStrongMemoryOrder(address);
    options = checkDeviceOptionTypes(address, options);
    const id = findIxgbeDeviceId(pci.vendorId, pci.deviceId);
    if (id?.unsupported !== undefined) {
      throw new NotSupportedError(`${address}: the ${id.name} (8086:${pci.deviceId.toString(16).padStart(4, "0")}) is not supported by ` +
        `the ixgbe driver yet: ${id.unsupported}; use an 82599/X520 port, or the kernel's ixgbe driver`);
    }
    this.#sfp = !IXGBE_BACKPLANE_DEVICE_IDS.includes(pci.deviceId);
    this.#pci = pci;
    this.#wantInterrupts = options.interrupts === true;
    this.address = address;
    this.dma = dma;
    this.rxQueues = checkCount(address, "rxQueues", options.rxQueues ?? 1);
    this.txQueues = checkCount(address, "txQueues", options.txQueues ?? 1);
    this.#sharing = new QueueSharing(address, Math.min(this.rxQueues, this.txQueues));
    this.#hotPath = options.hotPath;
    const rxRingSize = checkRingSize(address, "rxRingSize", options.rxRingSize ?? IXGBE_DEFAULT_RING_SIZE);
    const txRingSize = checkRingSize(address, "txRingSize", options.txRingSize ?? IXGBE_DEFAULT_RING_SIZE);
    const mempoolSize = checkInteger(address, "mempoolSize", options.mempoolSize ?? Math.max(4096, 2 * rxRingSize), 1, 1 << 24);
    if (mempoolSize <= rxRingSize) {
      throw new RangeError(
        `${address}: mempoolSize must be an integer larger than rxRingSize (${rxRingSize}): the ring holds ` +
          `that many buffers and rxBatch needs spare ones to hand out; got ${mempoolSize}`,
      );
    }
    const rssKey = checkRssKey(address, options.rssKey, IXGBE_RSS_KEY_SIZE);
    this.#rssKey = this.rxQueues > 1 ? rssKey ?? randomRssKey() : null;
    const linkTimeoutMs = checkNonNegative(address, "linkTimeoutMs", options.linkTimeoutMs ?? IXGBE_DEFAULT_LINK_TIMEOUT_MS, "milliseconds");
    const data = decideIxgbeOffloads(address, options);
    this.#data = data;
    this.offloads = { ...NO_OFFLOADS, ...data };
    const layout = rxBufferLayout(data.maxFrameSize);

    this.#trace = driverTrace(options.trace, address);
    pci.enableDma();
    // With trace off this is BAR0 itself: the driver accesses it as if trace mode did not exist.
    this.#bar0 = pci.bar(0);
    this.#mmio = this.#trace.wrap(this.#bar0, IXGBE_REGISTER_NAMES);
    this.#fdir = options.flowDirector === true ? new IxgbeFlowDirector(this.#mmio, address, this.rxQueues) : null;
    this.#stats = new IxgbeStats(this.#mmio);
    // Every POLL_CALLS rx/txBatch calls: the counters, and whether the device is still ours (it
    // does not throw there: the transmit loop calls it after taking buffers; the next call does).
    const pollStats = (): void => {
      this.#stats.update();
      this.#noticeReset();
    };

    // What the allocator held before: a failed init gives back everything it took (#abandon).
    const mark = dma.mark?.();
    this.#rx = [];
    this.#tx = [];
    try {
      for (let i = 0; i < this.rxQueues; i++) {
        const queue = new IxgbeRxQueue(dma, this.#mmio, {
          index: i, ringSize: rxRingSize, mempoolSize, checked: options.checked ?? false, device: address, hotPath: options.hotPath,
          pollStats, pollCalls: STATS_POLL_CALLS, entrySize: layout.entrySize, bufferSize: layout.bufferSize, rxChecksum: data.rxChecksum,
        });
        // SRRCTL.BSIZEPACKET may be larger than a buffer's data area (headroom): fine only
        // because MAXFRS keeps frames at maxFrameSize (+4 VLAN), which the data area holds.
        if (queue.pool.dataCapacity < layout.largestWrite) {
          throw new RangeError(
            `${address}: RX buffers hold ${queue.pool.dataCapacity} bytes, fewer than the ${layout.largestWrite}-byte frames the device may write`,
          );
        }
        this.#rx.push(queue);
      }
      for (let i = 0; i < this.txQueues; i++) {
        this.#tx.push(new IxgbeTxQueue(dma, this.#mmio, {
          index: i, ringSize: txRingSize, device: address, hotPath: options.hotPath, pollStats, pollCalls: STATS_POLL_CALLS,
          txChecksum: data.txChecksum, tso: data.tso, maxFrameSize: data.maxFrameSize,
        }));
      }
      this.#init(linkTimeoutMs);
    } catch (e) {
      // Nobody gets a handle to close this device: stop it, so that it does not keep writing
      // into memory its opener is about to release, and give back the rings and pools.
      this.#abandon(dma, mark);
      this.#trace.close();
      throw e;
    }
  }

  /**
   * After a failed init: stop the device with a reset and wait until it is done, so that it no
   * longer reads or writes the rings; only then do the rings' buffers go back to their pools, the
   * receive pools close and the allocator gets back what the init took (DmaAllocator.releaseSince).
   * A second failure must not hide the first: if the reset cannot be confirmed, the buffers and
   * the memory stay out (leaked, not handed to a device that may still write them).
   */
  #abandon(dma: DmaAllocator, mark: number | undefined): void {
    this.#closed = true;
    this.#irq?.close();
    let stopped = false;
    try {
      setReg32(this.#mmio, IXGBE_EIMC, IXGBE_IRQ_CLEAR_MASK);
      this.#resetDevice(false);
      stopped = true;
    } catch {
      // the device is unreachable or stuck in reset: the original error says more
    }
    if (stopped) {
      for (const q of this.#tx) q.releaseBuffers();
      for (const q of this.#rx) q.releaseBuffers();
      try {
        // Memory kept is safer than memory unmapped under a live pool: a pool that cannot be
        // closed keeps it all.
        for (const q of this.#rx) q.pool.close();
        if (mark !== undefined) dma.releaseSince?.(mark);
      } catch {
        // the original error says more
      }
    }
    this.#rx = [];
    this.#tx = [];
  }

  /**
   * ixgbe_reset_hw_82599, the parts that apply here: PCIe master disable first (5.2.5.3.2,
   * ixgbe_disable_pcie_master: CTRL.GIO_DIS, then wait for STATUS.GIO to clear), then the global
   * reset (CTRL.RST and CTRL.LNK_RST, as ixy does), ~1 ms before the first poll of the bits, and
   * with `settle` the 50 ms Linux sleeps before touching the device again. When mastering did not
   * stop (requests still pending), the 82599 specification update asks for two resets in a row
   * (Linux: IXGBE_FLAGS_DOUBLE_RESET_REQUIRED).
   */
  #resetDevice(settle: boolean): void {
    const mmio = this.#mmio;
    this.#trace.step("5.2.5.3.2", "PCIe master disable");
    setFlags32(mmio, IXGBE_CTRL, IXGBE_CTRL_GIO_DIS);
    let doubleReset = false;
    try {
      waitClearReg32(mmio, IXGBE_STATUS, IXGBE_STATUS_GIO, { timeoutMs: MASTER_DISABLE_TIMEOUT_MS, name: "STATUS.GIO" });
    } catch (e) {
      if (!(e instanceof DeviceTimeoutError)) throw e;
      doubleReset = true;
    }
    this.#trace.step("4.6.3.2", doubleReset ? "global reset (twice: mastering did not stop)" : "global reset");
    for (let round = doubleReset ? 2 : 1; round > 0; round--) {
      // Keep GIO_DIS in the written value, as Linux's "ctrl |= IXGBE_READ_REG(hw, IXGBE_CTRL)" does.
      setFlags32(mmio, IXGBE_CTRL, IXGBE_CTRL_RST_MASK);
      sleepMs(RESET_FIRST_POLL_MS);
      waitClearReg32(mmio, IXGBE_CTRL, IXGBE_CTRL_RST_MASK, { timeoutMs: REGISTER_TIMEOUT_MS, name: "CTRL.RST" });
      if (settle || round > 1) sleepMs(RESET_SETTLE_MS);
    }
  }

  /** Datasheet 4.6: reset and initialize, one line per step. */
  #init(linkTimeoutMs: number): void {
    const mmio = this.#mmio;
    const wait = { timeoutMs: REGISTER_TIMEOUT_MS };

    const trace = this.#trace;
    // 4.6.3.1: disable all interrupts (this driver polls).
    trace.step("4.6.3.1", "interrupts off");
    setReg32(mmio, IXGBE_EIMC, IXGBE_IRQ_CLEAR_MASK);
    // 4.6.3.2: global reset (device and link) after a PCIe master disable, wait for the bits to
    // self-clear, let it settle (ixgbe_reset_hw_82599).
    this.#resetDevice(true);
    // 4.6.3.1: the reset re-enabled nothing, but the datasheet wants interrupts disabled again.
    trace.step("4.6.3.1", "interrupts off after the reset");
    setReg32(mmio, IXGBE_EIMC, IXGBE_IRQ_CLEAR_MASK);
    // 4.6.3: wait for the EEPROM auto-read (it loads the MAC address and link settings)...
    trace.step("4.6.3", "wait for the EEPROM auto-read");
    waitSetReg32(mmio, IXGBE_EEC, IXGBE_EEC_ARD, { ...wait, name: "EEC.ARD" });
    // ... and for the DMA engine's init cycle.
    trace.step("4.6.3", "wait for the DMA init cycle");
    waitSetReg32(mmio, IXGBE_RDRXCTL, IXGBE_RDRXCTL_DMAIDONE, { ...wait, name: "RDRXCTL.DMAIDONE" });

    // ixgbe_get_hw_control: tell manageability firmware a driver runs the port.
    trace.step("4.6.3", "driver loaded (Linux ixgbe_get_hw_control)");
    setFlags32(mmio, IXGBE_CTRL_EXT, IXGBE_CTRL_EXT_DRV_LOAD);

    // 4.6.4: link setup.
    trace.step("4.6.4", "link setup");
    this.#setupLink();

    // 4.6.5: statistics registers clear on read; read them all once to start from zero.
    trace.step("4.6.5", "clear the statistics");
    this.#stats.reset();

    // 4.6.7: receive initialization.
    trace.step("4.6.7", "receive init");
    this.#initRx();

    // 4.6.8: transmit initialization.
    trace.step("4.6.8", "transmit init");
    this.#initTx();

    // 7.3: with DeviceOptions.interrupts, MSI-X and one vector per receive queue, all masked.
    if (this.#wantInterrupts) {
      trace.step("7.3", "MSI-X interrupts");
      this.#irq = new IxgbeInterrupts(mmio, this.#pci, this.address, this.rxQueues);
      this.offloads = { ...this.offloads, interrupts: true };
    }

    // 4.6.7.1 and 4.6.8.1: enable the queues, now that everything else is in place.
    trace.step("4.6.7.1", "enable the receive queues");
    for (const queue of this.#rx) queue.start(mmio, REGISTER_TIMEOUT_MS);
    // 4.6.7: start receiving only once every queue has its descriptors.
    trace.step("4.6.7", "receive on (RXCTRL.RXEN)");
    this.#enableRx();
    trace.step("4.6.8.1", "enable the transmit queues");
    for (const queue of this.#tx) queue.start(mmio, REGISTER_TIMEOUT_MS);
    this.#dispatch();

    // 8.2.3.7.1: promiscuous mode makes testing easier (as in ixy); setPromisc(false) undoes it.
    this.setPromisc(true);

    // 4.6.4: the link comes up in the background; wait for it (the datasheet allows waiting last).
    if (linkTimeoutMs > 0) {
      trace.step("4.6.4", "wait for the link");
      this.#waitForLink(linkTimeoutMs);
    }
    // From here on, what no control operation announces is the hot path's.
    trace.hotPath();
  }

  /**
   * 4.6.4 link setup of the 82599.
   * - "Enable link if disabled in NVM" (Linux, ixgbe_reset_pipeline_82599 and ixgbe_reset_hw_82599):
   *   clear AUTOC2's link-disable bits.
   * - Backplane parts (KX4, KR, ...): the NVM loaded AUTOC with the mode the board is wired for;
   *   it is kept and auto-negotiation restarted with it.
   * - SFP+ parts (X520): as ixgbe_setup_sfp_modules_82599 ends, force LMS to 10 Gb serial and
   *   reset the pipeline (ixgbe_reset_pipeline_82599: write AUTOC with LMS[2] toggled and
   *   Restart_AN, then with the wanted LMS and Restart_AN), and turn the laser on (DPDK's
   *   ixgbe_enable_tx_laser: clear ESDP.SDP3, which the board may wire to TX_DISABLE). Not done:
   *   the NVM's SFP+ init sequence into CORECTL (ixgbe_get_sfp_init_sequence_offsets) and 1 Gb
   *   or multispeed modules; see README "Running on a real NIC".
   */
  #setupLink(): void {
    const mmio = this.#mmio;
    const autoc2 = getReg32(mmio, IXGBE_AUTOC2);
    if ((autoc2 & IXGBE_AUTOC2_LINK_DISABLE_MASK) !== 0) setReg32(mmio, IXGBE_AUTOC2, autoc2 & ~IXGBE_AUTOC2_LINK_DISABLE_MASK);
    let autoc = getReg32(mmio, IXGBE_AUTOC);
    if (this.#sfp) {
      clearFlags32(mmio, IXGBE_ESDP, IXGBE_ESDP_SDP3);
      autoc = (autoc & ~IXGBE_AUTOC_LMS_MASK) | IXGBE_AUTOC_LMS_10G_SERIAL;
      setReg32(mmio, IXGBE_AUTOC, (autoc ^ IXGBE_AUTOC_LMS_KX4_KX_KR) | IXGBE_AUTOC_AN_RESTART);
    }
    setReg32(mmio, IXGBE_AUTOC, autoc | IXGBE_AUTOC_AN_RESTART);
  }

  /**
   * RXCTRL.RXEN on, inside the 82599 erratum workaround of Linux's ixgbe_enable_rx_dma_82599:
   * stop the receive security path (SECRXCTRL.RX_DIS, wait for SECRXSTAT.SECRX_RDY; like Linux,
   * go on if it does not come), set RXEN, let the path run again.
   */
  #enableRx(): void {
    const mmio = this.#mmio;
    setFlags32(mmio, IXGBE_SECRXCTRL, IXGBE_SECRXCTRL_RX_DIS);
    try {
      waitSetReg32(mmio, IXGBE_SECRXSTAT, IXGBE_SECRXSTAT_SECRX_RDY, { timeoutMs: SECRX_READY_TIMEOUT_MS, name: "SECRXSTAT.SECRX_RDY" });
    } catch (e) {
      if (!(e instanceof DeviceTimeoutError)) throw e;
    }
    setFlags32(mmio, IXGBE_RXCTRL, IXGBE_RXCTRL_RXEN);
    clearFlags32(mmio, IXGBE_SECRXCTRL, IXGBE_SECRXCTRL_RX_DIS);
  }

  /** 4.6.7: receive initialization; the queues are enabled later (4.6.7.1). */
  #initRx(): void {
    const mmio = this.#mmio;
    // Receive stays off while it is configured.
    clearFlags32(mmio, IXGBE_RXCTRL, IXGBE_RXCTRL_RXEN);
    // 4.6.11.3.1 (no DCB, no virtualization): the whole 512 KB receive packet buffer of the
    // 82599 to buffer 0, the other seven unused (X540/X550, with 384 KB, are refused); with
    // Flow Director on, less the table's share of it (7.1.2.7; Linux's ixgbe_configure_pb).
    const fdirKb = this.#fdir !== null ? FDIR_PACKET_BUFFER_KB : 0;
    setReg32(mmio, IXGBE_RXPBSIZE(0), (IXGBE_RXPBSIZE_MAX - (fdirKb << IXGBE_RXPBSIZE_SHIFT)) >>> 0);
    for (let i = 1; i < 8; i++) setReg32(mmio, IXGBE_RXPBSIZE(i), 0);
    // Strip the Ethernet CRC: HLREG0.RXCRCSTRP and RDRXCTL.CRCSTRIP must agree (8.2.3.8.8).
    setFlags32(mmio, IXGBE_HLREG0, IXGBE_HLREG0_RXCRCSTRP);
    // The largest frame received: MAXFRS, and HLREG0.JUMBOEN above 1514 bytes (ixgbe-offloads.ts).
    setupFrameSize(mmio, this.#data.maxFrameSize);
    // RDRXCTL: RSCFRSTSIZE reads non-zero but must be written 0; RSCACKC and FCOE_WRFIX read 0
    // but must be written 1 (8.2.3.8.8).
    let rdrxctl = getReg32(mmio, IXGBE_RDRXCTL);
    rdrxctl = (rdrxctl & ~IXGBE_RDRXCTL_RSCFRSTSIZE) | IXGBE_RDRXCTL_CRCSTRIP | IXGBE_RDRXCTL_RSCACKC | IXGBE_RDRXCTL_FCOE_WRFIX;
    setReg32(mmio, IXGBE_RDRXCTL, rdrxctl);
    // Accept broadcast frames.
    setFlags32(mmio, IXGBE_FCTRL, IXGBE_FCTRL_BAM);
    // Per queue: descriptor type, buffer size, drop policy, ring (7.1.9).
    for (const queue of this.#rx) {
      this.#trace.step("7.1.9", `receive queue ${queue.index} ring`);
      queue.configure(mmio);
    }
    // 7.1.2.8: with several receive queues, spread flows over them (key, RETA, MRQC; ixgbe-rss.ts).
    if (this.#rssKey !== null) {
      this.#trace.step("7.1.2.8", "receive-side scaling");
      setupRss(mmio, this.rxQueues, this.#rssKey);
    }
    // 7.1.2.7: Flow Director perfect filters, set up before receive is enabled (ixgbe-fdir.ts).
    if (this.#fdir !== null) {
      this.#trace.step("7.1.2.7", "Flow Director");
      this.#fdir.init();
      this.offloads = { ...this.offloads, flowDirector: true };
    }
    this.#trace.step("4.6.7", "receive init: no snoop off, relaxed ordering off");
    // Last sentence of 4.6.7: set CTRL_EXT.NS_DIS, and clear DCA_RXCTRL bit 12 (reserved, reads
    // as 1, must be written 0; Linux has no name for it).
    setFlags32(mmio, IXGBE_CTRL_EXT, IXGBE_CTRL_EXT_NS_DIS);
    // Also clear relaxed ordering of the data and header writes, as Linux's ixgbe_start_hw_gen2
    // does: the DD write-back must not overtake them.
    for (const queue of this.#rx) {
      clearFlags32(mmio, IXGBE_DCA_RXCTRL(queue.index), (1 << 12) | IXGBE_DCA_RXCTRL_DATA_WRO_EN | IXGBE_DCA_RXCTRL_HEAD_WRO_EN);
    }
  }

  /** 4.6.8: transmit initialization; the queues are enabled later (4.6.8.1). */
  #initTx(): void {
    const mmio = this.#mmio;
    // Append the CRC and pad short frames to 64 bytes in hardware.
    setFlags32(mmio, IXGBE_HLREG0, IXGBE_HLREG0_TXCRCEN | IXGBE_HLREG0_TXPADEN);
    // 4.6.11.3.4 (no DCB, no virtualization): with the DCB arbiter disabled, give the whole
    // 160 KB packet buffer to TC 0, select 64 queues / 1 packet buffer, allow maximum-size
    // DMA read requests, then enable the arbiter again.
    this.#trace.step("4.6.11.3.4", "transmit packet buffer, DCB off");
    setFlags32(mmio, IXGBE_RTTDCS, IXGBE_RTTDCS_ARBDIS);
    setReg32(mmio, IXGBE_TXPBSIZE(0), IXGBE_TXPBSIZE_MAX);
    for (let i = 1; i < 8; i++) setReg32(mmio, IXGBE_TXPBSIZE(i), 0);
    setReg32(mmio, IXGBE_MTQC, IXGBE_MTQC_64Q_1PB);
    setReg32(mmio, IXGBE_DTXMXSZRQ, IXGBE_DTXMXSZRQ_MAX_BYTES_NUM_REQ);
    clearFlags32(mmio, IXGBE_RTTDCS, IXGBE_RTTDCS_ARBDIS);
    // Per queue: ring and TXDCTL thresholds (7.2.3.4.1); no relaxed ordering of the DD
    // write-back (ixgbe_start_hw_gen2).
    for (const queue of this.#tx) {
      this.#trace.step("7.2.3.4.1", `transmit queue ${queue.index} ring`);
      queue.configure(mmio);
      clearFlags32(mmio, IXGBE_DCA_TXCTRL_82599(queue.index), IXGBE_DCA_TXCTRL_DESC_WRO_EN);
    }
    // DMATXCTL.TE must be set before any transmit queue is enabled.
    this.#trace.step("4.6.8", "transmit on (DMATXCTL.TE)");
    setFlags32(mmio, IXGBE_DMATXCTL, IXGBE_DMATXCTL_TE);
  }

  #waitForLink(timeoutMs: number): void {
    pollUntil(() => this.linkSpeed() !== 0, {
      timeoutMs,
      pollMs: LINK_POLL_MS,
      onTimeout: () =>
        new DeviceTimeoutError(
          `${this.address}: the link did not come up within ${timeoutMs} ms (LINKS = 0x` +
            `${getReg32(this.#mmio, IXGBE_LINKS).toString(16).padStart(8, "0")}): check the cable or SFP+ module ` +
            `and the link partner, raise linkTimeoutMs (the apps' --link-timeout MS), or pass linkTimeoutMs: 0 to open the device without waiting`,
        ),
    });
  }

  // ---- NicDevice ----

  rxBatch(queue: number, bufs: Int32Array, max: number): number {
    const q = this.#rxBy[queue];
    if (q === undefined || !goodBatch(bufs, max)) {
      if (this.#broken !== null && !this.#closed) throw this.#broken;
      if (!this.#closed && this.#sharing.isShared(queue)) this.#sharing.refuse(queue, "rxBatch");
      badBatchCall(this.address, "rxBatch", this.#closed, queue, this.rxQueues, bufs, max);
    }
    return q.receive(bufs, max);
  }

  txBatch(queue: number, bufs: Int32Array, count: number): number {
    const q = this.#txBy[queue];
    if (q === undefined || !goodBatch(bufs, count)) {
      if (this.#broken !== null && !this.#closed) throw this.#broken;
      if (!this.#closed && this.#sharing.isShared(queue)) this.#sharing.refuse(queue, "txBatch");
      badBatchCall(this.address, "txBatch", this.#closed, queue, this.txQueues, bufs, count);
    }
    return q.send(bufs, count);
  }

  /**
   * Sleeps until receive queue `queue` may have frames (true) or `timeoutMs` passed (false), on
   * the queue's MSI-X interrupt (ixgbe-interrupts.ts has the sequence); never blocks the event
   * loop. Needs the device opened with interrupts: true (NotSupportedError otherwise).
   */
  waitForRx(queue: number, timeoutMs: number): Promise<boolean> {
    try {
      this.#checkOpen("waitForRx");
      if (this.#broken !== null) throw this.#broken;
      const irq = this.#irq;
      if (irq === null) {
        throw new NotSupportedError(`${this.address}: waitForRx() on a device opened without interrupts: open it with interrupts: true`);
      }
      checkInteger(this.address, "waitForRx()'s queue", queue, 0, this.rxQueues - 1);
      checkNonNegative(this.address, "waitForRx()'s timeoutMs", timeoutMs, "milliseconds");
      if (this.#sharing.isShared(queue)) this.#sharing.refuse(queue, "waitForRx");
      const rx = this.#rx[queue]!;
      return irq.wait(queue, () => rx.hasFrame(), timeoutMs);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Totals since the device was opened. Byte counts are frames as the application sees them,
   * without the 4-byte Ethernet CRC: GORC/GOTC count from the destination address through the
   * CRC, and IxgbeStats (ixgbe-stats.ts) takes 4 bytes per packet off, so that they agree with
   * virtio's counts.
   * rxErrors adds the frames the driver dropped to the device's error counters; txErrors counts
   * frames txBatch refused for their length (0, under 17 bytes, or over the buffer).
   * rxMissed counts both causes of drops: no descriptor (QPRDC) and a full packet buffer (MPC);
   * hwCounters() has them apart.
   */
  readStats(into: DeviceStats): void {
    checkStatsTarget(this.address, into);
    if (!this.#closed) {
      this.#trace.enter("8.2.3.23", "statistics (readStats)");
      try {
        this.#stats.update();
        this.#noticeReset();
      } finally {
        this.#trace.leave();
      }
    }
    const totals = this.#stats.totals;
    let rxDropped = 0;
    let txDropped = 0;
    for (const q of this.#rx) rxDropped += q.errors;
    for (const q of this.#tx) txDropped += q.errors;
    into.rxPackets = totals.rxPackets;
    into.txPackets = totals.txPackets;
    into.rxBytes = totals.rxBytes;
    into.txBytes = totals.txBytes;
    into.rxMissed = totals.rxMissed;
    into.rxErrors = totals.rxErrors + rxDropped;
    into.txErrors = totals.txErrors + txDropped;
    // After the counters, so that the last totals are there when this throws.
    if (this.#broken !== null && !this.#closed) throw this.#broken;
  }

  /**
   * The device counters DeviceStats does not carry (drops by cause, length errors by kind),
   * totals since open; read now unless the device is closed.
   */
  hwCounters(): Readonly<IxgbeHwCounters> {
    if (!this.#closed) {
      this.#trace.enter("8.2.3.23", "statistics (hwCounters)");
      try {
        this.#stats.update();
      } finally {
        this.#trace.leave();
      }
    }
    return { ...this.#stats.hw };
  }

  /**
   * A Flow Director perfect filter (ixgbe-fdir.ts, docs/flow-director.md): IPv4 frames matching
   * `match` go to queue `action` or are dropped, ahead of RSS.
   */
  addFlowRule(match: FlowMatch, action: FlowAction): number {
    return this.#flowDirector("addFlowRule").add(match, action);
  }

  removeFlowRule(id: number): void {
    this.#flowDirector("removeFlowRule").remove(id);
  }

  /** FDIRMATCH / FDIRMISS totals since open: frames a rule matched (dropped ones too), frames no rule matched. */
  flowDirectorCounters(): { matched: number; missed: number; rules: number } {
    const fdir = this.#flowDirector("flowDirectorCounters");
    return { ...fdir.counters(), rules: fdir.ruleCount };
  }

  #flowDirector(what: string): IxgbeFlowDirector {
    this.#checkOpen(what);
    if (this.#broken !== null) throw this.#broken;
    if (this.#fdir === null) {
      throw new NotSupportedError(`${this.address}: ${what}() needs Flow Director, which is off: open the device with flowDirector: true ` +
        `(it takes 64 KB of the receive packet buffer)`);
    }
    return this.#fdir;
  }

  /** 8.2.3.7.1: FCTRL.UPE and FCTRL.MPE accept every unicast and multicast frame. */
  setPromisc(on: boolean): void {
    this.#checkOpen("setPromisc");
    checkPromiscArgument(this.address, on);
    this.#trace.enter("8.2.3.7.1", `promiscuous mode ${on ? "on" : "off"}`);
    try {
      if (on) setFlags32(this.#mmio, IXGBE_FCTRL, IXGBE_FCTRL_UPE | IXGBE_FCTRL_MPE);
      else clearFlags32(this.#mmio, IXGBE_FCTRL, IXGBE_FCTRL_UPE | IXGBE_FCTRL_MPE);
    } finally {
      this.#trace.leave();
    }
  }

  /** 8.2.3.22.19 LINKS: link state and speed in Mbit/s (0 while down). */
  linkSpeed(): number {
    this.#checkOpen("linkSpeed");
    this.#trace.enter("8.2.3.22.19", "link status (linkSpeed)");
    let links: number;
    try {
      this.#noticeReset();
      if (this.#broken !== null) throw this.#broken;
      links = getReg32(this.#mmio, IXGBE_LINKS);
    } finally {
      this.#trace.leave();
    }
    if ((links & IXGBE_LINKS_UP) === 0) return 0;
    switch ((links & IXGBE_LINKS_SPEED_82599) >>> 0) {
      case IXGBE_LINKS_SPEED_10G_82599: return 10_000;
      case IXGBE_LINKS_SPEED_1G_82599: return 1_000;
      case IXGBE_LINKS_SPEED_100_82599: return 100;
      default: return 0;
    }
  }

  /** Receive address 0 (RAL(0)/RAH(0)), which the EEPROM auto-read loaded at reset. */
  macAddress(): Uint8Array {
    this.#checkOpen("macAddress");
    this.#trace.enter("8.2.3.7", "receive address 0 (macAddress)");
    let low: number;
    let high: number;
    try {
      low = getReg32(this.#mmio, IXGBE_RAL(0));
      high = getReg32(this.#mmio, IXGBE_RAH(0));
    } finally {
      this.#trace.leave();
    }
    return Uint8Array.of(low & 0xff, (low >>> 8) & 0xff, (low >>> 16) & 0xff, low >>> 24, high & 0xff, (high >>> 8) & 0xff);
  }

  /**
   * Disables receive and every queue, resets the device and returns the buffers in the transmit
   * and receive rings to their pools. Idempotent. Does not close the PciFunction or the
   * DmaAllocator.
   *
   * The reset always happens, whatever failed before it, and the rings' buffers go back to
   * their pools only once the reset is confirmed: until then the device may still read or write
   * them. A queue that did not finish disabling in time (a link partner holding transmission off
   * with PAUSE frames, say) is stopped by that reset, so that timeout is not an error, as in
   * Linux (which logs "Could not stop Tx queue" and resets); any other failure, or a reset that
   * cannot be confirmed, is rethrown (the first one) after everything else was tried.
   * Afterwards PCIe mastering stays disabled (CTRL.GIO_DIS), so that nothing the device does can
   * reach memory that is freed later.
   */
  close(): void {
    if (this.#closed) {
      this.#retryRelease();
      return;
    }
    // Not while a worker may be inside a loop over the rings this unmaps (queue-sharing.ts).
    this.#sharing.checkNoneOut();
    this.#closed = true;
    // Parked waits end (false) and MSI-X goes off before the device stops.
    this.#irq?.close();
    const rx = this.#rx;
    const tx = this.#tx;
    this.#rx = [];
    this.#tx = [];
    this.#rxBy = [];
    this.#txBy = [];
    const mmio = this.#mmio;
    let failure: unknown = null;
    // A queue that would not disable: harmless once the reset below is confirmed.
    let queueTimeout: unknown = null;
    const queueStep = (step: () => void): void => {
      try {
        step();
      } catch (e) {
        if (e instanceof DeviceTimeoutError) queueTimeout ??= e;
        else failure ??= e;
      }
    };
    const trace = this.#trace;
    try {
      // Take the last counts while the registers still hold them: the reset clears them.
      trace.step("8.2.3.23", "close: last statistics");
      this.#stats.update();
      for (const q of rx) this.#stats.totals.rxErrors += q.errors;
      for (const q of tx) this.#stats.totals.txErrors += q.errors;
      // ixgbe_disable_rx, then each receive queue (4.6.7.1: clear ENABLE, wait for it).
      trace.step("4.6.7.1", "close: receive off, receive queues off");
      clearFlags32(mmio, IXGBE_RXCTRL, IXGBE_RXCTRL_RXEN);
    } catch (e) {
      failure = e;
    }
    for (const q of rx) queueStep(() => q.stop(mmio, REGISTER_TIMEOUT_MS));
    trace.step("4.6.8.1", "close: transmit queues off (Linux ixgbe_disable_tx)");
    queueStep(() => this.#disableTx(tx));
    let stopped = false;
    try {
      trace.step("4.6.3.1", "close: interrupts off, driver unloaded");
      setReg32(mmio, IXGBE_EIMC, IXGBE_IRQ_CLEAR_MASK);
      // ixgbe_release_hw_control: firmware may take the port back.
      clearFlags32(mmio, IXGBE_CTRL_EXT, IXGBE_CTRL_EXT_DRV_LOAD);
      this.#resetDevice(false);
      stopped = true;
      // The reset enabled mastering again: keep it off while the device is not ours.
      trace.step("5.2.5.3.2", "close: PCIe master disable");
      setFlags32(mmio, IXGBE_CTRL, IXGBE_CTRL_GIO_DIS);
    } catch (e) {
      failure ??= e;
    }
    trace.close();
    if (stopped) {
      // The device no longer reads the rings: give the frames it did not send, and the empty
      // receive buffers, back to their pools.
      for (const q of tx) q.releaseBuffers();
      for (const q of rx) q.releaseBuffers();
    } else {
      failure ??= queueTimeout;
      this.#unreleased = { rx, tx };
    }
    if (!stopped && failure instanceof Error) {
      failure.message += " (the device could not be confirmed stopped: the buffers of its rings stay with it; close() " +
        "again retries the reset and gives them back once it succeeds)";
    }
    if (failure !== null) throw failure;
  }

  /** close() again after a reset that could not be confirmed: reset again, then give the buffers back. */
  #retryRelease(): void {
    const unreleased = this.#unreleased;
    if (unreleased === null) return;
    this.#resetDevice(false);
    setFlags32(this.#mmio, IXGBE_CTRL, IXGBE_CTRL_GIO_DIS);
    this.#unreleased = null;
    for (const q of unreleased.tx) q.releaseBuffers();
    for (const q of unreleased.rx) q.releaseBuffers();
  }

  /**
   * Linux's ixgbe_disable_tx: every queue gets TXDCTL = SWFLSH (ENABLE cleared, descriptor
   * write-back flushed). A queue holding descriptors cannot finish disabling while the link is
   * down, so only with the link up does it wait for each ENABLE to clear (a timeout is an error,
   * but the reset that follows stops the queue anyway). Then DMATXCTL.TE off.
   */
  #disableTx(tx: readonly IxgbeTxQueue[]): void {
    const mmio = this.#mmio;
    for (const q of tx) q.flush(mmio);
    let failure: unknown = null;
    if ((getReg32(mmio, IXGBE_LINKS) & IXGBE_LINKS_UP) !== 0) {
      for (const q of tx) {
        try {
          q.waitStopped(mmio, TX_DISABLE_TIMEOUT_MS);
        } catch (e) {
          failure ??= e;
        }
      }
    }
    clearFlags32(mmio, IXGBE_DMATXCTL, IXGBE_DMATXCTL_TE);
    if (failure !== null) throw failure;
  }

  /**
   * Is the device still the one this driver set up? CTRL_EXT.DRV_LOAD is set by the init and
   * cleared only by a reset (or by close()): clear means a reset behind the driver's back (a
   * function-level reset through sysfs, another process). All ones is a device that is gone
   * (surprise removal: reads complete with 0xFFFFFFFF; Linux's ixgbe_check_remove). Either way
   * every queue is dead, and the rings' buffers may have been read or written after the device
   * forgot them: the device is marked broken, rx/txBatch, readStats and linkSpeed throw, and
   * close() still gives the buffers back.
   */
  #noticeReset(): void {
    if (this.#broken !== null || this.#closed) return;
    const ctrlExt = getReg32(this.#mmio, IXGBE_CTRL_EXT);
    if (ctrlExt !== 0xffffffff && (ctrlExt & IXGBE_CTRL_EXT_DRV_LOAD) !== 0) return;
    const what = ctrlExt === 0xffffffff
      ? "no longer answers (its registers read all ones: removed, or its PCIe link is down)"
      : "was reset behind the driver's back (CTRL_EXT.DRV_LOAD is clear: a function-level reset or another driver)";
    this.#broken = new DeviceProtocolError(
      `${this.address}: the device ${what}; its queues are stopped: close() it (that gives its buffers back) and open it again`,
    );
    this.#rxBy = [];
    this.#txBy = [];
    this.#sharing.stopAll(PairStatus.broken);
  }

  /**
   * Hands queue pair `queue` (receive and transmit queue `queue`, and the receive queue's pool)
   * to a worker thread, which drives it with attachQueuePair() (src/threads/queue-pair.ts).
   * From now on rxBatch/txBatch on it throw QueueSharedError here; this thread keeps the
   * registers: readStats() (call it at least once a minute: the 32-bit packet counters wrap
   * after 2^32 frames, under 5 minutes at 14.88 Mpps, and the worker does not read them), the
   * link, and close(), which needs every pair back first (reclaimQueuePair).
   */
  shareQueuePair(queue: number): SharedQueuePair {
    this.#checkOpen("shareQueuePair");
    if (this.#broken !== null) throw this.#broken;
    const pairs = Math.min(this.rxQueues, this.txQueues);
    checkInteger(this.address, "shareQueuePair()'s queue pair", queue, 0, pairs - 1);
    const rx = this.#rx[queue]!;
    const tx = this.#tx[queue]!;
    const pair = this.#sharing.share(queue, (control) => ({
      driver: this.driver, device: this.address, queue, rx: rx.share(), tx: tx.share(), rxPool: rx.pool.share(), control,
      hotPath: this.#hotPath,
    }));
    this.#dispatch();
    return pair;
  }

  /**
   * Takes queue pair `queue` back from the worker it was shared with, once that worker has
   * detached it (or exited): rxBatch/txBatch work here again. Returns false if it was not out.
   */
  reclaimQueuePair(queue: number): boolean {
    if (!this.#sharing.reclaim(queue)) return false;
    if (!this.#closed && this.#broken === null) this.#dispatch();
    return true;
  }

  /** NicDevice.ringState: reads the queue's ring and its head and tail registers. */
  ringState(kind: "rx" | "tx", queue: number): RingState {
    this.#checkOpen("ringState");
    const count = kind === "rx" ? this.rxQueues : this.txQueues;
    checkInteger(this.address, "ringState()'s queue", queue, 0, count - 1);
    if (this.#sharing.isShared(queue)) this.#sharing.refuse(queue, "ringState");
    return kind === "rx" ? this.#rx[queue]!.ringState(this.#bar0) : this.#tx[queue]!.ringState(this.#bar0);
  }

  /** What rxBatch/txBatch may use: every queue but those of shared pairs. */
  #dispatch(): void {
    this.#rxBy = this.#rx.map((q, i) => (this.#sharing.isShared(i) ? undefined : q));
    this.#txBy = this.#tx.map((q, i) => (this.#sharing.isShared(i) ? undefined : q));
  }

  #checkOpen(what: string): void {
    if (this.#closed) throw new DeviceClosedError(`${this.address}: ${what}() on a closed device; open it again with openDevice()`);
  }

  get closed(): boolean {
    return this.#closed;
  }
}
