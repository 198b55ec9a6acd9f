/**
 * pipeline: a two-stage router on one port, each stage a worker thread pinned to its core.
 *
 *   pipeline <port> [--batch 32] [--seconds N] [--cores LIST] [--ring-size 1024] [--tx-retries N] [--json]
 *   pipeline --sim [--sim-nic ixgbe|virtio] [--seconds N] ...   (a device model, no hardware)
 *
 * The receive worker drives queue 0's receive queue and hands each batch through a lock-free
 * single-producer single-consumer ring (src/threads/spsc-ring.ts) to the process worker, which
 * swaps the MAC addresses of each IPv4 frame, decrements its TTL, updates the header checksum
 * incrementally (RFC 1624), drops what is not IPv4 or would expire, and sends the rest on queue
 * 0's transmit queue. The buffers it frees (dropped frames, sent ones its TX queue reclaims) go
 * back through a second ring to the receive worker, whose pool they belong to: a pool's free
 * stack has one thread that pushes onto it (src/mem/pool-returns.ts, docs/threads.md).
 *
 * --cores LIST: the receive worker's core, then the process worker's (default: the first two
 * CPUs near the port's device, or of the machine). --ring-size: slots of the ring between them
 * (a power of two); what does not fit is dropped by the receive worker. --tx-retries N: rounds
 * the process worker tries again a batch the TX ring did not take in full, as fwd's.
 */
import { intOption, parse, portArguments, PORTS_HELP, runMain, SECONDS_OPTION, onStopSignal, UsageError, type CommandSpec, type OptionSpecs } from "./lib/cli.ts";
import { deviceCpus } from "../src/mem/numa.ts";
import { onlineCores, parseCoreList } from "../src/threads/affinity.ts";
import { LiveStats, STATS_OPTIONS, statsFormat } from "./lib/live-stats.ts";
import { PipelineWorkers, type PipelineTotals } from "./lib/pipeline-workers.ts";
import { openDevice } from "../src/open-device.ts";
import { placementLines } from "./lib/placement-lines.ts";
import { openSimulatedPorts } from "./lib/sim-ports.ts";

const SPEC = {
  name: "ixy-pipeline",
  summary: "receives on one port, runs the frames through worker threads over shared rings, sends them back",
  usage: ["<port> [options]", "--sim [--sim-nic ixgbe|virtio] [options]"],
  options: {
    batch: { type: "string", arg: "N", help: "frames per receive and send call, 1 to 512", default: "32", unit: "frames" },
    ...SECONDS_OPTION,
    ...STATS_OPTIONS,
    cores: { type: "string", arg: "LIST", help: "the cores of the stages, as 0-3,8" },
    "ring-size": { type: "string", arg: "N", help: "entries of each ring between stages, a power of two", default: "1024", unit: "entries" },
    "tx-retries": { type: "string", arg: "N", help: "try N more times to send what the TX ring had no room for, before dropping it", default: "0" },
  },
  details: PORTS_HELP,
} as const satisfies CommandSpec<OptionSpecs>;

async function main(): Promise<number> {
  const { values, positionals, sim, mac, unsafeNoIommu, device } = parse(SPEC);
  const addresses = portArguments(SPEC, positionals, 1, sim !== null);
  const batch = intOption("batch", values.batch, 32, 1, 512);
  const seconds = intOption("seconds", values.seconds, 0, 0, 1e9);
  const ringSize = intOption("ring-size", values["ring-size"], 1024, 2, 1 << 20);
  if ((ringSize & (ringSize - 1)) !== 0) throw new UsageError(`--ring-size must be a power of two, got ${ringSize}`);
  const txRetries = intOption("tx-retries", values["tx-retries"], 0, 0, 1e9);
  const format = statsFormat(values);
  // The port. --sim: a device model (src/sim) driven by the same driver, its simulated wire fed
  // by this thread below; otherwise openDevice() on the address.
  const models = sim === null ? null : openSimulatedPorts(sim, 1, { ...device, unsafeNoIommu });
  const dev = models !== null ? models.devices[0]! : openDevice(addresses[0]!, { ...device, mac, unsafeNoIommu });
  const close = () => (models !== null ? models.close() : dev.close());
  let totals: PipelineTotals;
  let elapsed: number;
  // ring-full: the process worker's frames the TX ring had no room for (its txDropped).
  let workers: PipelineWorkers | null = null;
  const stats = new LiveStats([dev], { format, app: "pipeline", appDrops: () => [workers?.totals().txDropped ?? 0] });
  try {
    const cores = stageCores(values.cores, dev.address, sim !== null);
    process.stderr.write(
      `pipeline: ${dev.address}${sim ? ` (device model: ${sim})` : ""}, batch ${batch}, ring ${ringSize}: ` +
        `receive worker on core ${cores[0]}, process worker on core ${cores[1]}\n`,
    );
    process.stderr.write(placementLines("pipeline", [dev]));
    const started = performance.now();
    const pipeline = (workers = PipelineWorkers.start(dev, { batch, ringSize, txRetries, cores }));
    // --seconds (and the rate) count from when both workers run: starting one takes a moment (tsx in the worker).
    let running: number | null = null;
    let stop = false;
    let wake = () => {};
    const stopAll = () => {
      stop = true;
      wake();
    };
    pipeline.onFailure = stopAll;
    onStopSignal(stopAll);
    await new Promise<void>((resolve) => {
      wake = resolve;
      let nextSecond = started + 1000;
      const slice = () => {
        const now = performance.now();
        if (now >= nextSecond) {
          stats.print();
          nextSecond += 1000;
        }
        if (running === null && pipeline.ready) running = now;
        if (stop || (seconds > 0 && running !== null && now - running >= seconds * 1000)) return resolve();
        if (models === null) {
          setTimeout(slice, Math.max(1, Math.min(nextSecond - now, 100)));
          return;
        }
        // The model's work, in slices of a few milliseconds: worker messages and signals get through between them.
        const end = now + 5;
        while (performance.now() < end) for (let k = 0; k < 16; k++) models.pump(batch);
        setImmediate(slice);
      };
      setImmediate(slice);
    });
    if (models !== null && !stop) {
      // The model wrote frames into the receive ring up to the last pump; before the stop word,
      // let the receive worker take them all (pump(0): doorbells only, no new frames), so what
      // the pipeline received is what the NIC counted. A second at most: a worker that fails
      // has already set `stop`.
      const accepted = models.wires.reduce((n, w) => n + w.accepted, 0);
      const giveUp = performance.now() + 1000;
      while (pipeline.totals().received < accepted && performance.now() < giveUp) {
        models.pump(0);
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    // While the workers finish, the model still takes their doorbells (but no new frames).
    totals = await pipeline.stop(() => models?.pump(0));
    elapsed = (performance.now() - (running ?? started)) / 1000;
  } catch (e) {
    close();
    throw e;
  }
  stats.finish();
  process.stderr.write(
    `pipeline: received ${totals.received}, sent ${totals.sent} (${(totals.sent / elapsed / 1e6).toFixed(3)} Mpps), ` +
      `dropped ${totals.ringDropped} for a full ring, ${totals.filtered} not IPv4 or TTL expired, ${totals.txDropped} for lack of TX descriptors\n`,
  );
  if (models !== null) process.stderr.write(models.wireLines("pipeline"));
  close();
  return 0;
}

/** --cores: the receive worker's core, then the process worker's; default: the first two near the device. */
function stageCores(list: string | undefined, address: string, sim: boolean): [number, number] {
  if (list !== undefined) {
    const cores = parseCoreList(list, "--cores");
    if (cores.length !== 2) throw new UsageError(`--cores ${list} names ${cores.length} cores: give two, the receive worker's and the process worker's`);
    return [cores[0]!, cores[1]!];
  }
  const near = sim || address.startsWith("vhost-user:") ? onlineCores() : [...deviceCpus(address)];
  return [near[0]!, near[1 % near.length]!];
}

await runMain(main);
