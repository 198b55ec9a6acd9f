/**
 * Interrupts against DPDK 22.11's vhost library (dpdk-testpmd, net_vhost PMD, io forwarding in a
 * loop): the driver gives the receive ring a call eventfd, testpmd sends back each frame the driver
 * transmits, and DPDK's enqueue writes the call eventfd unless the driver suppressed it
 * (VRING_AVAIL_F_NO_INTERRUPT, packed: event suppression DISABLE). waitForRx must wake on it.
 * Skipped when dpdk-testpmd is not installed (test/dpdk/setup.sh) or hugepages are short.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { freeBuffers, Mempool } from "../../src/mem/mempool.ts";
import { writeFrame } from "../../src/mem/packet.ts";
import { irqPoller } from "../../src/irq/irq-poller.ts";
import { hugepagesMissing, SMALL } from "./helpers.ts";
import { socketPath } from "./scripted-backend.ts";

const testpmd = spawnSync("sh", ["-c", "command -v dpdk-testpmd"], { encoding: "utf8" }).stdout.trim();
const why = testpmd === "" ? "dpdk-testpmd is not installed (bash test/dpdk/setup.sh)" : os.cpus().length < 2 ? "testpmd needs two cores" : hugepagesMissing();
if (why) console.warn(`test/vhost-user/dpdk-irq: skipped: ${why}`);

let child: ChildProcess | null = null;
let log = "";
afterEach(async () => {
  if (child !== null && child.exitCode === null && child.signalCode === null) {
    const done = new Promise((resolve) => child!.on("exit", resolve));
    child.kill("SIGTERM");
    await done;
  }
  child = null;
  if (log) fs.rmSync(path.dirname(log), { recursive: true, force: true });
  log = "";
});

function startTestpmd(socket: string): void {
  log = path.join(path.dirname(socket), "testpmd.log");
  const out = fs.openSync(log, "w");
  child = spawn(
    testpmd,
    [
      "-l", "0-1", "--no-pci", "--no-huge", "-m", "256", `--file-prefix=ixyirq${process.pid}`,
      "--vdev", `net_vhost0,iface=${socket}`,
      "--", "--forward-mode=io", "--port-topology=loop", "--auto-start", "--stats-period", "10", "--total-num-mbufs=4096",
    ],
    { stdio: ["ignore", out, out] },
  );
  fs.closeSync(out);
}

describe.skipIf(why !== null).each([{ ring: "split" as const }, { ring: "packed" as const }])("interrupts on DPDK's vhost (testpmd), $ring ring", ({ ring }) => {
  it("each frame testpmd sends back wakes waitForRx through the call eventfd", async () => {
    const socket = socketPath();
    startTestpmd(socket);
    const dev = createVhostUserDevice(socket, { ...SMALL, ring, interrupts: true, timeoutMs: 20_000, mac: Uint8Array.of(2, 0, 0, 0, 0, 1) });
    try {
      const pool = new Mempool(dev.dma, { count: 64, name: "irq tx pool" });
      const one = new Int32Array(1);
      const rx = new Int32Array(32);
      // testpmd starts forwarding a moment after the handshake: the first frames may get lost.
      await new Promise((r) => setTimeout(r, 500));
      let back = 0;
      let slept = 0;
      const rounds = 50;
      for (let i = 0; i < rounds; i++) {
        expect(pool.allocBatch(one, 1)).toBe(1);
        const frame = new Uint8Array(60).fill(i);
        frame.set([2, 0, 0, 0, 0, 1], 0);
        writeFrame(one[0]!, frame);
        // Armed and asleep first (the ring is empty), then the frame goes out: only DPDK's call
        // on the receive ring's call eventfd can end the wait before its timeout.
        const parks = irqPoller().parks;
        const waiting = dev.waitForRx!(0, 2000);
        setTimeout(() => expect(dev.txBatch(0, one, 1)).toBe(1), 5);
        const woke = await waiting;
        if (woke && irqPoller().parks > parks) slept++;
        const got = dev.rxBatch(0, rx, 32);
        back += got;
        freeBuffers(rx, 0, got);
      }
      expect(back, fs.readFileSync(log, "utf8").slice(-2000)).toBeGreaterThanOrEqual(rounds - 2);
      // Every round slept in epoll_wait and was woken by DPDK's call, not by the timeout.
      expect(slept).toBeGreaterThanOrEqual(rounds - 2);
      console.log(`dpdk-irq ${ring}: ${back} of ${rounds} frames back, ${slept} after a sleep in waitForRx`);
    } finally {
      dev.close();
    }
    expect(fs.readFileSync(log, "utf8")).toMatch(/read message VHOST_USER_SET_VRING_CALL/);
  });
});
