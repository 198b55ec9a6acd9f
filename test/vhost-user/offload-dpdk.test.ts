/**
 * virtio-net offloads against DPDK 22.11's vhost library (dpdk-testpmd with a net_vhost port, loop
 * topology), what it does with the offload requests of a guest (docs/offloads-virtio.md):
 *
 * - DPDK offers VIRTIO_NET_F_CSUM, GUEST_CSUM and MRG_RXBUF; HOST_TSO4/6 only with the net_vhost
 *   devarg tso=1 (off by default), so TSO is not negotiated here.
 * - io forwarding: frames the driver sends with NEEDS_CSUM (only the pseudo-header sum in the
 *   field) come back byte-exact with complete, correct checksums: the net_vhost port completes a
 *   guest's partial checksum when the application (testpmd, by default) did not ask for receive
 *   checksum offload, so io forwarding hands on a finished frame. With txChecksum off the driver's
 *   software checksums come back alike.
 * - DPDK never sets DATA_VALID towards the guest (its enqueue writes NEEDS_CSUM only for an mbuf
 *   with a transmit checksum request): received frames say "unknown".
 * - csum forwarding: testpmd's csum engine parses each frame, recomputes its checksums (in
 *   software by default) and rewrites the Ethernet addresses: from byte 12 on the frames come back
 *   as the software expectation.
 *
 * Skipped when dpdk-testpmd is not installed (test/dpdk/setup.sh) or hugepages are short.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { NicDevice } from "../../src/device.ts";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { freeBuffer, Mempool } from "../../src/mem/mempool.ts";
import { requestChecksum, rxChecksumOf } from "../../src/mem/offload.ts";
import { copyFrame, writeFrame } from "../../src/mem/packet.ts";
import { checkFrameChecksums } from "../../src/net/checksum.ts";
import { sleepMs } from "../../src/pci/regs.ts";
import { buildFrame } from "../helpers/frames.ts";
import { prng, randInt } from "../helpers/prng.ts";
import { hugepagesMissing, SMALL } from "./helpers.ts";
import { socketPath } from "./scripted-backend.ts";

const testpmd = spawnSync("sh", ["-c", "command -v dpdk-testpmd"], { encoding: "utf8" }).stdout.trim();
const why =
  testpmd === "" ? "dpdk-testpmd is not installed (bash test/dpdk/setup.sh)" : os.cpus().length < 2 ? "testpmd needs two cores" : hugepagesMissing();
if (why) console.warn(`test/vhost-user/offload-dpdk: skipped: ${why}`);

let child: ChildProcess | null = null;
let log = "";
const devices: NicDevice[] = [];

function startTestpmd(socket: string, mode: "io" | "csum"): void {
  log = path.join(path.dirname(socket), "testpmd.log");
  const out = fs.openSync(log, "w");
  child = spawn(
    testpmd,
    [
      "-l", "0-1", "--no-pci", "--no-huge", "-m", "256", `--file-prefix=ixyoff${process.pid}`,
      "--vdev", `net_vhost0,iface=${socket}`,
      "--", `--forward-mode=${mode}`, "--port-topology=loop", "--auto-start", "--stats-period", "10", "--total-num-mbufs=4096",
    ],
    { stdio: ["ignore", out, out] },
  );
  fs.closeSync(out);
}

afterEach(async () => {
  for (const d of devices.splice(0)) d.close();
  if (child !== null && child.exitCode === null && child.signalCode === null) {
    const done = new Promise((resolve) => child!.on("exit", resolve));
    child.kill("SIGTERM");
    await done;
  }
  child = null;
  if (log) fs.rmSync(path.dirname(log), { recursive: true, force: true });
  log = "";
});

/** Sends each frame with a checksum request and collects what comes back, with the device's verdict. */
function loop(dev: NicDevice, frames: readonly Uint8Array[]): { frames: Uint8Array[]; l4: string[] } {
  const pool = new Mempool(dev.dma, { count: 256 });
  const one = new Int32Array(1);
  const rx = new Int32Array(32);
  const got: Uint8Array[] = [];
  const l4: string[] = [];
  const deadline = performance.now() + 15_000;
  let sent = 0;
  while (got.length < frames.length && performance.now() < deadline) {
    if (sent < frames.length && sent - got.length < 32 && pool.allocBatch(one, 1) === 1) {
      writeFrame(one[0]!, frames[sent]!);
      requestChecksum(one[0]!);
      if (dev.txBatch(0, one, 1) === 1) sent++;
      else pool.freeBatch(one, 1);
    }
    const n = dev.rxBatch(0, rx, 32);
    for (let i = 0; i < n; i++) {
      got.push(copyFrame(rx[i]!));
      l4.push(rxChecksumOf(rx[i]!).l4);
      freeBuffer(rx[i]!);
    }
    if (n === 0 && sent - got.length >= 32) sleepMs(1);
  }
  return { frames: got, l4 };
}

function frames(seed: number): Uint8Array[] {
  const rand = prng(seed);
  return Array.from({ length: 100 }, (_, i) =>
    buildFrame({ proto: i % 2 === 0 ? "tcp" : "udp", ipv6: i % 3 === 0, payload: randInt(rand, 0, 1400) }, rand).bytes);
}

describe.skipIf(why !== null)("virtio offloads against DPDK 22.11's vhost (dpdk-testpmd)", () => {
  for (const txChecksum of [true, false]) {
    it(`io forwarding, txChecksum ${txChecksum}`, () => {
      const socket = socketPath();
      startTestpmd(socket, "io");
      const dev = createVhostUserDevice(socket, { ...SMALL, timeoutMs: 20_000, offloads: { txChecksum } });
      devices.push(dev);
      const sent = frames(txChecksum ? 1 : 2);
      const back = loop(dev, sent);
      expect(back.frames.length, fs.readFileSync(log, "utf8").slice(-2000)).toBe(sent.length);
      // The driver with CSUM sent only the seed; what came back was completed on the way.
      expect(back.frames).toEqual(sent);
      expect(back.frames.every((f) => checkFrameChecksums(f, 0, f.length).l4 === "good")).toBe(true);
      expect(new Set(back.l4)).toEqual(new Set(["unknown"]));
      expect(dev.offloads).toMatchObject({ txChecksum, rxChecksum: true, tso: false, mergeableRx: true });
    });
  }
  it("csum forwarding", () => {
    const socket = socketPath();
    startTestpmd(socket, "csum");
    const dev = createVhostUserDevice(socket, { ...SMALL, timeoutMs: 20_000 });
    devices.push(dev);
    const sent = frames(3);
    const back = loop(dev, sent);
    expect(back.frames.length, fs.readFileSync(log, "utf8").slice(-2000)).toBe(sent.length);
    expect(back.frames.map((f) => f.subarray(12))).toEqual(sent.map((f) => f.subarray(12)));
    expect(back.frames.every((f) => checkFrameChecksums(f, 0, f.length).l4 === "good")).toBe(true);
  });
});
