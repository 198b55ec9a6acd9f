import { describe, expect, it } from "vitest";
import { DeviceTimeoutError } from "../../src/errors.ts";
import { TypedArrayMmio } from "../../src/pci/mmio.ts";
import { clearFlags32, getReg32, setFlags32, setReg32, waitClearReg32, waitSetReg32 } from "../../src/pci/regs.ts";
import { TracingMmio, type RegisterAccess } from "../../src/pci/tracing-mmio.ts";
import { SimMmio } from "../../src/sim/sim-mmio.ts";

describe("TypedArrayMmio", () => {
  it("reads and writes little-endian values of each width at byte offsets", () => {
    const buf = new ArrayBuffer(64);
    const mmio = new TypedArrayMmio("test BAR0", buf);
    mmio.write32(8, 0x11223344);
    expect(Array.from(new Uint8Array(buf, 8, 4))).toEqual([0x44, 0x33, 0x22, 0x11]);
    expect(mmio.read16(8)).toBe(0x3344);
    expect(mmio.read16(10)).toBe(0x1122);
    expect(mmio.read8(11)).toBe(0x11);
    mmio.write16(12, 0xbeef);
    mmio.write8(14, 0x7f);
    expect(mmio.read32(12)).toBe(0x007fbeef);
  });

  it("returns register values as unsigned numbers", () => {
    const mmio = new TypedArrayMmio("test", new ArrayBuffer(16));
    mmio.write32(0, 0xffffffff);
    expect(mmio.read32(0)).toBe(4294967295);
    setReg32(mmio, 4, -1);
    expect(getReg32(mmio, 4)).toBe(0xffffffff);
  });

  it("rejects an access outside the window or misaligned with a RangeError naming the window", () => {
    const mmio = new TypedArrayMmio("0000:01:00.0 BAR0", new ArrayBuffer(16));
    expect(() => mmio.read32(16)).toThrow(RangeError);
    expect(() => mmio.read32(14)).toThrow(/0000:01:00.0 BAR0/);
    expect(() => mmio.write32(2, 0)).toThrow(/aligned/);
    expect(() => mmio.read16(-2)).toThrow(RangeError);
    expect(() => mmio.write8(16, 1)).toThrow(RangeError);
  });

  it("can be a window into the middle of a buffer", () => {
    const buf = new ArrayBuffer(64);
    const mmio = new TypedArrayMmio("w", buf, 32, 16);
    mmio.write32(0, 7);
    expect(new Uint32Array(buf)[8]).toBe(7);
    expect(() => mmio.read32(16)).toThrow(RangeError);
  });

  it("exposes its memory as words16 and words32, aliasing what read and write access", () => {
    const buf = new ArrayBuffer(64);
    const mmio = new TypedArrayMmio("w", buf, 16, 32);
    const words32 = mmio.words32!;
    const words16 = mmio.words16!;
    expect(words32).toBeInstanceOf(Uint32Array);
    expect([words32.length, words16.length]).toEqual([8, 16]);
    expect([words32.byteOffset, words16.byteOffset]).toEqual([16, 16]);
    words32[2] = 0xdead_beef; // a hot loop's doorbell store
    expect(mmio.read32(8)).toBe(0xdead_beef);
    expect(mmio.read16(10)).toBe(0xdead);
    mmio.write16(4, 0x1234);
    expect(words16[2]).toBe(0x1234);
    expect(mmio.words32).toBe(words32); // the same view every time
  });
});

describe("Mmio implementations that run code on an access", () => {
  it("have no words to store into: SimMmio and TracingMmio", () => {
    const sim = new SimMmio("dev", 16);
    const traced = new TracingMmio(new TypedArrayMmio("t", new ArrayBuffer(16)), () => {});
    for (const mmio of [sim, traced]) {
      expect(mmio.words16).toBeNull();
      expect(mmio.words32).toBeNull();
    }
  });
});

describe("register helpers", () => {
  it("setFlags32 and clearFlags32 change only the given bits, and keep bit 31 unsigned", () => {
    const mmio = new TypedArrayMmio("t", new ArrayBuffer(8));
    setReg32(mmio, 0, 0x0000_00f0);
    setFlags32(mmio, 0, 0x8000_0001);
    expect(getReg32(mmio, 0)).toBe(0x8000_00f1);
    clearFlags32(mmio, 0, 0x0000_0030);
    expect(getReg32(mmio, 0)).toBe(0x8000_00c1);
  });

  it("waitSetReg32 returns once the device sets the bits", () => {
    const mmio = new SimMmio("dev", 16);
    let polls = 0;
    mmio.onRead(4, () => (++polls >= 3 ? 0x8 : 0));
    expect(waitSetReg32(mmio, 4, 0x8, { pollMs: 0 })).toBe(0x8);
    expect(polls).toBe(3);
  });

  it("waitSetReg32 times out with a DeviceTimeoutError naming device, register, mask and last value", () => {
    const mmio = new SimMmio("0000:01:00.0 BAR0", 16);
    mmio.poke32(4, 0x1234);
    const t0 = performance.now();
    let error: unknown;
    try {
      waitSetReg32(mmio, 4, 0x0001_0000, { name: "EEC", timeoutMs: 30 });
    } catch (e) {
      error = e;
    }
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    expect(error).toBeInstanceOf(DeviceTimeoutError);
    expect(String((error as Error).message)).toMatch(/0000:01:00.0 BAR0.*EEC \(0x00000004\).*0x00010000 set.*0x00001234/);
  });

  it("waitClearReg32 waits for bits to clear and times out when they stay set", () => {
    const mmio = new SimMmio("dev", 16);
    mmio.poke32(0, 0x4000_0000);
    expect(() => waitClearReg32(mmio, 0, 0x4000_0000, { name: "CTRL", timeoutMs: 10 })).toThrow(/CTRL.*cleared.*0x40000000/);
    mmio.poke32(0, 0);
    expect(waitClearReg32(mmio, 0, 0x4000_0000, { timeoutMs: 10 })).toBe(0);
  });
});

describe("SimMmio", () => {
  it("calls the read hook once per access, with the access width", () => {
    const mmio = new SimMmio("dev", 32);
    const seen: number[] = [];
    mmio.onRead(8, (_off, width) => {
      seen.push(width);
      return 0xdeadbeef;
    });
    expect(mmio.read32(8)).toBe(0xdeadbeef);
    expect(mmio.read16(8)).toBe(0xbeef);
    expect(seen).toEqual([4, 2]);
  });

  it("a clear-on-read counter built from hooks counts and clears", () => {
    const mmio = new SimMmio("dev", 16);
    let counter = 0;
    mmio.onRead(0, () => {
      const v = counter;
      counter = 0;
      return v;
    });
    counter = 5;
    expect(mmio.read32(0)).toBe(5);
    expect(mmio.read32(0)).toBe(0);
  });

  it("routes writes to the write hook instead of the backing store", () => {
    const mmio = new SimMmio("dev", 16);
    const writes: number[] = [];
    mmio.onWrite(4, (v) => writes.push(v));
    mmio.write32(4, 0x80000000);
    expect(writes).toEqual([0x80000000]);
    expect(mmio.peek32(4)).toBe(0);
  });
});

describe("TracingMmio", () => {
  it("reports every access in order and passes it through", () => {
    const inner = new SimMmio("dev", 16);
    const log: RegisterAccess[] = [];
    const mmio = new TracingMmio(inner, (op, offset, width, value) => log.push({ op, offset, width, value }));
    mmio.write32(0, 0xabcd);
    expect(mmio.read32(0)).toBe(0xabcd);
    mmio.write8(5, 0x1ff);
    expect(log).toEqual([
      { op: "write", offset: 0, width: 4, value: 0xabcd },
      { op: "read", offset: 0, width: 4, value: 0xabcd },
      { op: "write", offset: 5, width: 1, value: 0xff },
    ]);
    expect(inner.peek8(5)).toBe(0xff);
  });
  it("hands a worker the window it wraps, untraced; a window that cannot be shared says so", () => {
    const buf = new SharedArrayBuffer(16);
    const log: string[] = [];
    const shared = new TracingMmio(new TypedArrayMmio("t", buf), (op) => log.push(op)).share([8]);
    expect(shared.kind).toBe("memory");
    expect(shared.name).toBe("t");
    expect(log).toEqual([]);
    expect(new TracingMmio(new SimMmio("dev", 16), () => {}).share([8]).kind).toBe("posted");
    const plain = { name: "plain", size: 16 }; // no share(): an Mmio that lives in this thread only
    expect(() => new TracingMmio(plain as TypedArrayMmio, () => {}).share([8])).toThrow(/plain: .*cannot be handed/);
  });
});
