/**
 * Offloads on qemu's virtio-net (hw/net/virtio-net.c), whose CSUM and HOST_TSO4/6 exist only when
 * its netdev has a vnet header: a tap (VmOptions.taps), not the testbed's UDP socket wires. The
 * guest sends TCP/UDP frames with checksum requests and TCP super-frames with TSO requests
 * (guest/offload.ts). qemu hands them to the host's tap with their virtio-net header, as
 * partially checksummed and GSO packets; the host reads them from a packet socket with
 * PACKET_VNET_HDR (the kernel's virtio_net_hdr of each packet in front of it), completes the
 * checksum at csum_start + csum_offset and segments at gso_size as a NIC would, and checks the
 * result byte for byte against the frames with correct checksums and against software TSO.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { segmentTcp } from "../../src/net/tcp-segment.ts";
import { onesSum } from "../../src/net/checksum.ts";
import { bind, close, read, setsockopt, socket, SOCK_NONBLOCK, WOULD_BLOCK } from "../../src/sys/libc.ts";
import { compileForGuest, guestJsPath } from "./compile.ts";
import { offloadFrames } from "./offload-frames.ts";
import { waitForTap } from "./tap-wire.ts";
import { runVm } from "./vm.ts";

const AF_PACKET = 17;
const SOCK_RAW = 3;
const ETH_P_ALL = 0x0003;
const SOL_PACKET = 263;
const PACKET_VNET_HDR = 15;

interface Captured {
  readonly flags: number;
  readonly gsoType: number;
  readonly gsoSize: number;
  readonly csumStart: number;
  readonly csumOffset: number;
  readonly frame: Uint8Array;
}

/** A packet socket on tap `name` that reads each packet with its struct virtio_net_hdr (10 bytes, host order). */
function openVnetSocket(name: string): number {
  writeFileSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, "1");
  execFileSync("ip", ["link", "set", "dev", name, "up"]);
  const ifindex = Number(readFileSync(`/sys/class/net/${name}/ifindex`, "utf8").trim());
  const fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, ((ETH_P_ALL & 0xff) << 8) | (ETH_P_ALL >>> 8), `packet socket on ${name}`);
  setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, new Uint8Array(new Int32Array([1]).buffer), `${name}: PACKET_VNET_HDR`);
  const sll = new Uint8Array(20);
  const v = new DataView(sll.buffer);
  v.setUint16(0, AF_PACKET, true);
  v.setUint16(2, ETH_P_ALL, false);
  v.setInt32(4, ifindex, true);
  bind(fd, sll, sll.length, `bind to ${name}`);
  return fd;
}

/** What a NIC makes of a captured packet: the checksum completed, or the GSO packet's segments. */
function finish(c: Captured, expectedMss: number): Uint8Array[] {
  const f = c.frame.slice();
  if ((c.flags & 1) !== 0 && c.gsoType === 0) {
    const at = c.csumStart + c.csumOffset;
    const sum = ~onesSum(f, c.csumStart, f.length) & 0xffff;
    f[at] = sum >> 8;
    f[at + 1] = sum & 0xff;
    return [f];
  }
  if (c.gsoType === 1 || c.gsoType === 4) {
    const ipv6 = c.gsoType === 4;
    const l3 = ipv6 ? 40 : (f[14]! & 0xf) * 4;
    const l4 = (f[14 + l3 + 12]! >> 4) * 4;
    expect(c.gsoSize).toBe(expectedMss);
    return segmentTcp(f, 14, l3, l4, c.gsoSize, ipv6);
  }
  return [f];
}

describe("offloads on qemu's virtio-net with a tap netdev", () => {
  it("frames sent with checksum and TSO requests reach the host tap as correct partial and GSO packets", async () => {
    await compileForGuest(["test/vm/guest/offload.ts"]);
    const names = [`ixyo${process.pid % 10000}a`, `ixyo${process.pid % 10000}b`] as const;
    const captured: Captured[] = [];
    const vm = await runVm({
      mode: "modern",
      taps: { names, queues: 1 },
      command: `node --enable-source-maps ${guestJsPath("test/vm/guest/offload.ts")} $IXY_NIC0`,
      timeoutMs: 240_000,
      onGuestReady: async (h) => {
        await waitForTap(names[0]);
        const fd = openVnetSocket(names[0]);
        const buf = new Uint8Array(70000);
        try {
          while (!h.signal.aborted) {
            const n = read(fd, buf, "receive");
            if (n === WOULD_BLOCK || n === 0) {
              await new Promise((r) => setTimeout(r, 2));
              continue;
            }
            const v = new DataView(buf.buffer, 0, 10);
            captured.push({
              flags: buf[0]!, gsoType: buf[1]!, gsoSize: v.getUint16(4, true), csumStart: v.getUint16(6, true),
              csumOffset: v.getUint16(8, true), frame: buf.slice(10, n),
            });
          }
        } finally {
          close(fd);
        }
      },
    });
    expect(vm.error, vm.output.slice(-3000)).toBeUndefined();
    expect(vm.exitCode, vm.output.slice(-3000)).toBe(0);
    const offloads = JSON.parse(vm.commandOutput.split("\n").find((l) => l.startsWith('{"offloads"'))!).offloads;
    expect(offloads).toMatchObject({ txChecksum: true, tso: true });
    const frames = offloadFrames();
    // Only the guest's frames (its MAC as the source), in order.
    const ours = captured.filter((c) => c.frame.length >= 14 && c.frame[6] === 0x02 && c.frame[11] === 1);
    expect(ours.length, JSON.stringify(captured.map((c) => [c.flags, c.gsoType, c.frame.length]))).toBe(frames.length);
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i]!;
      const c = ours[i]!;
      if (f.mss === 0) {
        expect(c.flags & 1, `frame ${i}: NEEDS_CSUM`).toBe(1);
        expect(finish(c, 0), `frame ${i}`).toEqual([f.bytes]);
      } else {
        expect(c.gsoType, `frame ${i}: GSO`).toBe(f.ipv6 ? 4 : 1);
        expect(finish(c, f.mss), `frame ${i}`).toEqual(segmentTcp(f.bytes, f.l2, f.l3, f.l4, f.mss, f.ipv6));
      }
    }
    void existsSync;
  });
});
