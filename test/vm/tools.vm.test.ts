/**
 * pktgen and pcap on real (emulated) virtio NICs in the qemu guest.
 * - pktgen sends UDP/IPv4 frames out of NIC0; the host collects them from NIC0's wire and checks
 *   count, order (sequence numbers), length and IPv4 header checksums.
 * - pcap captures what the host sends into NIC0's wire; the file is read by tshark (Debian's
 *   package) and by this test, which checks every frame byte for byte against what was sent.
 */
import { execFileSync } from "node:child_process";
import * as dgram from "node:dgram";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { ipv4Checksum, getSequence, SEQ_OFFSET } from "../../examples/lib/udp-frame.ts";
import { guestJsPath } from "./compile.ts";
import { sendUntilGuestExits } from "./host-sender.ts";
import { buildFrame, verifyFrame } from "./traffic.ts";
import { runVm } from "./vm.ts";

const pktgen = guestJsPath("examples/pktgen.ts");
const pcap = guestJsPath("examples/pcap.ts");

function tsharkPath(): string {
  try {
    return execFileSync("sh", ["-c", "command -v tshark"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error("tshark is not installed: apt-get install tshark (.ci/run does this)");
  }
}

describe("pktgen in the guest", () => {
  it("sends every frame to the host collector, in sequence, with valid IPv4 headers", async () => {
    const COUNT = 3000;
    const frames: Buffer[] = [];
    const vm = await runVm({
      mode: "modern",
      command: `node --enable-source-maps ${pktgen} $IXY_NIC0 --count ${COUNT} --rate 1000 --size 60`,
      timeoutMs: 180_000,
      onGuestReady: (h) =>
        new Promise<void>((resolve, reject) => {
          const sock = dgram.createSocket("udp4");
          sock.on("message", (msg) => frames.push(msg));
          sock.on("error", reject);
          sock.bind(h.wires[0].hostPort, "127.0.0.1");
          // Collect until the guest has powered off (its command ended).
          h.signal.addEventListener("abort", () => sock.close(() => resolve()));
        }),
    });
    expect(vm.exitCode, vm.output.slice(-3000)).toBe(0);
    expect(vm.dmarFaults).toBe(0);
    expect(vm.commandOutput).toMatch(new RegExp(`pktgen: sent ${COUNT} frames`));
    expect(frames.length).toBe(COUNT);
    frames.forEach((f, i) => {
      expect(f.length).toBe(60);
      expect(f.readUInt16BE(12)).toBe(0x0800); // IPv4
      expect(ipv4Checksum(f.subarray(14, 34))).toBe(0); // a valid header sums to 0xffff
      expect(f[23]).toBe(17); // UDP
      expect(getSequence(f)).toBe(i);
      expect(f.length).toBeGreaterThan(SEQ_OFFSET + 4);
    });
  });
});

describe("pcap in the guest", () => {
  it("writes a file that tshark reads, holding the frames the host sent, byte-exact", async () => {
    const tshark = tsharkPath();
    const COUNT = 300;
    const runId = 0x5ca9;
    const sizes = (seq: number) => 60 + ((seq * 97) % 1455);
    const vm = await runVm({
      mode: "modern",
      command: `node --enable-source-maps ${pcap} $IXY_NIC0 /ctl/capture.pcap --count ${COUNT}`,
      timeoutMs: 180_000,
      keepCtl: true,
      // Keep sending numbered frames (200/s) until the guest is done; the capture starts
      // whenever the driver is up, so it holds a run of consecutive frames.
      onGuestReady: (h) => sendUntilGuestExits(h, 0, (seq) => buildFrame({ stream: 0, runId, seq, length: sizes(seq) })),
    });
    try {
      expect(vm.exitCode, vm.output.slice(-3000)).toBe(0);
      expect(vm.dmarFaults).toBe(0);
      const file = path.join(vm.ctlDir, "capture.pcap");
      // tshark reads the file and sees COUNT Ethernet frames of the lengths we sent.
      const lines = execFileSync(tshark, ["-r", file, "-T", "fields", "-e", "frame.len", "-e", "eth.type"], {
        encoding: "utf8",
      })
        .trim()
        .split("\n");
      expect(lines.length).toBe(COUNT);
      for (const line of lines) expect(line).toMatch(/^\d+\t0x88b5$/);
      // Every record is a frame we sent, unchanged, and they are consecutive.
      const records = readPcap(fs.readFileSync(file));
      expect(records.length).toBe(COUNT);
      let prev = -1;
      for (const r of records) {
        const v = verifyFrame(r);
        expect(v.kind, JSON.stringify(v)).toBe("ok");
        if (v.kind !== "ok") continue;
        expect(v.runId).toBe(runId);
        expect(v.length).toBe(sizes(v.seq));
        if (prev >= 0) expect(v.seq).toBe(prev + 1);
        prev = v.seq;
        expect(lines[records.indexOf(r)]!.split("\t")[0]).toBe(String(r.length));
      }
    } finally {
      fs.rmSync(vm.ctlDir, { recursive: true, force: true });
    }
  });
});

/** The frames of a classic little-endian pcap file. */
function readPcap(file: Buffer): Buffer[] {
  expect(file.readUInt32LE(0)).toBe(0xa1b2c3d4);
  expect(file.readUInt32LE(20)).toBe(1); // LINKTYPE_ETHERNET
  const out: Buffer[] = [];
  for (let off = 24; off < file.length; ) {
    const caplen = file.readUInt32LE(off + 8);
    out.push(file.subarray(off + 16, off + 16 + caplen));
    off += 16 + caplen;
  }
  return out;
}
