/**
 * pktgen: sends UDP/IPv4 frames as fast as allowed, each carrying a sequence number.
 *
 *   pktgen <port> [--size 60] [--rate FRAMES_PER_S] [--count N] [--seconds N] [--batch 32] [--json] [--mac ...]
 *   pktgen --sim [--sim-nic ixgbe|virtio] ...
 *
 * The port is a PCI address or a vhost-user backend, vhost-user:<socket>.
 *
 * As in ixy, every buffer of the generator's mempool is filled with the frame once at start; the
 * pool hands buffers back with their contents intact, so sending costs a 4-byte sequence number
 * store per frame, written straight into the pool's memory at the buffer's data offset (a buffer
 * is a number: docs/packet-api.md).
 */
import type { NicDevice } from "../src/device.ts";
import { bufDataOffset, bufLength } from "../src/mem/buffer-table.ts";
import { Mempool } from "../src/mem/mempool.ts";
import { dataOf } from "../src/mem/packet.ts";
import { intOption, parse, PORTS_HELP, runMain, shortUsage, UsageError, type CommandSpec, type OptionSpecs } from "./lib/cli.ts";
import { LiveStats, STATS_OPTIONS, statsFormat } from "./lib/live-stats.ts";
import { pollLoop } from "./lib/poll-loop.ts";
import { openPorts, placementLines } from "./lib/ports.ts";
import { setSequence, writeUdpFrame } from "./lib/udp-frame.ts";
import { OFFLOAD_FLAGS, offloadDeviceOptions, offloadLines } from "./lib/offload-options.ts";

const SPEC = {
  name: "ixy-pktgen",
  summary: "sends UDP/IPv4 frames as fast as allowed, each carrying a sequence number",
  usage: ["<port> [options]", "--sim [--sim-nic ixgbe|virtio] [options]"],
  options: {
    size: { type: "string", arg: "N", help: "frame size without the FCS, 60 to 1514", default: "60", unit: "bytes" },
    rate: { type: "string", arg: "N", help: "frames per second (0: as fast as the port takes them)", default: "0", unit: "frames/s" },
    count: { type: "string", arg: "N", help: "stop after N frames (0: no limit)", default: "0", unit: "frames" },
    seconds: { type: "string", arg: "N", help: "stop after N seconds (0: run until SIGINT or SIGTERM)", default: "0", unit: "s" },
    batch: { type: "string", arg: "N", help: "frames per send call, 1 to 512", default: "32", unit: "frames" },
    ...STATS_OPTIONS,
    ...OFFLOAD_FLAGS,
  },
  details: PORTS_HELP,
} as const satisfies CommandSpec<OptionSpecs>;
const USAGE = shortUsage(SPEC);

async function main(): Promise<number> {
  const { values, positionals, sim, mac, unsafeNoIommu } = parse(SPEC);
  if (!sim && positionals.length !== 1) throw new UsageError(`pktgen needs one PCI address or vhost-user:<socket> port\n${USAGE}`);
  const size = intOption("size", values.size, 60, 60, 1514);
  const rate = intOption("rate", values.rate, 0, 0, 1e9); // 0: unlimited
  const count = intOption("count", values.count, 0, 0, Number.MAX_SAFE_INTEGER); // 0: unlimited
  const seconds = intOption("seconds", values.seconds, 0, 0, 1e9);
  const batch = intOption("batch", values.batch, 32, 1, 512);
  const format = statsFormat(values);

  const ports = openPorts(sim ? ["gen"] : positionals, { sim, mac, unsafeNoIommu, simTraffic: false, ...offloadDeviceOptions(values) });
  const dev = ports.devices[0] as NicDevice;
  const pool = new Mempool(dev.dma, { count: 4096, name: `pktgen pool on ${dev.address}` });
  // Fill every buffer with the frame once.
  const all = new Int32Array(pool.count);
  const n = pool.allocBatch(all, pool.count);
  const srcMac = dev.macAddress();
  for (let i = 0; i < n; i++) {
    writeUdpFrame(dataOf(all[i]!), size, { srcMac });
    bufLength[all[i]!] = size;
  }
  pool.freeBatch(all, n);

  const stats = new LiveStats([dev], { format, app: "pktgen" });
  process.stderr.write(
    `pktgen: ${dev.address}: ${size}-byte frames, ${rate ? `${rate} frames/s` : "unlimited rate"}` +
      `${count ? `, ${count} frames` : ""}${sim ? ` (device model: ${sim})` : ""}\n`,
  );
  process.stderr.write(placementLines("pktgen", [dev]) + offloadLines("pktgen", [dev]));

  const bufs = new Int32Array(batch);
  const bytes = pool.bytes; // buffer b's frame starts at bytes[bufDataOffset[b]]
  let seq = 0;
  const start = performance.now();
  await pollLoop(
    () => {
      let want = batch;
      if (rate > 0) want = Math.min(want, Math.floor(((performance.now() - start) / 1000) * rate) - seq);
      if (count > 0) want = Math.min(want, count - seq);
      if (want <= 0) return count > 0 && seq >= count;
      const got = pool.allocBatch(bufs, want);
      for (let i = 0; i < got; i++) {
        const b = bufs[i]!;
        bufLength[b] = size;
        setSequence(bytes, bufDataOffset[b]!, seq + i);
      }
      const sent = dev.txBatch(0, bufs, got);
      seq += sent;
      if (sent < got) pool.freeBatch(bufs, got - sent, sent);
      return false;
    },
    { seconds, everySecond: () => stats.print() },
  );

  // Give the device a moment to put the last frames on the wire before the counters are read
  // and the device is reset.
  await new Promise((resolve) => setTimeout(resolve, 100));
  stats.finish();
  process.stderr.write(`pktgen: sent ${seq} frames\n`);
  ports.close();
  return 0;
}

await runMain(main);
