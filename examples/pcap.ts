/**
 * pcap: writes what a port receives to a pcap file that Wireshark and tshark read.
 *
 *   pcap <port> <file.pcap> [--count N] [--seconds N] [--mac aa:bb:cc:dd:ee:ff] [--irq poll|irq|adaptive]
 *   pcap --sim [--sim-nic ixgbe|virtio] <file.pcap> [--count N] [--irq poll|irq|adaptive] [--sim-pps N]
 *
 * The port is a PCI address or a vhost-user backend, vhost-user:<socket>. --irq irq|adaptive
 * sleeps on the receive queue's interrupt while nothing comes (lib/poll-loop.ts).
 */
import type { NicDevice } from "../src/device.ts";
import { bufDataOffset, bufLength, bufPool, poolBytes } from "../src/mem/buffer-table.ts";
import { freeBuffers } from "../src/mem/mempool.ts";
import { intOption, parse, PORTS_HELP, runMain, shortUsage, UsageError, type CommandSpec, type OptionSpecs } from "./lib/cli.ts";
import { PcapWriter } from "./lib/pcap-writer.ts";
import { IRQ_OPTIONS, irqModeOption, IrqMode, pollLoop, simSource } from "./lib/poll-loop.ts";
import { openPorts } from "./lib/ports.ts";
import { OFFLOAD_FLAGS, offloadDeviceOptions, offloadLines } from "./lib/offload-options.ts";

const SPEC = {
  name: "ixy-pcap",
  summary: "writes what a port receives to a pcap file that Wireshark and tshark read",
  usage: ["<port> <file.pcap> [options]", "--sim [--sim-nic ixgbe|virtio] <file.pcap> [options]"],
  options: {
    count: { type: "string", arg: "N", help: "stop after writing N frames (0: no limit)", default: "0", unit: "frames" },
    seconds: { type: "string", arg: "N", help: "stop after N seconds (0: run until SIGINT or SIGTERM)", default: "0", unit: "s" },
    ...IRQ_OPTIONS,
    ...OFFLOAD_FLAGS,
  },
  details: PORTS_HELP,
} as const satisfies CommandSpec<OptionSpecs>;
const USAGE = shortUsage(SPEC);

async function main(): Promise<number> {
  const { values, positionals, sim, mac, unsafeNoIommu } = parse(SPEC);
  const irq = irqModeOption(values.irq);
  if (positionals.length !== (sim ? 1 : 2)) throw new UsageError(USAGE);
  const file = positionals[positionals.length - 1]!;
  const count = intOption("count", values.count, 0, 0, Number.MAX_SAFE_INTEGER);
  const seconds = intOption("seconds", values.seconds, 0, 0, 1e9);

  const ports = openPorts(sim ? ["cap"] : positionals.slice(0, 1), {
    sim, mac, unsafeNoIommu, ...(irq === IrqMode.poll ? {} : { interrupts: true }), ...offloadDeviceOptions(values),
  });
  const dev = ports.devices[0] as NicDevice;
  const writer = new PcapWriter(file);
  process.stderr.write(`pcap: capturing on ${dev.address} to ${file}${count ? ` (${count} frames)` : ""}\n` + offloadLines("pcap", [dev]));

  const bufs = new Int32Array(32);
  const pump = simSource((n) => ports.pump(n), 4, values["sim-pps"]);
  let received = 0;
  await pollLoop(
    () => {
      pump();
      const n = dev.rxBatch(0, bufs, 32);
      received += n;
      const t = n > 0 ? Date.now() : 0;
      for (let i = 0; i < n && (count === 0 || writer.packets < count); i++) {
        // Buffer b's frame: bufLength[b] bytes at bufDataOffset[b] in its pool's memory.
        const b = bufs[i]!;
        writer.write(poolBytes[bufPool[b]!]!, bufDataOffset[b]!, bufLength[b]!, t);
      }
      freeBuffers(bufs, 0, n);
      return count > 0 && writer.packets >= count;
    },
    { seconds, irq: { mode: irq, sources: [{ device: dev, queue: 0 }], activity: () => received, whileParked: sim ? pump : undefined } },
  );
  writer.close();
  process.stderr.write(`pcap: wrote ${writer.packets} frames to ${file}\n`);
  ports.close();
  return 0;
}

await runMain(main);
