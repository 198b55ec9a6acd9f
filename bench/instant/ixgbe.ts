/**
 * The ixgbe side of the benchmark's "instant device": two 82599 ports whose BAR0 is plain memory
 * (as a VFIO-mapped BAR is) and whose device side completes every descriptor at once, so that the
 * time measured is the driver's ring work. bench/ref/ixgbe-fwd.c does the same in C.
 *
 * Init talks to the register file through read32/write32, which answer only what init waits for
 * (reset done, EEPROM read, DMA init done, link up). The hot path stores RDT/TDT straight into the
 * BAR's words (Mmio.words32), and the device side reads them from there.
 */
import type { NicDevice } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import type { HotPathMode } from "../../src/drivers/specialize.ts";
import { TypedArrayMmio } from "../../src/pci/mmio.ts";
import { BarKind, type PciFunction } from "../../src/pci/pci-function.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { SimMmio } from "../../src/sim/sim-mmio.ts";

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
    super(name, new ArrayBuffer(0x20000));
  }
  override read32(offset: number): number {
    if (offset === T.IXGBE_CTRL) return 0;
    if (offset === T.IXGBE_EEC) return T.IXGBE_EEC_ARD;
    if (offset === T.IXGBE_RDRXCTL) return T.IXGBE_RDRXCTL_DMAIDONE;
    if (offset === T.IXGBE_LINKS) return (T.IXGBE_LINKS_UP | T.IXGBE_LINKS_SPEED_10G_82599) >>> 0;
    return super.read32(offset);
  }
}

function instantPci(address: string, bar: InstantBar): PciFunction {
  return {
    address, vendorId: 0x8086, deviceId: 0x10fb, config: new SimMmio(`${address} config`, 256),
    barKind: () => BarKind.memory, bar: () => bar, enableDma() {}, reset: () => false, close() {},
  };
}

/** One port's device side: its own RX and TX heads, as RDH and TDH of a real NIC. */
export class InstantIxgbePort {
  readonly dev: NicDevice;
  readonly #rx: Uint32Array;
  readonly #tx: Uint32Array;
  readonly #regs: Uint32Array;
  #rxHead = 0;
  #txHead = 0;

  constructor(dma: SimDma, index: number, hotPath?: HotPathMode) {
    const bar = new InstantBar(`instant ixgbe ${index} BAR0`);
    this.dev = createIxgbeDevice(instantPci(`instant-ixgbe${index}`, bar), dma, {
      rxRingSize: RING_SIZE, txRingSize: RING_SIZE, linkTimeoutMs: 0, hotPath,
    });
    const regs = bar.words32!;
    this.#regs = regs;
    const ring = (bal: number, bah: number, len: number) => {
      const bytes = dma.resolve(regs[bal >>> 2]! + regs[bah >>> 2]! * 2 ** 32, regs[len >>> 2]!);
      return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
    };
    this.#rx = ring(T.IXGBE_RDBAL(0), T.IXGBE_RDBAH(0), T.IXGBE_RDLEN(0));
    this.#tx = ring(T.IXGBE_TDBAL(0), T.IXGBE_TDBAH(0), T.IXGBE_TDLEN(0));
  }

  /** "Receives" a 60-byte frame into each descriptor it owns, up to `max`. */
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

  /** Sends everything up to TDT at once, writing DD back where RS is set. */
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
