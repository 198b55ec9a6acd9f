import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { crc32, withFcs } from "../../src/net/crc32.ts";

describe("crc32()", () => {
  it("gives the IEEE check values, on the table path and the native one", () => {
    expect(crc32(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    // 64 bytes and more go to zlib.crc32 where it exists: the same value either way.
    const long = new TextEncoder().encode("The quick brown fox jumps over the lazy dog".repeat(2));
    expect(crc32(long, 0, 43)).toBe(0x414fa339);
    expect(crc32(long)).toBe(crc32(long, 43, long.length, crc32(long, 0, 43)));
  });

  it.runIf(typeof (zlib as { crc32?: unknown }).crc32 === "function")("matches zlib and can be continued", () => {
    const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919) & 0xff);
    expect(crc32(data)).toBe((zlib as unknown as { crc32(d: Uint8Array): number }).crc32(data) >>> 0);
    expect(crc32(data, 400, 1000, crc32(data, 0, 400))).toBe(crc32(data));
    expect(crc32(data, 10, 20, crc32(data, 0, 10))).toBe(crc32(data, 0, 20));
  });

  it("withFcs appends the CRC least significant byte first", () => {
    const f = withFcs(new TextEncoder().encode("123456789"));
    expect([...f.subarray(9)]).toEqual([0x26, 0x39, 0xf4, 0xcb]);
  });
});
