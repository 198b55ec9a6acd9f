/**
 * pcap: writes what a port receives to a pcap file that Wireshark and tshark read.
 *
 *   ixy-pcap <port> <file.pcap> [--count N] [--seconds N] [--irq poll|irq|adaptive] ...
 *   ixy-pcap --sim [--sim-nic ixgbe|virtio] <file.pcap> [--count N] [--sim-pps N] ...
 *
 * main() in three steps, as ixy's ixy-pcap.c: open the file, open the port (openDevice(), or with
 * --sim a device model of src/sim driven by the same driver, lib/sim-ports.ts), then a receive
 * loop that writes every frame to the file and frees its buffer, until --count frames are written,
 * --seconds pass or a signal comes.
 *
 * Each frame gets its own timestamp, read when it is written, in microseconds. The file is
 * created before the port is opened: a path that cannot be written (no such directory, a
 * directory, no permission, "") is a one-line PcapFileError, exit 1, with no device touched.
 *
 * The port is a PCI address or a vhost-user backend, vhost-user:<socket>. --irq irq|adaptive
 * sleeps on the receive queue's interrupt while nothing comes (lib/poll-loop.ts).
 */
import type { DeviceOptions, NicDevice } from "../src/device.ts";
import { bufDataOffset, bufLength, bufPool, poolBytes } from "../src/mem/buffer-table.ts";
import { freeBuffers } from "../src/mem/mempool.ts";
import { openDevice } from "../src/open-device.ts";
import { intOption, parse, portArguments, PORTS_HELP, runMain, SECONDS_OPTION, usageError, type CommandSpec, type OptionSpecs } from "./lib/cli.ts";
import { PcapWriter } from "./lib/pcap-writer.ts";
import { IRQ_OPTIONS, irqModeOption, IrqMode, pollLoop, simPpsOption } from "./lib/poll-loop.ts";
import { openSimulatedPorts, type SimulatedPorts } from "./lib/sim-ports.ts";
import { OFFLOAD_FLAGS, offloadDeviceOptions, offloadLines } from "./lib/offload-options.ts";

const SPEC = {
  name: "ixy-pcap",
  summary: "writes what a port receives to a pcap file that Wireshark and tshark read",
  usage: ["<port> <file.pcap> [options]", "--sim [--sim-nic ixgbe|virtio] <file.pcap> [options]"],
  options: {
    count: { type: "string", arg: "N", help: "stop after writing N frames (0: no limit)", default: "0", unit: "frames" },
    ...SECONDS_OPTION,
    ...IRQ_OPTIONS,
    ...OFFLOAD_FLAGS,
  },
  details: PORTS_HELP,
} as const satisfies CommandSpec<OptionSpecs>;

/** Frames per receive call. */
const BATCH = 32;

async function main(): Promise<number> {
  const o = pcapOptions();

  // The file first: a path that cannot be written is a one-line error before any device is touched.
  const writer = new PcapWriter(o.file);
  // The port. --sim: a device model (src/sim) driven by the same driver, its simulated wire fed
  // with frames; otherwise openDevice() on the address.
  let sim: SimulatedPorts | null;
  let dev: NicDevice;
  try {
    const options: DeviceOptions = { ...o.device, unsafeNoIommu: o.unsafeNoIommu, ...(o.irq === IrqMode.poll ? {} : { interrupts: true }), ...offloadDeviceOptions(o.values) };
    sim = o.sim === null ? null : openSimulatedPorts(o.sim, 1, options);
    dev = sim !== null ? sim.devices[0]! : openDevice(o.address, { ...options, mac: o.mac });
  } catch (e) {
    writer.discard();
    throw e;
  }
  process.stderr.write(`pcap: capturing on ${dev.address} to ${o.file}${o.count ? ` (${o.count} frames)` : ""}\n` + offloadLines("pcap", [dev]));

  const bufs = new Int32Array(BATCH);
  // --sim: the model's wire, offered 4 frames before every step (or --sim-pps N a second).
  const pps = simPpsOption(o.values["sim-pps"]);
  const wire = sim?.traffic(4, pps);
  // Wall-clock time from the monotonic clock: one read per frame, microseconds kept.
  const origin = performance.timeOrigin;
  const count = o.count;
  let received = 0;
  const progress = progressLine(writer);
  try {
    await pollLoop(
      () => {
        const n = dev.rxBatch(0, bufs, BATCH);
        received += n;
        for (let i = 0; i < n && (count === 0 || writer.packets < count); i++) {
          // Buffer b's frame: bufLength[b] bytes at bufDataOffset[b] in its pool's memory.
          const b = bufs[i]!;
          writer.write(poolBytes[bufPool[b]!]!, bufDataOffset[b]!, bufLength[b]!, origin + performance.now());
        }
        freeBuffers(bufs, 0, n);
      },
      {
        seconds: o.seconds,
        wire,
        until: count > 0 ? () => writer.packets >= count : undefined,
        irq: { mode: o.irq, sources: [{ device: dev, queue: 0 }], activity: () => received, whileParked: wire },
      },
    );
  } finally {
    progress.stop();
    if (sim !== null) sim.close();
    else dev.close();
  }
  writer.close();
  process.stderr.write(`pcap: wrote ${writer.packets} frames (${writer.bytes} bytes) to ${o.file}\n`);
  return 0;
}

/** pcap's command line: the file, the port (checked: a typo is a usage error before the file is created), --count, --seconds, --irq. */
function pcapOptions() {
  const { values, positionals, sim, mac, unsafeNoIommu, device } = parse(SPEC);
  const irq = irqModeOption(values.irq);
  if (positionals.length === 0) throw usageError(SPEC, "give the pcap file to write");
  const file = positionals[positionals.length - 1]!;
  const addresses = portArguments(SPEC, positionals.slice(0, -1), 1, sim !== null);
  const count = intOption("count", values.count, 0, 0, Number.MAX_SAFE_INTEGER);
  const seconds = intOption("seconds", values.seconds, 0, 0, 1e9);
  return { values, sim, address: addresses[0]!, mac, file, count, seconds, irq, unsafeNoIommu, device };
}

/**
 * Once a second on stderr, "pcap: N frames, M bytes written": redrawn in place on a terminal, a
 * line each otherwise. A timer, so that it also runs while the loop sleeps on an interrupt.
 */
function progressLine(writer: PcapWriter): { stop(): void } {
  const tty = process.stderr.isTTY === true;
  const started = performance.now();
  const timer = setInterval(() => {
    const s = ((performance.now() - started) / 1000).toFixed(0);
    const line = `pcap: ${writer.packets} frames, ${writer.bytes} bytes written in ${s} s`;
    process.stderr.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  }, 1000);
  return {
    stop() {
      clearInterval(timer);
      if (tty) process.stderr.write("\r\x1b[2K");
    },
  };
}

await runMain(main);
