/**
 * How the hot loops hand descriptors to the device (RDT, TDT). A mapped BAR (TypedArrayMmio,
 * Mmio.words32 not null) is plain memory: the loop stores the tail straight into its word, the
 * cheapest doorbell there is. A device model (SimMmio, words32 null) has to run code on the
 * write, so the loop calls write32 and the model sees it.
 */
import { describe, expect, it, vi } from "vitest";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import { HotPathMode } from "../../src/drivers/specialize.ts";
import { bufIovaHi, bufIovaLo } from "../../src/mem/buffer-table.ts";
import { freeBuffers } from "../../src/mem/mempool.ts";
import { TypedArrayMmio } from "../../src/pci/mmio.ts";
import { BarKind, type PciFunction } from "../../src/pci/pci-function.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { SimMmio } from "../../src/sim/sim-mmio.ts";
import { batchWith, bufferWith, openSimPort, regName, txPool } from "./helpers.ts";

const RING = 64;

/**
 * A register file in plain memory that answers init's waits at once (reset done, EEPROM read,
 * DMA init done, link up) and logs every write32 call. Its words32 is the memory itself.
 */
class MappedBar extends TypedArrayMmio {
  readonly writes: string[] = [];
  constructor() {
    super("mapped BAR0", new ArrayBuffer(0x20000));
  }
  override read32(offset: number): number {
    if (offset === T.IXGBE_CTRL) return 0;
    if (offset === T.IXGBE_EEC) return T.IXGBE_EEC_ARD;
    if (offset === T.IXGBE_RDRXCTL) return T.IXGBE_RDRXCTL_DMAIDONE;
    if (offset === T.IXGBE_LINKS) return (T.IXGBE_LINKS_UP | T.IXGBE_LINKS_SPEED_10G_82599) >>> 0;
    return super.read32(offset);
  }
  override write32(offset: number, value: number): void {
    this.writes.push(`${regName(offset)}=${value}`);
    super.write32(offset, value);
  }
}

function mappedPci(bar: MappedBar): PciFunction {
  return {
    address: "mapped0", vendorId: 0x8086, deviceId: 0x10fb, config: new SimMmio("mapped0 config", 256),
    barKind: () => BarKind.memory, bar: () => bar, enableDma() {}, reset: () => false, close() {}, msix: null,
  };
}

function ringOf(dma: SimDma, words: Uint32Array, bal: number, bah: number): Uint32Array {
  const bytes = dma.resolve(words[bal >>> 2]! + words[bah >>> 2]! * 2 ** 32, RING * 16);
  return new Uint32Array(bytes.buffer, bytes.byteOffset, RING * 4);
}

describe("the ixgbe tail write", () => {
  for (const hotPath of [HotPathMode.specialized, HotPathMode.shared]) {
    it(`stores RDT and TDT straight into the words of a mapped BAR, bypassing write32 (${hotPath})`, () => {
      const dma = new SimDma();
      const bar = new MappedBar();
      const dev = createIxgbeDevice(mappedPci(bar), dma, { rxRingSize: RING, txRingSize: RING, linkTimeoutMs: 0, hotPath });
      const words = bar.words32!;
      expect(words).toBeInstanceOf(Uint32Array);
      // Init goes through write32, tails included.
      expect(bar.writes).toContain(`RDT(0)=${RING - 1}`);
      expect(bar.writes).toContain("TDT(0)=0");
      bar.writes.length = 0;

      const pool = txPool(dev, 8);
      const out = batchWith(pool, [new Uint8Array(60).fill(1), new Uint8Array(61).fill(2), new Uint8Array(62).fill(3)]);
      expect(dev.txBatch(0, out, 3)).toBe(3);
      expect(words[T.IXGBE_TDT(0) >>> 2]).toBe(3);
      const tx = ringOf(dma, words, T.IXGBE_TDBAL(0), T.IXGBE_TDBAH(0));
      for (let i = 0; i < 3; i++) {
        expect([tx[i * 4]! | 0, tx[i * 4 + 1], tx[i * 4 + 2]! & 0xffff]).toEqual([bufIovaLo[out[i]!], bufIovaHi[out[i]!], 60 + i]);
      }

      // The "device" fills five receive descriptors.
      const rx = ringOf(dma, words, T.IXGBE_RDBAL(0), T.IXGBE_RDBAH(0));
      for (let i = 0; i < 5; i++) {
        rx[i * 4 + 2] = T.IXGBE_RXDADV_STAT_DD | T.IXGBE_RXDADV_STAT_EOP;
        rx[i * 4 + 3] = 60;
      }
      expect(words[T.IXGBE_RDT(0) >>> 2]).toBe(RING - 1);
      const bufs = new Int32Array(32);
      expect(dev.rxBatch(0, bufs, 32)).toBe(5);
      expect(words[T.IXGBE_RDT(0) >>> 2]).toBe(4); // all but the last descriptor processed
      expect(bar.writes).toEqual([]);

      freeBuffers(bufs, 0, 5);
      dev.close();
      expect(bar.writes.length).toBeGreaterThan(0); // close() goes through write32 again
    });
  }

  for (const hotPath of [HotPathMode.specialized, HotPathMode.shared]) {
    it(`goes through write32 on a device model, which then acts on it (${hotPath})`, () => {
      const { model, dev } = openSimPort({ rxRingSize: RING, txRingSize: RING, hotPath });
      const bar = model.pci.bar(0);
      expect(bar.words32).toBeNull();
      const write32 = vi.spyOn(bar, "write32");
      const sent: Uint8Array[] = [];
      model.onTransmit = (frame) => sent.push(frame);

      const pool = txPool(dev, 8);
      expect(dev.txBatch(0, Int32Array.of(bufferWith(pool, new Uint8Array(60).fill(9))), 1)).toBe(1);
      expect(write32.mock.calls).toEqual([[T.IXGBE_TDT(0), 1]]);
      expect(sent.map((f) => f[0])).toEqual([9]); // the model sent it on the write
      expect(model.regs.peek32(T.IXGBE_TDH(0))).toBe(1);

      write32.mockClear();
      expect(model.inject(new Uint8Array(60))).toBe(true);
      const bufs = new Int32Array(4);
      expect(dev.rxBatch(0, bufs, 4)).toBe(1);
      expect(write32.mock.calls).toEqual([[T.IXGBE_RDT(0), 0]]);
      expect(model.regs.peek32(T.IXGBE_RDT(0))).toBe(0);
      freeBuffers(bufs, 0, 1);
      write32.mockRestore();
      dev.close();
    });
  }
});
