/**
 * Every vhost-user message the front-end sends, byte by byte against the layouts of qemu's
 * docs/interop/vhost-user.rst ("Message Specification"), and the decoding of replies. The
 * expected bytes are built here with explicit offsets (Buffer writes), independently of the
 * encoder's typed-array views.
 */
import { describe, expect, it } from "vitest";
import { MessageBuffer } from "../../src/drivers/virtio/vhost-user/message.ts";
import {
  HEADER_SIZE,
  requestName,
  VhostUserFlag,
  VhostUserRequest as R,
  VRING_NOFD,
} from "../../src/drivers/virtio/vhost-user/protocol.ts";

/** header: u32 request, u32 flags, u32 size; then the payload. */
function message(request: number, flags: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(12 + payload.length);
  b.writeUInt32LE(request, 0);
  b.writeUInt32LE(flags, 4);
  b.writeUInt32LE(payload.length, 8);
  payload.copy(b, 12);
  return b;
}

const u64 = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
};
const state = (index: number, num: number) => {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(index, 0);
  b.writeUInt32LE(num, 4);
  return b;
};

const V = VhostUserFlag.VERSION;
const ACK = VhostUserFlag.VERSION | VhostUserFlag.NEED_REPLY;

describe("vhost-user message encoding", () => {
  it("uses the request codes of the specification's front-end message types", () => {
    expect(R).toEqual({
      GET_FEATURES: 1,
      SET_FEATURES: 2,
      SET_OWNER: 3,
      RESET_OWNER: 4,
      SET_MEM_TABLE: 5,
      SET_VRING_NUM: 8,
      SET_VRING_ADDR: 9,
      SET_VRING_BASE: 10,
      GET_VRING_BASE: 11,
      SET_VRING_KICK: 12,
      SET_VRING_CALL: 13,
      GET_PROTOCOL_FEATURES: 15,
      SET_PROTOCOL_FEATURES: 16,
      GET_QUEUE_NUM: 17,
      SET_VRING_ENABLE: 18,
      GET_CONFIG: 24,
    });
    expect(VhostUserFlag).toMatchObject({ VERSION: 1, VERSION_MASK: 3, REPLY: 4, NEED_REPLY: 8 });
    expect(HEADER_SIZE).toBe(12);
    expect(requestName(R.GET_VRING_BASE)).toBe("VHOST_USER_GET_VRING_BASE");
    expect(requestName(99)).toBe("request 99");
  });

  it("requests without payload: GET_FEATURES, SET_OWNER, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, RESET_OWNER", () => {
    const m = new MessageBuffer();
    for (const r of [R.GET_FEATURES, R.SET_OWNER, R.GET_PROTOCOL_FEATURES, R.GET_QUEUE_NUM, R.RESET_OWNER]) {
      expect(Buffer.from(m.empty(r))).toEqual(message(r, V, Buffer.alloc(0)));
    }
    expect(Buffer.from(m.empty(R.SET_OWNER, ACK))).toEqual(message(R.SET_OWNER, 9, Buffer.alloc(0)));
  });

  it("a u64 payload: SET_FEATURES, SET_PROTOCOL_FEATURES, SET_VRING_KICK and SET_VRING_CALL (index | 0x100 without fd)", () => {
    const m = new MessageBuffer();
    const features = (1n << 32n) | (1n << 30n) | (1n << 5n);
    expect(Buffer.from(m.u64(R.SET_FEATURES, features, ACK))).toEqual(message(2, 9, u64(features)));
    expect(Buffer.from(m.u64(R.SET_PROTOCOL_FEATURES, 0x209n))).toEqual(message(16, 1, u64(0x209n)));
    expect(Buffer.from(m.u64(R.SET_VRING_KICK, 1n))).toEqual(message(12, 1, u64(1n)));
    expect(Buffer.from(m.u64(R.SET_VRING_CALL, BigInt(1 | VRING_NOFD)))).toEqual(message(13, 1, u64(0x101n)));
    // All 64 bits survive.
    expect(Buffer.from(m.u64(R.SET_FEATURES, 0xfedcba9876543210n))).toEqual(message(2, 1, u64(0xfedcba9876543210n)));
  });

  it("a vring state {u32 index, u32 num}: SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE, GET_VRING_BASE", () => {
    const m = new MessageBuffer();
    expect(Buffer.from(m.state(R.SET_VRING_NUM, 1, 256, ACK))).toEqual(message(8, 9, state(1, 256)));
    expect(Buffer.from(m.state(R.SET_VRING_BASE, 0, 0))).toEqual(message(10, 1, state(0, 0)));
    expect(Buffer.from(m.state(R.SET_VRING_ENABLE, 1, 1))).toEqual(message(18, 1, state(1, 1)));
    expect(Buffer.from(m.state(R.GET_VRING_BASE, 1, 0))).toEqual(message(11, 1, state(1, 0)));
  });

  it("a vring address {u32 index, u32 flags, u64 desc, u64 used, u64 avail, u64 log}: SET_VRING_ADDR, 40 bytes", () => {
    const m = new MessageBuffer();
    const desc = 0x7f12_3456_7000;
    const p = Buffer.alloc(40);
    p.writeUInt32LE(1, 0);
    p.writeUInt32LE(0, 4);
    p.writeBigUInt64LE(BigInt(desc), 8);
    p.writeBigUInt64LE(BigInt(desc + 0x2000), 16); // used
    p.writeBigUInt64LE(BigInt(desc + 0x1000), 24); // avail
    p.writeBigUInt64LE(0n, 32); // log
    const bytes = m.addr(R.SET_VRING_ADDR, 1, 0, { desc, used: desc + 0x2000, avail: desc + 0x1000, log: 0 }, ACK);
    expect(Buffer.from(bytes)).toEqual(message(9, 9, p));
  });

  it("a memory table {u32 nregions, u32 padding, nregions x {guest, size, user, mmap offset}}: SET_MEM_TABLE", () => {
    const m = new MessageBuffer();
    const regions = [
      { guestAddress: 0x1_0000_0000, size: 0x40_0000, userAddress: 0x7f00_0020_0000, mmapOffset: 0 },
      { guestAddress: 0x1_0040_0000, size: 0x20_0000, userAddress: 0x7f00_1000_0000, mmapOffset: 0x1000 },
    ];
    const p = Buffer.alloc(8 + 2 * 32);
    p.writeUInt32LE(2, 0);
    regions.forEach((r, i) => {
      const at = 8 + 32 * i;
      p.writeBigUInt64LE(BigInt(r.guestAddress), at);
      p.writeBigUInt64LE(BigInt(r.size), at + 8);
      p.writeBigUInt64LE(BigInt(r.userAddress), at + 16);
      p.writeBigUInt64LE(BigInt(r.mmapOffset), at + 24);
    });
    expect(Buffer.from(m.memTable(R.SET_MEM_TABLE, regions, ACK))).toEqual(message(5, 9, p));
    // Eight regions, the most a table holds, fit; a ninth does not.
    const eight = Array.from({ length: 8 }, (_, i) => ({ ...regions[0]!, guestAddress: 0x1_0000_0000 + i * 0x40_0000 }));
    expect(m.memTable(R.SET_MEM_TABLE, eight).length).toBe(12 + 8 + 8 * 32);
    expect(() => m.memTable(R.SET_MEM_TABLE, [...eight, regions[1]!])).toThrow(RangeError);
  });

  it("a config space request {u32 offset, u32 size, u32 flags, size bytes}: GET_CONFIG", () => {
    const m = new MessageBuffer();
    const p = Buffer.alloc(12 + 6);
    p.writeUInt32LE(0, 0);
    p.writeUInt32LE(6, 4);
    p.writeUInt32LE(0, 8);
    expect(Buffer.from(m.config(R.GET_CONFIG, 0, 6, 0))).toEqual(message(24, 1, p));
  });

  it("decodes a reply received into the buffer: header, u64, vring state, config data", () => {
    const m = new MessageBuffer();
    const put = (b: Buffer) => m.bytes.set(b);
    put(message(R.GET_FEATURES, 5, u64(0x1_4000_0020n)));
    expect([m.request, m.flags, m.size, m.payloadU64]).toEqual([1, 5, 8, 0x1_4000_0020n]);
    put(message(R.GET_VRING_BASE, 5, state(1, 0xbeef)));
    expect([m.request, m.size, m.stateIndex, m.stateNum]).toEqual([11, 8, 1, 0xbeef]);
    const cfg = Buffer.alloc(12 + 2);
    cfg.writeUInt32LE(6, 0);
    cfg.writeUInt32LE(2, 4);
    cfg[12] = 1;
    put(message(R.GET_CONFIG, 5, cfg));
    expect([m.configOffset, m.configSize, ...m.configData(2)]).toEqual([6, 2, 1, 0]);
  });
});
