/**
 * Flow Director perfect filters end to end: the driver (ixgbe-fdir.ts) programs the table, the
 * 82599 model (model-fdir.ts), which steers by nothing but what is in its registers, hashes each
 * frame itself and sends it where the matching filter says, ahead of RSS.
 */
import { describe, expect, it, vi } from "vitest";
import { newStats, type FlowMatch, type NicDevice } from "../../src/device.ts";
import { FDIR_MAX_RULES, fdirBucketHash } from "../../src/drivers/ixgbe/ixgbe-fdir.ts";
import type { IxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { DeviceClosedError, FlowTableFullError, NotSupportedError } from "../../src/errors.ts";
import { copyFrame } from "../../src/mem/packet.ts";
import { freeBuffer } from "../../src/mem/mempool.ts";
import * as M from "../../src/sim/ixgbe/model-registers.ts";
import * as F from "../../src/sim/ixgbe/model-fdir.ts";
import type { SimMmio } from "../../src/sim/sim-mmio.ts";
import { toeplitzHash } from "../../src/sim/ixgbe/toeplitz.ts";
import { allowViolations, openSimPort } from "./helpers.ts";
import { MS_RSS_KEY, flowFrame, ipv4Bytes, type Flow } from "./rss-frames.ts";

/** Every frame waiting in each receive queue, in order. */
function drain(dev: NicDevice, queues: number): Uint8Array[][] {
  const bufs = new Int32Array(32);
  const out: Uint8Array[][] = [];
  for (let q = 0; q < queues; q++) {
    const got: Uint8Array[] = [];
    for (let n = dev.rxBatch(q, bufs, 32); n > 0; n = dev.rxBatch(q, bufs, 32)) {
      for (let i = 0; i < n; i++) {
        got.push(copyFrame(bufs[i]!));
        freeBuffer(bufs[i]!);
      }
    }
    out.push(got);
  }
  return out;
}

function rssQueue(flow: Flow, queues: number): number {
  const input = Uint8Array.from([...ipv4Bytes(flow.src), ...ipv4Bytes(flow.dst), flow.sport >>> 8, flow.sport & 0xff,
    flow.dport >>> 8, flow.dport & 0xff]);
  return (toeplitzHash(MS_RSS_KEY, input) & 0x7f) % queues;
}

const udp = (dst: string, dport: number, src = "192.168.1.1", sport = 4000): Flow => ({ v6: false, protocol: "udp", src, dst, sport, dport });

function openFdir(rxQueues = 4) {
  const port = openSimPort({ rxQueues, txQueues: 1, rssKey: MS_RSS_KEY, flowDirector: true });
  return { ...port, ixgbe: port.dev as IxgbeDevice };
}

describe("ixgbe Flow Director (datasheet 7.1.2.7)", () => {
  it("is off by default: the packet buffer stays whole, FDIRCTRL 0, and rules are refused with advice", () => {
    const { model, dev } = openSimPort({ rxQueues: 2 });
    expect(model.regs.peek32(M.RXPBSIZE(0)) >>> M.RXPBSIZE_SHIFT).toBe(512);
    expect(model.regs.peek32(F.FDIRCTRL)).toBe(0);
    expect(() => dev.addFlowRule({ proto: "udp", dst: "10.0.0.2" }, 1)).toThrow(NotSupportedError);
    expect(() => dev.addFlowRule({ proto: "udp", dst: "10.0.0.2" }, 1)).toThrow(/flowDirector: true/);
    expect(() => dev.removeFlowRule(1)).toThrow(NotSupportedError);
    expect(dev.offloads.flowDirector).toBe(false);
  });

  it("reports itself in NicDevice.offloads", () => {
    expect(openFdir().dev.offloads.flowDirector).toBe(true);
  });

  it("takes 64 KB of the receive packet buffer and initialises a perfect-match table of 2047 filters", () => {
    const { model } = openFdir();
    const regs = model.regs;
    expect(regs.peek32(M.RXPBSIZE(0)) >>> M.RXPBSIZE_SHIFT).toBe(448);
    for (let i = 1; i < 8; i++) expect(regs.peek32(M.RXPBSIZE(i))).toBe(0);
    const ctrl = regs.read32(F.FDIRCTRL);
    expect(ctrl & 0x3).toBe(1); // PBALLOC 64K
    expect(ctrl & (1 << 4)).not.toBe(0); // PERFECT_MATCH
    expect(ctrl & (1 << 3)).not.toBe(0); // INIT_DONE
    expect((ctrl >>> 8) & 0x7f).toBe(127); // drop queue: never enabled
    expect(regs.read32(F.FDIRFREE) & 0xffff).toBe(FDIR_MAX_RULES);
    expect(regs.peek32(F.FDIRHKEY)).toBe(0x3dad14e2);
  });

  it("steers the flows of its rules to their queues ahead of RSS, every other frame by RSS, byte-exact", () => {
    const { model, dev } = openFdir(4);
    const ruled = [udp("10.0.0.2", 5000), udp("10.0.0.3", 5001), udp("10.0.0.2", 5002)];
    // Each rule's queue is one RSS would not pick, so that only Flow Director can put them there.
    const targets = ruled.map((f) => (rssQueue(f, 4) + 1) % 4);
    for (const [i, f] of ruled.entries()) dev.addFlowRule({ proto: "udp", dst: f.dst, dstPort: f.dport }, targets[i]!);
    expect(model.fdirFilters).toBe(3);
    // Other flows: same address other port, other address same port, TCP to a ruled address and port.
    const others: Flow[] = [udp("10.0.0.2", 5003), udp("10.0.0.9", 5000), { ...udp("10.0.0.2", 5000), protocol: "tcp" }, udp("10.1.2.3", 80)];
    const expected: Uint8Array[][] = [[], [], [], []];
    for (let seq = 0; seq < 40; seq++) {
      const ruledFlow = seq % 2 === 0;
      const k = Math.floor(seq / 2) % (ruledFlow ? ruled.length : others.length);
      const flow = ruledFlow ? ruled[k]! : others[k]!;
      // Different source ports: the rules ignore them, RSS does not.
      const frame = flowFrame({ ...flow, sport: 4000 + seq }, seq, 20 + seq);
      expect(model.inject(frame)).toBe(true);
      expected[ruledFlow ? targets[k]! : rssQueue({ ...flow, sport: 4000 + seq }, 4)]!.push(frame);
    }
    const got = drain(dev, 4);
    for (let q = 0; q < 4; q++) expect(got[q]!.map((f) => Buffer.from(f).toString("hex"))).toEqual(expected[q]!.map((f) => Buffer.from(f).toString("hex")));
    expect(model.fdirCounters.rxFdirMatched).toBe(20);
    expect(model.fdirCounters.rxFdirMissed).toBe(20);
  });

  it("matches TCP rules on both ports and the source address: other ports and sources go by RSS", () => {
    const { model, dev } = openFdir(4);
    const flow: Flow = { v6: false, protocol: "tcp", src: "172.16.0.5", dst: "10.0.0.2", sport: 40000, dport: 443 };
    const target = (rssQueue(flow, 4) + 3) % 4;
    dev.addFlowRule({ proto: "tcp", src: flow.src, srcPort: flow.sport, dstPort: flow.dport }, target);
    const near: Flow[] = [{ ...flow, sport: 40001 }, { ...flow, dport: 444 }, { ...flow, src: "172.16.0.6" }, { ...flow, protocol: "udp" }];
    const expected: Uint8Array[][] = [[], [], [], []];
    for (const [i, f] of [flow, ...near, { ...flow, dst: "10.9.9.9" }].entries()) {
      const frame = flowFrame(f, i);
      expect(model.inject(frame)).toBe(true);
      // The rule does not look at the destination address: the last one matches too.
      expected[i === 0 || i === 5 ? target : rssQueue(f, 4)]!.push(frame);
    }
    const got = drain(dev, 4);
    for (let q = 0; q < 4; q++) expect(got[q]!.map((f) => Buffer.from(f).toString("hex"))).toEqual(expected[q]!.map((f) => Buffer.from(f).toString("hex")));
  });

  it("drops the frames of a drop rule, counts them as matched (not as missed), and lets the rest through", () => {
    const { model, dev, ixgbe } = openFdir(2);
    const id = dev.addFlowRule({ proto: "udp", src: "192.168.1.1", dst: "10.0.0.2" }, "drop");
    expect(id).toBeGreaterThan(0);
    for (let seq = 0; seq < 10; seq++) expect(model.inject(flowFrame(udp("10.0.0.2", 7000 + seq), seq))).toBe(false);
    expect(model.inject(flowFrame(udp("10.0.0.4", 7000), 99))).toBe(true);
    expect(model.inject(flowFrame(udp("10.0.0.2", 7000, "192.168.1.2"), 98))).toBe(true);
    expect(model.fdirCounters.rxFdirDropped).toBe(10);
    expect(ixgbe.flowDirectorCounters()).toEqual({ matched: 10, missed: 2, rules: 1 });
    const stats = newStats();
    dev.readStats(stats);
    expect(stats.rxMissed).toBe(0);
    expect(drain(dev, 2).flat()).toHaveLength(2);
  });

  it("removes a rule: its flow goes back to RSS, the id is gone, and the table has room again", () => {
    const { model, dev } = openFdir(4);
    const flow = udp("10.0.0.7", 9000);
    const target = (rssQueue(flow, 4) + 2) % 4;
    const id = dev.addFlowRule({ proto: "udp", dst: flow.dst, dstPort: flow.dport }, target);
    const other = dev.addFlowRule({ proto: "udp", dst: "10.0.0.8", dstPort: 9000 }, 0);
    model.inject(flowFrame(flow, 1));
    dev.removeFlowRule(id);
    expect(model.fdirFilters).toBe(1);
    expect(model.regs.read32(F.FDIRFREE) & 0xffff).toBe(FDIR_MAX_RULES - 1);
    model.inject(flowFrame(flow, 2));
    const got = drain(dev, 4);
    expect(got[target]!.map((f) => f[f.length - 1])).toHaveLength(1);
    expect(got[rssQueue(flow, 4)]).toHaveLength(1);
    expect(() => dev.removeFlowRule(id)).toThrow(RangeError);
    dev.removeFlowRule(other);
    expect(model.fdirFilters).toBe(0);
    // With the table empty the masks may change: a rule on other fields is fine now.
    dev.addFlowRule({ proto: "tcp", src: "10.9.9.9" }, 1);
    expect(model.fdirFilters).toBe(1);
  });

  it("holds 2047 rules; the next one is a FlowTableFullError that changes nothing; after a remove it fits", () => {
    const { model, dev } = openFdir(2);
    const ids: number[] = [];
    for (let i = 0; i < FDIR_MAX_RULES; i++) ids.push(dev.addFlowRule({ proto: "udp", dst: `10.${i >>> 8}.${i & 0xff}.1`, dstPort: 53 }, i & 1));
    expect(model.fdirFilters).toBe(FDIR_MAX_RULES);
    expect(() => dev.addFlowRule({ proto: "udp", dst: "10.200.0.1", dstPort: 53 }, 0)).toThrow(FlowTableFullError);
    expect(model.fdirFilters).toBe(FDIR_MAX_RULES);
    expect(model.regs.read32(F.FDIRFSTAT) & 0xff).toBe(0); // the driver did not even try
    dev.removeFlowRule(ids[100]!);
    dev.addFlowRule({ proto: "udp", dst: "10.200.0.1", dstPort: 53 }, 1);
    // Every rule still steers: the last and a middle one.
    expect(model.inject(flowFrame(udp("10.200.0.1", 53), 1))).toBe(true);
    expect(model.inject(flowFrame(udp("10.7.208.1", 53), 2))).toBe(true); // i = 2000: queue 0
    const got = drain(dev, 2);
    expect(got[1]).toHaveLength(1);
    expect(got[0]).toHaveLength(1);
  });

  it("keeps rules whose bucket hashes collide apart: both in one bucket, each flow to its own queue", () => {
    const { model, dev } = openFdir(4);
    // Two destination addresses (udp, dst + dstPort 53 compared) whose filters land in one bucket.
    const bucketOf = (a: number): number => fdirBucketHash(0x3dad14e2, 1 << 16, (a ^ 53) >>> 0);
    const seen = new Map<number, number>();
    let pair: [number, number] | null = null;
    for (let a = 0x0a000001; pair === null; a++) {
      const b = bucketOf(a);
      const other = seen.get(b);
      if (other !== undefined) pair = [other, a];
      else seen.set(b, a);
    }
    const dotted = (a: number): string => [a >>> 24, (a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff].join(".");
    const [x, y] = pair.map(dotted) as [string, string];
    dev.addFlowRule({ proto: "udp", dst: x, dstPort: 53 }, 1);
    dev.addFlowRule({ proto: "udp", dst: y, dstPort: 53 }, 2);
    expect(model.regs.read32(F.FDIRLEN) & 0x3f).toBe(2); // the longest bucket holds both
    model.inject(flowFrame(udp(x, 53), 1));
    model.inject(flowFrame(udp(y, 53), 2));
    const got = drain(dev, 4);
    expect(got[1]!.map((f) => Buffer.from(f.subarray(30, 34)).join("."))).toEqual([x]);
    expect(got[2]!.map((f) => Buffer.from(f.subarray(30, 34)).join("."))).toEqual([y]);
  });

  it("refuses bad rules with typed errors before touching the device", () => {
    const { model, dev } = openFdir(4);
    dev.addFlowRule({ proto: "udp", dst: "10.0.0.2", dstPort: 5000 }, 1);
    const regs = model.regs;
    // FDIRUSTAT and FDIRFSTAT clear on read: from here on they count every add the device ran.
    regs.read32(F.FDIRUSTAT);
    regs.read32(F.FDIRFSTAT);
    const before = regs.peek32(F.FDIRCMD);
    const bad: [FlowMatch, number | "drop", new (...args: never[]) => Error][] = [
      [{ proto: "udp", dst: "10.0.0.3", dstPort: 5000 }, 4, RangeError],
      [{ proto: "udp", dst: "10.0.0.3", dstPort: 5000 }, -1, RangeError],
      [{ proto: "udp", dst: "10.0.0.3", dstPort: 5000 }, 1.5, RangeError],
      [{ proto: "udp", dst: "10.0.0.256", dstPort: 5000 }, 1, RangeError],
      [{ proto: "udp", dst: "10.0.0", dstPort: 5000 }, 1, RangeError],
      [{ proto: "udp", dst: "010.0.0.1", dstPort: 5000 }, 1, RangeError],
      [{ proto: "udp", dst: "2001:db8::1", dstPort: 5000 }, 1, NotSupportedError],
      [{ proto: "udp", dst: "10.0.0.3", dstPort: 70000 }, 1, RangeError],
      [{ proto: "udp", dst: "10.0.0.3", dstPort: -1 }, 1, RangeError],
      [{ proto: "icmp" as "ip", dst: "10.0.0.3" }, 1, RangeError],
      [{ proto: "sctp", dst: "10.0.0.3", dstPort: 5000 }, 1, NotSupportedError],
      [{ proto: "ip", dst: "10.0.0.3", dstPort: 5000 }, 1, NotSupportedError],
      // Other fields than the rule in place: the 82599 has one mask for all rules.
      [{ proto: "udp", dst: "10.0.0.3" }, 1, NotSupportedError],
      [{ proto: "udp", src: "10.0.0.3", dst: "10.0.0.3", dstPort: 1 }, 1, NotSupportedError],
      // The same frames as the rule in place.
      [{ proto: "udp", dst: "10.0.0.2", dstPort: 5000 }, 2, RangeError],
    ];
    for (const [match, action, type] of bad) {
      expect(() => dev.addFlowRule(match, action), JSON.stringify(match) + " -> " + String(action)).toThrow(type);
    }
    expect(regs.peek32(F.FDIRCMD)).toBe(before);
    expect(model.fdirFilters).toBe(1);
    expect(regs.read32(F.FDIRUSTAT)).toBe(0);
    expect(regs.read32(F.FDIRFSTAT)).toBe(0);
    expect(() => dev.removeFlowRule(12345)).toThrow(RangeError);
    expect(model.fdirFilters).toBe(1);
  });

  it("after close: DeviceClosedError", () => {
    const { dev } = openFdir(2);
    dev.close();
    expect(() => dev.addFlowRule({ proto: "udp", dst: "10.0.0.2" }, 0)).toThrow(DeviceClosedError);
    expect(() => dev.removeFlowRule(1)).toThrow(DeviceClosedError);
  });
});

describe("82599 model Flow Director strictness", () => {
  /** Programs one filter by hand: udp to `dst`, all but dst masked, with bucket hash `hash`. */
  function program(regs: SimMmio, dst: number, hash: number, queue: number): void {
    regs.write32(F.FDIRM, 0x3f); // VLAN, pool, L4 type, flex, IPv6 masked: only the addresses count
    regs.write32(F.FDIRSIP4M, 0xffffffff);
    regs.write32(F.FDIRDIP4M, 0);
    regs.write32(F.FDIRTCPM, 0xffffffff);
    regs.write32(F.FDIRUDPM, 0xffffffff);
    regs.write32(F.FDIRIPDA, ((dst >>> 24) | ((dst >>> 8) & 0xff00) | ((dst & 0xff00) << 8) | (dst << 24)) >>> 0);
    regs.write32(F.FDIRIPSA, 0);
    regs.write32(F.FDIRPORT, 0);
    regs.write32(F.FDIRHASH, (hash | (7 << 16)) >>> 0);
    regs.write32(F.FDIRCMD, (1 | (1 << 11) | (1 << 15) | (queue << 16)) >>> 0);
    for (let i = 0; i < 3 && (regs.read32(F.FDIRCMD) & 3) !== 0; i++);
  }
  const DST = 0x0a000002; // 10.0.0.2

  it("a filter written with the wrong bucket hash never matches; with the right one it does", () => {
    const { model, dev } = openSimPort({ rxQueues: 4, rssKey: MS_RSS_KEY, flowDirector: true });
    const right = fdirBucketHash(0x3dad14e2, 0, DST);
    expect(right).toBe(F.perfectBucketHash(0x3dad14e2, 0, DST));
    const flow = udp("10.0.0.2", 1234);
    const target = (rssQueue(flow, 4) + 1) % 4;
    program(model.regs, DST, (right + 1) & 0x1fff, target);
    model.inject(flowFrame(flow, 1));
    expect(model.fdirCounters.rxFdirMatched).toBe(0);
    program(model.regs, DST, right, target);
    model.inject(flowFrame(flow, 2));
    expect(model.fdirCounters.rxFdirMatched).toBe(1);
    const got = drain(dev, 4);
    expect(got[target]).toHaveLength(1);
    expect(got[rssQueue(flow, 4)]).toHaveLength(1);
  });

  it("the same fields under a second index in one bucket are a collision: the add fails and is counted", () => {
    const { model } = openSimPort({ rxQueues: 2, flowDirector: true });
    const regs = model.regs;
    const hash = F.perfectBucketHash(0x3dad14e2, 0, DST);
    program(regs, DST, hash, 1);
    expect(model.fdirFilters).toBe(1);
    regs.read32(F.FDIRUSTAT);
    // Index 8 this time, same bucket, same fields.
    regs.write32(F.FDIRHASH, (hash | (8 << 16)) >>> 0);
    regs.write32(F.FDIRCMD, (1 | (1 << 11) | (1 << 15) | (1 << 16)) >>> 0);
    regs.read32(F.FDIRCMD); // completes
    expect(regs.read32(F.FDIRCMD) & (1 << 12)).not.toBe(0); // COLLISION
    expect(model.fdirFilters).toBe(1);
    expect(regs.read32(F.FDIRFSTAT) & 0xff).toBe(1);
    expect(regs.read32(F.FDIRFREE) >>> 16).toBe(1);
    expect(regs.read32(F.FDIRUSTAT) & 0xffff).toBe(0);
  });

  it("a filter programmed before INIT_DONE was seen does not exist, and that is a violation", () => {
    const { model } = openSimPort({ rxQueues: 2 });
    allowViolations(model);
    const regs = model.regs;
    regs.write32(M.RXPBSIZE(0), 448 << M.RXPBSIZE_SHIFT);
    regs.write32(F.FDIRHKEY, 0x3dad14e2);
    regs.write32(F.FDIRCTRL, 0x1 | (1 << 4) | (127 << 8)); // no poll of INIT_DONE
    program(regs, DST, F.perfectBucketHash(0x3dad14e2, 0, DST), 1);
    expect(model.fdirFilters).toBe(0);
    expect(model.violations.some((v) => v.includes("before FDIRCTRL.INIT_DONE"))).toBe(true);
  });

  it("refuses to initialise over a packet buffer that was not made smaller", () => {
    const { model } = openSimPort({ rxQueues: 2 });
    allowViolations(model);
    const regs = model.regs;
    regs.write32(F.FDIRCTRL, 0x1 | (1 << 4) | (127 << 8));
    for (let i = 0; i < 3; i++) expect(regs.read32(F.FDIRCTRL) & (1 << 3)).toBe(0);
    expect(model.violations.some((v) => v.includes("reduce RXPBSIZE(0)"))).toBe(true);
  });

  it("a command written while the previous one is pending is ignored, and masks changed under filters are a violation", () => {
    const { model, dev } = openSimPort({ rxQueues: 2, flowDirector: true });
    allowViolations(model);
    dev.addFlowRule({ proto: "udp", dst: "10.0.0.2" }, 1);
    const regs = model.regs;
    regs.write32(F.FDIRHASH, 5 << 16);
    regs.write32(F.FDIRCMD, 1 | (1 << 15));
    regs.write32(F.FDIRHASH, 6 << 16); // not polled: ignored
    regs.write32(F.FDIRCMD, 1 | (1 << 15));
    expect(model.violations.some((v) => v.includes("pending"))).toBe(true);
    regs.read32(F.FDIRCMD);
    expect(model.fdirFilters).toBe(2);
    regs.write32(F.FDIRDIP4M, 0xffffffff);
    expect(model.violations.some((v) => v.includes("changed while the table holds"))).toBe(true);
  });

  it("a command that completes while the driver is descheduled past its deadline is not a timeout", () => {
    // The model completes a command on the second FDIRCMD read. Here the clock jumps 50 ms
    // during every FDIRCMD read, as if the thread lost the CPU right then: a driver that reads
    // the clock after the register would give up on a command the device has done.
    const { model, dev } = openFdir(2);
    const inner = model.regs.readHookAt(F.FDIRCMD)!;
    let skew = 0;
    const now = performance.now.bind(performance);
    const spy = vi.spyOn(performance, "now").mockImplementation(() => now() + skew);
    model.regs.onRead(F.FDIRCMD, (offset, width) => {
      const v = inner(offset, width);
      skew += 50;
      return v;
    });
    try {
      const id = dev.addFlowRule({ proto: "udp", dst: "10.0.0.2", dstPort: 5000 }, 1);
      expect(model.fdirFilters).toBe(1);
      dev.removeFlowRule(id);
      expect(model.fdirFilters).toBe(0);
    } finally {
      spy.mockRestore();
      model.regs.onRead(F.FDIRCMD, inner);
    }
  });

  it("a command whose first poll comes after the deadline is done, not a timeout (the device took microseconds)", () => {
    // The thread loses the CPU between the FDIRCMD write and its first poll: every clock read
    // jumps 50 ms, so the driver's first look is already past its 10 ms deadline. The real
    // 82599 finished long before; the model must say so, or a loaded machine fails a done add.
    const { model, dev } = openFdir(2);
    let skew = 0;
    const now = performance.now.bind(performance);
    const spy = vi.spyOn(performance, "now").mockImplementation(() => now() + (skew += 50));
    try {
      const id = dev.addFlowRule({ proto: "udp", dst: "10.0.0.2", dstPort: 5000 }, 1);
      expect(model.fdirFilters).toBe(1);
      dev.removeFlowRule(id);
      expect(model.fdirFilters).toBe(0);
    } finally {
      spy.mockRestore();
    }
    expect(model.violations).toEqual([]);
  });
});
