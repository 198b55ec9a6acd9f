/**
 * The vhost-user session as the backend sees it, against a scripted backend in a child process
 * (scripted-backend.ts): the requests in order with their payloads, REPLY_ACK, the variants
 * without protocol features and with a configuration space, and close().
 */
import { afterEach, describe, expect, it } from "vitest";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { VirtioNetDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { ringLayout } from "../../src/drivers/virtio/virtqueue.ts";
import { sharedMemoryState } from "../../src/drivers/virtio/vhost-user/shared-memory.ts";
import { VhostUserRequest as R } from "../../src/drivers/virtio/vhost-user/protocol.ts";
import { openDevice } from "../../src/open-device.ts";
import type { SharedMemoryDmaAllocator } from "../../src/mem/shared-dma.ts";
import { hugepagesMissing, openFds, SMALL } from "./helpers.ts";
import { ScriptedBackend, type LoggedRequest } from "./scripted-backend.ts";

const noHugepages = hugepagesMissing();
if (noHugepages) console.warn(`test/vhost-user/handshake: skipped: ${noHugepages}`);

const VERSION_1 = 1n << 32n;
const PROTOCOL_FEATURES = 1n << 30n;
const MAC_FEATURE = 1n << 5n;
const STATUS_FEATURE = 1n << 16n;
const REPLY_ACK = 1n << 3n;
const MQ = 1n;
const CONFIG = 1n << 9n;

const backends: ScriptedBackend[] = [];
async function backend(options: Parameters<typeof ScriptedBackend.start>[0] = {}): Promise<ScriptedBackend> {
  const b = await ScriptedBackend.start(options);
  backends.push(b);
  return b;
}
afterEach(async () => {
  for (const b of backends.splice(0)) await b.stop();
  expect(sharedMemoryState()).toEqual({ users: 0, regions: 0 });
});

const u64 = (r: LoggedRequest) => r.payload.readBigUInt64LE(0);
const state = (r: LoggedRequest) => [r.payload.readUInt32LE(0), r.payload.readUInt32LE(4)];

describe.skipIf(noHugepages !== null)("vhost-user handshake with a scripted backend", () => {
  it("sends the session set-up, the memory table and both rings in order, acked with REPLY_ACK, and stops the rings at close", async () => {
    const b = await backend();
    const mac = Uint8Array.of(0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee);
    const dev = createVhostUserDevice(b.path, { ...SMALL, mac }) as VirtioNetDevice;
    expect(dev.address).toBe(`vhost-user:${b.path}`);
    expect(dev.transport).toBe("vhost-user");
    expect(dev.features).toBe(VERSION_1 | PROTOCOL_FEATURES | MAC_FEATURE);
    expect(dev.macAddress()).toEqual(mac);
    expect(dev.linkSpeed()).toBe(1000);
    // No receive filter over vhost-user: promiscuous mode is on and stays on.
    dev.setPromisc(true);
    expect(() => dev.setPromisc(false)).toThrow(/has no receive filter/);
    const region = (dev.dma as SharedMemoryDmaAllocator).regions()[0]!;
    dev.close();
    expect(await b.sawClose()).toBe(true);
    await b.settle();

    const log = b.requests();
    expect(log.map((r) => r.request)).toEqual([
      R.SET_OWNER,
      R.GET_FEATURES,
      R.GET_PROTOCOL_FEATURES,
      R.SET_PROTOCOL_FEATURES,
      R.GET_QUEUE_NUM,
      R.SET_FEATURES,
      R.SET_MEM_TABLE,
      ...[0, 1].flatMap(() => [R.SET_VRING_NUM, R.SET_VRING_BASE, R.SET_VRING_ADDR, R.SET_VRING_KICK, R.SET_VRING_CALL, R.SET_VRING_ENABLE]),
      R.GET_VRING_BASE,
      R.GET_VRING_BASE,
    ]);
    // Before REPLY_ACK is negotiated nothing asks for an ack; after, every request without a
    // reply of its own does (NEED_REPLY, 0x8), and those with a reply do not.
    const flags = new Map(log.map((r, i) => [i, r.flags]));
    expect([0, 1, 2, 3].map((i) => flags.get(i))).toEqual([1, 1, 1, 1]);
    expect(log[4]!.flags).toBe(1); // GET_QUEUE_NUM has a reply
    for (const r of log.slice(5)) expect(r.flags).toBe(r.request === R.GET_VRING_BASE ? 1 : 9);

    expect(u64(log[3]!)).toBe(REPLY_ACK | MQ); // what was offered and is wanted
    // The driver's MAC is ours, not the backend's: VIRTIO_NET_F_MAC is not passed on.
    expect(u64(log[5]!)).toBe(VERSION_1 | PROTOCOL_FEATURES);

    const table = log[6]!.payload;
    expect(table.readUInt32LE(0)).toBe(1);
    expect(table.length).toBe(8 + 32);
    expect([8, 16, 24, 32].map((o) => Number(table.readBigUInt64LE(o)))).toEqual([
      region.guestAddress,
      region.size,
      region.userAddress,
      0,
    ]);

    const layout = ringLayout(64);
    let desc0 = 0;
    for (const q of [0, 1]) {
      const [num, base, addr, kick, call, enable] = log.slice(7 + 6 * q, 13 + 6 * q);
      expect(state(num!)).toEqual([q, 64]);
      expect(state(base!)).toEqual([q, 0]);
      expect(addr!.size).toBe(40);
      expect([addr!.payload.readUInt32LE(0), addr!.payload.readUInt32LE(4)]).toEqual([q, 0]);
      const [desc, used, avail, logAddr] = [8, 16, 24, 32].map((o) => Number(addr!.payload.readBigUInt64LE(o)));
      if (q === 0) desc0 = desc!;
      // User addresses inside the region, the rings one after the other in one allocation.
      expect(desc).toBe(desc0 + q * layout.bytes);
      expect(desc! >= region.userAddress && desc! + layout.bytes <= region.userAddress + region.size).toBe(true);
      expect(avail).toBe(desc! + layout.availOffset);
      expect(used).toBe(desc! + layout.usedOffset);
      expect(logAddr).toBe(0);
      expect(u64(kick!)).toBe(BigInt(q)); // with the eventfd
      expect(u64(call!)).toBe(BigInt(q | 0x100)); // no fd: the driver polls
      expect(state(enable!)).toEqual([q, 1]);
    }
    expect(log.slice(-2).map(state)).toEqual([
      [0, 0],
      [1, 0],
    ]);
  });

  it("without VHOST_USER_F_PROTOCOL_FEATURES: no protocol features, no acks, SET_FEATURES confirmed by GET_FEATURES, rings enabled from the start", async () => {
    const b = await backend({ features: VERSION_1 });
    const dev = createVhostUserDevice(b.path, SMALL) as VirtioNetDevice;
    expect(dev.features).toBe(VERSION_1);
    // No MAC option and none from the backend: a random locally administered unicast address.
    expect(dev.macAddress()[0]! & 0x03).toBe(0x02);
    dev.close();
    await b.settle();
    const log = b.requests();
    expect(log.map((r) => r.request)).toEqual([
      R.SET_OWNER,
      R.GET_FEATURES,
      R.SET_FEATURES,
      R.GET_FEATURES,
      R.SET_MEM_TABLE,
      ...[0, 1].flatMap(() => [R.SET_VRING_NUM, R.SET_VRING_BASE, R.SET_VRING_ADDR, R.SET_VRING_KICK, R.SET_VRING_CALL]),
      R.GET_VRING_BASE,
      R.GET_VRING_BASE,
    ]);
    expect(log.every((r) => r.flags === 1)).toBe(true);
  });

  it("with VHOST_USER_PROTOCOL_F_CONFIG reads the MAC and the link status with GET_CONFIG", async () => {
    const config = new Uint8Array(16);
    config.set([0x52, 0x54, 0x00, 0x12, 0x34, 0x56], 0);
    config[6] = 1; // VIRTIO_NET_S_LINK_UP
    const b = await backend({
      features: VERSION_1 | PROTOCOL_FEATURES | MAC_FEATURE | STATUS_FEATURE,
      protocolFeatures: REPLY_ACK | CONFIG,
      config,
    });
    const dev = createVhostUserDevice(b.path, { ...SMALL, linkTimeoutMs: 1000 }) as VirtioNetDevice;
    expect(dev.features).toBe(VERSION_1 | PROTOCOL_FEATURES | MAC_FEATURE | STATUS_FEATURE);
    expect(dev.macAddress()).toEqual(config.subarray(0, 6));
    expect(dev.linkSpeed()).toBe(1000);
    dev.close();
    await b.settle();
    const reads = b.requests().filter((r) => r.request === R.GET_CONFIG);
    // Six one-byte reads of the MAC, then two-byte reads of the status (at init and linkSpeed()).
    expect(reads.slice(0, 6).map((r) => [r.payload.readUInt32LE(0), r.payload.readUInt32LE(4), r.payload.readUInt32LE(8)])).toEqual(
      [0, 1, 2, 3, 4, 5].map((o) => [o, 1, 0]),
    );
    expect(reads.slice(6).every((r) => r.payload.readUInt32LE(0) === 6 && r.payload.readUInt32LE(4) === 2)).toBe(true);
    expect(reads.length).toBeGreaterThanOrEqual(8);
  });

  it("without CONFIG hides VIRTIO_NET_F_MAC and _STATUS: there is nothing to read them from", async () => {
    const b = await backend({ features: VERSION_1 | PROTOCOL_FEATURES | MAC_FEATURE | STATUS_FEATURE });
    const dev = createVhostUserDevice(b.path, SMALL) as VirtioNetDevice;
    expect(dev.features).toBe(VERSION_1 | PROTOCOL_FEATURES);
    expect(dev.linkSpeed()).toBe(1000);
    dev.close();
  });

  it("opens through openDevice('vhost-user:<path>'), and refuses a second open of the same socket", async () => {
    const b = await backend();
    const fds = openFds();
    const dev = openDevice(`vhost-user:${b.path}`, SMALL);
    expect(dev.driver).toBe("virtio");
    expect(() => openDevice(`vhost-user:${b.path}`, SMALL)).toThrow(/already open in this process/);
    dev.close();
    dev.close(); // idempotent
    expect(openFds()).toBe(fds);
  });

  it("waits for a backend that is still starting (connect is retried on ENOENT/ECONNREFUSED)", async () => {
    const b = await backend({ listenDelayMs: 400 });
    const t0 = performance.now();
    const dev = createVhostUserDevice(b.path, { ...SMALL, timeoutMs: 10_000 });
    expect(performance.now() - t0).toBeGreaterThan(100);
    dev.close();
  });
});
