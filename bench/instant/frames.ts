/**
 * What the instant device needs to put a timestamp into the frames it "receives" and read it back
 * from the frames it "sends" (npm run bench -- --scaling, bench/scaling/): the device's view of
 * the packet memory, found by device address as a device's DMA finds it.
 *
 * One queue pair of the two-port forwarder only ever sees buffers of two pools: the receive pools
 * of that pair on port A and on port B (what B sends came from A's pool and the other way). So a
 * window of two DMA regions covers every address its descriptors can hold. A SimDma hands out
 * all addresses of one allocator inside one 4 GiB window (src/sim/sim-dma.ts), so the low 32 bits
 * of an address say where it is; the high half is checked once, when the window is made.
 *
 * The stamp is an Int32 at byte STAMP_AT of the frame, in the frame's first cache line, which the
 * forwarder touches anyway (data[1]++): the worker's clock (performance.now()) in ticks of 10 ns,
 * modulo 2^30 and never 0 (stampTicks). 0 means "not stamped": the transmit side clears each
 * stamp it reads, so a recycled buffer starts at 0. Ticks below 2^30 are small integers to V8,
 * which no tier boxes; a Float64 stamp made a heap number per stamped frame in some runs
 * (2.6 MB of garbage per 10 M frames on packed rings). Differences are taken modulo
 * 2^30, right for latencies under 10.7 s.
 */
import { hi32, lo32 } from "../../src/mem/u64.ts";
import type { SimDma } from "../../src/sim/sim-dma.ts";
import { bucketOf } from "../lib/histogram.ts";

/** Byte of the frame (not of the buffer) that holds the stamp: 4-aligned in both drivers' layouts. */
export const STAMP_AT = 24;

/** One DMA region as the device side of a worker sees it (plain data: crosses to the worker as it is). */
export interface FrameRegion {
  /** The region's first device address, low 32 bits. */
  readonly baseLo: number;
  readonly size: number;
  /** The region's memory (a SharedArrayBuffer of the SimDma). */
  readonly words: Int32Array;
}

/**
 * The region holding device address `iova`, as the device sees it: SimDma backs each allocation
 * with a SharedArrayBuffer of its own (sim-dma.ts), so the buffer behind one resolved byte is the
 * whole allocation, and the byte's offset in it gives the allocation's first address.
 */
export function frameRegionAt(dma: SimDma, iova: number): FrameRegion {
  const byte = dma.resolve(iova, 1, "instant device: finding a pool's memory");
  const base = iova - byte.byteOffset;
  if (hi32(base) !== hi32(base + byte.buffer.byteLength - 1)) {
    throw new RangeError(`instant device: the region at 0x${base.toString(16)} crosses a 4 GiB boundary of device addresses`);
  }
  return { baseLo: lo32(base), size: byte.buffer.byteLength, words: new Int32Array(byte.buffer) };
}

const NO_REGION: FrameRegion = { baseLo: 0, size: 0, words: new Int32Array(0) };

/** Ticks of 10 ns per ms of performance.now(). */
export const TICKS_PER_MS = 100_000;
export const TICK_NS = 10;
const TICK_MASK = 0x3fffffff;

/** performance.now() `ms` as a stamp: 10 ns ticks modulo 2^30, never 0. */
export function stampTicks(ms: number): number {
  return (Math.floor(ms * TICKS_PER_MS) & TICK_MASK) | 1;
}

/**
 * Reads and writes stamps in the frames of up to two regions, by the low half of a device
 * address (`at`: the frame's offset from that address, e.g. the virtio header's length).
 */
export class FrameStamps {
  readonly #base0: number;
  readonly #size0: number;
  readonly #mem0: Int32Array;
  readonly #base1: number;
  readonly #size1: number;
  readonly #mem1: Int32Array;
  readonly #at: number;
  readonly #device: string;
  /** [0]: the clock of the current transmit call (stampTicks), 0 until its first stamped frame. */
  readonly #now = new Int32Array(1);
  /** [0]: the stamp of the current receive call. */
  readonly #stamp = new Int32Array(1);
  /** [0]: stamped frames not yet timed (put() minus the stamps timeFrame() found). */
  readonly #out = new Int32Array(1);

  constructor(device: string, regions: readonly FrameRegion[], frameOffset: number) {
    if (regions.length > 2) throw new RangeError(`${device}: FrameStamps covers at most two regions`);
    const [r0 = NO_REGION, r1 = NO_REGION] = regions;
    this.#base0 = r0.baseLo;
    this.#size0 = r0.size;
    this.#mem0 = r0.words;
    this.#base1 = r1.baseLo;
    this.#size1 = r1.size;
    this.#mem1 = r1.words;
    this.#at = frameOffset + STAMP_AT;
    this.#device = device;
  }

  /** The stamp (stampTicks) put() writes from now on (a receive call sets it once for its batch). */
  setStamp(stamp: number): void {
    this.#stamp[0] = stamp;
  }

  /**
   * Writes the stamp into the frame at device address (low half) `addressLo`.
   */
  put(addressLo: number): void {
    const off0 = addressLo - this.#base0;
    this.#out[0]!++;
    if (off0 >= 0 && off0 < this.#size0) {
      this.#mem0[(off0 + this.#at) >>> 2] = this.#stamp[0]!;
      return;
    }
    const off1 = addressLo - this.#base1;
    if (!(off1 >= 0 && off1 < this.#size1)) this.#outside(addressLo);
    this.#mem1[(off1 + this.#at) >>> 2] = this.#stamp[0]!;
  }

  /**
   * Before a transmit call's timeFrame() calls: the clock is read again at the first stamped
   * frame. Returns whether any stamped frame is still out: if not, the call need not look at its
   * frames at all (one RX batch in 64 is stamped, so most transmit calls skip the check). This
   * is what the two ports' device sides in one worker share one FrameStamps for.
   */
  newBatch(): boolean {
    this.#now[0] = 0;
    return this.#out[0]! > 0;
  }

  /**
   * If the frame at `addressLo` carries a stamp: adds now - stamp (ns) to `latency` (histogram
   * counts, bench/lib/histogram.ts) and clears the stamp. The clock is read at the first stamped
   * frame after newBatch().
   */
  timeFrame(addressLo: number, latency: Float64Array): void {
    let mem = this.#mem0;
    let off = addressLo - this.#base0;
    if (!(off >= 0 && off < this.#size0)) {
      mem = this.#mem1;
      off = addressLo - this.#base1;
      if (!(off >= 0 && off < this.#size1)) this.#outside(addressLo);
    }
    const i = (off + this.#at) >>> 2;
    const stamp = mem[i]!;
    if (stamp === 0) return;
    mem[i] = 0;
    this.#out[0]!--;
    if (this.#now[0] === 0) this.#now[0] = stampTicks(performance.now());
    latency[bucketOf(((this.#now[0]! - stamp) & TICK_MASK) * TICK_NS)]!++;
  }

  #outside(addressLo: number): never {
    throw new RangeError(`${this.#device}: a descriptor points outside the queue pair's pools (low address 0x${addressLo.toString(16)})`);
  }
}
