/**
 * The ixgbe side of the benchmark's "instant device": two 82599 ports whose BAR0 is plain memory
 * (as a VFIO-mapped BAR is) and whose device side completes every descriptor at once, so that the
 * time measured is the driver's ring work. bench/ref/ixgbe-fwd.c does the same in C.
 *
 * Init talks to the register file through read32/write32, which answer only what init waits for
 * (reset done, EEPROM read, DMA init done, security path ready, link up; with several queues the
 * RSS setup only writes). The hot path stores RDT/TDT straight into the BAR's words
 * (Mmio.words32), and the device side reads them from there.
 *
 * For the scaling bench (bench/scaling/) a port has N queue pairs and the device side is one
 * InstantIxgbeQueue per pair, which reads only its pair's RDT and TDT words and its pair's two
 * rings, keeps its heads in shared memory and can therefore run in the worker thread that drives
 * that pair: the BAR is a SharedArrayBuffer (a worker stores its doorbells straight into it,
 * src/pci/shared-mmio.ts) and the rings are SimDma memory, which is shared already.
 */
import type { DeviceOptions, NicDevice } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import type { HotPathMode } from "../../src/drivers/specialize.ts";
import { join64 } from "../../src/mem/u64.ts";
import { TypedArrayMmio } from "../../src/pci/mmio.ts";
import { BarKind, type PciFunction } from "../../src/pci/pci-function.ts";
import type { SimDma } from "../../src/sim/sim-dma.ts";
import { SimMmio } from "../../src/sim/sim-mmio.ts";
import { frameRegionAt, FrameStamps, type FrameRegion } from "./frames.ts";

export const RING_SIZE = 512;
const MASK = RING_SIZE - 1;
// Copied into module constants: an imported binding is read through its module cell on every
// use, a module-level const is folded into the compiled loop.
const RX_DONE = T.IXGBE_RXDADV_STAT_DD | T.IXGBE_RXDADV_STAT_EOP;
const TX_RS = T.IXGBE_ADVTXD_DCMD_RS;
const TX_DD = T.IXGBE_ADVTXD_STAT_DD;

/** A register file that answers init's waits at once. */
class InstantBar extends TypedArrayMmio {
  constructor(name: string) {
    // Shared memory: a worker thread stores its queues' RDT/TDT straight into it.
    super(name, new SharedArrayBuffer(0x20000));
  }
  override read32(offset: number): number {
    if (offset === T.IXGBE_CTRL) return 0;
    if (offset === T.IXGBE_EEC) return T.IXGBE_EEC_ARD;
    if (offset === T.IXGBE_RDRXCTL) return T.IXGBE_RDRXCTL_DMAIDONE;
    if (offset === T.IXGBE_SECRXSTAT) return T.IXGBE_SECRXSTAT_SECRX_RDY;
    if (offset === T.IXGBE_LINKS) return (T.IXGBE_LINKS_UP | T.IXGBE_LINKS_SPEED_10G_82599) >>> 0;
    return super.read32(offset);
  }
}

function instantPci(address: string, bar: InstantBar): PciFunction {
  return {
    address, vendorId: 0x8086, deviceId: 0x10fb, config: new SimMmio(`${address} config`, 256),
    barKind: () => BarKind.memory, bar: () => bar, enableDma() {}, reset: () => false, close() {}, msix: null,
  };
}

/** The device side of one queue pair as it crosses to a worker (plain data and shared arrays). */
export interface IxgbeQueueData {
  readonly kind: "ixgbe";
  /** BAR0 as words (a SharedArrayBuffer). */
  readonly regs: Uint32Array;
  readonly rdtWord: number;
  readonly tdtWord: number;
  readonly rx: Uint32Array;
  readonly tx: Uint32Array;
  /** [0]: RX head (RDH), [1]: TX head (TDH); shared so that another thread can carry on. */
  readonly heads: Int32Array;
  /** Where frames are, for timestamps (InstantIxgbePort.queueData; empty: none). */
  readonly frames: readonly FrameRegion[];
}

/**
 * One queue pair's device side: its own RX and TX heads, as RDH and TDH of a real NIC. With
 * frame regions it can also stamp the frames it receives and time the frames it sends.
 */
export class InstantIxgbeQueue {
  readonly #regs: Uint32Array;
  readonly #rdt: number;
  readonly #tdt: number;
  readonly #rx: Uint32Array;
  readonly #tx: Uint32Array;
  readonly #heads: Int32Array;
  readonly #frames: FrameStamps;

  /**
   * `stamps`: share one with the device side of the other port in the same worker, so that a
   * transmit call knows whether any stamped frame is out (FrameStamps.newBatch).
   */
  constructor(d: IxgbeQueueData, stamps?: FrameStamps) {
    this.#regs = d.regs;
    this.#rdt = d.rdtWord;
    this.#tdt = d.tdtWord;
    this.#rx = d.rx;
    this.#tx = d.tx;
    this.#heads = d.heads;
    this.#frames = stamps ?? new FrameStamps("instant ixgbe", d.frames, 0);
  }

  get stamps(): FrameStamps {
    return this.#frames;
  }

  /** "Receives" a 60-byte frame into each descriptor it owns, up to `max`; returns how many. */
  receive(max: number): number {
    const rx = this.#rx;
    const tail = this.#regs[this.#rdt]!;
    let head = this.#heads[0]!;
    let i = 0;
    for (; i < max && head !== tail; i++) {
      rx[head * 4 + 2] = RX_DONE;
      rx[head * 4 + 3] = 60;
      head = (head + 1) & MASK;
    }
    this.#heads[0] = head;
    return i;
  }

  /** As receive(), and writes `stamp` into every frame (at the address in the read descriptor). */
  receiveStamped(max: number, stamp: number): number {
    const rx = this.#rx;
    const frames = this.#frames;
    const tail = this.#regs[this.#rdt]!;
    let head = this.#heads[0]!;
    let i = 0;
    frames.setStamp(stamp);
    for (; i < max && head !== tail; i++) {
      frames.put(rx[head * 4]!);
      rx[head * 4 + 2] = RX_DONE;
      rx[head * 4 + 3] = 60;
      head = (head + 1) & MASK;
    }
    this.#heads[0] = head;
    return i;
  }

  /** Sends everything up to TDT at once, writing DD back where RS is set; returns how many. */
  transmit(): number {
    const tx = this.#tx;
    const tail = this.#regs[this.#tdt]!;
    const first = this.#heads[1]!;
    let head = first;
    for (; head !== tail; head = (head + 1) & MASK) {
      if ((tx[head * 4 + 2]! & TX_RS) !== 0) tx[head * 4 + 3] = TX_DD;
    }
    this.#heads[1] = head;
    return (head - first) & MASK;
  }

  /**
   * As transmit(), and for every frame that carries a stamp: adds (now - stamp) in ns to
   * `latency` (histogram counts, bench/lib/histogram.ts) and clears the stamp. The clock is read
   * once per call, at the first stamped frame. Returns the frames sent.
   */
  transmitTimed(latency: Float64Array): number {
    const tx = this.#tx;
    const frames = this.#frames;
    const tail = this.#regs[this.#tdt]!;
    const first = this.#heads[1]!;
    let head = first;
    const timing = frames.newBatch();
    for (; head !== tail; head = (head + 1) & MASK) {
      if (timing) frames.timeFrame(tx[head * 4]!, latency);
      if ((tx[head * 4 + 2]! & TX_RS) !== 0) tx[head * 4 + 3] = TX_DD;
    }
    this.#heads[1] = head;
    return (head - first) & MASK;
  }
}

/**
 * `words` Int32s of a queue's device-side state on a cache-line block of their own: each queue
 * pair's worker writes its state on every call, and two small SharedArrayBuffers made one after
 * the other may share a 64-byte line (the allocator puts them next to each other), which two
 * cores would then pull back and forth. 128 bytes: the adjacent-line prefetcher works in pairs.
 */
export function deviceState(words: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(128), 0, words);
}

/**
 * One port: the device, and a device side per queue pair. receive() and transmit() are pair 0's
 * device side for the single-threaded bench (bench/fwd-ts.ts), written as it was before there
 * were queue pairs (heads in fields, RDT/TDT offsets as constants), so that `npm run bench` goes
 * on measuring the same thing; a port whose pairs go to workers uses queueData() instead, never
 * both (the two keep their own heads).
 */
export class InstantIxgbePort {
  readonly dev: NicDevice;
  readonly #dma: SimDma;
  readonly #queues: IxgbeQueueData[] = [];
  readonly #rx: Uint32Array;
  readonly #tx: Uint32Array;
  readonly #regs: Uint32Array;
  #rxHead = 0;
  #txHead = 0;

  /** `options`: more device options (bench:offload turns offloads on and off). */
  constructor(dma: SimDma, index: number, hotPath?: HotPathMode, queues = 1, options: DeviceOptions = {}) {
    const bar = new InstantBar(`instant ixgbe ${index} BAR0`);
    this.#dma = dma;
    this.dev = createIxgbeDevice(instantPci(`instant-ixgbe${index}`, bar), dma, {
      ...options, rxRingSize: RING_SIZE, txRingSize: RING_SIZE, linkTimeoutMs: 0, hotPath, rxQueues: queues, txQueues: queues,
    });
    const regs = bar.words32!;
    const ring = (bal: number, bah: number, len: number) => {
      const bytes = dma.resolve(join64(regs[bal >>> 2]!, regs[bah >>> 2]!), regs[len >>> 2]!);
      return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
    };
    for (let q = 0; q < queues; q++) {
      this.#queues.push({
        kind: "ixgbe", regs, rdtWord: T.IXGBE_RDT(q) >>> 2, tdtWord: T.IXGBE_TDT(q) >>> 2,
        rx: ring(T.IXGBE_RDBAL(q), T.IXGBE_RDBAH(q), T.IXGBE_RDLEN(q)),
        tx: ring(T.IXGBE_TDBAL(q), T.IXGBE_TDBAH(q), T.IXGBE_TDLEN(q)),
        heads: deviceState(2), frames: [],
      });
    }
    this.#regs = regs;
    this.#rx = this.#queues[0]!.rx;
    this.#tx = this.#queues[0]!.tx;
  }

  /** Queue pair `q`'s device side as data for a worker, with the frame regions `frames`. */
  queueData(q: number, frames: readonly FrameRegion[] = []): IxgbeQueueData {
    return { ...this.#queues[q]!, frames };
  }

  /** The memory of pair `q`'s receive pool (found from a buffer address in its ring). */
  rxPoolRegion(q: number): FrameRegion {
    const rx = this.#queues[q]!.rx;
    return frameRegionAt(this.#dma, join64(rx[0]!, rx[1]!));
  }

  /** Pair 0: "receives" a 60-byte frame into each descriptor it owns, up to `max`. */
  receive(max: number): void {
    const rx = this.#rx;
    const tail = this.#regs[RDT0]!;
    let head = this.#rxHead;
    for (let i = 0; i < max && head !== tail; i++) {
      rx[head * 4 + 2] = RX_DONE;
      rx[head * 4 + 3] = 60;
      head = (head + 1) & MASK;
    }
    this.#rxHead = head;
  }

  /** Pair 0: sends everything up to TDT at once, writing DD back where RS is set. */
  transmit(): void {
    const tx = this.#tx;
    const tail = this.#regs[TDT0]!;
    let head = this.#txHead;
    for (; head !== tail; head = (head + 1) & MASK) {
      if ((tx[head * 4 + 2]! & TX_RS) !== 0) tx[head * 4 + 3] = TX_DD;
    }
    this.#txHead = head;
  }
}
const RDT0 = T.IXGBE_RDT(0) >>> 2;
const TDT0 = T.IXGBE_TDT(0) >>> 2;
