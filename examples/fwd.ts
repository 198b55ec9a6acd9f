/**
 * fwd: forwards frames between two ports in both directions, ixy's reference app.
 *
 *   fwd <pci-a> <pci-b> [--batch 32] [--seconds N] [--json]
 *   fwd --sim [--sim-nic ixgbe|virtio] [--seconds N]   (two device models, no hardware)
 *
 * Run to completion: receive a batch on one port, send it on the other, and back. Frames the TX
 * ring has no room for are dropped (freed) — a forwarder must never block. (The loop yields to
 * Node's event loop every few milliseconds: see lib/poll-loop.ts.)
 *
 * A packet is a number (its buffer's row in the buffer table, docs/packet-api.md) and a batch is
 * an Int32Array of them, allocated once: the loop never allocates, and never touches the frames.
 */
import type { NicDevice } from "../src/device.ts";
import { freeBuffers } from "../src/mem/mempool.ts";
import { intOption, parse, runMain, UsageError } from "./lib/cli.ts";
import { LiveStats } from "./lib/live-stats.ts";
import { pollLoop } from "./lib/poll-loop.ts";
import { openPorts } from "./lib/ports.ts";

const USAGE = "usage: fwd <pci-a> <pci-b> [--batch N] [--seconds N] [--json] | fwd --sim [--sim-nic ixgbe|virtio] [--seconds N]";

/** Receives up to `batch` frames on rx and sends them on tx; returns how many it had to drop. */
function forward(rx: NicDevice, tx: NicDevice, bufs: Int32Array, batch: number): number {
  const n = rx.rxBatch(0, bufs, batch);
  if (n === 0) return 0;
  const sent = tx.txBatch(0, bufs, n); // bufs[0 .. sent) now belong to tx
  if (sent < n) freeBuffers(bufs, sent, n - sent);
  return n - sent;
}

async function main(): Promise<number> {
  const { values, positionals, sim } = parse(USAGE, {
    batch: { type: "string" },
    seconds: { type: "string" },
    json: { type: "boolean" },
    "frame-size": { type: "string" },
  });
  if (!sim && positionals.length !== 2) throw new UsageError(`fwd needs two PCI addresses\n${USAGE}`);
  const batch = intOption("batch", values.batch, 32, 1, 512);
  const seconds = intOption("seconds", values.seconds, 0, 0, 1e9);
  const ports = openPorts(sim ? ["a", "b"] : positionals, {
    sim,
    simFrameSize: intOption("frame-size", values["frame-size"], 60, 60, 1514),
  });
  const [a, b] = ports.devices as [NicDevice, NicDevice];
  const stats = new LiveStats([a, b], { json: values.json ?? false });
  process.stderr.write(`fwd: forwarding ${a.address} <-> ${b.address}, batch ${batch}${sim ? ` (device models: ${sim})` : ""}\n`);

  const bufs = new Int32Array(batch);
  let dropped = 0;
  await pollLoop(
    () => {
      ports.pump(batch);
      dropped += forward(a, b, bufs, batch);
      dropped += forward(b, a, bufs, batch);
      return false;
    },
    { seconds, everySecond: () => stats.print() },
  );

  stats.finish();
  process.stderr.write(`fwd: dropped ${dropped} frames for lack of TX descriptors\n`);
  ports.wires.forEach((w, i) => {
    process.stderr.write(
      `fwd: simulated wire of ${ports.devices[i]!.address}: offered ${w.offered}, taken by the NIC ${w.accepted}, transmitted ${w.transmitted}\n`,
    );
  });
  ports.close();
  return 0;
}

await runMain(main);
