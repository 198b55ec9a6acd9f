/**
 * ixy-rings: the rings of one simulated port, step by step — the pictures of --show-rings
 * (docs/rings.md) after each thing the driver or the device does to a 64-descriptor ring:
 *
 *   npx tsx examples/rings.ts --sim [--sim-nic ixgbe|virtio]
 *
 * It runs on a device model only, whose device side works when told to (the 82599 model's
 * asynchronous mode, the virtio-net model's "async" completion), so that each state stays put
 * long enough to be drawn: descriptors handed to the device, frames received and waiting, taken,
 * frames queued for sending, sent.
 */
import { createIxgbeDevice } from "../src/drivers/ixgbe/ixgbe-device.ts";
import { createVirtioDevice } from "../src/drivers/virtio/virtio-device.ts";
import type { NicDevice } from "../src/device.ts";
import { freeBuffer, Mempool } from "../src/mem/mempool.ts";
import { writeFrame } from "../src/mem/packet.ts";
import { SimDma } from "../src/sim/sim-dma.ts";
import { Ixgbe82599Model } from "../src/sim/ixgbe/ixgbe-model.ts";
import { VirtioNetModel } from "../src/sim/virtio/virtio-model.ts";
import { parse, runMain, UsageError, type CommandSpec, type OptionSpecs } from "./lib/cli.ts";
import { SimKind } from "./lib/sim-ports.ts";
import { RING_LEGEND, ringPicture } from "./lib/ring-picture.ts";
import { writeUdpFrame } from "./lib/udp-frame.ts";

const SPEC = {
  name: "ixy-rings",
  summary: "draws the RX and TX rings of a simulated port after each step the driver or the device takes",
  usage: ["--sim [--sim-nic ixgbe|virtio]"],
  options: {},
} as const satisfies CommandSpec<OptionSpecs>;

/** The smallest ring both drivers take: one column per descriptor. */
const RING_SIZE = 64;
const FRAMES = 5;

/** A port on a model whose device side works only in complete(). */
interface StepPort {
  readonly dev: NicDevice;
  /** A frame arrives from the wire. */
  readonly inject: (frame: Uint8Array) => void;
  /** The device does all it has pending: received frames written back, queued frames sent. */
  readonly complete: () => void;
}

function openStepPort(kind: SimKind): StepPort {
  const dma = new SimDma();
  const options = { rxRingSize: RING_SIZE, txRingSize: RING_SIZE, linkTimeoutMs: 1000 };
  if (kind === SimKind.ixgbe) {
    const model = new Ixgbe82599Model({ dma, address: "sim:ixgbe0", asynchronous: true });
    const dev = createIxgbeDevice(model.pci, dma, options);
    return { dev, inject: (f) => void model.inject(f), complete: () => void model.drain() };
  }
  const model = new VirtioNetModel({ dma, address: "sim:virtio0", completion: "async" });
  const dev = createVirtioDevice(model.pci, dma, options);
  return { dev, inject: (f) => void model.inject(f), complete: () => model.poll() };
}

function show(step: string, dev: NicDevice): void {
  process.stdout.write(`\n== ${step}\n${ringPicture(dev.address, dev.ringState("rx", 0))}\n${ringPicture(dev.address, dev.ringState("tx", 0))}\n`);
}

function main(): number {
  const { sim, positionals } = parse(SPEC);
  if (sim === null) throw new UsageError("ixy-rings runs on a device model only: give --sim (and --sim-nic ixgbe|virtio)");
  if (positionals.length > 0) throw new UsageError(`ixy-rings takes no ports (got ${positionals.join(" ")})`);
  const { dev, inject, complete } = openStepPort(sim);
  process.stdout.write(`${RING_LEGEND}\n`);
  show("after open: every receive descriptor given to the device, the transmit ring empty", dev);

  const frame = new Uint8Array(60);
  writeUdpFrame(frame, frame.length, { dstMac: dev.macAddress() });
  for (let i = 0; i < FRAMES; i++) inject(frame);
  complete();
  show(`${FRAMES} frames received: done, waiting for rxBatch`, dev);

  const bufs = new Int32Array(RING_SIZE);
  const got = dev.rxBatch(0, bufs, RING_SIZE);
  for (let i = 0; i < got; i++) freeBuffer(bufs[i]!);
  show(`rxBatch took ${got}: their descriptors are the device's again, with fresh buffers`, dev);

  const pool = new Mempool(dev.dma, { count: 64, name: "ixy-rings TX pool" });
  const n = pool.allocBatch(bufs, FRAMES);
  for (let i = 0; i < n; i++) writeFrame(bufs[i]!, frame);
  const sent = dev.txBatch(0, bufs, n);
  show(`txBatch queued ${sent}: the device's until it sends them`, dev);

  complete();
  show("the device sent them: done, until a later txBatch reclaims them", dev);
  dev.close();
  return 0;
}

await runMain(main);
