/**
 * examples/lib/forward.ts, the forwarder's step: what the TX ring has no room for is dropped at
 * once, or, with retries, sent once the device has made room. The TX port is the virtio driver
 * on the model in its asynchronous mode, which completes transmitted frames only when it is
 * stepped: stepping it on every txBatch call stands for a device that sends from a thread of its
 * own (qemu's I/O thread, a vhost-user backend) while the forwarder spins.
 */
import { describe, expect, it } from "vitest";
import type { NicDevice } from "../src/device.ts";
import { SimDma } from "../src/sim/sim-dma.ts";
import { forward, newForwardCounts, queueEnd } from "../examples/lib/forward.ts";
import { VARIANTS } from "./contract/rigs.ts";

const ixgbe = VARIANTS.find((v) => v.name === "ixgbe on the 82599 model")!;
const virtioAsync = VARIANTS.find((v) => v.name === "virtio modern, asynchronous out-of-order")!;

function frame(seq: number): Uint8Array {
  const f = new Uint8Array(60 + (seq % 7)).fill(seq & 0xff);
  f[14] = seq >>> 8;
  return f;
}

describe("fwd's forward step", () => {
  it.each([0, 64])("with %d retries: drops what a full TX ring cannot take, or sends it once there is room", (retries) => {
    const dma = new SimDma("fwd retries");
    const rx = ixgbe.open({ ringSize: 64, dma });
    const tx = virtioAsync.open({ ringSize: 16, dma });
    // Each txBatch call after the first lets the device work a little: it sends what it holds.
    let calls = 0;
    const txDev = new Proxy(tx.dev, {
      get(target, key) {
        if (key === "txBatch") {
          return (queue: number, bufs: Int32Array, n: number) => {
            if (calls++ > 0) tx.step();
            return target.txBatch(queue, bufs, n);
          };
        }
        const value = Reflect.get(target, key) as unknown;
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    }) as NicDevice;
    const frames = Array.from({ length: 48 }, (_, i) => frame(i));
    for (const f of frames) expect(rx.deliver(f)).toBe(true);
    const bufs = new Int32Array(64);
    const counts = newForwardCounts();
    forward(queueEnd(rx.dev), queueEnd(txDev), bufs, 64, retries, counts);
    const dropped = counts.dropped;
    expect(counts.forwarded + dropped).toBe(48);
    tx.step();
    const sent = tx.transmitted();
    expect(dropped + sent.length).toBe(48);
    if (retries === 0) expect(dropped).toBeGreaterThan(0); // a 16-entry ring cannot take 48 at once
    else expect(dropped).toBe(0);
    // What went out, went out in order and byte-exact: the first frames, without gaps.
    sent.forEach((f, i) => expect(Array.from(f)).toEqual(Array.from(frames[i]!)));
    rx.dev.close();
    tx.dev.close();
  });
});
