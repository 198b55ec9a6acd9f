/**
 * mq-fwd: bench:vhost's ixy.ts peer for --queues N > 1: forwards between two vhost-user ports of
 * N queue pairs each, receive queue q of one port to transmit queue q of the other, all pairs in
 * turn on one thread (one core), as testpmd's io forwarding with --rxq=N --txq=N and one
 * forwarding lcore does. examples/fwd.ts drives queue 0 only.
 *
 *   node --import tsx bench/vhost/mq-fwd.ts <socket-a> <socket-b> --queues N [--batch 32] [--seconds N] [--ring packed|split]
 *
 * Frames the transmit ring has no room for are dropped, as fwd does without --tx-retries.
 */
import { parseArgs } from "node:util";
import type { NicDevice } from "../../src/device.ts";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { freeBuffers } from "../../src/mem/mempool.ts";
import { pollLoop } from "../../examples/lib/poll-loop.ts";

const USAGE = "usage: mq-fwd.ts <socket-a> <socket-b> --queues N [--batch 32] [--seconds N] [--ring packed|split]";

function int(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new RangeError(`--${name} ${v}: a whole number ${min}..${max}\n${USAGE}`);
  return n;
}

/** Receives up to `batch` on rx queue q, sends on tx queue q; drops what does not fit. */
function forward(rx: NicDevice, tx: NicDevice, q: number, bufs: Int32Array, batch: number): number {
  const n = rx.rxBatch(q, bufs, batch);
  if (n === 0) return 0;
  const sent = tx.txBatch(q, bufs, n);
  if (sent < n) freeBuffers(bufs, sent, n - sent);
  return n - sent;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { queues: { type: "string" }, batch: { type: "string" }, seconds: { type: "string" }, ring: { type: "string" } },
  });
  if (positionals.length !== 2) throw new RangeError(USAGE);
  const queues = int("queues", values.queues, 2, 1, 128);
  const batch = int("batch", values.batch, 32, 1, 512);
  const seconds = int("seconds", values.seconds, 0, 0, 1e9);
  const ring = values.ring;
  if (ring !== undefined && ring !== "packed" && ring !== "split") throw new RangeError(`--ring ${ring}: packed or split`);
  const layout: "packed" | "split" | undefined = ring;
  const options = { rxQueues: queues, txQueues: queues, timeoutMs: 20_000, ...(layout === undefined ? {} : { ring: layout }) };
  const a = createVhostUserDevice(positionals[0]!, options);
  const b = createVhostUserDevice(positionals[1]!, options);
  process.stderr.write(`mq-fwd: forwarding ${a.address} <-> ${b.address}, ${queues} queue pairs each, batch ${batch}\n`);
  const bufs = new Int32Array(batch);
  let dropped = 0;
  await pollLoop(
    () => {
      for (let q = 0; q < queues; q++) {
        dropped += forward(a, b, q, bufs, batch);
        dropped += forward(b, a, q, bufs, batch);
      }
    },
    { seconds },
  );
  process.stderr.write(`mq-fwd: dropped ${dropped} frames for lack of TX descriptors\n`);
  a.close();
  b.close();
}

await main();
