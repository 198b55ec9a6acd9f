/** Shared pieces of the ixgbe offload tests: random offloadable frames, pools, the wire. */
import type { NicDevice } from "../../src/device.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { buildFrame, type BuiltFrame, type FrameSpec } from "../helpers/frames.ts";
import { randInt } from "../helpers/prng.ts";
import type { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";

/** A random TCP or UDP frame over IPv4 or IPv6 (VLAN tags, IP and TCP options sometimes), checksums correct. */
export function randomSpec(rand: () => number, payload: [number, number] = [0, 1380]): FrameSpec {
  const proto = rand() < 0.5 ? "tcp" : "udp";
  const ipv6 = rand() < 0.4;
  return {
    proto,
    ipv6,
    vlan: rand() < 0.25,
    ipOptions: rand() < 0.25 ? (ipv6 ? 8 : 4 * randInt(rand, 1, 10)) : 0,
    tcpOptions: proto === "tcp" && rand() < 0.4 ? 4 * randInt(rand, 1, 10) : 0,
    payload: randInt(rand, payload[0], payload[1]),
  };
}

export function randomFrameOf(rand: () => number, payload?: [number, number]): BuiltFrame {
  return buildFrame(randomSpec(rand, payload), rand);
}

/** A checked pool on the device's allocator with `entrySize`-byte buffers. */
export function poolFor(dev: NicDevice, count: number, entrySize = 2048): Mempool {
  return new Mempool(dev.dma, { count, checked: true, entrySize, name: `offload test pool (${entrySize})` });
}

/** Every frame the port puts on the wire, in order. */
export function wire(model: Ixgbe82599Model): Uint8Array[] {
  const frames: Uint8Array[] = [];
  model.onTransmit = (frame) => frames.push(frame);
  return frames;
}

/** `frame` as it goes on the wire with HLREG0.TXPADEN: zero-padded to 60 bytes. */
export function padded(frame: Uint8Array): Uint8Array {
  if (frame.length >= 60) return frame;
  const out = new Uint8Array(60);
  out.set(frame);
  return out;
}
