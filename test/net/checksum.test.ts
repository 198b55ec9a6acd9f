import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { PcapWriter } from "../../examples/lib/pcap-writer.ts";
import { bufDataOffset, bufPool, poolBytes } from "../../src/mem/buffer-table.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { requestChecksum } from "../../src/mem/offload.ts";
import { writeFrame, copyFrame } from "../../src/mem/packet.ts";
import { checkFrameChecksums, completeChecksums, internetChecksum, onesSum, onesSumWords } from "../../src/net/checksum.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { buildFrame, type FrameSpec } from "../helpers/frames.ts";
import { prng, randInt } from "../helpers/prng.ts";

const SPECS: FrameSpec[] = [
  { proto: "udp", payload: 18 },
  { proto: "udp", payload: 1472 },
  { proto: "tcp", payload: 1460 },
  { proto: "tcp", payload: 0 },
  { proto: "tcp", payload: 333, tcpOptions: 12, ipOptions: 8, vlan: true },
  { proto: "udp", payload: 777, ipv6: true },
  { proto: "tcp", payload: 1000, ipv6: true, ipOptions: 8, tcpOptions: 20 },
  { proto: "udp", payload: 1, ipv6: true, vlan: true },
];

describe("the Internet checksum", () => {
  it("gives RFC 1071's example and a textbook IPv4 header's checksum", () => {
    // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    expect(onesSum(new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0, 8)).toBe(0xddf2);
    expect(internetChecksum(new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]), 0, 8)).toBe(0x220d);
    const header = new Uint8Array([0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7]);
    expect(internetChecksum(header, 0, 20)).toBe(0xb861);
    // An odd length pads with a zero byte.
    expect(onesSum(new Uint8Array([0x12, 0x34, 0x56]), 0, 3)).toBe(0x1234 + 0x5600);
  });

  it("onesSumWords (native 16-bit loads) equals the byte loop for every start, end and seed", () => {
    const rand = prng(21);
    const bytes = new Uint8Array(70000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (rand() * 256) | 0;
    bytes.fill(0xff, 1000, 67000); // long runs of 0xffff words: the accumulators' worst case
    const words = new Uint16Array(bytes.buffer, 0, bytes.length >>> 1);
    for (let round = 0; round < 300; round++) {
      const start = randInt(rand, 0, 200);
      const end = round < 5 ? 66000 + round : start + randInt(rand, 0, 3000);
      const seed = randInt(rand, 0, 0xffff);
      expect(onesSumWords(bytes, words, start, end, seed), `${start}..${end}`).toBe(onesSum(bytes, start, end, seed));
    }
  });

  it("agrees with tshark on good and broken frames of every shape", () => {
    const rand = prng(14);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-csum-"));
    const file = path.join(dir, "frames.pcap");
    const ours: string[] = [];
    const w = new PcapWriter(file);
    for (let i = 0; i < 64; i++) {
      const spec = { ...SPECS[i % SPECS.length]!, checksums: i % 3 === 2 ? ("bad" as const) : ("good" as const) };
      const f = buildFrame(spec, rand).bytes;
      if (i % 5 === 4 && !spec.ipv6) f[spec.vlan ? 18 + 8 : 14 + 8]! ^= 1; // break the IPv4 header (TTL)
      w.write(f, 0, f.length, 0);
      const v = checkFrameChecksums(f, 0, f.length);
      ours.push(`${v.ip}/${v.l4}`);
    }
    w.close();
    let out: string;
    try {
      out = execFileSync("tshark", ["-r", file, "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
        "-T", "fields", "-e", "ip.checksum.status", "-e", "tcp.checksum.status", "-e", "udp.checksum.status"], { encoding: "utf8" });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    // tshark's checksum.status: 0 bad, 1 good.
    const name = (s: string | undefined): string => (s === "1" ? "good" : s === "0" ? "bad" : "none");
    const theirs = out.trim().split("\n").map((line) => {
      const [ip, tcp, udp] = line.split("\t");
      return `${name(ip)}/${name(tcp || udp)}`;
    });
    expect(theirs).toEqual(ours);
    expect(ours.filter((v) => v.endsWith("/bad")).length).toBeGreaterThan(10);
    expect(ours.filter((v) => v.endsWith("/good")).length).toBeGreaterThan(30);
  });

  it("finds every flipped byte of the TCP/UDP segment and of the IPv4 header", () => {
    const rand = prng(3);
    for (const spec of SPECS) {
      const { bytes, l2, l3 } = buildFrame({ ...spec, payload: Math.min(spec.payload, 200) }, rand);
      expect(checkFrameChecksums(bytes, 0, bytes.length)).toEqual({ ip: spec.ipv6 ? "none" : "good", l4: "good" });
      for (let i = l2 + (spec.ipv6 ? l3 : 0); i < bytes.length; i++) {
        const copy = bytes.slice();
        copy[i]! ^= 0x10;
        const v = checkFrameChecksums(copy, 0, copy.length);
        if (i === l2 + l3 + 12 && spec.proto === "tcp") continue; // the data offset: no TCP header any more, or another
        if (i >= l2 + l3) expect(v.l4, `byte ${i}`).toBe("bad");
        // A flipped IPv4 length or protocol field may make the frame unparseable; one elsewhere is bad.
        else if (i !== l2 + 2 && i !== l2 + 3 && i !== l2 + 9 && i !== l2 && i !== l2 + 6) expect(v.ip, `byte ${i}`).toBe("bad");
      }
    }
  });
});

describe("completeChecksums and the pseudo-header seed of requestChecksum", () => {
  it("fills in what a good frame has, and the seed makes a device's plain sum right", () => {
    const rand = prng(77);
    const pool = new Mempool(new SimDma(), { count: 8, name: "csum" });
    for (let round = 0; round < 40; round++) {
      const spec = SPECS[round % SPECS.length]!;
      const good = buildFrame(spec, rand);
      const zero = good.bytes.slice();
      const ip = good.l2;
      zero.fill(0, good.l2 + good.l3 + (spec.proto === "udp" ? 6 : 16), good.l2 + good.l3 + (spec.proto === "udp" ? 8 : 18));
      if (!spec.ipv6) zero.fill(0, ip + 10, ip + 12);
      const b = pool.alloc();
      writeFrame(b, zero);
      requestChecksum(b);
      // What a device does with the request: the plain sum from the L4 header to the end, field
      // (the seed) included, inverted into the field.
      const dev = copyFrame(b);
      const l4 = good.l2 + good.l3;
      const field = l4 + (spec.proto === "udp" ? 6 : 16);
      let c = internetChecksum(dev, l4, dev.length);
      if (c === 0 && spec.proto === "udp") c = 0xffff;
      dev[field] = c >> 8;
      dev[field + 1] = c & 0xff;
      if (!spec.ipv6) {
        const h = internetChecksum(dev, ip, ip + good.l3);
        dev[ip + 10] = h >> 8;
        dev[ip + 11] = h & 0xff;
      }
      expect(dev).toEqual(good.bytes);
      // And in software.
      completeChecksums(b);
      expect(copyFrame(b)).toEqual(good.bytes);
      pool.free(b);
    }
  });

  it("ignores Ethernet padding after the IP datagram", () => {
    const rand = prng(5);
    const good = buildFrame({ proto: "udp", payload: 4 }, rand); // 46 bytes
    const padded = new Uint8Array(60);
    padded.set(good.bytes);
    padded.fill(0, 40, 42); // UDP checksum 0
    padded.fill(0xee, good.bytes.length); // padding that is not zero
    const pool = new Mempool(new SimDma(), { count: 2, name: "pad" });
    const b = pool.alloc();
    writeFrame(b, padded);
    requestChecksum(b);
    completeChecksums(b);
    const bytes = poolBytes[bufPool[b]!]!;
    const out = bytes.subarray(bufDataOffset[b]!, bufDataOffset[b]! + good.bytes.length);
    expect(Array.from(out)).toEqual(Array.from(good.bytes));
    expect(checkFrameChecksums(copyFrame(b), 0, 60)).toEqual({ ip: "good", l4: "good" });
    void randInt;
  });
});
