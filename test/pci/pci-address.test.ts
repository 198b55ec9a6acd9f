import { describe, expect, it } from "vitest";
import { PciAddress } from "../../src/pci/pci-address.ts";

describe("PciAddress", () => {
  it("parses a full domain:bus:device.function address", () => {
    const a = PciAddress.parse("0000:01:00.0");
    expect([a.domain, a.bus, a.device, a.func]).toEqual([0, 1, 0, 0]);
    expect(a.toString()).toBe("0000:01:00.0");
  });

  it("accepts an address without domain and means domain 0", () => {
    expect(PciAddress.parse("3b:1f.7").toString()).toBe("0000:3b:1f.7");
  });

  it("accepts hex digits in either case and prints them lower-case", () => {
    expect(PciAddress.parse("ABCD:EF:1A.3").toString()).toBe("abcd:ef:1a.3");
  });

  it.each(["", "0000:01:00", "01:00:0", "0000:01:00.8", "0000:01:20.0", "0000:001:00.0", "g000:01:00.0", "0000:01:00.0 x", "eth0"])(
    "rejects %j with a TypeError that shows the expected form",
    (text) => {
      expect(() => PciAddress.parse(text)).toThrow(TypeError);
      expect(() => PciAddress.parse(text)).toThrow(/0000:01:00\.0/);
    },
  );

  it("rejects a value that is not a string", () => {
    expect(() => PciAddress.parse(42 as unknown as string)).toThrow(TypeError);
  });
});
