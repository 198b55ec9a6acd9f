/**
 * Backends that are not there, break the protocol, refuse, hang or die — injected with the
 * scripted backend — give typed errors that name the request, and leave nothing behind: the
 * process has as many fds as before and the shared memory is released.
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DeviceProtocolError, DeviceTimeoutError, DmaError, NotSupportedError } from "../../src/errors.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { VhostUserBackendNotFoundError, VhostUserDisconnectedError } from "../../src/drivers/virtio/vhost-user/errors.ts";
import { sharedMemoryState } from "../../src/drivers/virtio/vhost-user/shared-memory.ts";
import { VhostUserRequest as R } from "../../src/drivers/virtio/vhost-user/protocol.ts";
import { hugepagesMissing, openFds, SMALL, thrown } from "./helpers.ts";
import { ScriptedBackend, socketPath, type Fault } from "./scripted-backend.ts";

const noHugepages = hugepagesMissing();
if (noHugepages) console.warn(`test/vhost-user/faults: some tests skipped: ${noHugepages}`);

afterEach(() => {
  expect(sharedMemoryState()).toEqual({ users: 0, regions: 0 });
});

/** Opens against a backend with `faults`; returns the error, after checking nothing leaked. */
async function openFails(faults: Fault[], options: { features?: bigint; timeoutMs?: number } = {}): Promise<Error> {
  const fds = openFds();
  const b = await ScriptedBackend.start({ faults, features: options.features });
  let error: Error;
  try {
    error = thrown(() => createVhostUserDevice(b.path, { ...SMALL, timeoutMs: options.timeoutMs ?? 2000 }));
  } finally {
    await b.stop();
  }
  expect(openFds()).toBe(fds);
  return error;
}

describe("a backend that is not there", () => {
  it("is a VhostUserBackendNotFoundError with the path and what to start, after the timeout", () => {
    const path = socketPath();
    const fds = openFds();
    const t0 = performance.now();
    const e = thrown(() => createVhostUserDevice(path, { ...SMALL, timeoutMs: 300 }));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(e).toBeInstanceOf(VhostUserBackendNotFoundError);
    expect((e as VhostUserBackendNotFoundError).path).toBe(path);
    expect(e.message).toContain(`no vhost-user backend listens on ${path} (ENOENT`);
    expect(e.message).toMatch(/start the backend first/);
    expect(openFds()).toBe(fds);
    fs.rmSync(dirname(path), { recursive: true });
  });

  it("arguments are checked before anything is opened", () => {
    expect(() => createVhostUserDevice("")).toThrow(TypeError);
    expect(() => createVhostUserDevice("/x", { mac: new Uint8Array(5) })).toThrow(/mac must be a Uint8Array of 6 bytes/);
    expect(() => createVhostUserDevice("/x", { mac: Uint8Array.of(1, 0, 0, 0, 0, 1) })).toThrow(/multicast/);
    expect(() => createVhostUserDevice("/x", { memoryBytes: 0 })).toThrow(RangeError);
    expect(() => createVhostUserDevice("/x", { rxQueues: 2 })).toThrow(NotSupportedError);
    expect(() => createVhostUserDevice("/x", { rxRingSize: 100 })).toThrow(/power of two/);
  });
});

describe.skipIf(noHugepages !== null)("a backend that breaks the protocol during the handshake", () => {
  const cases: { what: string; fault: Fault; error: new (...a: never[]) => Error; message: RegExp }[] = [
    {
      what: "replies to GET_FEATURES with another request",
      fault: { request: R.GET_FEATURES, kind: "wrongRequest" },
      error: DeviceProtocolError,
      message: /VHOST_USER_GET_FEATURES: the backend replied with VHOST_USER_GET_PROTOCOL_FEATURES/,
    },
    {
      what: "replies without the REPLY flag",
      fault: { request: R.GET_FEATURES, kind: "badFlags" },
      error: DeviceProtocolError,
      message: /VHOST_USER_GET_FEATURES: the reply has flags 0x1, not version 1 with the REPLY bit/,
    },
    {
      what: "replies with a payload of the wrong size",
      fault: { request: R.GET_PROTOCOL_FEATURES, kind: "badSize" },
      error: DeviceProtocolError,
      message: /VHOST_USER_GET_PROTOCOL_FEATURES: the reply carries 12 payload bytes where the request defines 8/,
    },
    {
      what: "acks with the wrong size",
      fault: { request: R.SET_VRING_NUM, kind: "badSize" },
      error: DeviceProtocolError,
      message: /VHOST_USER_SET_VRING_NUM: the reply carries 12 payload bytes/,
    },
    {
      what: "refuses the memory table",
      fault: { request: R.SET_MEM_TABLE, kind: "nack" },
      error: DeviceProtocolError,
      message: /the backend refused VHOST_USER_SET_MEM_TABLE \(1 regions\) \(ack 1\)/,
    },
    {
      what: "refuses the features",
      fault: { request: R.SET_FEATURES, kind: "nack" },
      error: DeviceProtocolError,
      message: /refused the features 0x140000000 .*FEATURES_OK did not stick/,
    },
    {
      what: "hangs up instead of answering SET_FEATURES",
      fault: { request: R.SET_FEATURES, kind: "close" },
      error: VhostUserDisconnectedError,
      message: /closed the connection while VHOST_USER_SET_FEATURES waited for its reply/,
    },
    {
      what: "dies at GET_FEATURES",
      fault: { request: R.GET_FEATURES, kind: "exit" },
      error: VhostUserDisconnectedError,
      message: /closed the connection while VHOST_USER_GET_FEATURES waited/,
    },
    {
      what: "dies at the second ring's kick",
      fault: { request: R.SET_VRING_KICK, nth: 2, kind: "exit" },
      error: VhostUserDisconnectedError,
      message: /VHOST_USER_SET_VRING_KICK/,
    },
  ];
  for (const { what, fault, error, message } of cases) {
    it(`${what}: ${error.name}`, async () => {
      const e = await openFails([fault]);
      expect(e).toBeInstanceOf(error);
      expect(e.message).toMatch(message);
      expect(e.message).toContain("vhost-user:/");
    });
  }

  it("never answers SET_VRING_ADDR: a DeviceTimeoutError after timeoutMs", async () => {
    const e = await openFails([{ request: R.SET_VRING_ADDR, kind: "hang" }], { timeoutMs: 300 });
    expect(e).toBeInstanceOf(DeviceTimeoutError);
    expect(e.message).toMatch(/waiting for the reply to VHOST_USER_SET_VRING_ADDR: no answer from the backend within 300 ms/);
  });

  it("does not offer VIRTIO_F_VERSION_1: NotSupportedError", async () => {
    const e = await openFails([], { features: 1n << 30n });
    expect(e).toBeInstanceOf(NotSupportedError);
    expect(e.message).toMatch(/does not offer VIRTIO_F_VERSION_1/);
  });
});

describe.skipIf(hugepagesMissing(12) !== null)("shared memory that runs out of memory table", () => {
  it("each new region is announced; the allocation that needs a 9th fails with a DmaError that says what to do", async () => {
    const b = await ScriptedBackend.start();
    try {
      const dev = createVhostUserDevice(b.path, SMALL);
      const pools: Mempool[] = [];
      // Each pool of 1024 x 2 KiB takes a 2 MiB region of its own: regions 2 to 8.
      for (let i = 2; i <= 8; i++) pools.push(new Mempool(dev.dma, { count: 1024, name: `pool ${i}` }));
      expect(sharedMemoryState().regions).toBe(8);
      const e = thrown(() => new Mempool(dev.dma, { count: 1024, name: "pool 9" }));
      expect(e).toBeInstanceOf(DmaError);
      expect(e.message).toMatch(/needs a memory region of 2 MiB more, the 9th, but a vhost-user memory table holds at most 8: open the first vhost-user device with a larger memoryBytes/);
      expect(sharedMemoryState().regions).toBe(8);
      dev.close();
      await b.settle();
      const tables = b.requests().filter((r) => r.request === R.SET_MEM_TABLE);
      expect(tables.map((t) => t.payload.readUInt32LE(0))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    } finally {
      await b.stop();
    }
  });
});

describe.skipIf(noHugepages !== null)("a backend that goes away after open", () => {
  it("killed: the next control call is a VhostUserDisconnectedError, close() returns, nothing leaks", async () => {
    const fds = openFds();
    const b = await ScriptedBackend.start();
    const dev = createVhostUserDevice(b.path, SMALL);
    expect(dev.linkSpeed()).toBe(1000);
    await b.kill();
    const e = thrown(() => dev.linkSpeed());
    expect(e).toBeInstanceOf(VhostUserDisconnectedError);
    expect(e.message).toMatch(/the backend closed the connection \(noticed at linkSpeed\(\); it died or ended the session\).*start it again and open the device again/);
    expect(() => dev.macAddress()).toThrow(VhostUserDisconnectedError);
    // The datapath does not notice (no system call there): nothing is received, sends fill the ring.
    expect(dev.rxBatch(0, new Int32Array(8), 8)).toBe(0);
    const t0 = performance.now();
    dev.close();
    expect(performance.now() - t0).toBeLessThan(500);
    await b.stop();
    expect(openFds()).toBe(fds);
  });

  it("hangs at close (no reply to GET_VRING_BASE): close() gives up after a second and returns", async () => {
    const fds = openFds();
    const b = await ScriptedBackend.start({ faults: [{ request: R.GET_VRING_BASE, kind: "hang" }] });
    const dev = createVhostUserDevice(b.path, SMALL);
    const t0 = performance.now();
    dev.close();
    const took = performance.now() - t0;
    expect(took).toBeGreaterThan(900);
    expect(took).toBeLessThan(2500);
    await b.stop();
    expect(openFds()).toBe(fds);
  });
});
