/**
 * virtio-net multiqueue (virtio 1.2 §5.1.3 VIRTIO_NET_F_MQ, §5.1.4 max_virtqueue_pairs, §5.1.2 the
 * queue layout, §5.1.6.5.5 VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET) on the modern model, split and packed.
 */
import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { DeviceProtocolError, NotSupportedError } from "../../src/errors.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { frameOf, writeFrame } from "../../src/mem/packet.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { VhostUserBackendNotFoundError } from "../../src/drivers/virtio/vhost-user/errors.ts";
import { CtrlQueue } from "../../src/drivers/virtio/ctrl-queue.ts";
import { ModernTransport } from "../../src/drivers/virtio/transport-modern.ts";
import type { NotifyTarget } from "../../src/drivers/virtio/transport.ts";
import { ringLayout, VirtqueueRing } from "../../src/drivers/virtio/virtqueue.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { bytesEqual, freeAll, openRig } from "./helpers.ts";

const MQ = 1n << 22n;
const rings = ["split", "packed"] as const;
const MAX_PAIRS = 4;

/** An IPv4/UDP frame of flow `flow` (its source port and address), carrying `seq` and filler. */
function udpFrame(flow: number, seq: number, length = 128): Uint8Array {
  const f = new Uint8Array(length);
  f.set([0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00], 0);
  f[14] = 0x45; // IPv4, IHL 5
  f[23] = 17; // UDP
  f.set([10, 0, flow >> 8, flow & 0xff, 10, 1, 0, 1], 26); // source, destination address
  f[34] = 0x40 | (flow >> 8);
  f[35] = flow & 0xff; // source port
  f[36] = 0x12;
  f[37] = 0x34; // destination port
  f[42] = flow >> 8;
  f[43] = flow & 0xff;
  f[44] = seq >> 8;
  f[45] = seq & 0xff;
  for (let i = 46; i < length; i++) f[i] = (flow * 31 + seq * 7 + i) & 0xff;
  return f;
}

describe.each(rings)("virtio multiqueue (%s rings)", (ring) => {
  const packed = ring === "packed";

  describe.each([2, 4])("%i queue pairs of a device with 4", (pairs) => {
    it("negotiates MQ, lays out the queues with the control queue at 2 * max_virtqueue_pairs, and sends VQ_PAIRS_SET on the wire", () => {
      const { model, dev } = openRig({ packed, queuePairs: MAX_PAIRS }, { ring, rxQueues: pairs, txQueues: pairs });
      expect(model.driverFeatures & MQ).toBe(MQ);
      expect([dev.rxQueues, dev.txQueues, dev.maxQueuePairs]).toEqual([pairs, pairs, MAX_PAIRS]);
      expect(model.ctrlQueueIndex).toBe(2 * MAX_PAIRS);
      expect(model.queueSize(2 * MAX_PAIRS)).toBeGreaterThan(0);
      for (let q = 0; q < 2 * pairs; q++) expect(model.queueSize(q)).toBeGreaterThan(0);
      // Pairs beyond the count used stay unconfigured (the spec asks only for the ones enabled).
      for (let q = 2 * pairs; q < 2 * MAX_PAIRS; q++) expect(model.queueSize(q)).toBe(0);
      // Class VIRTIO_NET_CTRL_MQ (4), command VQ_PAIRS_SET (0), le16 virtqueue_pairs; then promiscuous mode.
      expect(model.ctrlLog).toEqual([
        { cls: 4, command: 0, data: [pairs, 0], ack: 0 },
        { cls: 0, command: 0, data: [1], ack: 0 },
      ]);
      expect(model.activeQueuePairs).toBe(pairs);
      for (let k = 0; k < pairs; k++) expect(model.rxBuffersAvailableOn(k)).toBe(model.queueSize(2 * k));
      expect(model.violations).toEqual([]);
      dev.close();
    });

    it("receives frames of many flows spread over the queues: each flow on one queue, in order, byte-exact, nothing lost", () => {
      const { model, dev } = openRig({ packed, queuePairs: MAX_PAIRS, queueSize: 64 }, { ring, rxQueues: pairs, txQueues: pairs });
      const flows = 64;
      const perFlow = 40;
      const queueOf = new Map<number, number>();
      const nextSeq = new Array<number>(flows).fill(0);
      const bufs = new Int32Array(32);
      let received = 0;
      const perQueue = new Array<number>(pairs).fill(0);
      for (let seq = 0; seq < perFlow; seq++) {
        // A burst of one frame per flow (64), fewer than one queue's 64 buffers even if all landed on it.
        for (let flow = 0; flow < flows; flow++) expect(model.inject(udpFrame(flow, seq))).toBe(true);
        for (let q = 0; q < pairs; q++) {
          for (let n = dev.rxBatch(q, bufs, 32); n > 0; n = dev.rxBatch(q, bufs, 32)) {
            for (let i = 0; i < n; i++) {
              const f = frameOf(bufs[i]!);
              const flow = (f[42]! << 8) | f[43]!;
              const s = (f[44]! << 8) | f[45]!;
              if (!bytesEqual(f, udpFrame(flow, s))) expect.fail(`flow ${flow} frame ${s} differs on queue ${q}`);
              if ((queueOf.get(flow) ?? q) !== q) expect.fail(`flow ${flow} came on queues ${queueOf.get(flow)} and ${q}`);
              queueOf.set(flow, q);
              if (s !== nextSeq[flow]) expect.fail(`flow ${flow}: frame ${s} on queue ${q} where ${nextSeq[flow]} was due`);
              nextSeq[flow]!++;
            }
            freeAll(bufs, n);
            received += n;
            perQueue[q]! += n;
          }
        }
      }
      expect(received).toBe(flows * perFlow);
      expect(nextSeq.every((s) => s === perFlow)).toBe(true);
      // Every queue got some flows (a fixed hash and fixed flows: deterministic).
      for (let q = 0; q < pairs; q++) expect(perQueue[q]).toBeGreaterThan(0);
      expect(model.counters.rxQueueFrames.slice(0, pairs)).toEqual(perQueue);
      const stats = newStats();
      dev.readStats(stats);
      expect([stats.rxPackets, stats.rxMissed, stats.rxErrors]).toEqual([flows * perFlow, 0, 0]);
      expect(model.counters.rxDropped).toBe(0);
      expect(model.violations).toEqual([]);
      dev.close();
    });

    it("receives on the queue inject() names, and transmits on every queue byte-exact and in order", () => {
      const { model, dev, dma } = openRig({ packed, queuePairs: MAX_PAIRS, queueSize: 64 }, { ring, rxQueues: pairs, txQueues: pairs });
      const bufs = new Int32Array(16);
      for (let q = 0; q < pairs; q++) {
        for (let s = 0; s < 3; s++) expect(model.inject(udpFrame(7, q * 3 + s), q)).toBe(true);
        for (let other = 0; other < pairs; other++) if (other !== q) expect(dev.rxBatch(other, bufs, 16)).toBe(0);
        expect(dev.rxBatch(q, bufs, 16)).toBe(3);
        for (let s = 0; s < 3; s++) expect(bytesEqual(frameOf(bufs[s]!), udpFrame(7, q * 3 + s))).toBe(true);
        freeAll(bufs, 3);
      }
      expect(() => model.inject(udpFrame(7, 0), pairs)).toThrow(RangeError);

      const wire: Array<[number, Uint8Array]> = [];
      model.onTransmit = (f, pair) => wire.push([pair, f.slice()]);
      const pool = new Mempool(dma, { count: 256, checked: true });
      const sent: Array<[number, Uint8Array]> = [];
      for (let round = 0; round < 50; round++) {
        for (let q = 0; q < pairs; q++) {
          const n = pool.allocBatch(bufs, 4);
          expect(n).toBe(4);
          for (let i = 0; i < n; i++) {
            const f = udpFrame(q, round * 4 + i, 60 + ((round + i) % 40));
            writeFrame(bufs[i]!, f);
            sent.push([q, f]);
          }
          let done = 0;
          while (done < n) done += dev.txBatch(q, bufs.subarray(done, n), n - done);
        }
      }
      expect(wire.length).toBe(sent.length);
      for (let i = 0; i < sent.length; i++) {
        expect(wire[i]![0]).toBe(sent[i]![0]);
        if (!bytesEqual(wire[i]![1], sent[i]![1])) expect.fail(`frame ${i} differs on the wire`);
      }
      expect(model.counters.txQueueFrames.slice(0, pairs)).toEqual(new Array(pairs).fill(50 * 4));
      for (let q = 0; q < pairs; q++) expect(dev.queueNotifications(q)[1]).toBeGreaterThan(0);
      const stats = newStats();
      dev.readStats(stats);
      expect(stats.txPackets).toBe(sent.length);
      expect(model.violations).toEqual([]);
      dev.close();
    });
  });

  it("works with an asynchronous device too (VQ_PAIRS_SET completed late, frames steered, queues drained out of order)", () => {
    const { model, dev } = openRig({ packed, queuePairs: 2, completion: "async", seed: 9 }, { ring, rxQueues: 2, txQueues: 2 });
    expect(model.activeQueuePairs).toBe(2);
    const bufs = new Int32Array(64);
    for (let flow = 0; flow < 32; flow++) expect(model.inject(udpFrame(flow, 0))).toBe(true);
    model.poll();
    let received = 0;
    for (let q = 0; q < 2; q++) {
      const n = dev.rxBatch(q, bufs, 64);
      expect(n).toBeGreaterThan(0);
      freeAll(bufs, n);
      received += n;
    }
    expect(received).toBe(32);
    expect(model.violations).toEqual([]);
    dev.close();
  });

  it("keeps one queue pair exactly as before on a device offering MQ: MQ not negotiated, control queue at 2, no VQ_PAIRS_SET", () => {
    const { model, dev } = openRig({ packed, queuePairs: MAX_PAIRS }, { ring });
    expect(model.offeredFeatures & MQ).toBe(MQ);
    expect(model.driverFeatures & MQ).toBe(0n);
    expect([dev.rxQueues, dev.txQueues, dev.maxQueuePairs]).toEqual([1, 1, 1]);
    expect(model.ctrlQueueIndex).toBe(2);
    expect(model.queueSize(2)).toBeGreaterThan(0);
    for (let q = 3; q <= 2 * MAX_PAIRS; q++) expect(model.queueSize(q)).toBe(0);
    expect(model.ctrlLog).toEqual([{ cls: 0, command: 0, data: [1], ack: 0 }]);
    expect(model.activeQueuePairs).toBe(1);
    const bufs = new Int32Array(8);
    for (let flow = 0; flow < 8; flow++) expect(model.inject(udpFrame(flow, 0))).toBe(true);
    expect(dev.rxBatch(0, bufs, 8)).toBe(8);
    freeAll(bufs, 8);
    expect(() => dev.rxBatch(1, bufs, 8)).toThrow(/queue 0 only/);
    expect(model.violations).toEqual([]);
    dev.close();
  });

  it("refuses more pairs than max_virtqueue_pairs, and says how to get more", () => {
    expect(() => openRig({ packed, queuePairs: 2 }, { ring, rxQueues: 4, txQueues: 4 })).toThrow(NotSupportedError);
    expect(() => openRig({ packed, queuePairs: 2 }, { ring, rxQueues: 3, txQueues: 3 })).toThrow(
      /rxQueues and txQueues 3, but the device has at most 2 queue pairs \(max_virtqueue_pairs\).*mq=on,vectors=8/,
    );
  });

  it("refuses more than one pair when the device does not offer MQ, saying how to enable it", () => {
    const attempt = () => openRig({ packed }, { ring, rxQueues: 2, txQueues: 2 });
    expect(attempt).toThrow(NotSupportedError);
    expect(attempt).toThrow(/does not offer VIRTIO_NET_F_MQ.*queues=2.*virtio-net-pci,mq=on,vectors=6/);
  });

  it("refuses unequal receive and transmit queue counts (virtio-net queues come in pairs)", () => {
    expect(() => openRig({ packed, queuePairs: 4 }, { ring, rxQueues: 2, txQueues: 1 })).toThrow(/give both the same number/);
  });

  it("fails the open, resetting the device, when the device refuses VQ_PAIRS_SET", () => {
    const dma = new SimDma("sim DMA");
    const model = new VirtioNetModel({ dma, packed, queuePairs: 2, address: "sim:mq" });
    model.faults.rejectCtrl = true;
    const open = () => createVirtioDevice(model.pci, dma, { ring, rxQueues: 2, txQueues: 2, linkTimeoutMs: 0 });
    expect(open).toThrow(DeviceProtocolError);
    expect(open).toThrow(/sim:mq control queue: VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 2 \(of max_virtqueue_pairs 2\): the device answered VIRTIO_NET_ERR/);
    expect(model.ctrlLog.at(-1)).toEqual({ cls: 4, command: 0, data: [2, 0], ack: 1 });
    expect(model.statusLog.at(-2)! & 0x80).toBe(0x80); // FAILED, then the reset
    expect(model.status).toBe(0);
    model.faults.rejectCtrl = false;
    const dev = open();
    expect(model.activeQueuePairs).toBe(2);
    expect(model.violations).toEqual([]);
    dev.close();
  });
});

describe("virtio multiqueue on other transports", () => {
  it("works on the legacy interface of a transitional device (MQ is a low feature bit, the configuration the same)", () => {
    const { model, dev } = openRig({ legacy: true, queuePairs: 2, queueSize: 64 }, { rxQueues: 2, txQueues: 2 });
    expect(model.legacyMode).toBe(true);
    expect(model.ctrlQueueIndex).toBe(4);
    expect(model.activeQueuePairs).toBe(2);
    const bufs = new Int32Array(64);
    for (let flow = 0; flow < 48; flow++) expect(model.inject(udpFrame(flow, 0))).toBe(true);
    const perQueue = [0, 1].map((q) => {
      const n = dev.rxBatch(q, bufs, 64);
      freeAll(bufs, n);
      return n;
    });
    expect(perQueue[0]! + perQueue[1]!).toBe(48);
    expect(perQueue.every((n) => n > 0)).toBe(true);
    expect(model.violations).toEqual([]);
  });

  it("over vhost-user: more than 128 queue pairs (an 8-bit ring index) is a RangeError before connecting; 2 pairs go on to connect", () => {
    const attempt = (pairs: number) => () => createVhostUserDevice("/nonexistent/ixy-mq.sock", { rxQueues: pairs, txQueues: pairs, timeoutMs: 0 });
    expect(attempt(129)).toThrow(RangeError);
    expect(attempt(129)).toThrow(/at most 128 queue pairs/);
    // The multiqueue checks need the backend's answers (test/vhost-user/multiqueue.test.ts).
    expect(attempt(2)).toThrow(VhostUserBackendNotFoundError);
    // Queue pairs: rxQueues = txQueues, as on PCI.
    expect(() => createVhostUserDevice("/nonexistent/ixy-mq.sock", { rxQueues: 2, txQueues: 1, timeoutMs: 0 })).toThrow(/rxQueues 2 and txQueues 1: .*give both the same number/);
  });
});

/**
 * The model's side of VQ_PAIRS_SET, driven by a bare client (the driver's transport and control
 * queue classes, no VirtioNetDevice) so that it can send what the driver never would.
 */
describe("virtio multiqueue model: VQ_PAIRS_SET and the queues beyond it", () => {
  function bareClient(features: bigint, queues: number[], ctrlIndex: number) {
    const dma = new SimDma("sim DMA");
    const model = new VirtioNetModel({ dma, queuePairs: 2, queueSize: 16 });
    const t = new ModernTransport(model.pci);
    t.reset();
    model.pci.enableDma();
    t.setStatus(1);
    t.setStatus(3);
    t.writeDriverFeatures(features);
    t.setStatus(11);
    const size = 16;
    const bytes = ringLayout(size).bytes;
    const region = dma.allocate(bytes * (queues.length + 1) + 4096, { align: 4096, contiguous: true });
    const rings = new Map<number, { ring: VirtqueueRing; notify: NotifyTarget }>();
    for (const [k, index] of [...queues, ctrlIndex].entries()) {
      const ring = new VirtqueueRing(region, k * bytes, index, size);
      rings.set(index, { ring, notify: t.activateQueue(index, size, ring.addresses) });
    }
    t.setStatus(15);
    const cmdOffset = bytes * (queues.length + 1);
    const { ring, notify } = rings.get(ctrlIndex)!;
    const ctrl = new CtrlQueue("bare control queue", ring, notify, region.bytes.subarray(cmdOffset, cmdOffset + 64), region.iovaOf(cmdOffset));
    /** One 64-byte device-readable buffer made available on queue `index`, and a notification. */
    const transmitOn = (index: number): void => {
      const { ring: r, notify: n } = rings.get(index)!;
      r.setDescriptor(0, region.iovaOf(cmdOffset + 1024), 64, 0, 0);
      r.avail16[2] = 0;
      r.avail16[1] = 1;
      n.mmio.write16(n.offset, index);
    };
    return { model, ctrl, transmitOn };
  }
  const BASE = (1n << 32n) | (1n << 33n) | (1n << 17n); // VERSION_1, ACCESS_PLATFORM, CTRL_VQ

  it("refuses 0, more than max_virtqueue_pairs and a malformed count with VIRTIO_NET_ERR, takes 1 to max", () => {
    const { model, ctrl } = bareClient(BASE | MQ, [0, 1, 2, 3], 4);
    expect(model.ctrlQueueIndex).toBe(4);
    const set = (data: number[]) => () => ctrl.command(4, 0, Uint8Array.from(data), `VQ_PAIRS_SET ${data}`);
    expect(set([0, 0])).toThrow(/VIRTIO_NET_ERR/);
    expect(set([3, 0])).toThrow(/VIRTIO_NET_ERR/);
    expect(set([2])).toThrow(/VIRTIO_NET_ERR/);
    expect(() => ctrl.command(4, 1, Uint8Array.of(2, 0), "VIRTIO_NET_CTRL_MQ_RSS_CONFIG")).toThrow(/VIRTIO_NET_ERR/);
    expect(model.activeQueuePairs).toBe(1);
    set([2, 0])();
    expect(model.activeQueuePairs).toBe(2);
    set([1, 0])();
    expect(model.activeQueuePairs).toBe(1);
    expect(model.ctrlLog.map((c) => c.ack)).toEqual([1, 1, 1, 1, 0, 0]);
    expect(model.violations).toEqual([]);
  });

  it("records transmissions on a queue pair beyond the count set, and sends none of them", () => {
    const { model, ctrl, transmitOn } = bareClient(BASE | MQ, [0, 1, 2, 3], 4);
    transmitOn(3); // transmitq2 while one pair is active (the state after reset)
    expect(model.violations).toEqual([expect.stringMatching(/transmitq2 \(queue 3\) used while only 1 queue pair\(s\) are active/)]);
    expect(model.counters.txFrames).toBe(0);
    ctrl.command(4, 0, Uint8Array.of(2, 0), "VQ_PAIRS_SET 2");
    model.poll(3);
    expect(model.counters.txQueueFrames).toEqual([0, 1]);
    expect(model.violations).toHaveLength(1);
  });

  it("keeps the three-queue layout without MQ negotiated: VQ_PAIRS_SET refused, queues past the control queue not there", () => {
    const { model, ctrl } = bareClient(BASE, [0, 1], 2);
    expect(model.ctrlQueueIndex).toBe(2);
    expect(() => ctrl.command(4, 0, Uint8Array.of(2, 0), "VQ_PAIRS_SET 2")).toThrow(/VIRTIO_NET_ERR/);
    expect(model.activeQueuePairs).toBe(1);
    expect(model.violations).toEqual([]);
  });
});
