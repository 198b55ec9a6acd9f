/**
 * Offloads in a queue pair driven by a worker thread (shareQueuePair + attachQueuePair): the
 * worker compiles its own copies of the loops, with its own offload helpers (rxPartial,
 * txOffloadHeader). Frames with a partial checksum (NEEDS_CSUM) come in, the worker's echo sends
 * them back, and the wire sees them completed, by the device (CSUM) or the worker (software).
 */
import { describe, expect, it } from "vitest";
import { deliverPostedWrites } from "../../src/sim/sim-mmio.ts";
import { pseudoHeaderSum } from "../../src/net/checksum.ts";
import type { SharedQueuePair } from "../../src/drivers/queue-sharing.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";
import { buildFrame } from "../helpers/frames.ts";
import { prng, randInt } from "../helpers/prng.ts";
import { openRig } from "./helpers.ts";

const ECHO = new URL("../threads/workers/pair-echo.ts", import.meta.url);

describe("virtio offloads in a worker thread", () => {
  for (const txChecksum of [true, false]) {
    it(`partial checksums received in the worker leave completed (txChecksum ${txChecksum})`, async () => {
      const rig = openRig({ queueSize: 64 }, { offloads: { txChecksum } });
      const control = new Int32Array(new SharedArrayBuffer(8));
      const pair: SharedQueuePair = rig.dev.shareQueuePair(0);
      const worker = startTsWorker(ECHO, { workerData: { pair, control } });
      const result = new Promise<{ received: number; sent: number; error?: unknown }>((resolve, reject) => {
        let message: { received: number; sent: number } | undefined;
        worker.on("message", (m) => (message = m));
        worker.on("error", reject);
        worker.on("exit", () => (message !== undefined ? resolve(message) : reject(new Error("the worker exited without a message"))));
      });
      const rand = prng(txChecksum ? 91 : 92);
      const full: Uint8Array[] = [];
      const partial: Array<{ frame: Uint8Array; start: number; offset: number }> = [];
      for (let i = 0; i < 200; i++) {
        const tcp = i % 2 === 0;
        const ipv6 = i % 3 === 0;
        const f = buildFrame({ proto: tcp ? "tcp" : "udp", ipv6, payload: randInt(rand, 0, 1200) }, rand);
        full.push(f.bytes);
        const p = f.bytes.slice();
        const l4 = f.l2 + f.l3;
        const check = l4 + (tcp ? 16 : 6);
        const seed = pseudoHeaderSum(p, f.l2, ipv6, tcp ? 6 : 17, p.length - l4);
        p[check] = seed >> 8;
        p[check + 1] = seed & 0xff;
        partial.push({ frame: p, start: l4, offset: tcp ? 16 : 6 });
      }
      const wire: Uint8Array[] = [];
      rig.model.onTransmit = (f) => wire.push(f.slice());
      let offered = 0;
      const end = Date.now() + 60_000;
      while (wire.length < full.length && Date.now() < end) {
        while (offered < partial.length && offered - wire.length < 32) {
          const p = partial[offered]!;
          if (!rig.model.inject(p.frame, undefined, { csumStart: p.start, csumOffset: p.offset })) break;
          offered++;
        }
        deliverPostedWrites();
        rig.model.poll();
        await new Promise((r) => setImmediate(r));
      }
      Atomics.store(control, 0, 1);
      const echoed = await result;
      expect(echoed.error).toBeUndefined();
      expect(wire).toEqual(full);
      expect(rig.model.counters.rxNeedsCsum).toBe(full.length);
      expect(rig.model.counters.txChecksummed).toBe(txChecksum ? full.length : 0);
      expect(rig.dev.reclaimQueuePair(0)).toBe(true);
      rig.dev.close();
    });
  }
});
