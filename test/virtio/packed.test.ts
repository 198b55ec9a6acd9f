/**
 * Packed virtqueues (virtio 1.2 §2.8): negotiation and the `ring` option, a device that returns
 * buffer ids it does not hold, the device's event suppression, and the model's strictness about
 * packed rings (which a driver that passes the contract suite never trips over). The data path
 * itself is in the contract suite (variant "virtio modern, packed ring").
 */
import { describe, expect, it } from "vitest";
import { newStats } from "../../src/device.ts";
import { DeviceProtocolError, NotSupportedError } from "../../src/errors.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { PackedRing } from "../../src/drivers/virtio/packed-ring.ts";
import { hasFeature, VIRTIO_F_IN_ORDER, VIRTIO_F_RING_PACKED } from "../../src/drivers/virtio/virtio-types.ts";
import { freeBuffers, Mempool } from "../../src/mem/mempool.ts";
import { copyFrame, writeFrame } from "../../src/mem/packet.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { PackedDeviceRing } from "../../src/sim/virtio/packed-device-ring.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { openRig } from "./helpers.ts";

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return null;
}

function stats(dev: { readStats(s: ReturnType<typeof newStats>): void }) {
  const s = newStats();
  dev.readStats(s);
  return s;
}

const small = { rxRingSize: 16, txRingSize: 16, mempoolSize: 64, checked: true };
const packedSmall = { ...small, ring: "packed" as const };

describe("packed virtqueues: negotiation and the ring option", () => {
  it("ring 'packed' takes VIRTIO_F_RING_PACKED (never IN_ORDER), and every queue is packed", () => {
    const { model, dev } = openRig({ packed: true }, packedSmall);
    expect(dev.ring).toBe("packed");
    expect(hasFeature(dev.features, VIRTIO_F_RING_PACKED)).toBe(true);
    expect(hasFeature(model.driverFeatures, VIRTIO_F_RING_PACKED)).toBe(true);
    expect(hasFeature(dev.features, VIRTIO_F_IN_ORDER)).toBe(false);
    // The control queue is packed too: promiscuous mode off and on again through it.
    dev.setPromisc(false);
    expect(model.promisc).toBe(false);
    dev.setPromisc(true);
    expect(model.ctrlLog.map((c) => [c.data[0], c.ack])).toEqual([[1, 0], [0, 0], [1, 0]]);
    // 40 more commands of 3 descriptors each: around the 64-entry control ring and its wrap counters.
    for (let i = 0; i < 40; i++) dev.setPromisc(i % 2 === 0);
    expect(model.promisc).toBe(false);
    expect(model.ctrlLog.length).toBe(43);
    expect(model.ctrlLog.every((c) => c.ack === 0)).toBe(true);
    expect(model.violations).toEqual([]);
    dev.close();
  });

  it("split by default and with ring 'split', also where the device offers packed rings", () => {
    const a = openRig({ packed: true }, { ...small, ring: "split" });
    expect(a.dev.ring).toBe("split");
    expect(hasFeature(a.model.driverFeatures, VIRTIO_F_RING_PACKED)).toBe(false);
    const b = openRig({}, small);
    expect(b.dev.ring).toBe("split");
    const c = openRig({ packed: true }, small);
    expect(c.dev.ring).toBe("split");
    expect(hasFeature(c.model.driverFeatures, VIRTIO_F_RING_PACKED)).toBe(false);
    for (const r of [a, b, c]) {
      expect(r.model.violations).toEqual([]);
      r.dev.close();
    }
  });

  it("refuses ring 'packed' on a device that does not offer it, on the legacy transport, and a bad value", () => {
    const dma = new SimDma("packed refusals");
    const plain = new VirtioNetModel({ dma });
    const e1 = thrown(() => createVirtioDevice(plain.pci, dma, { ...small, ring: "packed", linkTimeoutMs: 0 }));
    expect(e1).toBeInstanceOf(NotSupportedError);
    expect((e1 as Error).message).toMatch(/does not offer VIRTIO_F_RING_PACKED.*packed=on/);
    const legacy = new VirtioNetModel({ dma, legacy: true, packed: true });
    const e2 = thrown(() => createVirtioDevice(legacy.pci, dma, { ...small, ring: "packed", linkTimeoutMs: 0 }));
    expect(e2).toBeInstanceOf(NotSupportedError);
    expect((e2 as Error).message).toMatch(/legacy interface.*only split rings/);
    const e3 = thrown(() => createVirtioDevice(legacy.pci, dma, { ...small, transport: "legacy", ring: "packed", linkTimeoutMs: 0 }));
    expect(e3).toBeInstanceOf(NotSupportedError);
    const e4 = thrown(() => createVirtioDevice(legacy.pci, dma, { ...small, ring: "ring" as "split", linkTimeoutMs: 0 }));
    expect(e4).toBeInstanceOf(TypeError);
    // The legacy driver on a device offering packed rings (bit 34 is beyond the legacy 32 bits): split.
    const dev = createVirtioDevice(legacy.pci, dma, { ...small, ring: "split", linkTimeoutMs: 0 });
    expect((dev as unknown as { ring: string }).ring).toBe("split");
    expect(legacy.violations).toEqual([]);
    dev.close();
  });
});

describe("packed virtqueues: a device that returns ids it does not hold", () => {
  it("RX: an id beyond the ring is counted, never delivered, and rxBatch is a DeviceProtocolError (this one and the next)", () => {
    const { model, dev } = openRig({ packed: true }, packedSmall);
    const bufs = new Int32Array(16);
    model.faults.badUsedId = true;
    expect(model.inject(new Uint8Array(60).fill(1))).toBe(true);
    model.faults.badUsedId = false;
    // Nothing good before the bad descriptor: nothing to hand out, so this call throws already.
    expect(thrown(() => dev.rxBatch(0, bufs, 16))).toBeInstanceOf(DeviceProtocolError);
    expect(() => stats(dev)).not.toThrow();
    expect(stats(dev).rxErrors).toBe(1);
    expect(model.inject(new Uint8Array(60).fill(2))).toBe(true);
    expect(thrown(() => dev.rxBatch(0, bufs, 16))).toBeInstanceOf(DeviceProtocolError);
    dev.close();
  });

  it("RX: a stale id within one batch hands out nothing stale: the first frame only, the repeat counted", () => {
    const { model, dev } = openRig({ packed: true }, packedSmall);
    const bufs = new Int32Array(16);
    const a = new Uint8Array(60).fill(0xaa);
    const b = new Uint8Array(60).fill(0xbb);
    expect(model.inject(a)).toBe(true);
    // The device writes frame B into the next buffer but reports it under A's id (completed
    // before, not made available again yet: a stale id).
    model.faults.staleUsedId = true;
    expect(model.inject(b)).toBe(true);
    const n = dev.rxBatch(0, bufs, 16);
    const got = Array.from(bufs.subarray(0, n), (buf) => copyFrame(buf));
    freeBuffers(bufs, 0, n);
    // Without the ids-held check the second entry delivers A's slot again: the fresh buffer just
    // posted in its place, with whatever bytes it held before.
    expect(got).toEqual([a]);
    expect(stats(dev).rxErrors).toBe(1);
    expect(thrown(() => dev.rxBatch(0, bufs, 16))).toBeInstanceOf(DeviceProtocolError);
    dev.close();
  });

  it("TX: a stale id frees nothing in flight twice: counted in txErrors, that txBatch and the next are a DeviceProtocolError", () => {
    const { model, dev } = openRig({ packed: true }, packedSmall);
    const pool = new Mempool(dev.dma, { count: 32, checked: true, name: "tx pool" });
    const one = new Int32Array(1);
    const send = (fill: number): number => {
      expect(pool.allocBatch(one, 1)).toBe(1);
      writeFrame(one[0]!, new Uint8Array(60).fill(fill));
      return dev.txBatch(0, one, 1);
    };
    const sent: number[] = [];
    model.onTransmit = (f) => sent.push(f[0]!);
    expect(send(1)).toBe(1);
    model.faults.staleUsedId = true;
    expect(send(2)).toBe(1);
    // Both frames went out; the device reported id 0 twice and kept id 1. Reclaim (ids short:
    // 16 at once) reads both used descriptors.
    expect(sent).toEqual([1, 2]);
    const many = new Int32Array(16);
    expect(pool.allocBatch(many, 16)).toBe(16);
    for (let i = 0; i < 16; i++) writeFrame(many[i]!, new Uint8Array(60).fill(3));
    // The reclaim stops at the stale id: id 0 back once, none of this batch taken.
    expect(thrown(() => dev.txBatch(0, many, 16))).toBeInstanceOf(DeviceProtocolError);
    freeBuffers(many, 0, 16);
    expect(stats(dev).txErrors).toBe(1);
    expect(thrown(() => dev.txBatch(0, many, 0))).toBeInstanceOf(DeviceProtocolError);
    expect(dev.txFree).toBe(15); // id 1 stays with the device
    dev.close();
    expect(pool.available).toBe(32); // close() takes back what the device kept
  });

  it("RX: a repeated used descriptor (every one written twice) is counted, never delivered twice", () => {
    const { model, dev } = openRig({ packed: true }, packedSmall);
    const bufs = new Int32Array(16);
    const a = new Uint8Array(60).fill(0xaa);
    model.faults.repeatUsedId = true;
    expect(model.inject(a)).toBe(true);
    const n = dev.rxBatch(0, bufs, 16);
    const got = Array.from(bufs.subarray(0, n), (buf) => copyFrame(buf));
    freeBuffers(bufs, 0, n);
    expect(got).toEqual([a]);
    expect(stats(dev).rxErrors).toBe(1);
    expect(thrown(() => dev.rxBatch(0, bufs, 16))).toBeInstanceOf(DeviceProtocolError);
    dev.close();
  });

  it("TX: a repeated used descriptor is a DeviceProtocolError; the slot beyond the buffers in flight may not be used", () => {
    const { model, dev } = openRig({ packed: true }, packedSmall);
    const pool = new Mempool(dev.dma, { count: 32, checked: true, name: "tx pool" });
    const bufs = new Int32Array(16);
    model.faults.repeatUsedId = true;
    expect(pool.allocBatch(bufs, 2)).toBe(2);
    for (let i = 0; i < 2; i++) writeFrame(bufs[i]!, new Uint8Array(60).fill(i));
    expect(dev.txBatch(0, bufs, 2)).toBe(2);
    model.faults.repeatUsedId = false;
    // Slots 0 and 1 (ids 0, 0 again): the reclaim stops at the repeat.
    expect(pool.allocBatch(bufs, 16)).toBe(16);
    expect(thrown(() => dev.txBatch(0, bufs, 16))).toBeInstanceOf(DeviceProtocolError);
    freeBuffers(bufs, 0, 16);
    expect(stats(dev).txErrors).toBe(1);
    dev.close();
    expect(pool.available).toBe(32);
  });
});

describe("packed virtqueues: event suppression", () => {
  it("notifies the device unless its event suppression says DISABLE; asks for no used-buffer notifications", () => {
    const { model, dev } = openRig({ packed: true }, packedSmall);
    const pool = new Mempool(dev.dma, { count: 8, name: "tx pool" });
    const one = new Int32Array(1);
    const sent: Uint8Array[] = [];
    model.onTransmit = (f) => sent.push(f);
    const before = model.notifications[1]!;
    pool.allocBatch(one, 1);
    writeFrame(one[0]!, new Uint8Array(60).fill(1));
    expect(dev.txBatch(0, one, 1)).toBe(1);
    // Notified: the model sent the frame inside the doorbell write.
    expect([model.notifications[1]! - before, sent.length]).toEqual([1, 1]);
    model.suppressNotifications = true;
    pool.allocBatch(one, 1);
    writeFrame(one[0]!, new Uint8Array(60).fill(2));
    expect(dev.txBatch(0, one, 1)).toBe(1);
    expect([model.notifications[1]! - before, sent.length]).toEqual([1, 1]);
    model.poll();
    expect(sent.length).toBe(2);
    expect(model.violations).toEqual([]);
    dev.close();
  });
});

describe("the packed device ring of the model is strict", () => {
  /** A packed ring in SimDma memory and the model's view of it, with the violations it records. */
  function rings(size = 8) {
    const dma = new SimDma("packed ring strictness");
    const region = dma.allocate(4096 * 2, { align: 4096, contiguous: true });
    const ring = new PackedRing(region, 0, 0, size);
    const violations: string[] = [];
    const device = new PackedDeviceRing(dma, "sim", 0, size, ring.addresses, (m) => violations.push(m));
    const buffer = dma.allocate(4096, { align: 64 });
    /** Makes descriptor `slot` available in wrap `wrap` with `id`, `len`, extra `flags`. */
    const post = (slot: number, id: number, len: number, flags: number, wrap = 1): void => {
      const d = slot << 2;
      ring.desc32[d] = buffer.iova;
      ring.desc32[d + 1] = 0;
      ring.desc32[d + 2] = len;
      ring.desc32[d + 3] = (id | ((flags | (wrap ? 1 << 7 : 1 << 15)) << 16)) >>> 0;
    };
    return { ring, device, violations, post };
  }

  it("writes used descriptors with AVAIL = USED = its wrap counter and skips a list's slots", () => {
    const { ring, device, violations, post } = rings(4);
    post(1, 5 % 4, 8, 2 /* WRITE */);
    post(0, 0, 8, 1 /* NEXT */);
    post(2, 3, 8, 0);
    const list = device.pop();
    expect(list?.head).toBe(1);
    expect(list?.writable.length).toBe(1);
    expect(list?.readable.length).toBe(1);
    expect(device.pop()?.head).toBe(3);
    device.push(3, 0); // out of order: the later buffer first, at slot 0, one slot
    device.push(1, 8); // then the two-descriptor list at slot 1
    expect(ring.desc32[3]! >>> 16).toBe(0x8080);
    expect(ring.desc32[3]! & 0xffff).toBe(3);
    expect(ring.desc32[7]! >>> 16).toBe(0x8080);
    expect(ring.desc32[6]).toBe(8);
    expect([device.nextUsed, device.usedWrap]).toEqual([3, 1]);
    // Slot 3, then slot 0 in the second wrap (AVAIL 0, USED 1).
    post(3, 0, 8, 0);
    post(0, 1, 8, 0, 0);
    expect(device.pop()?.head).toBe(0);
    expect(device.pop()?.head).toBe(1);
    device.push(0, 0);
    device.push(1, 0);
    expect([device.nextUsed, device.usedWrap]).toEqual([1, 0]);
    expect(ring.desc32[3]! >>> 16).toBe(0); // second wrap: AVAIL = USED = 0
    expect(violations).toEqual([]);
  });

  it("records a buffer id made available while the device holds it, and an id beyond the ring", () => {
    const { device, violations, post } = rings();
    post(0, 2, 8, 0);
    post(1, 2, 8, 0);
    post(2, 9, 8, 0);
    expect(device.pop()?.head).toBe(2);
    expect(device.pop()).toBeNull();
    expect(device.pop()).toBeNull();
    expect(violations).toEqual([
      "queue 0: buffer id 2 made available again (slot 1) while the device still holds it",
      "queue 0: buffer id 9 beyond the ring's 8 (slot 2)",
    ]);
  });

  it("records a list that runs into a descriptor not made available, and a zero-length descriptor", () => {
    const { device, violations, post } = rings();
    post(0, 0, 8, 1 /* NEXT */);
    expect(device.pop()).toBeNull();
    post(1, 1, 0, 0);
    device.lastAvail = 0x8001;
    // Fatal in qemu (virtio_error): the list is not used.
    expect(device.pop()).toBeNull();
    expect(violations).toEqual([
      "queue 0: descriptor list from slot 0 continues into slot 1, which is not available",
      "queue 0: zero-length descriptor in the list from slot 1",
    ]);
  });

  it("records descriptors made available for the other wrap counter (a vhost-user base without bit 15, say)", () => {
    const { device, violations, post } = rings();
    device.lastAvail = 0; // position 0, wrap counter 0: what SET_VRING_BASE 0 would say
    post(0, 0, 8, 0); // the driver's first lap, counter 1
    expect(device.pop()).toBeNull();
    expect(device.pop()).toBeNull();
    expect(violations).toEqual(["queue 0: slot 0 is marked available for wrap counter 1, but the device's avail wrap counter is 0 (§2.8.1)"]);
  });
});
