import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { IxgbeRxQueue } from "../../src/drivers/ixgbe/ixgbe-rx-queue.ts";
import { IxgbeTxQueue } from "../../src/drivers/ixgbe/ixgbe-tx-queue.ts";
import { Mempool } from "../../src/mem/mempool.ts";

/** The per-batch code: everything rxBatch/txBatch run when called correctly. */
const HOT_PATH = {
  "IxgbeDevice.rxBatch": IxgbeDevice.prototype.rxBatch,
  "IxgbeDevice.txBatch": IxgbeDevice.prototype.txBatch,
  "IxgbeRxQueue.receive": IxgbeRxQueue.prototype.receive,
  "IxgbeTxQueue.send": IxgbeTxQueue.prototype.send,
  "Mempool.alloc": Mempool.prototype.alloc,
  "Mempool.free": Mempool.prototype.free,
  "Mempool.freeBatch": Mempool.prototype.freeBatch,
};

function code(fn: (...args: never[]) => unknown): string {
  // Strip comments and string literals: only code counts.
  return fn.toString()
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/.*$/gm, "")
    .replace(/"(?:[^"\\]|\\.)*"/g, '""');
}

describe("the ixgbe hot path", () => {
  for (const [name, fn] of Object.entries(HOT_PATH)) {
    it(`${name} allocates nothing: no new, no literals, no closures, no BigInt`, () => {
      const src = code(fn as (...args: never[]) => unknown);
      expect(src, "new").not.toMatch(/\bnew\b/);
      expect(src, "closure").not.toMatch(/=>|\bfunction\b/);
      expect(src, "array or object literal").not.toMatch(/[=(,:?]\s*[[{]|return\s*[[{]/);
      expect(src, "template literal").not.toMatch(/`/);
      expect(src, "spread").not.toMatch(/\.\.\./);
      expect(src, "BigInt").not.toMatch(/\bBigInt\b|\b\d+n\b/);
      expect(src, "DataView").not.toMatch(/DataView|getUint|setUint|readUInt|writeUInt/);
    });
  }

  it("reads and writes descriptors through a Uint32Array, and no driver file uses DataView or Buffer accessors", () => {
    const dir = new URL("../../src/drivers/ixgbe/", import.meta.url).pathname;
    for (const file of readdirSync(dir)) {
      const src = readFileSync(join(dir, file), "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
      expect(src, file).not.toMatch(/DataView|readUInt|writeUInt|getUint32|setUint32|BigUint64/);
    }
    const receive = code(IxgbeRxQueue.prototype.receive);
    expect(receive).toMatch(/const status = desc\[w \+ 2\]/);
  });
});
