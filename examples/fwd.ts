/**
 * fwd: forwards frames between two ports in both directions, ixy's reference app.
 *
 *   fwd <port-a> <port-b> [--batch 32] [--seconds N] [--json] [--tx-first] [--tx-retries N] [--mac aa:bb:cc:dd:ee:ff]
 *       [--ring packed|split]
 *   fwd --sim [--sim-nic ixgbe|virtio] [--seconds N]   (two device models, no hardware)
 *
 * A port is a PCI address or a vhost-user backend, vhost-user:<socket> (DPDK's testpmd, say).
 * Run to completion: receive a batch on one port, send it on the other, and back. Frames the TX
 * ring has no room for are dropped (freed) — a forwarder must never block; --tx-retries N first
 * tries N more times for the rest, for a device that sends from a thread of its own (qemu's
 * I/O thread, a vhost-user backend) and may have made room a moment later. (The loop yields to
 * Node's event loop every few milliseconds: see lib/poll-loop.ts.) --tx-first sends one batch
 * of generated frames on each port first, as testpmd's --tx-first does, so that frames circulate
 * between two forwarders (or a forwarder and testpmd) with no traffic source.
 *
 * A packet is a number (its buffer's row in the buffer table, docs/packet-api.md) and a batch is
 * an Int32Array of them, allocated once: the loop never allocates, and never touches the frames.
 */
import type { NicDevice } from "../src/device.ts";
import { Mempool } from "../src/mem/mempool.ts";
import { writeFrame } from "../src/mem/packet.ts";
import { intOption, parse, PORTS_HELP, runMain, UsageError } from "./lib/cli.ts";
import { forward } from "./lib/forward.ts";
import { LiveStats } from "./lib/live-stats.ts";
import { pollLoop } from "./lib/poll-loop.ts";
import { openPorts, placementLines } from "./lib/ports.ts";
import { MIN_FRAME, writeUdpFrame } from "./lib/udp-frame.ts";

const USAGE =
  "usage: fwd <port-a> <port-b> [--batch N] [--seconds N] [--json] [--tx-first] [--tx-retries N] [--mac aa:bb:cc:dd:ee:ff] " +
  "[--ring packed|split] | " +
  `fwd --sim [--sim-nic ixgbe|virtio] [--seconds N]\n${PORTS_HELP}`;
/** Frames --tx-first sends on each port (testpmd's burst). */
const TX_FIRST_BURST = 32;


/** --tx-first: one burst of 60-byte UDP frames on each port, from a pool of its own (returned). */
function txFirst(dev: NicDevice): Mempool {
  const pool = new Mempool(dev.dma, { count: TX_FIRST_BURST, name: `fwd --tx-first pool on ${dev.address}` });
  const frame = new Uint8Array(MIN_FRAME);
  writeUdpFrame(frame, MIN_FRAME, { srcMac: dev.macAddress() });
  const bufs = new Int32Array(TX_FIRST_BURST);
  const n = pool.allocBatch(bufs, TX_FIRST_BURST);
  for (let i = 0; i < n; i++) writeFrame(bufs[i]!, frame);
  const sent = dev.txBatch(0, bufs, n);
  pool.freeBatch(bufs, n - sent, sent);
  return pool;
}

async function main(): Promise<number> {
  const { values, positionals, sim, mac, unsafeNoIommu } = parse(USAGE, {
    batch: { type: "string" },
    seconds: { type: "string" },
    json: { type: "boolean" },
    "frame-size": { type: "string" },
    "tx-first": { type: "boolean" },
    ring: { type: "string" },
    "tx-retries": { type: "string" },
  });
  if (!sim && positionals.length !== 2) throw new UsageError(`fwd needs two PCI addresses or vhost-user:<socket> ports\n${USAGE}`);
  const batch = intOption("batch", values.batch, 32, 1, 512);
  const seconds = intOption("seconds", values.seconds, 0, 0, 1e9);
  const txRetries = intOption("tx-retries", values["tx-retries"], 0, 0, 1e9);
  const ring = values.ring;
  if (ring !== undefined && ring !== "packed" && ring !== "split") throw new UsageError(`--ring must be packed or split, got ${ring}`);
  const ports = openPorts(sim ? ["a", "b"] : positionals, {
    sim,
    mac,
    ...(ring === undefined ? {} : { ring }),
    unsafeNoIommu,
    simFrameSize: intOption("frame-size", values["frame-size"], 60, 60, 1514),
  });
  const [a, b] = ports.devices as [NicDevice, NicDevice];
  // A vhost-user backend starts its queues a moment after the handshake, with no signal for it
  // (DPDK drops what it cannot forward yet): let it, before the first burst.
  if (values["tx-first"]) await new Promise((resolve) => setTimeout(resolve, 200));
  // Kept until the end: the frames circulate, and come back to these pools when they are dropped.
  const txFirstPools = values["tx-first"] ? [txFirst(a), txFirst(b)] : [];
  const stats = new LiveStats([a, b], { json: values.json ?? false });
  process.stderr.write(
    `fwd: forwarding ${a.address} <-> ${b.address}, batch ${batch}${sim ? ` (device models: ${sim})` : ""}` +
      `${txFirstPools.length ? `, sent ${TX_FIRST_BURST} frames on each port first` : ""}${virtioRings(a, b)}\n`,
  );
  process.stderr.write(placementLines("fwd", [a, b]));

  const bufs = new Int32Array(batch);
  let dropped = 0;
  await pollLoop(
    () => {
      ports.pump(batch);
      dropped += forward(a, b, bufs, batch, txRetries);
      dropped += forward(b, a, bufs, batch, txRetries);
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

/** ", virtio rings packed/split": the virtqueue layout each virtio port negotiated (DeviceOptions.ring). */
function virtioRings(...devices: NicDevice[]): string {
  const rings = devices.map((d) => (d as { readonly ring?: string }).ring ?? "-");
  return rings.some((r) => r !== "-") ? `, virtio rings ${rings.join("/")}` : "";
}

await runMain(main);
