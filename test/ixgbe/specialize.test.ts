/**
 * The hot loops are compiled once per queue (src/drivers/specialize.ts) unless the device is
 * opened with hotPath: "shared" or IXY_HOT_PATH=shared is set. What tells the two apart from the
 * outside is the code that runs: a specialized copy is compiled from a string and named by its
 * `//# sourceURL=ixy-hot-path/...`, which shows in the stack of an error thrown inside the loop;
 * a shared loop is the factory's closure, at its place in the driver's source file.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { DeviceOptions } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import { HotPathMode } from "../../src/drivers/specialize.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { expectSameFrames, openSimPort, randomFrame, randomLength, rng, tracedPci } from "./helpers.ts";

afterEach(() => {
  vi.unstubAllEnvs();
});

/** The stack of the error txBatch throws from inside the send loop for a number that is no buffer. */
function sendLoopStack(options: DeviceOptions, queue = 0): string {
  const { dev } = openSimPort({ txQueues: queue + 1, ...options });
  try {
    dev.txBatch(queue, Int32Array.of(-1), 1);
  } catch (e) {
    expect(e).toBeInstanceOf(RangeError);
    return (e as Error).stack ?? "";
  } finally {
    dev.close();
  }
  throw new Error("txBatch took a buffer number of -1");
}

/** The stack of an error thrown by the RDT write at the end of the receive loop. */
function receiveLoopStack(options: DeviceOptions): string {
  const dma = new SimDma();
  const model = new Ixgbe82599Model({ dma });
  let armed = false;
  const pci = tracedPci(model.pci, (access) => {
    if (armed && access.op === "write" && access.offset === T.IXGBE_RDT(0)) throw new Error("RDT written");
  });
  const dev = createIxgbeDevice(pci, dma, { linkTimeoutMs: 1000, ...options });
  try {
    expect(model.inject(new Uint8Array(60))).toBe(true);
    armed = true;
    dev.rxBatch(0, new Int32Array(1), 1);
  } catch (e) {
    expect((e as Error).message).toBe("RDT written");
    return (e as Error).stack ?? "";
  } finally {
    armed = false;
    dev.close();
  }
  throw new Error("rxBatch did not write RDT");
}

const SPECIALIZED_TX = /ixy-hot-path\/ixgbe_sim:ixgbe\d+_TX_0\/\d+/;
const SPECIALIZED_RX = /ixy-hot-path\/ixgbe_sim:ixgbe\d+_RX_0\/\d+/;

describe("ixgbe hot loops", () => {
  it("run as a compiled copy per queue by default", () => {
    vi.stubEnv("IXY_HOT_PATH", undefined);
    const tx = sendLoopStack({});
    expect(tx).toMatch(SPECIALIZED_TX);
    expect(tx).toMatch(/at (IxgbeTxQueue\.)?send \(ixy-hot-path\//);
    expect(receiveLoopStack({})).toMatch(SPECIALIZED_RX);
  });

  it("give each queue a copy of its own, named after the device and the queue", () => {
    vi.stubEnv("IXY_HOT_PATH", undefined);
    const urls = [0, 1, 2].map((q) => sendLoopStack({}, q).match(/ixy-hot-path\/[^:\s)]+:[^/\s)]+\/\d+/)![0]);
    expect(urls[0]).toMatch(/_TX_0\//);
    expect(urls[1]).toMatch(/_TX_1\//);
    expect(urls[2]).toMatch(/_TX_2\//);
    expect(new Set(urls).size).toBe(3);
  });

  it("run the driver's own functions with hotPath: \"shared\"", () => {
    vi.stubEnv("IXY_HOT_PATH", undefined);
    const tx = sendLoopStack({ hotPath: HotPathMode.shared });
    expect(tx).not.toMatch(/ixy-hot-path/);
    expect(tx).toMatch(/at (IxgbeTxQueue\.)?send \(.*ixgbe-tx-queue\.ts:\d+/);
    const rx = receiveLoopStack({ hotPath: HotPathMode.shared });
    expect(rx).not.toMatch(/ixy-hot-path/);
    expect(rx).toMatch(/at (IxgbeRxQueue\.)?receive \(.*ixgbe-rx-queue\.ts:\d+/);
  });

  it("run the driver's own functions with IXY_HOT_PATH=shared, unless the options ask for specialized", () => {
    vi.stubEnv("IXY_HOT_PATH", "shared");
    const tx = sendLoopStack({});
    expect(tx).not.toMatch(/ixy-hot-path/);
    expect(tx).toMatch(/ixgbe-tx-queue\.ts/);
    expect(receiveLoopStack({})).not.toMatch(/ixy-hot-path/);
    expect(sendLoopStack({ hotPath: HotPathMode.specialized })).toMatch(SPECIALIZED_TX);
    // Any other value leaves the default alone.
    vi.stubEnv("IXY_HOT_PATH", "SHARED");
    expect(sendLoopStack({})).toMatch(SPECIALIZED_TX);
  });

  it("forward the same frames byte-exact in both modes on the 82599 model", () => {
    const forwarded = (hotPath: HotPathMode) => {
      const dma = new SimDma();
      const rx = openSimPort({ rxRingSize: 64, txRingSize: 64, mempoolSize: 256, hotPath }, {}, dma);
      const tx = openSimPort({ rxRingSize: 64, txRingSize: 64, hotPath }, {}, dma);
      const seen: Uint8Array[] = [];
      tx.model.onTransmit = (frame) => seen.push(frame);
      const random = rng(77);
      const expected: Uint8Array[] = [];
      const bufs = new Int32Array(32);
      for (let seq = 0; seq < 2000;) {
        const burst = 1 + Math.floor(random() * 40);
        for (let i = 0; i < burst; i++, seq++) {
          const frame = randomFrame(random, randomLength(random), seq);
          if (rx.model.inject(frame)) expected.push(frame);
        }
        const n = rx.dev.rxBatch(0, bufs, 1 + Math.floor(random() * 32));
        expect(tx.dev.txBatch(0, bufs, n)).toBe(n);
      }
      for (let n; (n = rx.dev.rxBatch(0, bufs, 32)) > 0;) expect(tx.dev.txBatch(0, bufs, n)).toBe(n);
      expectSameFrames(seen, expected);
      rx.dev.close();
      tx.dev.close();
      dma.close();
      return seen;
    };
    const a = forwarded(HotPathMode.specialized);
    const b = forwarded(HotPathMode.shared);
    expect(a.length).toBeGreaterThan(1500); // some are missed when a burst overfills the ring
    expectSameFrames(b, a);
  });
});
