/** measureRx (ixy-fwd --latency): stamped frames in real pool buffers are measured, others passed through. */
import { afterAll, describe, expect, it } from "vitest";
import { bufDataOffset, bufLength } from "../../src/mem/buffer-table.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { dataOf } from "../../src/mem/packet.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { latencyReportLine, measureRx } from "../../examples/lib/latency-rx.ts";
import { writeMagic, writeTime } from "../../examples/lib/latency-stamp.ts";
import { setSequence, writeUdpFrame } from "../../examples/lib/udp-frame.ts";

const dma = new SimDma("latency-rx test");
afterAll(() => dma.close());

describe("measureRx", () => {
  it("records sequence and latency of stamped frames, counts the others, and passes every frame on", () => {
    const pool = new Mempool(dma, { count: 64, name: "latency-rx test" });
    const bufs = new Int32Array(8);
    expect(pool.allocBatch(bufs, 8)).toBe(8);
    // seq 0 1 2 4 3 stamped (sent at t = 1000 + seq us), then 3 again, then two plain frames.
    const seqs = [0, 1, 2, 4, 3, 3];
    for (let i = 0; i < 8; i++) {
      const b = bufs[i]!;
      writeUdpFrame(dataOf(b), 64);
      bufLength[b] = 64;
      if (i < seqs.length) {
        writeMagic(pool.bytes, bufDataOffset[b]!);
        setSequence(pool.bytes, bufDataOffset[b]!, seqs[i]!);
        writeTime(pool.bytes, bufDataOffset[b]!, (1000 + seqs[i]!) * 1000);
      }
    }
    let handed = false;
    const source = {
      rxBatch(out: Int32Array, max: number) {
        if (handed) return 0;
        handed = true;
        out.set(bufs.subarray(0, Math.min(max, 8)));
        return 8;
      },
      txBatch: () => 0,
    };
    const clock = () => 1010 * 1000; // received at t = 1010 us
    const m = measureRx(source, clock);
    const out = new Int32Array(32);
    expect(m.end.rxBatch(out, 32)).toBe(8);
    expect([...out.subarray(0, 8)]).toEqual([...bufs]);
    const r = m.meter.report();
    expect(r).toMatchObject({ received: 5, lost: 0, reordered: 1, duplicates: 1 });
    expect(r.latencyUs!.max).toBeCloseTo(10, 5); // seq 0: 1010 - 1000
    expect(r.latencyUs!.min).toBeCloseTo(6, 5); // seq 4
    expect(m.unstamped()).toBe(2);
    expect(latencyReportLine("sim:a", m, false)).toMatch(/^latency sim:a: received 5, lost 0, reordered 1, duplicates 1; latency us/);
    expect(JSON.parse(latencyReportLine("sim:a", m, true)).latency).toMatchObject({ port: "sim:a", received: 5, unstamped: 2 });
    pool.freeBatch(bufs, 8);
  });
});
