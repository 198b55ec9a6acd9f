import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { IxgbeRxQueue } from "../../src/drivers/ixgbe/ixgbe-rx-queue.ts";
import { IxgbeTxQueue } from "../../src/drivers/ixgbe/ixgbe-tx-queue.ts";
import { HotPathMode } from "../../src/drivers/specialize.ts";
import { freeBuffer, freeBuffers, Mempool } from "../../src/mem/mempool.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { SimMmio } from "../../src/sim/sim-mmio.ts";

const noPoll = { pollStats: () => {}, pollCalls: 1024 };

/** A receive and a transmit queue, built on their own (the constructors only allocate rings). */
function queues(hotPath: HotPathMode) {
  const dma = new SimDma();
  const mmio = new SimMmio("test BAR0", 0x20000);
  const rx = new IxgbeRxQueue(dma, mmio, { index: 0, ringSize: 64, mempoolSize: 128, checked: false, device: "test", hotPath, ...noPoll });
  const tx = new IxgbeTxQueue(dma, mmio, { index: 0, ringSize: 64, device: "test", hotPath, ...noPoll });
  return { rx, tx };
}

const specialized = queues(HotPathMode.specialized);
const shared = queues(HotPathMode.shared);

/** The per-batch code: everything rxBatch/txBatch and the mempool's hot calls run when called correctly. */
const HOT_PATH = {
  "IxgbeDevice.rxBatch": IxgbeDevice.prototype.rxBatch,
  "IxgbeDevice.txBatch": IxgbeDevice.prototype.txBatch,
  "the receive loop (specialized)": specialized.rx.receive,
  "the receive loop (shared)": shared.rx.receive,
  "the send loop (specialized)": specialized.tx.send,
  "the send loop (shared)": shared.tx.send,
  "Mempool.alloc": Mempool.prototype.alloc,
  "Mempool.free": Mempool.prototype.free,
  "Mempool.freeBatch": Mempool.prototype.freeBatch,
  freeBuffer,
  freeBuffers,
};

function code(fn: (...args: never[]) => unknown): string {
  // Strip the function's own header (`function receive(`), comments and string literals: only
  // the body's code counts.
  return fn.toString()
    .replace(/^function\s*[\w$]*\s*\(/, "(")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/.*$/gm, "")
    .replace(/"(?:[^"\\]|\\.)*"/g, '""');
}

describe("the ixgbe hot path", () => {
  for (const [name, fn] of Object.entries(HOT_PATH)) {
    it(`${name} allocates nothing: no new, no literals, no closures, no BigInt`, () => {
      const src = code(fn as (...args: never[]) => unknown);
      expect(src.length).toBeGreaterThan(20);
      expect(src, "new").not.toMatch(/\bnew\b/);
      expect(src, "closure").not.toMatch(/=>|\bfunction\b/);
      expect(src, "array or object literal").not.toMatch(/[=(,:?]\s*[[{]|return\s*[[{]/);
      expect(src, "template literal").not.toMatch(/`/);
      expect(src, "spread").not.toMatch(/\.\.\./);
      expect(src, "BigInt").not.toMatch(/\bBigInt\b|\b\d+n\b/);
      expect(src, "DataView").not.toMatch(/DataView|getUint|setUint|readUInt|writeUInt/);
    });
  }

  it("the check itself catches an allocation", () => {
    const allocating = function receive(bufs: Int32Array): number {
      const copy = [bufs[0]];
      return copy.length;
    };
    expect(code(allocating)).toMatch(/[=(,:?]\s*[[{]/);
  });

  it("reads and writes descriptors through a Uint32Array, and no driver file uses DataView or Buffer accessors", () => {
    const dir = new URL("../../src/drivers/ixgbe/", import.meta.url).pathname;
    for (const file of readdirSync(dir)) {
      const src = readFileSync(join(dir, file), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
      expect(src, file).not.toMatch(/DataView|readUInt|writeUInt|getUint32|setUint32|BigUint64/);
    }
    for (const receive of [specialized.rx.receive, shared.rx.receive]) {
      expect(code(receive)).toMatch(/const status = desc\[w \+ 2\]/);
    }
  });
});
