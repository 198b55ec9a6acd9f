/**
 * The soak (issue 12.7): frames of mixed sizes forwarded through model ports of both drivers
 * for a long time, with faults injected at random from the models' fault modes, checked pools,
 * and at the end an exact account of every buffer.
 *
 * Lanes: a forwarder loop rxBatch(A) -> txBatch(B) per lane, all on one SimDma so that buffers
 * cross drivers: ixgbe -> ixgbe, virtio modern -> virtio legacy, ixgbe -> virtio modern,
 * virtio modern -> ixgbe. Then a vhost-user lane (vhost-user-lane.ts): the virtio driver over
 * vhost-user against the model backend in a child process, in loopback. Per lane, frames carry a lane number and a sequence number; what B
 * puts on its wire must come in strictly increasing order (order within a queue; gaps are
 * drops, counted), never twice, with the length the sequence number gives, and every SAMPLE-th
 * frame carries a full payload pattern that must arrive byte for byte.
 *
 * Faults: FAULTS is a table, one line per fault mode of a model; a new mode is a new line.
 * At random moments one fault is switched on at one port of a lane, for a random number of
 * rounds, then off. A fault may cost frames (counted as drops) but never a buffer, an order,
 * a byte, or the run.
 *
 * End: faults off, the rings drained, devices closed; then every buffer of every pool on the
 * SimDma must be in its pool (checked pools: and marked home), which is what "0 lost" means.
 *
 * Used by scripts/soak.ts (npm run soak, 100 million frames by default) and, short, by
 * test/soak/soak.test.ts in npm test. No vitest here: it must run under plain tsx.
 */
import type { NicDevice } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { bufHome, ownerOf, poolStacks, poolTop, ROWS_IN_USE, tableState } from "../../src/mem/buffer-table.ts";
import { freeBuffers, Mempool } from "../../src/mem/mempool.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { prng } from "../helpers/prng.ts";
import { runVhostUserLane, type VhostUserLaneResult } from "./vhost-user-lane.ts";

/** One model port: the device, its model, and how to feed and step it. */
export interface SoakPort {
  readonly kind: "ixgbe" | "virtio-modern" | "virtio-legacy";
  readonly dev: NicDevice;
  readonly ixgbe: Ixgbe82599Model | null;
  readonly virtio: VirtioNetModel | null;
  /** A frame arrives from the wire; false when the device dropped it. */
  inject(frame: Uint8Array): boolean;
  /** Lets the model do pending work (virtio: the device side of the rings). */
  step(): void;
}

/**
 * The fault modes, one line each: which ports it applies to, how to switch it on and off.
 * Faults of init (refused features) are not here: failed-init.test.ts covers them.
 */
export interface FaultMode {
  readonly name: string;
  readonly applies: (port: SoakPort) => boolean;
  readonly on: (port: SoakPort) => void;
  readonly off: (port: SoakPort) => void;
}

const isVirtio = (p: SoakPort) => p.virtio !== null;
const isIxgbe = (p: SoakPort) => p.ixgbe !== null;

export const FAULTS: readonly FaultMode[] = [
  { name: "ixgbe link flap", applies: isIxgbe, on: (p) => p.ixgbe!.setLink(false), off: (p) => p.ixgbe!.setLink(true) },
  { name: "virtio link flap", applies: isVirtio, on: (p) => p.virtio!.setLink(false), off: (p) => p.virtio!.setLink(true) },
  { name: "virtio stall", applies: isVirtio, on: (p) => (p.virtio!.faults.stall = true), off: (p) => { p.virtio!.faults.stall = false; p.virtio!.poll(); } },
  { name: "virtio bad used length", applies: isVirtio, on: (p) => (p.virtio!.faults.badUsedLength = true), off: (p) => (p.virtio!.faults.badUsedLength = false) },
  { name: "virtio bad used id", applies: isVirtio, on: (p) => (p.virtio!.faults.badUsedId = true), off: (p) => (p.virtio!.faults.badUsedId = false) },
];

export interface SoakOptions {
  /** Frames offered in all (default 100 million). */
  readonly frames?: number;
  readonly seed?: number;
  /** One frame in SAMPLE carries a payload pattern checked byte for byte (default 64). */
  readonly sample?: number;
  /** Probability per round that a fault starts (default 0.01). */
  readonly faultRate?: number;
  /** Fault modes to use (default FAULTS). */
  readonly faults?: readonly FaultMode[];
  /**
   * Frames for the vhost-user lane (the virtio driver against the model backend in a child
   * process, loopback), on top of `frames`; default frames / 100 (the lane runs at about 1/5
   * of the model lanes' rate: every frame crosses to another process and back); 0: none.
   */
  readonly vhostUserFrames?: number;
  /** Called about once a second with the frames offered so far. */
  readonly progress?: (offered: number, elapsedMs: number) => void;
}

export interface SoakResult {
  readonly offered: number;
  readonly delivered: number;
  readonly forwarded: number;
  readonly received: number;
  readonly checkedBytes: number;
  readonly faultsInjected: number;
  readonly faultsByMode: Record<string, number>;
  /** The vhost-user lane (null: not run). */
  readonly vhostUser: VhostUserLaneResult | null;
  /** Per lane: "a -> b: received/offered". */
  readonly lanes: readonly string[];
  readonly buffersLost: number;
  readonly buffersTotal: number;
  readonly problems: readonly string[];
  readonly elapsedMs: number;
}

const MAX_FRAME = 1514;
const BATCH = 32;

/** The length of frame `seq` of lane `lane`: 60 (40%), 1514 (20%), or anything between. */
function frameLength(lane: number, seq: number): number {
  let h = Math.imul(seq ^ (lane << 24), 0x9e3779b1) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b) >>> 0;
  const pick = h % 10;
  if (pick < 4) return 60;
  if (pick < 6) return MAX_FRAME;
  return 61 + ((h >>> 8) % (MAX_FRAME - 61));
}

/** Byte i of a sampled frame's payload (after the 20-byte header). */
const patternByte = (seq: number, i: number) => (seq * 131 + i * 7 + (i >>> 8)) & 0xff;

function writeHeader(frame: Uint8Array, lane: number, seq: number): void {
  frame.fill(0xff, 0, 6); // broadcast: every model accepts it
  frame.set([0x02, 0, 0, 0, 0, lane], 6);
  frame[12] = 0x88; // a local experimental EtherType
  frame[13] = 0xb5;
  frame[14] = lane;
  frame[15] = seq >>> 24;
  frame[16] = (seq >>> 16) & 0xff;
  frame[17] = (seq >>> 8) & 0xff;
  frame[18] = seq & 0xff;
  frame[19] = 0;
}

function openPort(kind: SoakPort["kind"], dma: SimDma, name: string): SoakPort {
  const options = { rxRingSize: 256, txRingSize: 256, mempoolSize: 1024, checked: true, linkTimeoutMs: 1000 };
  if (kind === "ixgbe") {
    const model = new Ixgbe82599Model({ dma, address: `sim:${name}` });
    const dev = createIxgbeDevice(model.pci, dma, options);
    return { kind, dev, ixgbe: model, virtio: null, inject: (f) => model.inject(f, 0), step: () => {} };
  }
  const model = new VirtioNetModel({ dma, legacy: kind === "virtio-legacy", address: `sim:${name}`, queueSize: 256 });
  const dev = createVirtioDevice(model.pci, dma, options);
  return { kind, dev, ixgbe: null, virtio: model, inject: (f) => model.inject(f), step: () => model.poll() };
}

interface Lane {
  readonly index: number;
  readonly a: SoakPort;
  readonly b: SoakPort;
  nextSeq: number;
  lastSeen: number;
  received: number;
}

interface ActiveFault {
  readonly mode: FaultMode;
  readonly port: SoakPort;
  roundsLeft: number;
}

/** Every live mempool whose memory is `dma`'s (the drivers' receive pools and ours). */
function poolsOn(dma: SimDma): Mempool[] {
  const pools: Mempool[] = [];
  const end = tableState[ROWS_IN_USE]!;
  for (let b = 0; b < end;) {
    const owner = ownerOf(b);
    if (owner instanceof Mempool) {
      const { iova, size, bytes } = owner.region;
      if (!owner.dead && dma.contains(iova, size) && dma.resolve(iova, size).buffer === bytes.buffer) pools.push(owner);
      b = owner.first + owner.count;
    } else b++;
  }
  return pools;
}

/** Buffers not in their pool (or, in a checked pool, in it but not marked home, or the reverse). */
function lostBuffers(pools: readonly Mempool[]): { lost: number; total: number; problems: string[] } {
  let lost = 0;
  let total = 0;
  const problems: string[] = [];
  for (const pool of pools) {
    total += pool.count;
    const top = poolTop[pool.id]!;
    lost += pool.count - top;
    const stack = poolStacks[pool.id]!;
    const seen = new Set<number>();
    for (let i = 0; i < top; i++) {
      const b = stack[i]!;
      if (!pool.owns(b) || seen.has(b)) problems.push(`${pool.name}: free stack holds ${b} ${seen.has(b) ? "twice" : "(not its buffer)"}`);
      seen.add(b);
    }
    if (pool.checked) {
      let home = 0;
      for (let b = pool.first; b < pool.first + pool.count; b++) home += bufHome[b] === 1 ? 1 : 0;
      if (home !== top) problems.push(`${pool.name}: ${home} buffers marked home, ${top} in the free stack`);
    }
  }
  return { lost, total, problems };
}

export async function runSoak(options: SoakOptions = {}): Promise<SoakResult> {
  const frames = options.frames ?? 100_000_000;
  const sample = options.sample ?? 64;
  const faultRate = options.faultRate ?? 0.01;
  const faultModes = options.faults ?? FAULTS;
  const rand = prng(options.seed ?? 1);
  const started = performance.now();
  const dma = new SimDma("soak DMA");
  const problems: string[] = [];
  const faultsByMode: Record<string, number> = {};
  for (const m of faultModes) faultsByMode[m.name] = 0;

  const pairs: [SoakPort["kind"], SoakPort["kind"]][] = [
    ["ixgbe", "ixgbe"],
    ["virtio-modern", "virtio-legacy"],
    ["ixgbe", "virtio-modern"],
    ["virtio-modern", "ixgbe"],
  ];
  const lanes: Lane[] = pairs.map(([ka, kb], index) => ({
    index,
    a: openPort(ka, dma, `soak${index}a-${ka}`),
    b: openPort(kb, dma, `soak${index}b-${kb}`),
    nextSeq: 0,
    lastSeen: -1,
    received: 0,
  }));
  let checkedBytes = 0;
  for (const lane of lanes) {
    const check = (frame: Uint8Array) => {
      const laneNo = frame[14]!;
      const seq = ((frame[15]! << 24) | (frame[16]! << 16) | (frame[17]! << 8) | frame[18]!) >>> 0;
      if (laneNo !== lane.index || frame[12] !== 0x88 || frame[13] !== 0xb5) {
        problems.push(`lane ${lane.index}: a frame of lane ${laneNo} (seq ${seq}) or no soak frame at all came out`);
        return;
      }
      if (seq <= lane.lastSeen) problems.push(`lane ${lane.index}: seq ${seq} after ${lane.lastSeen} (reordered or duplicated)`);
      lane.lastSeen = seq;
      lane.received++;
      const length = frameLength(lane.index, seq);
      if (frame.length !== length) problems.push(`lane ${lane.index}: seq ${seq} came out ${frame.length} bytes long, not ${length}`);
      if (seq % sample === 0) {
        for (let i = 20; i < length; i++) {
          if (frame[i] !== patternByte(seq, i)) {
            problems.push(`lane ${lane.index}: seq ${seq} byte ${i} is ${frame[i]}, not ${patternByte(seq, i)}`);
            break;
          }
        }
        checkedBytes += length;
      }
    };
    if (lane.b.ixgbe) lane.b.ixgbe.onTransmit = check;
    else lane.b.virtio!.onTransmit = check;
  }

  const scratch = new Uint8Array(MAX_FRAME);
  const batch = new Int32Array(BATCH);
  const active: ActiveFault[] = [];
  let offered = 0;
  let delivered = 0;
  let forwarded = 0;
  let faultsInjected = 0;
  let lastProgress = started;

  const forward = (lane: Lane): void => {
    lane.a.step();
    const n = lane.a.dev.rxBatch(0, batch, BATCH);
    if (n === 0) return;
    const sent = lane.b.dev.txBatch(0, batch, n);
    forwarded += sent;
    if (sent < n) freeBuffers(batch, sent, n - sent);
    lane.b.step();
  };

  try {
    while (offered < frames) {
      for (const lane of lanes) {
        const k = 1 + Math.floor(rand() * BATCH);
        for (let j = 0; j < k && offered < frames; j++) {
          const seq = lane.nextSeq++;
          const length = frameLength(lane.index, seq);
          writeHeader(scratch, lane.index, seq);
          if (seq % sample === 0) for (let i = 20; i < length; i++) scratch[i] = patternByte(seq, i);
          else scratch.fill(0, 20, length);
          offered++;
          if (lane.a.inject(scratch.subarray(0, length))) delivered++;
        }
        forward(lane);
      }
      // Faults: end the ones that ran out, perhaps start a new one.
      for (let i = active.length - 1; i >= 0; i--) {
        const f = active[i]!;
        if (--f.roundsLeft <= 0) {
          f.mode.off(f.port);
          active.splice(i, 1);
        }
      }
      if (faultModes.length > 0 && rand() < faultRate) {
        const lane = lanes[Math.floor(rand() * lanes.length)]!;
        const port = rand() < 0.5 ? lane.a : lane.b;
        const modes = faultModes.filter((m) => m.applies(port) && !active.some((a) => a.port === port && a.mode === m));
        if (modes.length > 0) {
          const mode = modes[Math.floor(rand() * modes.length)]!;
          mode.on(port);
          active.push({ mode, port, roundsLeft: 1 + Math.floor(rand() * 40) });
          faultsInjected++;
          faultsByMode[mode.name]!++;
        }
      }
      if (options.progress !== undefined) {
        const now = performance.now();
        if (now - lastProgress >= 1000) {
          lastProgress = now;
          options.progress(offered, now - started);
        }
      }
    }
    // Drain: faults off, then forward until nothing moves.
    for (const f of active.splice(0)) f.mode.off(f.port);
    for (let round = 0; round < 64; round++) for (const lane of lanes) forward(lane);
    // Every lane must still work once the faults are over: a last burst must get through whole.
    for (const lane of lanes) {
      const before = lane.received;
      const burst = 16;
      for (let j = 0; j < burst; j++) {
        const seq = lane.nextSeq++;
        const length = frameLength(lane.index, seq);
        writeHeader(scratch, lane.index, seq);
        scratch.fill(0, 20, length);
        if (seq % sample === 0) for (let i = 20; i < length; i++) scratch[i] = patternByte(seq, i);
        offered++;
        if (lane.a.inject(scratch.subarray(0, length))) delivered++;
        forward(lane);
      }
      for (let round = 0; round < 8; round++) forward(lane);
      if (lane.received - before !== burst) {
        problems.push(
          `lane ${lane.index} (${lane.a.kind} -> ${lane.b.kind}): after the faults, ${lane.received - before} of ${burst} ` +
            `frames got through (the lane is dead or lossy without faults)`,
        );
      }
    }
  } finally {
    for (const lane of lanes) {
      lane.b.dev.close();
      lane.a.dev.close();
    }
  }
  const pools = poolsOn(dma);
  const account = lostBuffers(pools);
  problems.push(...account.problems);
  let received = 0;
  for (const lane of lanes) received += lane.received;
  const modelReceived = received;
  // Every frame txBatch took must have come out of B's wire (none refused: all lengths are good).
  if (modelReceived !== forwarded) problems.push(`${forwarded} frames forwarded, but ${modelReceived} came out of the B ports`);
  for (const pool of pools) pool.close();
  dma.close();
  const vuFrames = options.vhostUserFrames ?? Math.floor(frames / 100);
  const vhostUser = vuFrames > 0
    ? await runVhostUserLane(vuFrames, { lane: lanes.length, length: frameLength, header: writeHeader, pattern: patternByte, sample }, rand)
    : null;
  if (vhostUser !== null) {
    problems.push(...vhostUser.problems);
    offered += vhostUser.sent;
    delivered += vhostUser.sent;
    forwarded += vhostUser.sent;
    received += vhostUser.received;
    checkedBytes += vhostUser.checkedBytes;
  }
  return {
    offered,
    delivered,
    forwarded,
    received,
    checkedBytes,
    faultsInjected,
    faultsByMode,
    lanes: lanes.map((l) => `${l.a.kind} -> ${l.b.kind}: ${l.received} of ${l.nextSeq}`),
    vhostUser,
    buffersLost: account.lost + (vhostUser?.buffersLost ?? 0),
    buffersTotal: account.total + (vhostUser?.buffersTotal ?? 0),
    problems: problems.slice(0, 20),
    elapsedMs: performance.now() - started,
  };
}

/** The one-line summary. */
export function summary(r: SoakResult): string {
  const rate = r.offered / (r.elapsedMs / 1000);
  const ok = r.problems.length === 0 && r.buffersLost === 0;
  return (
    `soak ${ok ? "OK" : "FAILED"}: ${r.offered} frames offered, ${r.delivered} delivered, ${r.forwarded} forwarded, ` +
    `${r.received} received in order (0 reordered, duplicated or corrupted${r.problems.length ? `: NO, ${r.problems.length} problems` : ""}; ` +
    `${r.checkedBytes} bytes compared), ${r.faultsInjected} faults injected and survived, ` +
    `${r.buffersLost} of ${r.buffersTotal} buffers lost, ${(r.elapsedMs / 1000).toFixed(1)} s (${(rate / 1e6).toFixed(2)} M frames/s)` +
    (r.vhostUser === null ? "" : r.vhostUser.skipped !== null ? `; vhost-user lane skipped: ${r.vhostUser.skipped}` : `; vhost-user lane: ${r.vhostUser.received} of ${r.vhostUser.sent} back`)
  );
}
