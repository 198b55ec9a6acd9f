/**
 * Guest program for the interrupt test (test/vm/irq.vm.test.ts), on qemu's virtio-net through
 * VFIO with MSI-X:
 *   1. idle: waitForRx with no traffic; prints the process's CPU time over that wall time;
 *   2. irq echo: sleeps in waitForRx, sends every received frame straight back, `count` frames;
 *   3. poll echo: the same with a busy rxBatch loop (the baseline for wake-up latency).
 * The host times each frame's round trip. Lines starting with "IRQ:" are for the test.
 *   node --import tsx irq.ts <pci> <count> <idle seconds>
 */
import { newStats } from "../../../src/device.ts";
import { openDevice } from "../../../src/open-device.ts";

const [address, countArg, idleArg] = process.argv.slice(2) as [string, string, string];
const count = Number(countArg);
const dev = openDevice(address, { interrupts: true, linkTimeoutMs: 5000 });
const bufs = new Int32Array(32);
const say = (what: string, data: object): void => console.log(`IRQ:${what} ${JSON.stringify(data)}`);

function echo(n: number): number {
  let sent = 0;
  while (sent < n) sent += dev.txBatch(0, bufs.subarray(sent), n - sent) || 0;
  return n;
}

say("OPEN", { interrupts: dev.offloads.interrupts });
// Frames queued before the driver was ready: drop them.
for (let n = dev.rxBatch(0, bufs, 32); n > 0; n = dev.rxBatch(0, bufs, 32)) echo(n);

const idleMs = Number(idleArg) * 1000;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let wakes = 0;
while (performance.now() - t0 < idleMs) if (await dev.waitForRx!(0, idleMs - (performance.now() - t0))) wakes++;
const cpu = process.cpuUsage(cpu0);
say("IDLE", { wallMs: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, wakes });

let got = 0;
let sleeps = 0;
let timeouts = 0;
// The host starts pinging when it has seen the IDLE line, which can reach it many seconds late
// on a loaded host (the guest's console under TCG): until the first frame, wait up to 120 s;
// after it, four 5 s timeouts in a row end the phase.
const firstFrameBy = performance.now() + 120_000;
while (got < count) {
  const n = dev.rxBatch(0, bufs, 32);
  if (n > 0) {
    got += echo(n);
    timeouts = 0;
    continue;
  }
  if (await dev.waitForRx!(0, 5000)) sleeps++;
  else if (got === 0 ? performance.now() > firstFrameBy : ++timeouts > 3) break;
}
const stats = newStats();
dev.readStats(stats);
say("IRQ-DONE", { got, sleeps, timeouts, ...stats });

got = 0;
const deadline = performance.now() + 60_000;
while (got < count && performance.now() < deadline) {
  const n = dev.rxBatch(0, bufs, 32);
  if (n > 0) got += echo(n);
}
say("POLL-DONE", { got });
dev.close();
