/**
 * The pcap reader of pktgen --pcap: round trip with our PcapWriter, files written by text2pcap
 * and editcap (microsecond and nanosecond), a big-endian file, and a typed error for bad files.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parsePcap, PcapFormatError, readPcap } from "../../examples/lib/pcap-reader.ts";
import { PcapWriter } from "../../examples/lib/pcap-writer.ts";
import { writeUdpFrame } from "../../examples/lib/udp-frame.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pktgen-pcap-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const has = (tool: string) => spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;

function frames(): Uint8Array[] {
  return [60, 128, 1514].map((size, i) => {
    const f = new Uint8Array(size);
    writeUdpFrame(f, size, { srcPort: 1000 + i });
    return f;
  });
}

/** Hex dump in text2pcap's input format. */
function hexdump(f: Uint8Array): string {
  let out = "";
  for (let i = 0; i < f.length; i += 16) {
    out += i.toString(16).padStart(6, "0") + " " + [...f.subarray(i, i + 16)].map((b) => b.toString(16).padStart(2, "0")).join(" ") + "\n";
  }
  return out;
}

describe("pcap reader", () => {
  it("reads back what PcapWriter wrote: frames, lengths, microsecond timestamps", () => {
    const file = path.join(dir, "ours.pcap");
    const w = new PcapWriter(file);
    const fs3 = frames();
    fs3.forEach((f, i) => w.write(f, 0, f.length, 1_700_000_000_000 + i * 1.5));
    w.close();
    const p = readPcap(file);
    expect(p.linkType).toBe(1);
    expect(p.nanosecond).toBe(false);
    expect(p.bigEndian).toBe(false);
    expect(p.frames).toEqual(fs3);
    expect(p.wireLengths).toEqual([60, 128, 1514]);
    expect(p.timesNs[1]! - p.timesNs[0]!).toBeCloseTo(1_500_000, -3);
  });

  it.skipIf(!has("text2pcap") || !has("editcap"))("reads text2pcap's file, and editcap's nanosecond version of it, with the same frames", () => {
    const text = path.join(dir, "frames.txt");
    fs.writeFileSync(text, frames().map(hexdump).join(""));
    const us = path.join(dir, "t2p.pcap");
    const ns = path.join(dir, "t2p-ns.pcap");
    let r = spawnSync("text2pcap", ["-q", "-F", "pcap", text, us], { encoding: "utf8" });
    if (r.status !== 0) r = spawnSync("text2pcap", ["-q", text, us], { encoding: "utf8" }); // older text2pcap: pcap is its only output
    expect(r.status, r.stderr).toBe(0);
    expect(spawnSync("editcap", ["-F", "nsecpcap", us, ns]).status).toBe(0);
    const a = readPcap(us);
    const b = readPcap(ns);
    expect(a.nanosecond).toBe(false);
    expect(b.nanosecond).toBe(true);
    expect(a.frames).toEqual(frames());
    expect(b.frames).toEqual(frames());
    expect(b.timesNs).toEqual(a.timesNs);
  });

  it("reads a big-endian nanosecond file", () => {
    const f = frames()[1]!;
    const data = new Uint8Array(24 + 16 + f.length);
    const v = new DataView(data.buffer);
    v.setUint32(0, 0xa1b23c4d, false);
    v.setUint16(4, 2, false);
    v.setUint16(6, 4, false);
    v.setUint32(16, 65535, false);
    v.setUint32(20, 1, false);
    v.setUint32(24, 10, false); // 10 s
    v.setUint32(28, 123, false); // 123 ns
    v.setUint32(32, f.length, false);
    v.setUint32(36, f.length, false);
    data.set(f, 40);
    const p = parsePcap(data);
    expect(p.bigEndian).toBe(true);
    expect(p.nanosecond).toBe(true);
    expect(p.timesNs).toEqual([10e9 + 123]);
    expect(p.frames).toEqual([f]);
  });

  it("rejects a file that is not pcap, a pcapng file and a truncated one with a PcapFormatError naming the file", () => {
    const bad = path.join(dir, "bad.pcap");
    fs.writeFileSync(bad, "this is not a capture file at all");
    expect(() => readPcap(bad)).toThrow(PcapFormatError);
    expect(() => readPcap(bad)).toThrow(/bad\.pcap: not a pcap file \(magic 0x74686973\)/);
    const ng = new Uint8Array(32);
    new DataView(ng.buffer).setUint32(0, 0x0a0d0d0a, true);
    expect(() => parsePcap(ng, "x.pcapng")).toThrow(/pcapng file: convert it with editcap/);
    const ours = path.join(dir, "ours.pcap");
    const cut = fs.readFileSync(ours).subarray(0, 24 + 16 + 30);
    expect(() => parsePcap(cut, "cut.pcap")).toThrow(/cut\.pcap: cut short in record 1/);
    expect(() => parsePcap(new Uint8Array(10), "tiny")).toThrow(/tiny: not a pcap file \(10 bytes/);
    expect(() => readPcap(path.join(dir, "missing.pcap"))).toThrow(/missing\.pcap: cannot read/);
  });
});
