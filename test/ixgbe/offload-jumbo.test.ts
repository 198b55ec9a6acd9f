/**
 * Jumbo frames on the 82599: DeviceOptions.maxFrameSize up to 9014 bytes, MAXFRS (8.2.3.22.13)
 * with HLREG0.JUMBOEN (8.2.3.22.8), receive pools and SRRCTL.BSIZEPACKET (8.2.3.8.7) sized so a
 * frame takes one buffer; oversize frames dropped and counted (ROC, RLEC). The model splits a
 * frame over descriptors wherever the buffer is smaller, so the driver's handling of that is
 * tested too.
 */
import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import type { IxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import * as T from "../../src/drivers/ixgbe/ixgbe_type.ts";
import { freeBuffer } from "../../src/mem/mempool.ts";
import { requestChecksum } from "../../src/mem/offload.ts";
import { copyFrame } from "../../src/mem/packet.ts";
import * as M from "../../src/sim/ixgbe/model-registers.ts";
import { buildFrame } from "../helpers/frames.ts";
import { prng } from "../helpers/prng.ts";
import { poolOf } from "../helpers/buffers.ts";
import { bufferWith, expectSameFrames, openSimPort, randomFrame } from "./helpers.ts";
import { poolFor, wire } from "./offload-helpers.ts";
import { rxBufferLayout } from "../../src/drivers/ixgbe/ixgbe-offloads.ts";

function tagged(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(frame.length + 4);
  out.set(frame.subarray(0, 12));
  out.set([0x81, 0x00, 0x00, 0x07], 12);
  out.set(frame.subarray(12), 16);
  return out;
}

function receive(dev: ReturnType<typeof openSimPort>["dev"]): Uint8Array[] {
  const bufs = new Int32Array(32);
  const out: Uint8Array[] = [];
  for (let n = dev.rxBatch(0, bufs, 32); n > 0; n = dev.rxBatch(0, bufs, 32)) {
    for (let i = 0; i < n; i++) {
      out.push(copyFrame(bufs[i]!));
      freeBuffer(bufs[i]!);
    }
  }
  return out;
}

describe("ixgbe jumbo frames", () => {
  it("programs MAXFRS and JUMBOEN, and sizes the receive buffers for the largest frame", () => {
    const { model, dev } = openSimPort({ maxFrameSize: 9014, mempoolSize: 600 });
    expect(dev.offloads.maxFrameSize).toBe(9014);
    expect(model.regs.peek32(M.MAXFRS) >>> M.MAXFRS_MFS_SHIFT).toBe(9018);
    expect(model.regs.peek32(M.HLREG0) & M.HLREG0_JUMBOEN).toBe(M.HLREG0_JUMBOEN);
    const srrctl = model.regs.peek32(M.SRRCTL(0));
    expect((srrctl & M.SRRCTL_BSIZEPACKET_MASK) << M.SRRCTL_BSIZEPACKET_SHIFT).toBe(9216);
    model.inject(randomFrame(prng(1), 100, 0));
    const bufs = new Int32Array(1);
    expect(dev.rxBatch(0, bufs, 1)).toBe(1);
    expect(poolOf(bufs[0]!).dataCapacity).toBe(16384 - 64);
    freeBuffer(bufs[0]!);
    dev.close();
    // The default keeps the reset values: 1518 with FCS, no JUMBOEN, 2 KB buffers.
    const std = openSimPort();
    expect(std.model.regs.peek32(M.MAXFRS) >>> M.MAXFRS_MFS_SHIFT).toBe(1518);
    expect(std.model.regs.peek32(M.HLREG0) & M.HLREG0_JUMBOEN).toBe(0);
    expect(std.model.regs.peek32(M.SRRCTL(0)) & M.SRRCTL_BSIZEPACKET_MASK).toBe(2);
    std.dev.close();
    expect(rxBufferLayout(4000)).toEqual({ entrySize: 4096, bufferSize: 4096, largestWrite: 4004 });
    expect(rxBufferLayout(4030)).toEqual({ entrySize: 8192, bufferSize: 4096, largestWrite: 4034 });
    expect(rxBufferLayout(4093)).toEqual({ entrySize: 8192, bufferSize: 5120, largestWrite: 4097 });
  });

  it("receives frames at the limit in one buffer, and drops (and counts) frames one byte over it", () => {
    for (const maxFrameSize of [1514, 4000, 9014]) {
      const { model, dev } = openSimPort({ maxFrameSize, mempoolSize: 600 });
      const rand = prng(maxFrameSize);
      const atLimit = randomFrame(rand, maxFrameSize, 1);
      const tagLimit = tagged(randomFrame(rand, maxFrameSize, 2));
      expect(model.inject(atLimit)).toBe(true);
      expect(model.inject(tagLimit)).toBe(true);
      expect(model.inject(randomFrame(rand, maxFrameSize + 1, 3))).toBe(false);
      expect(model.inject(tagged(randomFrame(rand, maxFrameSize + 1, 4)))).toBe(false);
      expectSameFrames(receive(dev), [atLimit, tagLimit]);
      expect((dev as IxgbeDevice).hwCounters().rxOversize).toBe(2);
      const stats = newStats();
      dev.readStats(stats);
      expect(stats.rxErrors).toBe(2); // RLEC
      dev.close();
    }
  });

  it("a frame the device spreads over several descriptors (a smaller SRRCTL buffer) is dropped and counted, and the ring stays in step", () => {
    const { model, dev } = openSimPort({ maxFrameSize: 9014, mempoolSize: 600 });
    // What the driver never programs: 2 KB buffers under a 9018-byte MAXFRS.
    model.regs.write32(T.IXGBE_SRRCTL(0), (model.regs.peek32(M.SRRCTL(0)) & ~M.SRRCTL_BSIZEPACKET_MASK) | 2);
    const rand = prng(41);
    const small = randomFrame(rand, 1000, 1);
    const big = randomFrame(rand, 5000, 2); // three descriptors
    const after = randomFrame(rand, 2048, 3); // exactly one
    for (const f of [small, big, after]) expect(model.inject(f)).toBe(true);
    expectSameFrames(receive(dev), [small, after]);
    const stats = newStats();
    dev.readStats(stats);
    expect(stats.rxErrors).toBe(1);
    dev.close();
  });

  it("sends jumbo frames up to maxFrameSize (and a VLAN tag), with checksum requests too, and refuses longer ones", () => {
    const a = openSimPort({ maxFrameSize: 9014, mempoolSize: 600 });
    const b = openSimPort({ maxFrameSize: 9014, mempoolSize: 600 });
    a.model.connect(b.model);
    const pool = poolFor(a.dev, 8, 16384);
    const rand = prng(42);
    const frames = wire(a.model);
    const plain = randomFrame(rand, 9014, 1);
    const udp = buildFrame({ proto: "udp", payload: 9014 - 42 }, rand).bytes;
    const over = randomFrame(rand, 9019, 2);
    const batch = Int32Array.of(bufferWith(pool, plain), bufferWith(pool, udp), bufferWith(pool, over));
    requestChecksum(batch[1]!);
    expect(a.dev.txBatch(0, batch, 3)).toBe(3);
    expectSameFrames(frames, [plain, udp]);
    expectSameFrames(receive(b.dev), [plain, udp]);
    const stats = newStats();
    a.dev.readStats(stats);
    expect(stats.txErrors).toBe(1);
    a.dev.close();
    b.dev.close();
  });

  it("refuses a maxFrameSize outside 1514 .. 9014", () => {
    expect(() => openSimPort({ maxFrameSize: 1513 })).toThrow(RangeError);
    expect(() => openSimPort({ maxFrameSize: 9015 })).toThrow(RangeError);
  });
});
