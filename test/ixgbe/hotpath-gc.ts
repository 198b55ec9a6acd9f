/**
 * Measures the ixgbe hot path on an "instant device": a two-port forwarder (rxBatch on port 0,
 * txBatch on port 1, batch 32) where the device side does the least possible, so the time is
 * the driver's. BAR0 is a plain typed-array register file (as a VFIO-mapped BAR is) that only
 * fakes what init waits for; receive descriptors are marked done in place before each batch;
 * a TDT write sets DD in every descriptor with RS. Reports ns/packet, the garbage collections
 * during the loop and the heap growth.
 *
 * Not a test: allocation counts are not reliable enough to assert on, but this is the number
 * to watch. The hot path should run with 0 GCs; DESIGN.md's calibration has C at ~6.8 ns/packet
 * for this loop and the project's target is 0.85 of C's packet rate.
 *
 *   node --expose-gc --import tsx test/ixgbe/hotpath-gc.ts [packets, default 20M] [batch, default 32]
 */
import { PerformanceObserver } from "node:perf_hooks";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import type { PacketBuffer } from "../../src/mem/mempool.ts";
import { BarKind, type PciFunction } from "../../src/pci/pci-function.ts";
import { TypedArrayMmio } from "../../src/pci/mmio.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { SimMmio } from "../../src/sim/sim-mmio.ts";

const PACKETS = Number(process.argv[2] ?? 20_000_000);
const BATCH = Number(process.argv[3] ?? 32);
const RING = 512;
const FRAME = 60;

/** A register file that answers init's waits at once and runs `onTdt` on TDT(0) writes. */
class InstantBar extends TypedArrayMmio {
  onTdt: (tail: number) => void = () => {};
  readonly #u32: Uint32Array;
  constructor(name: string) {
    const buffer = new ArrayBuffer(0x20000);
    super(name, buffer);
    this.#u32 = new Uint32Array(buffer);
  }
  override read32(offset: number): number {
    if (offset === T.IXGBE_CTRL) return 0;
    if (offset === T.IXGBE_EEC) return T.IXGBE_EEC_ARD;
    if (offset === T.IXGBE_RDRXCTL) return T.IXGBE_RDRXCTL_DMAIDONE;
    if (offset === T.IXGBE_LINKS) return (T.IXGBE_LINKS_UP | T.IXGBE_LINKS_SPEED_10G_82599) >>> 0;
    return super.read32(offset);
  }
  override write32(offset: number, value: number): void {
    super.write32(offset, value);
    if (offset === TDT0) this.onTdt(value);
  }
  peek(offset: number): number {
    return this.#u32[offset >>> 2]!;
  }
}
const TDT0 = T.IXGBE_TDT(0);

function instantPci(address: string, bar: InstantBar): PciFunction {
  return {
    address, vendorId: 0x8086, deviceId: 0x10fb, config: new SimMmio(`${address} config`, 256),
    barKind: () => BarKind.memory, bar: () => bar, enableDma() {}, reset: () => false, close() {},
  };
}

const dma = new SimDma("bench DMA");
const bars = [new InstantBar("port0 BAR0"), new InstantBar("port1 BAR0")];
const devs = bars.map((bar, i) => createIxgbeDevice(instantPci(`instant${i}`, bar), dma, { rxRingSize: RING, txRingSize: RING }));

function ring(bar: InstantBar, bal: number, bah: number, len: number): Uint32Array {
  const bytes = dma.resolve(bar.peek(bal) + bar.peek(bah) * 2 ** 32, bar.peek(len));
  return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
}

/**
 * The device side, kept cheap: state in fields of one object (module-level `let` variables
 * would cost a hole check and a context load on every access).
 */
class InstantDevice {
  readonly rx = ring(bars[0]!, T.IXGBE_RDBAL(0), T.IXGBE_RDBAH(0), T.IXGBE_RDLEN(0));
  readonly tx = ring(bars[1]!, T.IXGBE_TDBAL(0), T.IXGBE_TDBAH(0), T.IXGBE_TDLEN(0));
  readonly rxBar = bars[0]!;
  rxHead = 0;
  txHead = 0;

  /** Port 0 "receives" a 60-byte frame into each descriptor it owns, up to max. */
  receive(max: number): void {
    const rx = this.rx;
    const tail = this.rxBar.peek(RDT0);
    let head = this.rxHead;
    for (let i = 0; i < max && head !== tail; i++) {
      rx[head * 4 + 2] = T.IXGBE_RXDADV_STAT_DD | T.IXGBE_RXDADV_STAT_EOP;
      rx[head * 4 + 3] = FRAME;
      head = (head + 1) & (RING - 1);
    }
    this.rxHead = head;
  }

  /** Port 1 sends everything up to the new tail at once, writing DD where RS is set. */
  transmit(tail: number): void {
    const tx = this.tx;
    let head = this.txHead;
    for (; head !== tail; head = (head + 1) & (RING - 1)) {
      if ((tx[head * 4 + 2]! & T.IXGBE_ADVTXD_DCMD_RS) !== 0) tx[head * 4 + 3] = T.IXGBE_ADVTXD_STAT_DD;
    }
    this.txHead = head;
  }
}
const RDT0 = T.IXGBE_RDT(0);
const device = new InstantDevice();
bars[1]!.onTdt = (tail) => device.transmit(tail);

const dev0 = devs[0]!;
const dev1 = devs[1]!;
const bufs: PacketBuffer[] = new Array(BATCH);

function forward(packets: number): number {
  let moved = 0;
  while (moved < packets) {
    device.receive(BATCH);
    const n = dev0.rxBatch(0, bufs, BATCH);
    const sent = dev1.txBatch(0, bufs, n);
    for (let i = sent; i < n; i++) bufs[i]!.pool.free(bufs[i]!);
    moved += n;
  }
  return moved;
}

forward(2_000_000); // warm up: let TurboFan optimize the loop

const gc = (globalThis as { gc?: () => void }).gc;
gc?.();
let gcs = 0;
const observer = new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
});
observer.observe({ entryTypes: ["gc"] });
const heapBefore = process.memoryUsage().heapUsed;
const start = process.hrtime.bigint();
const moved = forward(PACKETS);
const ns = Number(process.hrtime.bigint() - start);
const heapAfter = process.memoryUsage().heapUsed;

setTimeout(() => {
  observer.disconnect();
  console.log(`forwarded ${moved} packets in ${(ns / 1e6).toFixed(0)} ms: ${(ns / moved).toFixed(2)} ns/packet ` +
    `(${(moved / (ns / 1e9) / 1e6).toFixed(1)} Mpps), batch ${BATCH}`);
  console.log(`garbage collections during the loop: ${gcs}; heap growth: ${((heapAfter - heapBefore) / 1024).toFixed(0)} KiB` +
    (gc ? "" : " (run with --expose-gc for a clean baseline)"));
  for (const d of devs) d.close();
}, 0);
