/**
 * Issue 12.1 and 12.3: every public entry point refuses bad input with a TypeError (wrong type)
 * or RangeError (a number that is not allowed) whose message names the device or pool and the
 * argument, and nothing is lost: each case runs against devices and pools whose state is
 * compared before and after (every pool's free count, the rings as the model sees them, the
 * frames on the wire).
 *
 * The table is generated: each argument of each entry point gets every bad value of its kind.
 * The number of cases is printed and checked against a floor, so that the table cannot shrink
 * unnoticed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newStats, type NicDevice } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { AddressSpaceError, BufferOwnershipError } from "../../src/errors.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { copyFrame, dataOf, frameLength, frameOf, setFrameLength, writeFrame } from "../../src/mem/packet.ts";
import { openDevice } from "../../src/open-device.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { availability } from "../contract/accounting.ts";
import { VARIANTS, type Rig } from "../contract/rigs.ts";

type ErrorClass = new (...args: never[]) => Error;
interface Case {
  readonly name: string;
  readonly call: () => unknown;
  readonly error: ErrorClass;
  /** The message must match (who and what): default, the entry point's owner name. */
  readonly message?: RegExp;
}

/** Bad values for a number argument, and the error each must give. */
const BAD_NUMBERS: readonly [string, unknown, ErrorClass][] = [
  ["NaN", NaN, RangeError],
  ["-1", -1, RangeError],
  ["2.5", 2.5, RangeError],
  ["Infinity", Infinity, RangeError],
  ["1e12", 1e12, RangeError],
  ['"100"', "100", TypeError],
  ["null", null, TypeError],
  ["{}", {}, TypeError],
  ["[]", [], TypeError],
  ["true", true, TypeError],
  ["10n", 10n, TypeError],
];
/** For batch counts (rxBatch/txBatch/allocBatch/freeBatch): NaN and fractions are TypeErrors (packet API). */
const BAD_COUNTS: readonly [string, unknown, ErrorClass][] = [
  ["NaN", NaN, TypeError],
  ["undefined", undefined, TypeError],
  ["-1", -1, RangeError],
  ["2.5", 2.5, TypeError],
  ["past the batch", 33, RangeError],
  ["1e12", 1e12, RangeError],
  ['"8"', "8", TypeError],
  ["null", null, TypeError],
  ["{}", {}, TypeError],
];
const BAD_BATCHES: readonly [string, unknown][] = [
  ["null", null],
  ["undefined", undefined],
  ["a string", "bufs"],
  ["an Array", [1, 2, 3]],
  ["a Uint8Array", new Uint8Array(32)],
  ["a Uint32Array", new Uint32Array(32)],
  ["a plain object", { length: 32 }],
];
const BAD_BUFFERS: readonly [string, unknown, ErrorClass][] = [
  ["null", null, TypeError],
  ["undefined", undefined, TypeError],
  ["{}", {}, TypeError],
  ['"3"', "3", TypeError],
  ["-1", -1, RangeError],
  ["2.5", 2.5, RangeError],
  ["NaN", NaN, RangeError],
  ["past the table", 1 << 22, RangeError],
];
const BAD_OBJECTS: readonly [string, unknown][] = [
  ["null", null],
  ["a string", "fast"],
  ["a number", 5],
  ["an Array", []],
];

const rigs: Rig[] = [];
let pool: Mempool;
let held: Int32Array;
const cases: Case[] = [];

function snapshot(): unknown {
  return rigs.map((r) => ({ pools: availability(r.dma), rings: r.ringState(), sent: r.transmitted().length }));
}

function deviceCases(rig: Rig, label: string): void {
  const dev = rig.dev;
  const who = new RegExp(dev.address.replace(/[.:]/g, "\\$&"));
  const batch = new Int32Array(32);
  for (const call of ["rxBatch", "txBatch"] as const) {
    const fn = (q: unknown, b: unknown, n: unknown) => (dev[call] as (q: unknown, b: unknown, n: unknown) => number).call(dev, q, b, n);
    for (const [name, v, error] of BAD_COUNTS) {
      cases.push({ name: `${label} ${call}(0, batch, ${name})`, call: () => fn(0, batch, v), error, message: who });
    }
    for (const [name, v] of BAD_BATCHES) {
      cases.push({ name: `${label} ${call}(0, ${name}, 8)`, call: () => fn(0, v, 8), error: TypeError, message: who });
    }
    for (const [name, v] of [["-1", -1], ["1", 1], ["0.5", 0.5], ["NaN", NaN], ["null", null]] as const) {
      cases.push({ name: `${label} ${call}(${name}, batch, 1)`, call: () => fn(v, batch, 1), error: RangeError, message: who });
    }
  }
  // txBatch of bad buffer numbers after a good one: nothing may be taken, not even the good one.
  const own = new Mempool(rig.dma, { count: 8, checked: true, name: `${label} own pool` });
  const mine = own.alloc();
  writeFrame(mine, new Uint8Array(60));
  const freed = own.alloc();
  own.free(freed);
  const other = new Mempool(new SimDma("another device's DMA"), { count: 2, name: "foreign pool" });
  const foreign = other.alloc();
  writeFrame(foreign, new Uint8Array(60));
  for (const [name, v, error] of [
    ["-1", -1, RangeError],
    ["past the table", 1 << 22, RangeError],
    ["a free buffer", freed, BufferOwnershipError],
    ["the same buffer again", mine, BufferOwnershipError],
    ["a buffer of another address space", foreign, AddressSpaceError],
  ] as const) {
    cases.push({ name: `${label} txBatch with bufs[1] = ${name}`, call: () => dev.txBatch(0, Int32Array.of(mine, v), 2), error, message: who });
  }
  for (const [name, v] of BAD_OBJECTS) {
    cases.push({ name: `${label} readStats(${name})`, call: () => dev.readStats(v as never), error: TypeError, message: who });
  }
  cases.push({ name: `${label} readStats(frozen)`, call: () => dev.readStats(Object.freeze(newStats())), error: TypeError, message: who });
  for (const [name, v] of [["\"false\"", "false"], ["1", 1], ["null", null], ["undefined", undefined]] as const) {
    cases.push({ name: `${label} setPromisc(${name})`, call: () => dev.setPromisc(v as never), error: TypeError, message: who });
  }
}

/** Device options: every key, every bad value, for both drivers (on models that would open fine). */
function optionCases(): void {
  const keys = ["rxQueues", "txQueues", "rxRingSize", "txRingSize", "mempoolSize", "linkTimeoutMs"] as const;
  const open = {
    ixgbe: (options: unknown) => {
      const dma = new SimDma("options ixgbe");
      return createIxgbeDevice(new Ixgbe82599Model({ dma }).pci, dma, options as never);
    },
    virtio: (options: unknown) => {
      const dma = new SimDma("options virtio");
      return createVirtioDevice(new VirtioNetModel({ dma }).pci, dma, options as never);
    },
  };
  for (const [driver, fn] of Object.entries(open)) {
    for (const key of keys) {
      for (const [name, v, error] of BAD_NUMBERS) {
        // linkTimeoutMs takes fractions; 1e12 ms is allowed too (a long wait, not an error).
        if (key === "linkTimeoutMs" && (name === "2.5" || name === "1e12")) continue;
        cases.push({ name: `${driver} ${key}: ${name}`, call: () => fn({ [key]: v }), error, message: new RegExp(`sim:.*${key}`) });
      }
    }
    for (const [name, v] of [['"yes"', "yes"], ["1", 1], ["null", null]] as const) {
      cases.push({ name: `${driver} checked: ${name}`, call: () => fn({ checked: v }), error: TypeError, message: /checked must be true or false/ });
      cases.push({ name: `${driver} unsafeNoIommu: ${name}`, call: () => fn({ unsafeNoIommu: v }), error: TypeError, message: /unsafeNoIommu/ });
    }
    for (const [name, v] of [['"fast"', "fast"], ["1", 1]] as const) {
      cases.push({ name: `${driver} hotPath: ${name}`, call: () => fn({ hotPath: v }), error: TypeError, message: /hotPath must be/ });
    }
    for (const [name, v] of BAD_OBJECTS) {
      cases.push({ name: `${driver} options ${name}`, call: () => fn(v), error: TypeError, message: /the device options must be an object/ });
    }
  }
  cases.push({
    name: 'virtio transport: "pio"',
    call: () => open.virtio({ transport: "pio" }),
    error: TypeError,
    message: /transport must be "modern" or "legacy", got the string "pio"/,
  });
}

function openDeviceCases(): void {
  for (const [name, v] of BAD_OBJECTS) {
    cases.push({ name: `openDevice(addr, ${name})`, call: () => openDevice("0000:01:00.0", v as never), error: TypeError, message: /options must be an object/ });
  }
  for (const [name, v] of [["null", null], ["a number", 1], ["{}", {}], ["malformed", "01:00"], ["device 0x20", "0000:01:20.0"]] as const) {
    cases.push({ name: `openDevice(${name})`, call: () => openDevice(v as never), error: TypeError, message: /PCI address/ });
  }
  for (const [name, v, error] of BAD_NUMBERS) {
    // Only the type is checked before sysfs is read; the ranges are the driver's (see optionCases).
    if (error !== TypeError) continue;
    cases.push({
      name: `openDevice linkTimeoutMs: ${name}`,
      call: () => openDevice("0000:01:00.0", { linkTimeoutMs: v as never, sysfsRoot: "/nonexistent" }),
      error,
      message: /0000:01:00\.0: linkTimeoutMs must be a number/,
    });
  }
  cases.push({ name: "openDevice sysfsRoot: 5", call: () => openDevice("0000:01:00.0", { sysfsRoot: 5 as never }), error: TypeError, message: /sysfsRoot must be a string/ });
  cases.push({ name: "openDevice vhost-user options null", call: () => openDevice("vhost-user:/nonexistent", null as never), error: TypeError, message: /must be an object/ });
}

function mempoolCases(): void {
  const dma = new SimDma("bad-input pools");
  for (const [name, v] of [["null", null], ["undefined", undefined], ["{}", {}], ["a string", "dma"]] as const) {
    cases.push({ name: `new Mempool(${name})`, call: () => new Mempool(v as never), error: TypeError, message: /Mempool: the first argument must be a DmaAllocator/ });
  }
  for (const [name, v] of BAD_OBJECTS) {
    cases.push({ name: `new Mempool(dma, ${name})`, call: () => new Mempool(dma, v as never), error: TypeError, message: /mempool options must be an object/ });
  }
  for (const key of ["count", "entrySize"] as const) {
    for (const [name, v, error] of BAD_NUMBERS) {
      cases.push({ name: `new Mempool ${key}: ${name}`, call: () => new Mempool(dma, { [key]: v }), error, message: new RegExp(key) });
    }
  }
  cases.push({ name: "new Mempool entrySize: 1000", call: () => new Mempool(dma, { entrySize: 1000 }), error: RangeError, message: /power of two/ });
  cases.push({ name: 'new Mempool checked: "yes"', call: () => new Mempool(dma, { checked: "yes" as never }), error: TypeError, message: /checked/ });
  cases.push({ name: "new Mempool name: 5", call: () => new Mempool(dma, { name: 5 as never }), error: TypeError, message: /name must be a string/ });

  const out = new Int32Array(32);
  for (const [name, v, error] of BAD_COUNTS) {
    cases.push({ name: `allocBatch(out, ${name})`, call: () => pool.allocBatch(out, v as never), error, message: /test pool: allocBatch/ });
    cases.push({ name: `freeBatch(held, ${name})`, call: () => pool.freeBatch(held, v as never), error, message: /test pool: freeBatch/ });
    if (name !== "undefined") {
      cases.push({ name: `allocBatch(out, 1, start ${name})`, call: () => pool.allocBatch(out, 1, v as never), error, message: /test pool: allocBatch/ });
    }
  }
  for (const [name, v] of BAD_BATCHES) {
    cases.push({ name: `allocBatch(${name}, 4)`, call: () => pool.allocBatch(v as never, 4), error: TypeError, message: /allocBatch\(\) needs an Int32Array/ });
    cases.push({ name: `freeBatch(${name}, 4)`, call: () => pool.freeBatch(v as never, 4), error: TypeError, message: /freeBatch\(\) needs an Int32Array/ });
  }
  for (const [name, v, error] of BAD_BUFFERS) {
    cases.push({ name: `free(${name})`, call: () => pool.free(v as never), error, message: /packet buffer/ });
    for (const [fname, fn] of [["frameOf", frameOf], ["dataOf", dataOf], ["copyFrame", copyFrame], ["frameLength", frameLength]] as const) {
      cases.push({ name: `${fname}(${name})`, call: () => fn(v as never), error, message: new RegExp(`${fname}: .*packet buffer`) });
    }
    cases.push({ name: `writeFrame(${name}, frame)`, call: () => writeFrame(v as never, new Uint8Array(60)), error, message: /writeFrame/ });
    cases.push({ name: `setFrameLength(${name}, 60)`, call: () => setFrameLength(v as never, 60), error, message: /setFrameLength/ });
  }
  for (const [name, v, error] of BAD_NUMBERS) {
    cases.push({ name: `setFrameLength(buf, ${name})`, call: () => setFrameLength(held[0]!, v as never), error, message: /setFrameLength\(\d+\): length/ });
  }
  for (const [name, v] of [["null", null], ["a string", "frame"], ["an Array", [1, 2]]] as const) {
    cases.push({ name: `writeFrame(buf, ${name})`, call: () => writeFrame(held[0]!, v as never), error: TypeError, message: /writeFrame: the frame must be a Uint8Array/ });
  }
  cases.push({ name: "writeFrame(buf, too long)", call: () => writeFrame(held[0]!, new Uint8Array(4000)), error: RangeError, message: /does not fit/ });
}

function allocatorCases(): void {
  const dma = new SimDma("bad-input allocator");
  for (const [name, v, error] of BAD_NUMBERS) {
    // 1e12 bytes is a size, only too large: DmaError (out of IOVA space), tested elsewhere.
    if (name !== "1e12") cases.push({ name: `SimDma.allocate(${name})`, call: () => dma.allocate(v as never), error, message: /bad-input allocator: .*size/ });
    cases.push({ name: `SimDma.allocate(64, align ${name})`, call: () => dma.allocate(64, { align: v as never }), error, message: /bad-input allocator: .*align/ });
    cases.push({ name: `SimDma.releaseSince(${name})`, call: () => dma.releaseSince(v as never), error, message: /bad-input allocator: .*mark/ });
  }
  for (const [name, v] of BAD_OBJECTS) {
    cases.push({ name: `SimDma.allocate(64, ${name})`, call: () => dma.allocate(64, v as never), error: TypeError, message: /bad-input allocator: the allocation options/ });
  }
  cases.push({ name: "SimDma.allocate(64, align 3)", call: () => dma.allocate(64, { align: 3 }), error: RangeError, message: /power of two/ });
  cases.push({ name: "SimDma.allocate(0)", call: () => dma.allocate(0), error: RangeError, message: /size \(bytes\) must be an integer from 1/ });
}

beforeAll(() => {
  for (const variant of VARIANTS) rigs.push(variant.open());
  pool = new Mempool(rigs[0]!.dma, { count: 64, checked: true, name: "test pool" });
  held = new Int32Array(4);
  pool.allocBatch(held, 4);
  for (const [i, rig] of rigs.entries()) deviceCases(rig, VARIANTS[i]!.name);
  optionCases();
  openDeviceCases();
  mempoolCases();
  allocatorCases();
});

afterAll(() => {
  pool.freeBatch(held, 4);
  for (const rig of rigs) rig.dev.close();
});

describe("bad input to every public entry point", () => {
  it("gets a typed error that names who and what, and changes nothing", () => {
    expect(cases.length).toBeGreaterThan(400);
    console.log(`bad-input cases: ${cases.length}`);
    const failures: string[] = [];
    const before = snapshot();
    const heldBefore = Array.from(held);
    for (const c of cases) {
      let thrown: unknown = undefined;
      let result: unknown;
      try {
        result = c.call();
      } catch (e) {
        thrown = e;
      }
      if (thrown === undefined) {
        failures.push(`${c.name}: no error (returned ${String(result)})`);
        (result as NicDevice | undefined)?.close?.();
        continue;
      }
      if (!(thrown instanceof c.error)) failures.push(`${c.name}: ${(thrown as Error).name ?? typeof thrown}, expected ${c.error.name}: ${(thrown as Error).message}`);
      else if (c.message && !c.message.test((thrown as Error).message)) failures.push(`${c.name}: message ${JSON.stringify((thrown as Error).message)} does not match ${c.message}`);
      else if (/Cannot read|Cannot set|is not a function|undefined \(reading/.test((thrown as Error).message)) failures.push(`${c.name}: a generic message: ${(thrown as Error).message}`);
    }
    expect(failures).toEqual([]);
    // Nothing lost: every pool's free count, the rings and the wires are as they were.
    expect(snapshot()).toEqual(before);
    expect(Array.from(held)).toEqual(heldBefore);
  });

  it("the devices still work after all that", () => {
    for (const rig of rigs) {
      const frame = new Uint8Array(60).fill(0xab);
      expect(rig.deliver(frame)).toBe(true);
      rig.step();
      const got = new Int32Array(4);
      expect(rig.dev.rxBatch(0, got, 4)).toBe(1);
      expect(Array.from(frameOf(got[0]!))).toEqual(Array.from(frame));
      expect(rig.dev.txBatch(0, got, 1)).toBe(1);
      rig.step();
      expect(rig.transmitted().length).toBe(1);
    }
  });
});
