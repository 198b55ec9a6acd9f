/** Shared set-up for the ixgbe tests: a model, the driver on it, traces, random frames. */
import { afterEach, expect } from "vitest";
import type { DeviceOptions, NicDevice } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import type { PacketBuffer } from "../../src/mem/buffer-table.ts";
import { Mempool, NO_BUFFER } from "../../src/mem/mempool.ts";
import { writeFrame } from "../../src/mem/packet.ts";
import type { Mmio } from "../../src/pci/mmio.ts";
import type { PciFunction } from "../../src/pci/pci-function.ts";
import { TracingMmio, type RegisterAccess } from "../../src/pci/tracing-mmio.ts";
import { Ixgbe82599Model, type Ixgbe82599ModelOptions } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";

export interface SimPort {
  dma: SimDma;
  model: Ixgbe82599Model;
  dev: NicDevice;
}

type ModelOptions = Omit<Ixgbe82599ModelOptions, "dma">;

/**
 * Models made by openSimPort in the current test: after each test none of them may have seen a
 * protocol violation (a test that provokes some on purpose calls allowViolations(model)).
 */
const watched = new Set<Ixgbe82599Model>();
afterEach(() => {
  const seen = [...watched].flatMap((m) => m.violations.map((v) => `${m.address}: ${v}`));
  watched.clear();
  expect(seen, "protocol violations the 82599 model saw").toEqual([]);
});

/** Stops checking `model` for violations in this test. */
export function allowViolations(model: Ixgbe82599Model): void {
  watched.delete(model);
}

/** A model and the driver on it. Tests default to not waiting for a link that is up at once. */
export function openSimPort(options: DeviceOptions = {}, modelOptions: ModelOptions = {}, dma = new SimDma()): SimPort {
  const model = new Ixgbe82599Model({ dma, ...modelOptions });
  watched.add(model);
  const dev = createIxgbeDevice(model.pci, dma, { linkTimeoutMs: 1000, ...options });
  return { dma, model, dev };
}

/** A PciFunction whose BAR0 reports every access to `sink` as a record (the driver sees a TracingMmio). */
export function tracedPci(pci: PciFunction, sink: (access: RegisterAccess) => void): PciFunction {
  let traced: Mmio | null = null;
  return {
    address: pci.address,
    vendorId: pci.vendorId,
    deviceId: pci.deviceId,
    config: pci.config,
    msix: pci.msix,
    barKind: (i) => pci.barKind(i),
    bar: (i) =>
      i === 0
        ? (traced ??= new TracingMmio(pci.bar(0), (op, offset, width, value) => sink({ op, offset, width, value })))
        : pci.bar(i),
    enableDma: () => pci.enableDma(),
    reset: () => pci.reset(),
    close: () => pci.close(),
  };
}

/** Register names by offset, from ixgbe_type.ts: indexed registers as "RDT(3)". */
const names = new Map<number, string>();
for (const [key, value] of Object.entries(T)) {
  if (!key.startsWith("IXGBE_")) continue;
  const name = key.slice("IXGBE_".length);
  if (typeof value === "function") {
    const count = name === "RXPBSIZE" || name === "TXPBSIZE" || name === "MPC" || name === "TXPBTHRESH" ? 8 : name === "QPRDC" ? 16 : 64;
    for (let i = 0; i < count; i++) {
      const offset = (value as (i: number) => number)(i);
      if (!names.has(offset)) names.set(offset, `${name}(${i})`);
    }
  }
}
const REGISTERS = [
  "CTRL", "STATUS", "ESDP", "SECRXCTRL", "SECRXSTAT", "RFC", "RJC", "CTRL_EXT", "EEC", "EICR", "EIMS", "EIMC", "RDRXCTL", "RXCTRL", "FCTRL", "DMATXCTL", "DTXMXSZRQ", "MTQC",
  "RTTDCS", "HLREG0", "MAXFRS", "AUTOC", "LINKS", "AUTOC2", "CRCERRS", "ILLERRC", "ERRBC", "RLEC", "GPRC", "GPTC", "GORCL",
  "GORCH", "GOTCL", "GOTCH", "RUC", "ROC",
] as const;
for (const name of REGISTERS) names.set((T as unknown as Record<string, number>)[`IXGBE_${name}`]!, name);

export function regName(offset: number): string {
  return names.get(offset) ?? `0x${offset.toString(16).padStart(5, "0")}`;
}

/** Deterministic pseudo-random numbers (mulberry32), so failures reproduce. */
export { mulberry32 as rng } from "../../src/sim/seeded-random.ts";

/** A frame of `length` random bytes whose first 4 bytes carry a sequence number. */
export function randomFrame(random: () => number, length: number, seq: number): Uint8Array {
  const frame = new Uint8Array(length);
  for (let i = 0; i < length; i++) frame[i] = (random() * 256) | 0;
  frame[12] = 0x08; // an IPv4 EtherType, so that no frame looks VLAN-tagged
  frame[13] = 0x00;
  frame[0] = seq & 0xff;
  frame[1] = (seq >>> 8) & 0xff;
  frame[2] = (seq >>> 16) & 0xff;
  frame[3] = (seq >>> 24) & 0xff;
  return frame;
}

export function randomLength(random: () => number, min = 60, max = 1514): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** A checked mempool for frames to send, on the device's DMA allocator. */
export function txPool(dev: NicDevice, count = 1024): Mempool {
  return new Mempool(dev.dma, { count, checked: true, name: "test TX pool" });
}

/** Copies `frame` into a buffer from `pool` and returns the buffer's number. */
export function bufferWith(pool: Mempool, frame: Uint8Array): PacketBuffer {
  const buf = pool.alloc();
  if (buf === NO_BUFFER) throw new Error(`${pool.name} is empty`);
  writeFrame(buf, frame);
  return buf;
}

/** A batch holding one buffer per frame, each a copy of it from `pool`. */
export function batchWith(pool: Mempool, frames: readonly Uint8Array[]): Int32Array {
  return Int32Array.from(frames, (frame) => bufferWith(pool, frame));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

/**
 * Throws unless `actual` holds the same frames as `expected`, in the same order. Much faster than
 * toEqual on thousands of typed arrays; on a mismatch it names the first differing frame.
 */
export function expectSameFrames(actual: readonly Uint8Array[], expected: readonly Uint8Array[]): void {
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (!sameBytes(actual[i]!, expected[i]!)) {
      throw new Error(`frame ${i} differs: got ${actual[i]!.length} bytes starting ${hexStart(actual[i]!)}, ` +
        `expected ${expected[i]!.length} bytes starting ${hexStart(expected[i]!)}`);
    }
  }
  if (actual.length !== expected.length) throw new Error(`got ${actual.length} frames, expected ${expected.length}`);
}

function hexStart(frame: Uint8Array): string {
  return Array.from(frame.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}
