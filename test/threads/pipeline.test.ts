/**
 * The pipeline (examples/lib/pipeline-*.ts) on every driver variant of the contract suite,
 * through its two real worker threads: queue pair 0's receive queue in one, its transmit queue
 * in the other, the received buffers through one SPSC ring and the freed ones back through the
 * return ring. Random frames in; out come exactly the forwardable ones, rewritten (MACs
 * swapped, TTL - 1, a valid checksum), byte-exact and in order; at the end every buffer is back
 * in its pool (checked pools, so that a double free anywhere throws).
 */
import { describe, expect, it } from "vitest";
import { PipelineWorkers } from "../../examples/lib/pipeline-workers.ts";
import { ipv4Checksum } from "../../examples/lib/udp-frame.ts";
import { deliverPostedWrites } from "../../src/sim/sim-mmio.ts";
import { account } from "../contract/accounting.ts";
import { VARIANTS, stats, type Rig } from "../contract/rigs.ts";
import { prng, randInt } from "../helpers/prng.ts";

const ETH = 14;

/** A random frame: mostly forwardable IPv4 (options now and then), some expiring, some not IPv4. */
function randomFrame(rand: () => number): Uint8Array {
  const kind = randInt(rand, 0, 9);
  const ihl = kind === 1 ? randInt(rand, 6, 10) : 5;
  const length = Math.max(60, ETH + ihl * 4 + randInt(rand, 0, 1200));
  const f = new Uint8Array(length);
  for (let i = 0; i < length; i++) f[i] = randInt(rand, 0, 255);
  f[0] &= 0xfe; // unicast: every receive filter passes it
  f[6] &= 0xfe;
  f[12] = 0x08;
  f[13] = 0x00;
  const h = f.subarray(ETH, ETH + ihl * 4);
  h[0] = 0x40 | ihl;
  h[8] = kind === 2 ? randInt(rand, 0, 1) : randInt(rand, 2, 255); // kind 2: expires here
  if (kind === 3) f[12] = 0x86; // kind 3: IPv6's EtherType
  h[10] = 0;
  h[11] = 0;
  const c = ipv4Checksum(h);
  h[10] = c >>> 8;
  h[11] = c & 0xff;
  return f;
}

/** What a forwardable frame must look like on the wire (computed independently of processFrame); null: dropped. */
function rewritten(f: Uint8Array): Uint8Array | null {
  if (f[12] !== 0x08 || f[13] !== 0x00 || f[ETH + 8]! <= 1) return null;
  const e = f.slice();
  e.set(f.subarray(6, 12), 0);
  e.set(f.subarray(0, 6), 6);
  const h = e.subarray(ETH, ETH + (f[ETH]! & 0x0f) * 4);
  h[8] = h[8]! - 1;
  h[10] = 0;
  h[11] = 0;
  const c = ipv4Checksum(h);
  h[10] = c >>> 8;
  h[11] = c & 0xff;
  return e;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe.each(VARIANTS)("the pipeline in two worker threads: $name", (variant) => {
  it("forwards the IPv4 frames rewritten, byte-exact and in order, drops the rest, and gives every buffer back", async () => {
    const rig: Rig = variant.open({ ringSize: 64, checked: true });
    const rand = prng(0x13 + variant.name.length);
    const total = 700; // about 10 laps of the 64-descriptor rings
    const frames = Array.from({ length: total }, () => randomFrame(rand));
    const want = frames.map(rewritten).filter((f): f is Uint8Array => f !== null);
    // The ring between the stages holds every buffer of the pool (4 x 64): it never drops. The
    // process stage waits for TX descriptors as long as it takes.
    const pipeline = PipelineWorkers.start(rig.dev, { batch: 32, ringSize: 256, txRetries: 1e9, cores: [null, null] });
    const step = () => {
      deliverPostedWrites();
      rig.step();
    };
    let offered = 0;
    const end = Date.now() + 60_000;
    for (;;) {
      const done = rig.transmitted().length + pipeline.totals().filtered;
      if (done >= total || Date.now() > end || pipeline.failure !== null) break;
      // Offer frames while the receive ring has room for all in flight.
      while (offered < total && offered - done < rig.rxHolds && rig.deliver(frames[offered]!)) offered++;
      step();
      await tick();
    }
    const totals = await pipeline.stop(step);
    step();
    expect(totals).toMatchObject({ received: total, processed: total, ringDropped: 0, txDropped: 0 });
    expect(totals.sent).toBe(want.length);
    expect(totals.filtered).toBe(total - want.length);
    expect(want.length).toBeGreaterThan(total * 0.6);
    const out = rig.transmitted();
    expect(out.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) {
      if (out[i]!.length !== want[i]!.length || !out[i]!.every((b, j) => b === want[i]![j])) {
        throw new Error(`frame ${i} on the wire is not the rewritten frame ${i} (${out[i]!.length} bytes, expected ${want[i]!.length})`);
      }
    }
    const s = stats(rig.dev);
    expect(s.rxPackets).toBe(total);
    expect(s.txPackets).toBe(want.length);
    // The pair is back: it works in this thread again.
    expect(rig.dev.rxBatch(0, new Int32Array(4), 4)).toBe(0);
    rig.dev.close();
    account(rig.dma, []);
    expect(rig.violations()).toEqual([]);
  }, 90_000);
});
