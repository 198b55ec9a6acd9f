import { describe, expect, it } from "vitest";
import { bufDataOffset, bufLength } from "../../src/mem/buffer-table.ts";
import { Mempool, MEMPOOL_HEADROOM } from "../../src/mem/mempool.ts";
import { copyFrame, dataOf, frameLength, frameOf, setFrameLength, writeFrame } from "../../src/mem/packet.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { randomBytes, prng } from "../helpers/prng.ts";

function pool(options: { count?: number; entrySize?: number } = {}): Mempool {
  return new Mempool(new SimDma(), { count: options.count ?? 4, entrySize: options.entrySize, name: "frames" });
}

describe("packet helpers", () => {
  it("writeFrame copies a frame in and sets its length; frameOf is a view of it, copyFrame a copy", () => {
    const p = pool();
    const buf = p.alloc();
    const frame = randomBytes(prng(1), 300);
    writeFrame(buf, frame);
    expect(frameLength(buf)).toBe(300);
    expect(bufLength[buf]).toBe(300);
    const view = frameOf(buf);
    expect(view).toEqual(frame);
    expect(view.buffer).toBe(p.bytes.buffer); // the DMA memory itself
    expect(view.byteOffset).toBe(p.bytes.byteOffset + bufDataOffset[buf]!);
    const copy = copyFrame(buf);
    expect(copy).toEqual(frame);
    expect(copy.buffer).not.toBe(p.bytes.buffer);
    // A write through the view lands in the buffer; the copy keeps what it had.
    view[0] = frame[0]! ^ 0xff;
    expect(frameOf(buf)[0]).toBe(frame[0]! ^ 0xff);
    expect(copy[0]).toBe(frame[0]);
    p.free(buf);
    p.close();
  });

  it("keeps each buffer's frame to itself", () => {
    const p = pool({ count: 8 });
    const random = prng(2);
    const bufs = Array.from({ length: 8 }, () => p.alloc());
    const frames = bufs.map((b, i) => {
      const f = randomBytes(random, 60 + i * 200);
      writeFrame(b, f);
      return f;
    });
    bufs.forEach((b, i) => expect(copyFrame(b)).toEqual(frames[i]));
    p.close();
  });

  it("dataOf is the whole data area, after the headroom, and setFrameLength chooses how much of it is the frame", () => {
    const p = pool();
    const buf = p.alloc();
    const data = dataOf(buf);
    expect(data.length).toBe(p.dataCapacity);
    expect(data.byteOffset - p.bytes.byteOffset).toBe((buf - p.first) * p.entrySize + MEMPOOL_HEADROOM);
    data.fill(0xab, 0, 100);
    setFrameLength(buf, 100);
    expect(frameLength(buf)).toBe(100);
    expect(copyFrame(buf)).toEqual(new Uint8Array(100).fill(0xab));
    setFrameLength(buf, 0);
    expect(frameOf(buf).length).toBe(0);
    setFrameLength(buf, p.dataCapacity);
    expect(frameOf(buf).length).toBe(p.dataCapacity);
    p.close();
  });

  it("writeFrame takes a frame as large as the data area, and refuses a larger one without touching the buffer", () => {
    const p = pool({ entrySize: 256 });
    const buf = p.alloc();
    expect(p.dataCapacity).toBe(192);
    writeFrame(buf, new Uint8Array(192).fill(1));
    expect(frameLength(buf)).toBe(192);
    writeFrame(buf, new Uint8Array(10).fill(2));
    expect(() => writeFrame(buf, new Uint8Array(193).fill(3))).toThrow(RangeError);
    expect(() => writeFrame(buf, new Uint8Array(193))).toThrow(new RegExp(`writeFrame: a 193-byte frame does not fit buffer ${buf} \\(192 bytes\\)`));
    expect(frameLength(buf)).toBe(10);
    expect(copyFrame(buf)).toEqual(new Uint8Array(10).fill(2));
    expect(dataOf(buf)[10]).toBe(1); // what was there before
    p.close();
  });

  it("setFrameLength refuses a length below 0, above the capacity or not an integer", () => {
    const p = pool({ entrySize: 256 });
    const buf = p.alloc();
    setFrameLength(buf, 50);
    for (const length of [-1, 193, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => setFrameLength(buf, length), String(length)).toThrow(RangeError);
    }
    expect(() => setFrameLength(buf, 193)).toThrow(/setFrameLength\(\d+\): length must be an integer from 0 to 192, got 193/);
    expect(frameLength(buf)).toBe(50);
    p.close();
  });

  it("every helper refuses a number that is no buffer with a RangeError naming the call", () => {
    const p = pool();
    const closed = pool();
    const stale = closed.first;
    closed.close();
    const calls: [string, (b: number) => unknown][] = [
      ["frameOf", frameOf],
      ["dataOf", dataOf],
      ["copyFrame", copyFrame],
      ["writeFrame", (b) => writeFrame(b, new Uint8Array(10))],
      ["frameLength", frameLength],
      ["setFrameLength", (b) => setFrameLength(b, 10)],
    ];
    for (const [name, call] of calls) {
      for (const bad of [-1, stale, p.first + 0.5, 1 << 20, Number.NaN]) {
        expect(() => call(bad), `${name}(${bad})`).toThrow(RangeError);
      }
      expect(() => call(-1)).toThrow(/-1 is not a packet buffer of any open mempool/);
      if (name !== "copyFrame") expect(() => call(-1)).toThrow(new RegExp(`^${name}: `));
    }
    p.close();
  });
});
