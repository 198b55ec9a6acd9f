/**
 * The cases of distrust.test.ts and device-faults.test.ts on packed virtqueues (virtio 1.2 §2.8):
 * the model's fault modes (VirtioNetModel `faults`) act on the packed ring as on the split one
 * (packed-device-ring.ts), and the packed queues must see each for what it is — no frame from a
 * bad used descriptor, no buffer the device still holds freed, a DeviceProtocolError — and notice
 * a device that needs a reset, drop runts, and keep the control queue in step.
 *
 * Where a split-ring case has no packed counterpart it says so: a packed ring has no used index,
 * so "used.idx going back" becomes a delayed publication (nothing to detect), and "used.idx beyond
 * what the device holds" becomes a descriptor marked used beyond the buffers in flight (transmit;
 * on the full receive ring the slots a jump marks name held ids, which no driver can tell from
 * completions, as on a full split ring; the receive loop cannot read a slot twice in one batch).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { newStats } from "../../src/device.ts";
import { DeviceProtocolError, DeviceTimeoutError } from "../../src/errors.ts";
import { freeBuffer, Mempool } from "../../src/mem/mempool.ts";
import { frameOf, setFrameLength, writeFrame } from "../../src/mem/packet.ts";
import { RX_IDLE_CHECK } from "../../src/drivers/virtio/virtio-rx-queue.ts";
import { TX_FULL_CHECK } from "../../src/drivers/virtio/virtio-tx-queue.ts";
import { createVirtioDevice, type VirtioDeviceOptions } from "../../src/drivers/virtio/virtio-device.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel, type VirtioNetModelOptions } from "../../src/sim/virtio/virtio-model.ts";
import { openRig } from "./helpers.ts";

function frameFilled(value: number, length = 60): Uint8Array {
  return new Uint8Array(length).fill(value);
}

/** A model offering packed rings and the driver on them. */
function packedRig(model: Omit<VirtioNetModelOptions, "dma" | "packed"> = {}, device: VirtioDeviceOptions = {}) {
  const rig = openRig({ ...model, packed: true }, { ...device, ring: "packed" });
  expect(rig.dev.ring).toBe("packed");
  return rig;
}

function stats(dev: { readStats(s: ReturnType<typeof newStats>): void }) {
  const s = newStats();
  dev.readStats(s);
  return s;
}

describe("packed virtqueues: distrusting the device", () => {
  describe("receive: used ids", () => {
    it("refuses a used descriptor that repeats the id before it: hands out the frame once, then DeviceProtocolError", () => {
      const { model, dev } = packedRig({}, { rxRingSize: 16 });
      model.inject(frameFilled(1));
      model.faults.repeatUsedId = true;
      model.inject(frameFilled(2));
      model.faults.repeatUsedId = false;
      const bufs = new Int32Array(32);
      expect(dev.rxBatch(0, bufs, 32)).toBe(2);
      expect([frameOf(bufs[0]!)[0], frameOf(bufs[1]!)[0]]).toEqual([1, 2]);
      expect(stats(dev)).toMatchObject({ rxPackets: 2, rxErrors: 1 });
      expect(() => dev.rxBatch(0, bufs, 32)).toThrow(DeviceProtocolError);
      expect(() => dev.rxBatch(0, bufs, 32)).toThrow(/names buffer id \d+, which the device does not hold/);
      expect(model.violations).toEqual([]);
      dev.close();
    });

    it("refuses a stale used id (returned before, written before the re-post) even across rxBatch calls", () => {
      const { model, dev } = packedRig({}, { rxRingSize: 16 });
      model.inject(frameFilled(1));
      model.faults.staleUsedId = true;
      model.inject(frameFilled(2)); // the device names frame 1's buffer id again
      model.faults.staleUsedId = false;
      const one = new Int32Array(1);
      // One at a time: frame 1's id is made available again before the driver reads the second
      // descriptor, which the device wrote before that and so cannot be about the fresh buffer
      // (without postedAt the driver would hand out that fresh buffer with its old bytes).
      expect(dev.rxBatch(0, one, 1)).toBe(1);
      expect(frameOf(one[0]!)[0]).toBe(1);
      expect(() => dev.rxBatch(0, one, 1)).toThrow(/which the device does not hold/);
      expect(stats(dev)).toMatchObject({ rxPackets: 1, rxErrors: 1 });
      dev.close();
    });

    it("takes a buffer the device completes after its re-post, also when batches stop at max", () => {
      const { model, dev } = packedRig({}, { rxRingSize: 16 });
      const one = new Int32Array(1);
      // 3 frames waiting, read one at a time: each re-post happens while later descriptors are
      // visible; the ids come back later, legitimately, and must be taken.
      for (let round = 0; round < 40; round++) {
        for (let i = 0; i < 3; i++) expect(model.inject(frameFilled((3 * round + i) & 0xff))).toBe(true);
        for (let i = 0; i < 3; i++) {
          expect(dev.rxBatch(0, one, 1)).toBe(1);
          expect(frameOf(one[0]!)[0]).toBe((3 * round + i) & 0xff);
          freeBuffer(one[0]!);
        }
      }
      expect(stats(dev)).toMatchObject({ rxPackets: 120, rxErrors: 0 });
      dev.close();
    });

    it("drops runts (1 to 13 bytes) and counts them in rxErrors", () => {
      const { model, dev } = packedRig({}, { rxRingSize: 16 });
      for (const length of [1, 13, 14]) model.inject(frameFilled(length, length));
      const bufs = new Int32Array(8);
      expect(dev.rxBatch(0, bufs, 8)).toBe(1);
      expect(frameOf(bufs[0]!).length).toBe(14);
      expect(stats(dev)).toMatchObject({ rxPackets: 1, rxErrors: 2 });
      expect(model.rxBuffersAvailable).toBe(16); // the runts' buffers went straight back
      dev.close();
    });
  });

  describe("transmit: used ids and the buffers in flight", () => {
    function txRig(ringSize = 8) {
      const rig = packedRig({}, { txRingSize: ringSize, rxRingSize: 16 });
      const pool = new Mempool(rig.dma, { count: 64, checked: true });
      const batch = (n: number, fill: number): Int32Array => {
        const bufs = new Int32Array(n);
        expect(pool.allocBatch(bufs, n)).toBe(n);
        for (const b of bufs) writeFrame(b, frameFilled(fill));
        return bufs;
      };
      return { ...rig, pool, batch };
    }

    it("refuses a stale used id instead of freeing a buffer twice", () => {
      const { model, dev, pool, batch } = txRig(4);
      expect(dev.txBatch(0, batch(1, 1), 1)).toBe(1);
      model.faults.staleUsedId = true;
      expect(dev.txBatch(0, batch(1, 2), 1)).toBe(1); // completed under the first one's id
      model.faults.staleUsedId = false;
      expect(model.counters.txFrames).toBe(2);
      const more = batch(3, 3);
      expect(() => dev.txBatch(0, more, 3)).toThrow(DeviceProtocolError);
      expect(() => dev.txBatch(0, more, 3)).toThrow(/which the device does not hold/);
      expect(pool.available).toBe(64 - 2 - 3 + 1);
      expect(stats(dev).txErrors).toBe(1);
      dev.close();
      expect(pool.available).toBe(64 - 3);
    });

    it("refuses a used id beyond the ring", () => {
      const { model, dev, batch } = txRig();
      model.faults.badUsedId = true;
      expect(dev.txBatch(0, batch(2, 1), 2)).toBe(2);
      model.faults.badUsedId = false;
      expect(() => dev.txBatch(0, batch(8, 2), 8)).toThrow(/names buffer id \d+, beyond the 8 the driver uses/);
      dev.close();
    });

    it("refuses descriptors marked used beyond the buffers in flight (usedIndexJump), freeing nothing more", () => {
      const { model, dev, pool, batch } = txRig(16);
      model.faults.usedIndexJump = 5;
      expect(dev.txBatch(0, batch(3, 1), 3)).toBe(3);
      const available = pool.available;
      expect(() => dev.txBatch(0, batch(14, 2), 14)).toThrow(/marked the descriptor in slot 3 used, beyond the 3 buffers it held/);
      // The 3 real completions came back; nothing of the new batch was taken.
      expect(pool.available).toBe(available - 14 + 3);
      expect(() => dev.txBatch(0, batch(1, 3), 1)).toThrow(DeviceProtocolError);
      dev.close();
      expect(pool.available).toBe(64 - 14 - 1);
    });

    it("waits out a delayed publication (usedIndexBack: a packed ring has no index to move back)", () => {
      const { model, dev, pool, batch } = txRig(8);
      model.faults.stall = true;
      expect(dev.txBatch(0, batch(4, 1), 4)).toBe(4);
      model.faults.stall = false;
      model.faults.usedIndexBack = 2;
      model.poll(); // 4 completions, the last 2 unpublished
      expect(dev.txBatch(0, batch(8, 2), 8)).toBe(6); // 2 reclaimed: 6 ids free
      expect(model.counters.txFrames).toBe(10);
      expect(stats(dev).txErrors).toBe(0);
      expect(model.violations).toEqual([]);
      dev.close();
      expect(pool.available).toBe(64 - 2);
    });

    it("refuses a repeated used id on a ring with more in flight", () => {
      const { model, dev, pool, batch } = txRig(8);
      model.faults.stall = true;
      expect(dev.txBatch(0, batch(4, 1), 4)).toBe(4);
      model.faults.stall = false;
      model.faults.repeatUsedId = true;
      model.poll(); // 4 completions, each written twice
      model.faults.repeatUsedId = false;
      const available = pool.available;
      expect(() => dev.txBatch(0, batch(8, 2), 8)).toThrow(/which the device does not hold/);
      expect(pool.available).toBe(available - 8 + 1); // the first completion only
      dev.close();
    });
  });

  describe("receive: a delayed publication", () => {
    it("waits out a delayed publication (usedIndexBack)", () => {
      const { model, dev } = packedRig({}, { rxRingSize: 16 });
      model.inject(frameFilled(1));
      const bufs = new Int32Array(32);
      expect(dev.rxBatch(0, bufs, 32)).toBe(1);
      model.faults.usedIndexBack = 1;
      model.inject(frameFilled(2)); // written, not published
      expect(dev.rxBatch(0, bufs, 32)).toBe(0);
      model.inject(frameFilled(3)); // publishes both
      expect(dev.rxBatch(0, bufs, 32)).toBe(2);
      expect([frameOf(bufs[0]!)[0], frameOf(bufs[1]!)[0]]).toEqual([2, 3]);
      expect(stats(dev).rxErrors).toBe(0);
      dev.close();
    });
  });

  describe("a device that needs a reset", () => {
    it("notices DEVICE_NEEDS_RESET in readStats, linkSpeed and setPromisc, and breaks both packed queues", () => {
      const { model, dev } = packedRig();
      model.breakDevice("test: an internal error");
      expect(() => dev.readStats(newStats())).toThrow(/DEVICE_NEEDS_RESET .* close the device and open it again/);
      expect(() => dev.linkSpeed()).toThrow(/DEVICE_NEEDS_RESET/);
      expect(() => dev.setPromisc(false)).toThrow(/DEVICE_NEEDS_RESET/);
      expect(() => dev.rxBatch(0, new Int32Array(4), 4)).toThrow(/DEVICE_NEEDS_RESET/);
      expect(() => dev.txBatch(0, new Int32Array(4), 0)).toThrow(/DEVICE_NEEDS_RESET/);
      dev.close();
      expect(model.status).toBe(0);
    });

    it("notices a reset behind its back in readStats", () => {
      const { model, dev } = packedRig();
      model.pci.reset();
      expect(() => dev.readStats(newStats())).toThrow(/reset behind the driver's back \(device status 0x0/);
      dev.close();
    });

    it("notices a broken device while the TX ring stays full, and while the RX ring stays empty", () => {
      const { model, dev, dma } = packedRig({}, { txRingSize: 8, rxRingSize: 16 });
      const pool = new Mempool(dma, { count: 16 });
      const bufs = new Int32Array(16);
      pool.allocBatch(bufs, 16);
      for (const b of bufs) setFrameLength(b, 60);
      model.faults.stall = true;
      expect(dev.txBatch(0, bufs, 16)).toBe(8);
      model.breakDevice("test: an internal error");
      let calls = 0;
      expect(() => {
        for (; calls < 4 * TX_FULL_CHECK; calls++) dev.txBatch(0, bufs.subarray(8), 8);
      }).toThrow(/DEVICE_NEEDS_RESET/);
      expect(calls).toBeLessThanOrEqual(TX_FULL_CHECK);
      dev.close();
      expect(pool.available).toBe(8);

      const other = packedRig({}, { rxRingSize: 16 });
      other.model.breakDevice("test: an internal error");
      const rx = new Int32Array(8);
      calls = 0;
      expect(() => {
        for (; calls < 2 * RX_IDLE_CHECK; calls++) other.dev.rxBatch(0, rx, 8);
      }).toThrow(/DEVICE_NEEDS_RESET/);
      expect(calls).toBeLessThan(RX_IDLE_CHECK);
      other.dev.close();
    });

    it("breaks on a zero-length descriptor as qemu does, and the driver hears of it", () => {
      const { model, dev, dma } = packedRig();
      const pool = new Mempool(dma, { count: 4 });
      const bufs = new Int32Array(1);
      pool.allocBatch(bufs, 1);
      setFrameLength(bufs[0]!, 60);
      model.faults.stall = true;
      expect(dev.txBatch(0, bufs, 1)).toBe(1);
      // The transmit ring as the device knows it (queue_desc); descriptor 0's len is its third word.
      const bar = model.pci.bar(4);
      bar.write16(0x16, 1);
      const desc = bar.read32(0x20) + bar.read32(0x24) * 2 ** 32;
      const view = dma.resolve(desc, 16 * 8);
      new Uint32Array(view.buffer, view.byteOffset, 4 * 8).fill(0, 2, 3);
      model.faults.stall = false;
      model.poll();
      expect(model.violations.join("\n")).toMatch(/zero-length descriptor .*fatal/);
      expect(model.broken).toBe(true);
      expect(() => dev.linkSpeed()).toThrow(/DEVICE_NEEDS_RESET/);
      dev.close();
      expect(model.broken).toBe(false);
    });

    it("keeps the buffers with a device whose reset does not complete, and says so", () => {
      const { model, dev, dma } = packedRig({}, { txRingSize: 16 });
      const pool = new Mempool(dma, { count: 16, checked: true });
      const bufs = new Int32Array(4);
      pool.allocBatch(bufs, 4);
      for (const b of bufs) writeFrame(b, new Uint8Array(60));
      model.faults.stall = true;
      expect(dev.txBatch(0, bufs, 4)).toBe(4);
      model.faults.resetReads = Infinity;
      expect(() => dev.close()).toThrow(/the buffers in its rings stay with the device/);
      expect(pool.available).toBe(12);
    });

    it("returns the transmit ring's buffers of another pool, in flight and sent but not reclaimed, after the reset", () => {
      const { model, dev, dma } = packedRig({}, { txRingSize: 64 });
      const other = new Mempool(dma, { count: 128, checked: true, name: "another port's pool" });
      const bufs = new Int32Array(50);
      expect(other.allocBatch(bufs, 50)).toBe(50);
      for (const b of bufs) writeFrame(b, new Uint8Array(60).fill(5));
      expect(dev.txBatch(0, bufs.subarray(0, 40), 40)).toBe(40);
      model.faults.stall = true;
      expect(dev.txBatch(0, bufs.subarray(40), 10)).toBe(10);
      dev.close();
      expect(other.available).toBe(128);
      other.close();
    });
  });

  describe("the packed control queue", () => {
    it("is broken after a timeout: the stalled command is never overwritten", () => {
      const { model, dev } = packedRig();
      model.faults.ctrlNeverCompletes = true;
      expect(() => dev.setPromisc(false)).toThrow(DeviceTimeoutError);
      model.faults.ctrlNeverCompletes = false;
      expect(() => dev.setPromisc(true)).toThrow(/control queue is broken .*no answer on the control queue/);
      model.poll();
      expect(model.ctrlLog.map((c) => c.data)).toEqual([[1], [0]]);
      expect(model.promisc).toBe(false);
      dev.close();
    });

    it("requires exactly one used descriptor per command (repeatUsedId, usedIndexJump)", () => {
      for (const fault of [{ repeatUsedId: true }, { usedIndexJump: 2 }]) {
        const { model, dev } = packedRig();
        Object.assign(model.faults, fault);
        expect(() => dev.setPromisc(false)).toThrow(/marked more than one descriptor used for one command/);
        model.faults.repeatUsedId = false;
        expect(() => dev.setPromisc(true)).toThrow(/control queue is broken/);
        dev.close();
      }
    });

    it("refuses a used descriptor naming another buffer id, and stays broken", () => {
      const { model, dev } = packedRig();
      model.faults.badUsedId = true;
      expect(() => dev.setPromisc(false)).toThrow(/completed buffer id \d+, but the command was 0/);
      model.faults.badUsedId = false;
      expect(() => dev.setPromisc(true)).toThrow(/control queue is broken/);
      dev.close();
    });
  });

  describe("the packed control queue, waiting", () => {
    afterEach(() => {
      vi.restoreAllMocks();
    });

    it("looks at the device status while it waits for an answer: a device that breaks meanwhile is not waited out", () => {
      const { model, dev } = packedRig();
      model.faults.ctrlNeverCompletes = true;
      // The device breaks once the command is posted and the queue has begun to wait (its
      // deadline is the first clock reading of the command).
      const now = performance.now.bind(performance);
      vi.spyOn(performance, "now").mockImplementation(() => {
        if (!model.broken) model.breakDevice("test: an internal error while a command is pending");
        return now();
      });
      // (Without the look, the 1000 ms timeout: a DeviceTimeoutError.)
      expect(() => dev.setPromisc(false)).toThrow(/DEVICE_NEEDS_RESET/);
      vi.restoreAllMocks();
      expect(() => dev.setPromisc(true)).toThrow(/DEVICE_NEEDS_RESET/);
      dev.close();
    });
  });

  describe("the other fault modes on packed rings", () => {
    it("badUsedLength: the frame is dropped and counted; the ring works on", () => {
      const { model, dev } = packedRig({}, { rxRingSize: 16 });
      model.faults.badUsedLength = true;
      model.inject(frameFilled(1));
      model.faults.badUsedLength = false;
      model.inject(frameFilled(2));
      const bufs = new Int32Array(8);
      expect(dev.rxBatch(0, bufs, 8)).toBe(1);
      expect(frameOf(bufs[0]!)[0]).toBe(2);
      expect(stats(dev)).toMatchObject({ rxPackets: 1, rxErrors: 1 });
      expect(model.rxBuffersAvailable).toBe(16);
      dev.close();
    });

    it("rejectCtrl: setPromisc() is a DeviceProtocolError, the packed control queue stays usable", () => {
      const { model, dev } = packedRig();
      model.faults.rejectCtrl = true;
      expect(() => dev.setPromisc(false)).toThrow(/VIRTIO_NET_ERR/);
      model.faults.rejectCtrl = false;
      dev.setPromisc(false);
      expect(model.promisc).toBe(false);
      dev.close();
    });

    it("configGenerationChurn and a slow reset: the MAC is read again, close() waits", () => {
      const mac = Uint8Array.of(0x52, 0x54, 0, 9, 8, 7);
      const dma = new SimDma("churn DMA");
      const model = new VirtioNetModel({ dma, mac, packed: true });
      model.faults.configGenerationChurn = 9;
      const dev = createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0, ring: "packed" });
      expect(dev.macAddress()).toEqual(mac);
      model.faults.resetReads = 5;
      dev.close();
      expect(model.status).toBe(0);
      expect(model.violations).toEqual([]);
    });
  });

  describe("asynchronous, out-of-order completion", () => {
    it("forwards through a packed ring whose device completes out of order, byte-exact", () => {
      const { model, dev, dma } = packedRig({ completion: "async", seed: 7 }, { txRingSize: 16, rxRingSize: 16 });
      const pool = new Mempool(dma, { count: 64, checked: true });
      const sent: number[] = [];
      model.onTransmit = (f) => sent.push(f[0]!);
      const bufs = new Int32Array(8);
      let next = 0;
      for (let round = 0; round < 50; round++) {
        const n = pool.allocBatch(bufs, 8);
        for (let i = 0; i < n; i++) writeFrame(bufs[i]!, frameFilled((next + i) & 0xff));
        const taken = dev.txBatch(0, bufs, n);
        next += taken;
        for (let i = taken; i < n; i++) freeBuffer(bufs[i]!);
        model.step();
      }
      model.poll();
      expect(sent).toEqual(Array.from({ length: next }, (_, i) => i & 0xff));
      expect(stats(dev).txErrors).toBe(0);
      expect(model.violations).toEqual([]);
      dev.close();
      expect(pool.available).toBe(64);
    });
  });
});
