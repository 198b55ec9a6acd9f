/**
 * The driver does not trust the device (issue 11): used entries naming descriptors the device
 * does not hold, used.idx moving further than it holds buffers or backwards, a device that sets
 * DEVICE_NEEDS_RESET or is reset behind the driver's back. Each case makes the model misbehave
 * through one of its fault modes (VirtioNetModel `faults`) and checks that no frame comes from
 * the bad entry, no buffer the device still holds is freed, and the driver says so with a
 * DeviceProtocolError.
 */
import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { DeviceProtocolError } from "../../src/errors.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { frameOf, setFrameLength, writeFrame } from "../../src/mem/packet.ts";
import { RX_IDLE_CHECK } from "../../src/drivers/virtio/virtio-rx-queue.ts";
import { TX_FULL_CHECK } from "../../src/drivers/virtio/virtio-tx-queue.ts";
import { openRig } from "./helpers.ts";

const transports = [
  { name: "modern", legacy: false },
  { name: "legacy", legacy: true },
] as const;

function frameFilled(value: number, length = 60): Uint8Array {
  return new Uint8Array(length).fill(value);
}

describe.each(transports)("virtio: distrusting the device ($name transport)", ({ legacy }) => {
  describe("receive: used ids", () => {
    it("refuses a used entry that repeats the id before it: hands out the frame once, then DeviceProtocolError", () => {
      const { model, dev } = openRig({ legacy }, { rxRingSize: 16 });
      model.inject(frameFilled(1));
      model.faults.repeatUsedId = true;
      model.inject(frameFilled(2));
      model.faults.repeatUsedId = false;
      const bufs = new Int32Array(32);
      // Frame 1, frame 2; the repeat of frame 2's id would hand out the fresh buffer just posted.
      expect(dev.rxBatch(0, bufs, 32)).toBe(2);
      expect([frameOf(bufs[0]!)[0], frameOf(bufs[1]!)[0]]).toEqual([1, 2]);
      const stats = newStats();
      dev.readStats(stats);
      expect(stats).toMatchObject({ rxPackets: 2, rxErrors: 1 });
      expect(() => dev.rxBatch(0, bufs, 32)).toThrow(DeviceProtocolError);
      expect(() => dev.rxBatch(0, bufs, 32)).toThrow(/names descriptor \d+, which the device does not hold/);
      expect(model.violations).toEqual([]);
      dev.close();
    });

    it("refuses a stale used id (a descriptor returned before and not given again) even across rxBatch calls", () => {
      const { model, dev } = openRig({ legacy }, { rxRingSize: 16 });
      model.inject(frameFilled(1));
      model.faults.staleUsedId = true;
      model.inject(frameFilled(2)); // the device names frame 1's descriptor again
      model.faults.staleUsedId = false;
      const one = new Int32Array(1);
      // One at a time: the first entry is consumed and its descriptor re-posted before the driver
      // reads the second, which was written before the re-post and so cannot be about it.
      expect(dev.rxBatch(0, one, 1)).toBe(1);
      expect(frameOf(one[0]!)[0]).toBe(1);
      expect(() => dev.rxBatch(0, one, 1)).toThrow(/which the device does not hold/);
      const stats = newStats();
      dev.readStats(stats);
      expect(stats).toMatchObject({ rxPackets: 1, rxErrors: 1 });
      dev.close();
    });
  });

  describe("transmit: used ids and used.idx", () => {
    function txRig(ringSize = 8) {
      const rig = openRig({ legacy }, { txRingSize: ringSize, rxRingSize: 16 });
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
      // Three frames for two free descriptors: reclaim, which meets the stale id.
      expect(() => dev.txBatch(0, more, 3)).toThrow(DeviceProtocolError);
      expect(() => dev.txBatch(0, more, 3)).toThrow(/which the device does not hold/);
      // The first frame's buffer came back once; the second's stays with the device (stranded).
      expect(pool.available).toBe(64 - 2 - 3 + 1);
      const stats = newStats();
      dev.readStats(stats);
      expect(stats.txErrors).toBe(1);
      dev.close();
      expect(pool.available).toBe(64 - 3);
    });

    it("refuses a used id beyond the ring", () => {
      const { model, dev, batch } = txRig();
      model.faults.badUsedId = true;
      expect(dev.txBatch(0, batch(2, 1), 2)).toBe(2);
      model.faults.badUsedId = false;
      expect(() => dev.txBatch(0, batch(8, 2), 8)).toThrow(/names descriptor \d+, beyond the 8 the driver uses/);
      dev.close();
    });

    it("refuses used.idx running further than the descriptors in flight (within the ring size), freeing nothing", () => {
      const { model, dev, pool, batch } = txRig(16);
      model.faults.usedIndexJump = 5;
      expect(dev.txBatch(0, batch(3, 1), 3)).toBe(3);
      const available = pool.available;
      expect(() => dev.txBatch(0, batch(14, 2), 14)).toThrow(/moved used\.idx to \d+ from 0, \d+ entries, but it held only 3 buffers/);
      expect(pool.available, "nothing freed on the word of a broken device").toBe(available - 14);
      dev.close();
      expect(pool.available).toBe(64 - 14);
    });

    it("refuses used.idx going backwards", () => {
      const { model, dev, batch } = txRig(8);
      expect(dev.txBatch(0, batch(2, 1), 2)).toBe(2); // completed: used.idx 2
      model.faults.stall = true;
      expect(dev.txBatch(0, batch(7, 2), 7)).toBe(7); // reclaims up to 2 first
      model.faults.stall = false;
      model.faults.usedIndexBack = 1;
      model.poll(); // the 7 completions, published as used.idx 1
      expect(() => dev.txBatch(0, batch(2, 3), 2)).toThrow(/moved used\.idx back to 1 from 2/);
      dev.close();
    });

    it("refuses a repeated used id on a ring with more in flight (the repeat is within the bound)", () => {
      const { model, dev, pool, batch } = txRig(8);
      model.faults.stall = true;
      expect(dev.txBatch(0, batch(4, 1), 4)).toBe(4);
      model.faults.stall = false;
      model.faults.repeatUsedId = true;
      model.poll(); // 4 completions, each written twice: 8 entries for 4 in flight
      model.faults.repeatUsedId = false;
      const available = pool.available;
      expect(() => dev.txBatch(0, batch(8, 2), 8)).toThrow(/held only 4 buffers/);
      expect(pool.available).toBe(available - 8);
      dev.close();
    });
  });

  describe("receive: used.idx", () => {
    it("refuses used.idx moving further than the buffers the device holds", () => {
      // Legacy: the ring is 256 entries, the driver posts 16; modern: 16 and 16 (a jump beyond).
      const { model, dev } = openRig({ legacy }, { rxRingSize: 16 });
      model.faults.usedIndexJump = legacy ? 20 : 15;
      model.inject(frameFilled(1));
      model.inject(frameFilled(2));
      expect(() => dev.rxBatch(0, new Int32Array(32), 32)).toThrow(/but it held only 16 buffers/);
      expect(() => dev.rxBatch(0, new Int32Array(32), 32)).toThrow(DeviceProtocolError);
      dev.close();
    });

    it("refuses used.idx going backwards", () => {
      const { model, dev } = openRig({ legacy }, { rxRingSize: 16 });
      model.inject(frameFilled(1));
      const bufs = new Int32Array(32);
      expect(dev.rxBatch(0, bufs, 32)).toBe(1);
      model.faults.usedIndexBack = 1;
      model.inject(frameFilled(2));
      expect(() => dev.rxBatch(0, bufs, 32)).toThrow(/moved used\.idx back to 0 from 1/);
      dev.close();
    });
  });

  describe("a device that needs a reset", () => {
    it("notices DEVICE_NEEDS_RESET (modern) or a stopped device in readStats, linkSpeed and setPromisc", () => {
      const { model, dev } = openRig({ legacy });
      model.breakDevice("test: an internal error");
      // qemu sets DEVICE_NEEDS_RESET for virtio 1.x drivers only; a legacy one sees nothing.
      if (legacy) {
        expect(() => dev.linkSpeed()).not.toThrow();
        return;
      }
      expect(model.status & 0x40).toBe(0x40);
      const stats = newStats();
      expect(() => dev.readStats(stats)).toThrow(DeviceProtocolError);
      expect(() => dev.readStats(stats)).toThrow(/DEVICE_NEEDS_RESET .* close the device and open it again/);
      expect(() => dev.linkSpeed()).toThrow(/DEVICE_NEEDS_RESET/);
      expect(() => dev.setPromisc(false)).toThrow(/DEVICE_NEEDS_RESET/);
      // The queues are broken with it.
      expect(() => dev.rxBatch(0, new Int32Array(4), 4)).toThrow(/DEVICE_NEEDS_RESET/);
      dev.close();
      expect(model.status).toBe(0);
      dev.readStats(stats); // counters after close
    });

    it("notices a reset behind its back in readStats", () => {
      const { model, dev } = openRig({ legacy });
      model.pci.reset();
      expect(() => dev.readStats(newStats())).toThrow(/reset behind the driver's back \(device status 0x0/);
      dev.close();
    });

    it("notices a broken device while the TX ring stays full, and while the RX ring stays empty", () => {
      const { model, dev, dma } = openRig({ legacy: false }, { txRingSize: 8, rxRingSize: 16 });
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

      const other = openRig({ legacy: false }, { rxRingSize: 16 });
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
      const { model, dev, dma } = openRig({ legacy });
      // A bug in whoever writes the transmit ring: a descriptor of length 0.
      const pool = new Mempool(dma, { count: 4 });
      const bufs = new Int32Array(1);
      pool.allocBatch(bufs, 1);
      setFrameLength(bufs[0]!, 60);
      model.faults.stall = true;
      expect(dev.txBatch(0, bufs, 1)).toBe(1);
      // Find the transmit descriptor table as the device knows it and zero the length.
      const bar = legacy ? null : model.pci.bar(4);
      if (bar === null) {
        model.breakDevice("zero-length descriptor (legacy: no BAR4 to find the ring through)");
      } else {
        bar.write16(0x16, 1);
        const desc = bar.read32(0x20) + bar.read32(0x24) * 2 ** 32;
        const view = dma.resolve(desc, 16 * 8);
        new Uint32Array(view.buffer, view.byteOffset, 4 * 8).fill(0, 2, 3); // descriptor 0's len
        model.faults.stall = false;
        model.poll();
        expect(model.violations.join("\n")).toMatch(/length 0 .*fatal/);
      }
      expect(model.broken).toBe(true);
      if (!legacy) expect(() => dev.linkSpeed()).toThrow(/DEVICE_NEEDS_RESET/);
      dev.close();
      expect(model.broken).toBe(false);
    });
  });
});
