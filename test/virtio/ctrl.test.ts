import { describe, expect, it } from "vitest";
import { DeviceProtocolError, NotSupportedError } from "../../src/errors.ts";
import { freeAll, openRig } from "./helpers.ts";

const MAC = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x01);
const OTHER = Uint8Array.of(0x52, 0x54, 0, 0x99, 0x99, 0x99);
const BROADCAST = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
const MULTICAST = Uint8Array.of(0x01, 0x00, 0x5e, 0, 0, 1);

function frameTo(dst: Uint8Array): Uint8Array {
  const f = new Uint8Array(60);
  f.set(dst, 0);
  f.set(MAC, 6);
  return f;
}

describe.each([false, true])("virtio control queue (legacy transport: %s)", (legacy) => {
  it("switches promiscuous mode on at init with VIRTIO_NET_CTRL_RX_PROMISC", () => {
    const { model } = openRig({ legacy, mac: MAC });
    expect(model.ctrlLog).toEqual([{ cls: 0, command: 0, data: [1], ack: 0 }]);
    expect(model.promisc).toBe(true);
    expect(model.violations).toEqual([]);
  });

  it("turns promiscuous mode off and on again through the control queue, and the device filters accordingly", () => {
    const { model, dev } = openRig({ legacy, mac: MAC });
    const bufs = new Int32Array(32);
    dev.setPromisc(false);
    expect(model.promisc).toBe(false);
    expect(model.ctrlLog.at(-1)).toEqual({ cls: 0, command: 0, data: [0], ack: 0 });
    expect(model.inject(frameTo(OTHER))).toBe(false);
    expect(model.inject(frameTo(MULTICAST))).toBe(false);
    expect(model.counters.rxFiltered).toBe(2);
    expect(model.inject(frameTo(MAC))).toBe(true);
    expect(model.inject(frameTo(BROADCAST))).toBe(true);
    expect(dev.rxBatch(0, bufs, 32)).toBe(2);
    freeAll(bufs, 2);

    dev.setPromisc(true);
    expect(model.promisc).toBe(true);
    expect(model.inject(frameTo(OTHER))).toBe(true);
    expect(dev.rxBatch(0, bufs, 32)).toBe(1);
    expect(model.counters.ctrlCommands).toBe(3);
    expect(model.violations).toEqual([]);
  });

  it("reports a command the device rejects, naming the device and the command", () => {
    const { model, dev } = openRig({ legacy, address: "sim:ctl" });
    model.faults.rejectCtrl = true;
    expect(() => dev.setPromisc(false)).toThrow(DeviceProtocolError);
    expect(() => dev.setPromisc(false)).toThrow(/sim:ctl control queue: promiscuous mode off: the device answered VIRTIO_NET_ERR/);
    model.faults.rejectCtrl = false;
    dev.setPromisc(false);
    expect(model.promisc).toBe(false);
  });

  it("has no control queue when the device offers none, and says so on setPromisc()", () => {
    const base = legacy ? 1n << 27n : 1n << 32n;
    const { model, dev } = openRig({ legacy, features: base | (1n << 5n) | (1n << 16n) });
    expect(model.queueSize(2)).toBe(0);
    expect(model.ctrlLog).toEqual([]);
    expect(() => dev.setPromisc(true)).toThrow(NotSupportedError);
    expect(() => dev.setPromisc(true)).toThrow(/VIRTIO_NET_F_CTRL_RX/);
    expect(model.violations).toEqual([]);
  });

  it("does not use the receive-mode class when only VIRTIO_NET_F_CTRL_VQ is offered", () => {
    const base = legacy ? 1n << 27n : 1n << 32n;
    const { model, dev } = openRig({ legacy, features: base | (1n << 5n) | (1n << 17n) });
    expect(model.queueSize(2)).toBe(64);
    expect(model.ctrlLog).toEqual([]);
    expect(() => dev.setPromisc(false)).toThrow(NotSupportedError);
  });
});
