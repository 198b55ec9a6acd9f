/**
 * The vhost-user model backend for real: a child process (backend-main.ts, started through
 * startModelBackend) listening on a unix socket, driven by a small scripted front-end of this
 * file over that socket, with the memory table's fd and the kick/call eventfds passed with
 * SCM_RIGHTS and the rings laid out by hand in memory shared through the fd (hugepages when free
 * ones exist, else a plain memfd). Plus, in this process: the guest memory's translation and
 * faults, and the listening socket.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DmaFaultError, SyscallError } from "../../src/errors.ts";
import { hugepageCounts, HUGEPAGE_SIZE } from "../../src/mem/hugepages.ts";
import { SharedMemoryDmaAllocator } from "../../src/mem/shared-dma.ts";
import { createEventFd, eventfdRead, eventfdWrite } from "../../src/sys/eventfd.ts";
import { close, ftruncate, memfdCreate, MFD_CLOEXEC, mmapShared, munmap, view } from "../../src/sys/libc.ts";
import { acceptUnixConnection, listenUnixSocket, WOULD_BLOCK } from "../../src/sys/unix-listen.ts";
import { connectUnixSocket, receiveWithFds, sendWithFds, setNonBlocking } from "../../src/sys/unix-socket.ts";
import { startModelBackend, type ModelBackend } from "../../src/sim/vhost-user/backend-process.ts";
import { GuestMemory } from "../../src/sim/vhost-user/guest-memory.ts";

// The vhost-user numbers, written out here again (not imported from the backend under test).
const GET_FEATURES = 1;
const SET_FEATURES = 2;
const SET_OWNER = 3;
const SET_MEM_TABLE = 5;
const SET_VRING_NUM = 8;
const SET_VRING_ADDR = 9;
const SET_VRING_BASE = 10;
const GET_VRING_BASE = 11;
const SET_VRING_KICK = 12;
const SET_VRING_CALL = 13;
const GET_PROTOCOL_FEATURES = 15;
const SET_PROTOCOL_FEATURES = 16;
const GET_QUEUE_NUM = 17;
const SET_VRING_ENABLE = 18;
const VERSION = 1;
const REPLY = 4;
const NEED_REPLY = 8;
const PROTOCOL_FEATURES = 1n << 30n;
const REPLY_ACK = 1n << 3n;
const MQ = 1n << 0n;
const VERSION_1 = 1n << 32n;
const ACCESS_PLATFORM = 1n << 33n;

const QUEUE = 8;
const RX = 0;
const TX = 1;
/** Ring layout in the shared memory (offsets): each ring's descriptors, available and used ring. */
const RINGS = [
  { desc: 0x0000, avail: 0x0100, used: 0x0200 },
  { desc: 0x1000, avail: 0x1100, used: 0x1200 },
] as const;
const RX_BUFFERS = 0x10000;
const TX_BUFFERS = 0x20000;
const BUFFER = 2048;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 2000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(1);
  }
}

// --- Shared memory, as the driver would have it -------------------------------------------------

interface FrontEndMemory {
  readonly fd: number;
  readonly size: number;
  readonly guestAddress: number;
  readonly userAddress: number;
  readonly bytes: Uint8Array;
  readonly hugepages: boolean;
  close(): void;
}

type MemoryKind = "hugepages" | "memfd";
const HUGEPAGES_FREE = hugepageCounts().free >= 1;
/** What the tests use: the driver's own hugepage allocator where hugepages are free. */
const DEFAULT_KIND: MemoryKind = HUGEPAGES_FREE ? "hugepages" : "memfd";

/** 2 MiB: a hugepage memfd through the driver's own allocator (SharedMemoryDmaAllocator), or a plain memfd. */
function sharedMemory(kind: MemoryKind = DEFAULT_KIND): FrontEndMemory {
  if (kind === "hugepages") {
    const dma = new SharedMemoryDmaAllocator({ name: "test front-end memory" });
    const region = dma.allocate(HUGEPAGE_SIZE);
    const r = dma.regions()[0]!;
    return { fd: r.fd, size: r.size, guestAddress: r.guestAddress, userAddress: r.userAddress, bytes: region.bytes, hugepages: true, close: () => dma.close() };
  }
  const fd = memfdCreate("vhost-user-test", MFD_CLOEXEC);
  ftruncate(fd, HUGEPAGE_SIZE);
  const ptr = mmapShared(fd, HUGEPAGE_SIZE);
  const bytes = new Uint8Array(view(ptr, HUGEPAGE_SIZE));
  return {
    fd,
    size: HUGEPAGE_SIZE,
    guestAddress: 0x1_0000_0000,
    userAddress: Number(ptr),
    bytes,
    hugepages: false,
    close: () => {
      munmap(ptr, HUGEPAGE_SIZE);
      close(fd);
    },
  };
}

// --- A scripted front-end -------------------------------------------------------------------------

interface Reply {
  readonly request: number;
  readonly flags: number;
  readonly payload: Uint8Array;
}

function u64(value: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, value, true);
  return b;
}

function state(index: number, num: number): Uint8Array {
  const b = new Uint8Array(8);
  const d = new DataView(b.buffer);
  d.setUint32(0, index, true);
  d.setUint32(4, num, true);
  return b;
}

/** struct vhost_vring_addr: index, flags, desc, used, avail, log. */
function vringAddr(index: number, desc: number, used: number, avail: number): Uint8Array {
  const b = new Uint8Array(40);
  const d = new DataView(b.buffer);
  d.setUint32(0, index, true);
  d.setBigUint64(8, BigInt(desc), true);
  d.setBigUint64(16, BigInt(used), true);
  d.setBigUint64(24, BigInt(avail), true);
  return b;
}

function memTable(regions: readonly { guestAddress: number; size: number; userAddress: number; mmapOffset: number }[]): Uint8Array {
  const b = new Uint8Array(8 + 32 * regions.length);
  const d = new DataView(b.buffer);
  d.setUint32(0, regions.length, true);
  regions.forEach((r, i) => {
    d.setBigUint64(8 + 32 * i, BigInt(r.guestAddress), true);
    d.setBigUint64(16 + 32 * i, BigInt(r.size), true);
    d.setBigUint64(24 + 32 * i, BigInt(r.userAddress), true);
    d.setBigUint64(32 + 32 * i, BigInt(r.mmapOffset), true);
  });
  return b;
}

const readU64 = (p: Uint8Array) => new DataView(p.buffer, p.byteOffset, p.length).getBigUint64(0, true);

class FrontEnd {
  readonly fd: number;
  #buffer = new Uint8Array(0);
  #closed = false;

  constructor(socket: string) {
    this.fd = connectUnixSocket(socket, {}, "test front-end");
    setNonBlocking(this.fd, true);
  }

  send(request: number, payload: Uint8Array = new Uint8Array(0), options: { flags?: number; fds?: readonly number[] } = {}): void {
    const bytes = new Uint8Array(12 + payload.length);
    const d = new DataView(bytes.buffer);
    d.setUint32(0, request, true);
    d.setUint32(4, options.flags ?? VERSION, true);
    d.setUint32(8, payload.length, true);
    bytes.set(payload, 12);
    expect(sendWithFds(this.fd, bytes, options.fds ?? [], "test front-end")).toBe(bytes.length);
  }

  /** The next reply, or "closed" when the backend closed the connection. */
  async receive(timeoutMs = 2000): Promise<Reply | "closed"> {
    const chunk = new Uint8Array(4096);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (this.#buffer.length >= 12) {
        const d = new DataView(this.#buffer.buffer, this.#buffer.byteOffset);
        const size = d.getUint32(8, true);
        if (this.#buffer.length >= 12 + size) {
          const reply = { request: d.getUint32(0, true), flags: d.getUint32(4, true), payload: this.#buffer.slice(12, 12 + size) };
          this.#buffer = this.#buffer.slice(12 + size);
          return reply;
        }
      }
      const got = receiveWithFds(this.fd, chunk, "test front-end");
      if (got.bytes === 0) return "closed";
      if (got.bytes === WOULD_BLOCK) {
        if (performance.now() > deadline) throw new Error(`no reply from the backend within ${timeoutMs} ms`);
        await sleep(1);
        continue;
      }
      for (const fd of got.fds) close(fd);
      const joined = new Uint8Array(this.#buffer.length + got.bytes);
      joined.set(this.#buffer);
      joined.set(chunk.subarray(0, got.bytes), this.#buffer.length);
      this.#buffer = joined;
    }
  }

  /** Sends with NEED_REPLY and returns the u64 ack (0: success). */
  async ack(request: number, payload?: Uint8Array, fds?: readonly number[]): Promise<bigint> {
    this.send(request, payload, { flags: VERSION | NEED_REPLY, fds: fds ?? [] });
    const reply = await this.receive();
    if (reply === "closed") throw new Error(`the backend closed the connection on request ${request}`);
    expect(reply.request).toBe(request);
    expect(reply.flags).toBe(VERSION | REPLY);
    expect(reply.payload.length).toBe(8);
    return readU64(reply.payload);
  }

  /** A request with a reply of its own. */
  async get(request: number, payload?: Uint8Array): Promise<Uint8Array> {
    this.send(request, payload);
    const reply = await this.receive();
    if (reply === "closed") throw new Error(`the backend closed the connection on request ${request}`);
    expect(reply.request).toBe(request);
    expect(reply.flags).toBe(VERSION | REPLY);
    return reply.payload;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    close(this.fd);
  }
}

// --- Rings by hand ---------------------------------------------------------------------------------

class Rings {
  readonly mem: FrontEndMemory;
  readonly view: DataView;
  readonly kick = [createEventFd("test kick 0"), createEventFd("test kick 1")] as const;
  readonly call = [createEventFd("test call 0"), createEventFd("test call 1")] as const;

  constructor(mem: FrontEndMemory) {
    this.mem = mem;
    this.view = new DataView(mem.bytes.buffer, mem.bytes.byteOffset, mem.bytes.length);
    mem.bytes.fill(0, 0, 0x30000);
  }

  guest(offset: number): number {
    return this.mem.guestAddress + offset;
  }

  user(offset: number): number {
    return this.mem.userAddress + offset;
  }

  setDescriptor(q: number, id: number, offset: number, length: number, flags: number): void {
    const at = RINGS[q]!.desc + 16 * id;
    this.view.setBigUint64(at, BigInt(this.guest(offset)), true);
    this.view.setUint32(at + 8, length, true);
    this.view.setUint16(at + 12, flags, true);
    this.view.setUint16(at + 14, 0, true);
  }

  /** Makes descriptor `id` available on queue q (avail.ring[idx % QUEUE] = id, then idx + 1). */
  publish(q: number, id: number): void {
    const avail = RINGS[q]!.avail;
    const idx = this.view.getUint16(avail + 2, true);
    this.view.setUint16(avail + 4 + 2 * (idx % QUEUE), id, true);
    this.view.setUint16(avail + 2, (idx + 1) & 0xffff, true);
  }

  setAvailFlags(q: number, flags: number): void {
    this.view.setUint16(RINGS[q]!.avail, flags, true);
  }

  usedFlags(q: number): number {
    return this.view.getUint16(RINGS[q]!.used, true);
  }

  usedIdx(q: number): number {
    return this.view.getUint16(RINGS[q]!.used + 2, true);
  }

  usedElem(q: number, slot: number): { id: number; len: number } {
    const at = RINGS[q]!.used + 4 + 8 * (slot % QUEUE);
    return { id: this.view.getUint32(at, true), len: this.view.getUint32(at + 4, true) };
  }

  close(): void {
    for (const fd of [...this.kick, ...this.call]) close(fd);
  }
}

/** The messages a front-end sends to bring the queue pair up, each acked (REPLY_ACK negotiated). */
async function bringUp(fe: FrontEnd, rings: Rings, enable: readonly number[] = [RX, TX]): Promise<void> {
  const mem = rings.mem;
  const offered = readU64(await fe.get(GET_FEATURES));
  expect(offered & PROTOCOL_FEATURES).toBe(PROTOCOL_FEATURES);
  fe.send(SET_PROTOCOL_FEATURES, u64(readU64(await fe.get(GET_PROTOCOL_FEATURES)) & REPLY_ACK));
  expect(await fe.ack(SET_OWNER)).toBe(0n);
  expect(await fe.ack(SET_FEATURES, u64(VERSION_1 | PROTOCOL_FEATURES))).toBe(0n);
  const table = memTable([{ guestAddress: mem.guestAddress, size: mem.size, userAddress: mem.userAddress, mmapOffset: 0 }]);
  expect(await fe.ack(SET_MEM_TABLE, table, [mem.fd])).toBe(0n);
  for (const q of [RX, TX]) {
    const r = RINGS[q]!;
    expect(await fe.ack(SET_VRING_NUM, state(q, QUEUE))).toBe(0n);
    expect(await fe.ack(SET_VRING_BASE, state(q, 0))).toBe(0n);
    expect(await fe.ack(SET_VRING_ADDR, vringAddr(q, rings.user(r.desc), rings.user(r.used), rings.user(r.avail)))).toBe(0n);
    expect(await fe.ack(SET_VRING_KICK, u64(BigInt(q)), [rings.kick[q]!])).toBe(0n);
    expect(await fe.ack(SET_VRING_CALL, u64(BigInt(q)), [rings.call[q]!])).toBe(0n);
    if (enable.includes(q)) expect(await fe.ack(SET_VRING_ENABLE, state(q, 1))).toBe(0n);
  }
}

/** A 60-byte frame whose bytes say which one it is. */
function frame(n: number): Uint8Array {
  const f = new Uint8Array(60);
  f.set([0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
  for (let i = 14; i < f.length; i++) f[i] = (n * 31 + i) & 0xff;
  return f;
}

// --- The tests --------------------------------------------------------------------------------------

let dir: string;
let backend: ModelBackend;
let termBackend: ModelBackend;
const socket = () => path.join(dir, "vhost.sock");

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-vhost-"));
  backend = startModelBackend({ socket: socket(), mode: "loopback", queueSize: 256 });
  termBackend = startModelBackend({ socket: path.join(dir, "term.sock"), mode: "sink" });
  await Promise.all([backend.ready, termBackend.ready]);
}, 30_000);

afterAll(async () => {
  backend?.kill("SIGKILL");
  termBackend?.kill("SIGKILL");
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Waits until the backend has noticed the previous front-end's hang-up. */
async function idle(): Promise<void> {
  await backend.waitFor((s) => !s.connected, 2000);
}

describe("vhost-user model backend (child process, real socket)", () => {
  it("announces itself on stdout and listens on the socket", () => {
    expect(backend.events[0]).toMatchObject({ event: "listening", socket: socket(), mode: "loopback", queueSize: 256 });
    expect(fs.lstatSync(socket()).isSocket()).toBe(true);
  });

  it("handshake: features without ACCESS_PLATFORM plus PROTOCOL_FEATURES, REPLY_ACK and MQ, one queue pair, acks", async () => {
    const fe = new FrontEnd(socket());
    try {
      const features = readU64(await fe.get(GET_FEATURES));
      expect(features & PROTOCOL_FEATURES).toBe(PROTOCOL_FEATURES);
      expect(features & VERSION_1).toBe(VERSION_1);
      expect(features & ACCESS_PLATFORM).toBe(0n);
      expect(readU64(await fe.get(GET_PROTOCOL_FEATURES))).toBe(REPLY_ACK | MQ);
      fe.send(SET_PROTOCOL_FEATURES, u64(REPLY_ACK | MQ));
      expect(await fe.ack(SET_OWNER)).toBe(0n);
      expect(readU64(await fe.get(GET_QUEUE_NUM))).toBe(1n);
      expect(await fe.ack(SET_FEATURES, u64(VERSION_1 | PROTOCOL_FEATURES))).toBe(0n);
      const s = await backend.stats();
      expect(s.session).toMatchObject({ features: `0x${(VERSION_1 | PROTOCOL_FEATURES).toString(16)}`, protocolFeatures: "0x9", owner: true, running: false });
      expect(s.violations).toEqual([]);
    } finally {
      fe.close();
    }
    await idle();
  });

  it.each([
    ["hugepages" as const, !HUGEPAGES_FREE],
    ["memfd" as const, false],
  ])("loopback (%s): one TX descriptor in shared memory comes back in an RX buffer byte-exact; calls honour NO_INTERRUPT; GET_VRING_BASE stops the rings at the right index", async (kind, skip) => {
    if (skip) return; // no free hugepages here: the memfd run covers the backend
    const mem = sharedMemory(kind);
    const rings = new Rings(mem);
    const fe = new FrontEnd(socket());
    try {
      await bringUp(fe, rings);
      let s = await backend.stats();
      expect(s.session!.running).toBe(true);
      expect(s.session!.memoryRegions).toEqual([{ guestAddress: mem.guestAddress, size: mem.size, userAddress: mem.userAddress, mmapOffset: 0 }]);
      expect(s.session!.rings.slice(0, 2).map((r) => r.state)).toEqual(["enabled", "enabled"]);
      // A polling backend: VIRTQ_USED_F_NO_NOTIFY on its used rings.
      expect([rings.usedFlags(RX), rings.usedFlags(TX)]).toEqual([1, 1]);

      // Two RX buffers (device-writable), then frame 1 on TX: 12 zero header bytes, then the frame.
      for (const id of [0, 1]) {
        rings.setDescriptor(RX, id, RX_BUFFERS + id * BUFFER, BUFFER, 2 /* WRITE */);
        rings.publish(RX, id);
      }
      const f1 = frame(1);
      mem.bytes.fill(0, TX_BUFFERS, TX_BUFFERS + 12);
      mem.bytes.set(f1, TX_BUFFERS + 12);
      rings.setDescriptor(TX, 0, TX_BUFFERS, 12 + f1.length, 0);
      rings.publish(TX, 0);
      eventfdWrite(rings.kick[TX]);

      await until("the looped-back frame in the RX used ring", () => rings.usedIdx(RX) === 1);
      expect(rings.usedIdx(TX)).toBe(1);
      expect(rings.usedElem(TX, 0)).toEqual({ id: 0, len: 0 });
      expect(rings.usedElem(RX, 0)).toEqual({ id: 0, len: 12 + f1.length });
      const header = mem.bytes.slice(RX_BUFFERS, RX_BUFFERS + 12);
      expect(Array.from(header)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]); // num_buffers 1
      expect(mem.bytes.slice(RX_BUFFERS + 12, RX_BUFFERS + 12 + f1.length)).toEqual(f1);
      // The backend read the bytes this process wrote into the shared memory.
      expect((await backend.transmitted()).at(-1)).toEqual(f1);
      // Interrupts wanted (avail.flags 0): both call eventfds were written.
      await until("a call on each ring", () => eventfdRead(rings.call[RX]) > 0);
      await until("a call on TX", () => eventfdRead(rings.call[TX]) > 0);

      // Frame 2 with VRING_AVAIL_F_NO_INTERRUPT on both rings: used, but no call.
      rings.setAvailFlags(RX, 1);
      rings.setAvailFlags(TX, 1);
      const f2 = frame(2);
      mem.bytes.set(f2, TX_BUFFERS + BUFFER + 12);
      rings.setDescriptor(TX, 1, TX_BUFFERS + BUFFER, 12 + f2.length, 0);
      rings.publish(TX, 1); // no kick: the backend polls
      await until("frame 2 looped back", () => rings.usedIdx(RX) === 2);
      expect(mem.bytes.slice(RX_BUFFERS + BUFFER + 12, RX_BUFFERS + BUFFER + 12 + f2.length)).toEqual(f2);
      await sleep(20);
      expect([eventfdRead(rings.call[RX]), eventfdRead(rings.call[TX])]).toEqual([0, 0]);

      // An injected frame waits for a buffer, then lands in the next one posted.
      const f3 = frame(3);
      expect(await backend.inject(f3)).toBe(false);
      rings.setDescriptor(RX, 2, RX_BUFFERS + 2 * BUFFER, BUFFER, 2);
      rings.publish(RX, 2);
      await until("the injected frame", () => rings.usedIdx(RX) === 3);
      expect(mem.bytes.slice(RX_BUFFERS + 2 * BUFFER + 12, RX_BUFFERS + 2 * BUFFER + 12 + f3.length)).toEqual(f3);

      s = await backend.stats();
      expect(s.session!.rings[TX]).toMatchObject({ lastAvail: 2, usedIdx: 2, availIdx: 2 });
      expect(s.session!.rings[TX]!.kicks).toBeGreaterThanOrEqual(1);
      expect(s.violations).toEqual([]);

      // GET_VRING_BASE: the next available index, and the ring stops.
      expect(await fe.get(GET_VRING_BASE, state(TX, 0))).toEqual(state(TX, 2));
      expect(await fe.get(GET_VRING_BASE, state(RX, 0))).toEqual(state(RX, 3));
      s = await backend.stats();
      expect(s.session!.running).toBe(false);
      expect(s.session!.rings.slice(0, 2).map((r) => r.state)).toEqual(["stopped", "stopped"]);
      // A stopped ring is left alone.
      rings.setDescriptor(TX, 2, TX_BUFFERS, 12 + f1.length, 0);
      rings.publish(TX, 2);
      await sleep(20);
      expect(rings.usedIdx(TX)).toBe(2);

      // Restart from the index GET_VRING_BASE returned: the frame published meanwhile goes out.
      rings.setDescriptor(RX, 3, RX_BUFFERS + 3 * BUFFER, BUFFER, 2);
      rings.publish(RX, 3);
      expect(await fe.ack(SET_VRING_BASE, state(TX, 2))).toBe(0n);
      expect(await fe.ack(SET_VRING_BASE, state(RX, 3))).toBe(0n);
      expect(await fe.ack(SET_VRING_KICK, u64(BigInt(TX)), [rings.kick[TX]])).toBe(0n);
      expect(await fe.ack(SET_VRING_KICK, u64(BigInt(RX) | 0x100n))).toBe(0n); // no fd: polled
      await until("the frame sent after the restart", () => rings.usedIdx(RX) === 4);
      expect(mem.bytes.slice(RX_BUFFERS + 3 * BUFFER + 12, RX_BUFFERS + 3 * BUFFER + 12 + f1.length)).toEqual(f1);
      expect((await backend.stats()).violations).toEqual([]);
    } finally {
      fe.close();
      await idle();
      rings.close();
      mem.close();
    }
  });

  it("a ring left disabled (no SET_VRING_ENABLE): its frames are discarded, and using it is one violation until it is enabled", async () => {
    const mem = sharedMemory();
    const rings = new Rings(mem);
    const fe = new FrontEnd(socket());
    const before = await backend.stats();
    try {
      await bringUp(fe, rings, [RX]);
      let s = await backend.stats();
      expect(s.session!.rings.slice(0, 2).map((r) => r.state)).toEqual(["enabled", "disabled"]);
      rings.setDescriptor(RX, 0, RX_BUFFERS, BUFFER, 2);
      rings.publish(RX, 0);
      for (const id of [0, 1]) {
        const f = frame(10 + id);
        mem.bytes.fill(0, TX_BUFFERS + id * BUFFER, TX_BUFFERS + id * BUFFER + 12);
        mem.bytes.set(f, TX_BUFFERS + id * BUFFER + 12);
        rings.setDescriptor(TX, id, TX_BUFFERS + id * BUFFER, 12 + f.length, 0);
        rings.publish(TX, id);
        eventfdWrite(rings.kick[TX]);
        await until(`frame ${id} processed`, () => rings.usedIdx(TX) === id + 1);
      }
      s = await backend.stats();
      // "started but disabled": processed and discarded, nothing looped back.
      expect([s.discarded - before.discarded, s.transmitted - before.transmitted, rings.usedIdx(RX)]).toEqual([2, 0, 0]);
      // One violation for the ring (its first kick or discard), not one per frame.
      expect(s.violations.slice(before.violationCount)).toEqual([
        expect.stringMatching(/ring 1: the front-end (kicked it|made frames available on it \(discarded: a disabled transmit ring sends nothing\)) while the ring is disabled .*send VHOST_USER_SET_VRING_ENABLE 1/),
      ]);
      // Enabled: the next frame goes out and comes back, with no new violation.
      expect(await fe.ack(SET_VRING_ENABLE, state(TX, 1))).toBe(0n);
      const f = frame(12);
      mem.bytes.set(f, TX_BUFFERS + 2 * BUFFER + 12);
      rings.setDescriptor(TX, 2, TX_BUFFERS + 2 * BUFFER, 12 + f.length, 0);
      rings.publish(TX, 2);
      await until("the frame sent once the ring is enabled", () => rings.usedIdx(RX) === 1);
      expect(mem.bytes.slice(RX_BUFFERS + 12, RX_BUFFERS + 12 + f.length)).toEqual(f);
      expect((await backend.stats()).violationCount - before.violationCount).toBe(1);
    } finally {
      fe.close();
      await idle();
      rings.close();
      mem.close();
    }
  });

  it("--queues 2: GET_QUEUE_NUM 2, VIRTIO_NET_F_MQ offered; without MQ negotiated only rings 0, 1 and the control ring 2 exist, with it rings 0 to 3 and the control ring 4", async () => {
    const mq = startModelBackend({ socket: path.join(dir, "mq.sock"), mode: "loopback", queuePairs: 2 });
    try {
      await mq.ready;
      expect(mq.events[0]).toMatchObject({ event: "listening", queuePairs: 2 });
      const MQ_FEATURE = 1n << 22n;
      const without = new FrontEnd(mq.socket);
      try {
        expect(readU64(await without.get(GET_FEATURES)) & MQ_FEATURE).toBe(MQ_FEATURE);
        without.send(SET_PROTOCOL_FEATURES, u64(REPLY_ACK | MQ));
        expect(readU64(await without.get(GET_QUEUE_NUM))).toBe(2n);
        expect(await without.ack(SET_FEATURES, u64(VERSION_1 | PROTOCOL_FEATURES))).toBe(0n);
        expect(await without.ack(SET_VRING_NUM, state(2, 8))).toBe(0n); // the control ring
        expect(await without.ack(SET_VRING_NUM, state(3, 8))).not.toBe(0n);
      } finally {
        without.close();
      }
      await mq.waitFor((s) => !s.connected, 2000);
      const withMq = new FrontEnd(mq.socket);
      try {
        withMq.send(SET_PROTOCOL_FEATURES, u64(REPLY_ACK | MQ));
        expect(await withMq.ack(SET_FEATURES, u64(VERSION_1 | PROTOCOL_FEATURES | MQ_FEATURE))).toBe(0n);
        for (const q of [0, 1, 2, 3, 4]) expect(await withMq.ack(SET_VRING_NUM, state(q, 8))).toBe(0n);
        expect(await withMq.ack(SET_VRING_NUM, state(5, 8))).not.toBe(0n);
        const s = await mq.stats();
        expect(s.session!.queuePairs).toBe(2);
        expect(s.session!.rings.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
      } finally {
        withMq.close();
      }
      await mq.waitFor((s) => !s.connected, 2000);
      expect((await mq.stats()).violations).toEqual([
        expect.stringMatching(/SET_VRING_NUM \(8\): ring 3 is not in the layout of the features negotiated: without VIRTIO_NET_F_MQ/),
        expect.stringMatching(/SET_VRING_NUM \(8\): ring 5 does not exist: the device has 2 queue pair\(s\)/),
      ]);
    } finally {
      await mq.stop();
    }
  });

  it("a new SET_MEM_TABLE while the rings run moves them to the new mapping (the old one is unmapped)", async () => {
    const mem = sharedMemory();
    const rings = new Rings(mem);
    const fe = new FrontEnd(socket());
    try {
      await bringUp(fe, rings);
      const send = async (n: number, id: number) => {
        const f = frame(n);
        rings.setDescriptor(RX, id, RX_BUFFERS + id * BUFFER, BUFFER, 2);
        rings.publish(RX, id);
        mem.bytes.set(f, TX_BUFFERS + id * BUFFER + 12);
        rings.setDescriptor(TX, id, TX_BUFFERS + id * BUFFER, 12 + f.length, 0);
        rings.publish(TX, id);
        await until(`frame ${n} looped back`, () => rings.usedIdx(RX) === id + 1);
        expect(mem.bytes.slice(RX_BUFFERS + id * BUFFER + 12, RX_BUFFERS + id * BUFFER + 12 + f.length)).toEqual(f);
      };
      await send(1, 0);
      // The same memory again (the backend gets a fresh fd, maps it, moves the rings, unmaps the old):
      // had a ring kept a view of the old mapping, the next frame would crash the backend.
      const table = memTable([{ guestAddress: mem.guestAddress, size: mem.size, userAddress: mem.userAddress, mmapOffset: 0 }]);
      expect(await fe.ack(SET_MEM_TABLE, table, [mem.fd])).toBe(0n);
      await send(2, 1);
      await send(3, 2);
      const s = await backend.stats();
      expect(s.session!.running).toBe(true);
      expect(s.session!.rings[TX]).toMatchObject({ state: "enabled", lastAvail: 3, usedIdx: 3 });
      expect(s.violations.filter((v) => v.includes("SET_MEM_TABLE"))).toEqual([]);
    } finally {
      fe.close();
      await idle();
      rings.close();
      mem.close();
    }
  });

  it("with REPLY_ACK: nonsense gets a failure ack, a violation, and the connection stays", async () => {
    const mem = sharedMemory();
    const rings = new Rings(mem);
    const fe = new FrontEnd(socket());
    const before = (await backend.stats()).violationCount;
    try {
      fe.send(SET_PROTOCOL_FEATURES, u64(REPLY_ACK));
      expect(await fe.ack(SET_FEATURES, u64(VERSION_1))).toBe(0n);
      // An unknown request, a short payload, a size that is no power of two.
      expect(await fe.ack(999)).not.toBe(0n);
      expect(await fe.ack(SET_VRING_NUM, new Uint8Array(4))).not.toBe(0n);
      expect(await fe.ack(SET_VRING_NUM, state(TX, 3))).not.toBe(0n);
      // Features never offered.
      expect(await fe.ack(SET_FEATURES, u64(VERSION_1 | ACCESS_PLATFORM))).not.toBe(0n);
      // Two regions, one fd.
      const region = { guestAddress: mem.guestAddress, size: mem.size, userAddress: mem.userAddress, mmapOffset: 0 };
      const second = { guestAddress: mem.guestAddress + mem.size, size: mem.size, userAddress: mem.userAddress + mem.size, mmapOffset: 0 };
      expect(await fe.ack(SET_MEM_TABLE, memTable([region, second]), [mem.fd])).not.toBe(0n);
      // A region beyond the end of its file (it would be a SIGBUS on first touch).
      expect(await fe.ack(SET_MEM_TABLE, memTable([{ ...region, size: 2 * mem.size }]), [mem.fd])).not.toBe(0n);
      // A good table, then a ring address outside it.
      expect(await fe.ack(SET_MEM_TABLE, memTable([region]), [mem.fd])).toBe(0n);
      expect(await fe.ack(SET_VRING_ADDR, vringAddr(TX, mem.userAddress + mem.size, rings.user(0x1200), rings.user(0x1100)))).not.toBe(0n);
      // A kick before the ring's size and addresses; SET_VRING_ENABLE without PROTOCOL_FEATURES.
      expect(await fe.ack(SET_VRING_KICK, u64(BigInt(TX)), [rings.kick[TX]])).not.toBe(0n);
      expect(await fe.ack(SET_VRING_ENABLE, state(TX, 1))).not.toBe(0n);
      // The connection still serves.
      expect(readU64(await fe.get(GET_FEATURES)) & VERSION_1).toBe(VERSION_1);
      const s = await backend.stats();
      const added = s.violations.slice(before);
      expect(s.violationCount - before).toBe(added.length);
      expect(added).toEqual([
        expect.stringMatching(/request 999: not a vhost-user request/),
        expect.stringMatching(/SET_VRING_NUM \(8\): a 4-byte payload; the request takes 8 bytes/),
        expect.stringMatching(/SET_VRING_NUM \(8\): ring 1: size 3; the device takes a power of two/),
        expect.stringMatching(/SET_FEATURES \(2\): features 0x[0-9a-f]+ include 0x200000000, which GET_FEATURES did not offer/),
        expect.stringMatching(/SET_MEM_TABLE \(5\): 2 regions came with 1 file descriptor\(s\): send one fd per region/),
        expect.stringMatching(/SET_MEM_TABLE \(5\): region 0: mmap offset 0x0 \+ size 0x400000 goes beyond the 0x200000-byte file/),
        expect.stringMatching(/SET_VRING_ADDR \(9\): ring 1: the descriptor table at user address 0x[0-9a-f]+ \(16 bytes\) is outside every region/),
        expect.stringMatching(/SET_VRING_KICK \(12\): ring 1 kicked before SET_VRING_NUM/),
        expect.stringMatching(/SET_VRING_ENABLE \(18\): only legal once VHOST_USER_F_PROTOCOL_FEATURES/),
      ]);
      expect(s.connected).toBe(true);
    } finally {
      fe.close();
      await idle();
      rings.close();
      mem.close();
    }
  });

  it("without REPLY_ACK: nonsense closes the connection, with a violation; the next front-end is served", async () => {
    const s0 = await backend.stats();
    const unknown = new FrontEnd(socket());
    try {
      unknown.send(999, u64(0n));
      expect(await unknown.receive()).toBe("closed");
    } finally {
      unknown.close();
    }
    const short = new FrontEnd(socket());
    try {
      short.send(GET_VRING_BASE, new Uint8Array(2)); // a request with a reply of its own: no ack possible
      expect(await short.receive()).toBe("closed");
    } finally {
      short.close();
    }
    const next = new FrontEnd(socket());
    try {
      expect(readU64(await next.get(GET_FEATURES)) & PROTOCOL_FEATURES).toBe(PROTOCOL_FEATURES);
    } finally {
      next.close();
    }
    await idle();
    const s = await backend.stats();
    expect(s.connections - s0.connections).toBe(3);
    expect(s.violations.slice(s0.violationCount)).toEqual([
      expect.stringMatching(/request 999: not a vhost-user request/),
      expect.stringMatching(/GET_VRING_BASE \(11\): a 2-byte payload; the request takes 8 bytes/),
    ]);
    const disconnects = backend.events.filter((e) => e.event === "disconnected").slice(-3);
    expect(disconnects.map((e) => (e as { reason: string }).reason)).toEqual([
      expect.stringMatching(/^closed by the backend: request 999/),
      expect.stringMatching(/^closed by the backend: GET_VRING_BASE/),
      "the front-end hung up",
    ]);
  });

  it("exits with 0 on stdin EOF and unlinks its socket", async () => {
    expect(backend.events.filter((e) => e.event === "error")).toEqual([]);
    expect(await backend.stop()).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(socket())).toBe(false);
  });

  it("exits with 0 on SIGTERM and unlinks its socket", async () => {
    termBackend.kill("SIGTERM");
    expect(await termBackend.exited).toEqual({ code: 0, signal: null });
    expect(fs.existsSync(termBackend.socket)).toBe(false);
  });
});

describe("guest memory (in process)", () => {
  it("translates guest and user addresses through the table, faults outside it, and replaces a table only once the new one is mapped", () => {
    const mem = sharedMemory();
    const memory = new GuestMemory("test backend");
    try {
      // The backend gets its own fd, as it would from SCM_RIGHTS.
      const fd = fs.openSync(`/proc/self/fd/${mem.fd}`, "r+");
      memory.setTable([{ guestAddress: 0x4000_0000, size: 0x10_0000, userAddress: mem.userAddress + 0x10_0000, mmapOffset: 0x10_0000 }], [fd]);
      mem.bytes.set([1, 2, 3, 4], 0x10_0010);
      expect(Array.from(memory.resolve(0x4000_0010, 4))).toEqual([1, 2, 3, 4]);
      memory.resolve(0x4000_0020, 2).set([9, 9]); // the device writes, the driver sees it
      expect(Array.from(mem.bytes.subarray(0x10_0020, 0x10_0022))).toEqual([9, 9]);
      expect(memory.userToGuest(mem.userAddress + 0x10_0010, 16)).toBe(0x4000_0010);
      expect(memory.userToGuest(mem.userAddress + 0x10, 16)).toBeNull(); // before the region
      expect(() => memory.resolve(0x4000_0000 + 0x10_0000 - 2, 4, "RX buffer write", "model")).toThrow(DmaFaultError);
      expect(() => memory.resolve(0x3fff_fff0, 4)).toThrow(/outside every region of the vhost-user memory table/);

      // A bad table (two regions, one fd) leaves the old one in place and closes the fd.
      const bad = fs.openSync(`/proc/self/fd/${mem.fd}`, "r+");
      expect(() => memory.setTable([{ guestAddress: 0, size: 4096, userAddress: 0, mmapOffset: 0 }, { guestAddress: 4096, size: 4096, userAddress: 4096, mmapOffset: 0 }], [bad])).toThrow(/one fd per region/);
      expect(() => fs.fstatSync(bad)).toThrow(/EBADF/);
      expect(memory.resolve(0x4000_0010, 1)[0]).toBe(1);

      // Replacement: the old mapping is still there while beforeUnmap runs, and its fd is closed after.
      const next = fs.openSync(`/proc/self/fd/${mem.fd}`, "r+");
      let seenDuring = -1;
      memory.setTable([{ guestAddress: 0x8000_0000, size: mem.size, userAddress: mem.userAddress, mmapOffset: 0 }], [next], () => {
        seenDuring = memory.resolve(0x8010_0010, 1)[0]!; // the new table is in place
        fs.fstatSync(fd); // and the old one not yet released
      });
      expect(seenDuring).toBe(1);
      expect(() => fs.fstatSync(fd)).toThrow(/EBADF/);
      expect(() => memory.resolve(0x4000_0010, 1)).toThrow(DmaFaultError);
      memory.close();
      expect(() => fs.fstatSync(next)).toThrow(/EBADF/);
      expect(memory.mapped).toBe(false);
    } finally {
      memory.close();
      mem.close();
    }
  });

  it.skipIf(!HUGEPAGES_FREE)("maps a 4 KiB region in the middle of a hugetlb file, and unmaps it again (lengths in whole 2 MiB pages)", () => {
    const mem = sharedMemory("hugepages");
    const memory = new GuestMemory("test backend");
    try {
      mem.bytes[0x10_0005] = 77;
      memory.setTable([{ guestAddress: 0x1000_0000, size: 4096, userAddress: mem.userAddress + 0x10_0000, mmapOffset: 0x10_0000 }], [fs.openSync(`/proc/self/fd/${mem.fd}`, "r+")]);
      expect(memory.resolve(0x1000_0005, 1)[0]).toBe(77);
      expect(() => memory.resolve(0x1000_0ffe, 4)).toThrow(DmaFaultError);
      memory.close(); // munmap of a hugetlb mapping fails (EINVAL) unless the length is whole hugepages
    } finally {
      memory.close();
      mem.close();
    }
  });
});

describe("listening unix socket (in process)", () => {
  it("accepts connections, returns WOULD_BLOCK when none waits, replaces a stale socket file and refuses a live one", () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-listen-"));
    const p = path.join(d, "l.sock");
    try {
      const l = listenUnixSocket(p, { nonBlocking: true }, "test");
      expect(acceptUnixConnection(l, { nonBlocking: true })).toBe(WOULD_BLOCK);
      const c = connectUnixSocket(p);
      const a = acceptUnixConnection(l, { nonBlocking: true });
      expect(a).toBeGreaterThan(0);
      expect(sendWithFds(c, Uint8Array.of(42))).toBe(1);
      const buf = new Uint8Array(4);
      expect(receiveWithFds(a, buf).bytes).toBe(1);
      expect(buf[0]).toBe(42);
      expect(() => listenUnixSocket(p, {}, "second")).toThrow(/another process listens on/);
      close(a);
      close(c);
      close(l); // the file stays behind, as after a crash
      expect(fs.lstatSync(p).isSocket()).toBe(true);
      const again = listenUnixSocket(p, {}, "restarted");
      close(again);
      fs.rmSync(p);
      fs.writeFileSync(p, "not a socket");
      expect(() => listenUnixSocket(p, {}, "test")).toThrow(SyscallError);
      expect(() => listenUnixSocket(p, {}, "test")).toThrow(/exists and is not a socket/);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
