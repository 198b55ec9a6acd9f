/**
 * The offload path of the transmit loop in a worker thread (attachIxgbeSend compiles it there):
 * a worker echoes received frames with a checksum request, the model fills the checksums in.
 */
import { describe, expect, it } from "vitest";
import { deliverPostedWrites } from "../../src/sim/sim-mmio.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";
import { prng, randomBytes } from "../helpers/prng.ts";
import { expectSameFrames, openSimPort } from "./helpers.ts";
import { padded, randomFrameOf, wire } from "./offload-helpers.ts";

const ECHO = new URL("./workers/offload-echo.ts", import.meta.url);

describe("ixgbe offloads in a worker thread", () => {
  it("a worker's checksum requests are filled in by the device, byte-exact", async () => {
    const { model, dev } = openSimPort({ checked: true, rxRingSize: 64, txRingSize: 64, mempoolSize: 256 });
    const control = new Int32Array(new SharedArrayBuffer(8));
    const worker = startTsWorker(ECHO, { workerData: { pair: dev.shareQueuePair(0), control } });
    const result = new Promise<{ received: number; sent: number; error?: { message: string } }>((resolve, reject) => {
      let message: { received: number; sent: number } | undefined;
      worker.on("message", (m) => (message = m));
      worker.on("error", reject);
      worker.on("exit", (code) => (message !== undefined ? resolve(message) : reject(new Error(`worker exited with ${code}`))));
    });
    const rand = prng(51);
    const frames = wire(model);
    const expected: Uint8Array[] = [];
    const total = 300;
    let offered = 0;
    const end = Date.now() + 60_000;
    while (frames.length < total && Date.now() < end) {
      deliverPostedWrites();
      while (offered < total && offered - frames.length < 48) {
        const good = randomFrameOf(rand, [0, 1000]);
        expected.push(padded(good.bytes));
        const garbled = good.bytes.slice();
        garbled.set(randomBytes(rand, 2), good.l2 + good.l3 + (good.l4 === 8 ? 6 : 16));
        expect(model.inject(garbled)).toBe(true);
        offered++;
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    Atomics.store(control, 0, 1);
    const echoed = await result;
    expect(echoed.error).toBeUndefined();
    deliverPostedWrites();
    expectSameFrames(frames, expected);
    expect(dev.reclaimQueuePair(0)).toBe(true);
    dev.close();
  }, 90_000);
});
