/**
 * The soak (issue 12.7): frames of mixed sizes forwarded through model ports of both drivers
 * for a long time, with faults injected at random from the models' fault modes, checked pools,
 * and at the end an exact account of every frame and every buffer.
 *
 * Lanes: a forwarder loop rxBatch(A) -> txBatch(B) per lane, A and B on one SimDma per lane so
 * that buffers cross drivers: ixgbe -> ixgbe, virtio modern -> virtio legacy, ixgbe -> virtio
 * modern, virtio modern -> ixgbe, and two lanes on the models' asynchronous modes (ixgbe
 * `asynchronous`, virtio `completion: "async"`: descriptors taken ahead, completed in random
 * chunks and, on virtio, out of order). Besides what it forwards, each lane sends frames of its
 * own from a pool of its own through B (as an application answering ARP would), in a numbered
 * stream of their own. Then a vhost-user lane (vhost-user-lane.ts): the virtio driver over
 * vhost-user against the model backend in a child process, in loopback. Per stream, what B puts
 * on its wire must come in strictly increasing order (order within a queue; gaps are drops,
 * counted), never twice, with the length the sequence number gives, and every SAMPLE-th frame
 * carries a full payload pattern that must arrive byte for byte.
 *
 * Faults: FAULTS is a table, one line per fault mode of a model; a new mode is a new line. Two
 * kinds:
 * - "ride": faults the driver rides through (link flaps, stalls, PAUSE, bad lengths, missed
 *   frames, and those that act at a close and reopen: a slow reset, a stuck PCIe master, a
 *   churning configuration generation). They may cost frames (counted as drops), never a
 *   buffer, an order, a byte, an error, or the run.
 * - "error": device errors the driver must detect and refuse (bad, repeated and stale used ids,
 *   used.idx jumping ahead or going back, DEVICE_NEEDS_RESET, a reset behind the driver's back).
 *   The lane must get a DeviceProtocolError (any other error fails the run) from the port the
 *   fault is on, no frame of the bad entry may come out (the order and byte checks see stale
 *   bytes and duplicates), and then the lane recovers as an application would: both devices
 *   closed (their ring buffers go back to their pools), and opened again on the same models.
 * Plus "lane close and reopen" in the middle of traffic. A lane's recovery closes both its
 * ports, not only the broken one: that is what lets the lane give its DMA memory back
 * (SimDma.releaseSince forgets allocations last-in first-out), so that thousands of reopens
 * run in constant memory.
 *
 * Accounting: per device instance of B, the frames txBatch took minus the frames B's wire
 * carried are the frames its close discarded (in its ring when the device broke or was
 * closed); forwarded = received + discarded, exactly. At every lane reset and at the end, every
 * buffer of every pool of the lane must be in its pool (checked pools: and marked home), which
 * is what "0 lost" means; the lane's own pool lives across reopens and is checked each time.
 *
 * Used by scripts/soak.ts (npm run soak, 100 million frames by default) and, short, by
 * test/soak/soak.test.ts in npm test. No vitest here: it must run under plain tsx.
 */
import { newStats, type NicDevice } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { DeviceProtocolError } from "../../src/errors.ts";
import { bufHome, ownerOf, poolStacks, poolTop, ROWS_IN_USE, tableState } from "../../src/mem/buffer-table.ts";
import { freeBuffers, Mempool } from "../../src/mem/mempool.ts";
import { frameOf, setFrameLength } from "../../src/mem/packet.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { prng } from "../helpers/prng.ts";
import { runVhostUserLane, type VhostUserLaneResult } from "./vhost-user-lane.ts";

/** One model port: the device (replaced at each reopen), its model, and how to feed and step it. */
export interface SoakPort {
  readonly kind: "ixgbe" | "virtio-modern" | "virtio-legacy";
  /** "a" receives from the wire, "b" sends what A received. */
  readonly role: "a" | "b";
  /** The model runs in its asynchronous mode. */
  readonly async: boolean;
  readonly name: string;
  dev: NicDevice;
  readonly ixgbe: Ixgbe82599Model | null;
  readonly virtio: VirtioNetModel | null;
  /** A frame arrives from the wire; false when the device dropped it. */
  inject(frame: Uint8Array): boolean;
  /** Lets the model do some pending work (virtio: the device side of the rings). */
  step(): void;
  /** Lets the model do all the work it can. */
  drain(): void;
}

export type FaultKind = "ride" | "error";

/**
 * A fault mode: which ports it applies to, how to switch it on and off. `atReset`: it acts at a
 * close and reopen, so switching it on closes and reopens the lane with it on (then it is
 * switched off). `reset`: switching it on is itself a close and reopen of the lane.
 * Not here: faults of init alone (refused features, a control queue that refuses or never
 * answers: test/validation/failed-init.test.ts, test/virtio/ctrl.test.ts); a reset that never
 * completes (close() then keeps the ring buffers, which the device may still use, so they can
 * never be home; test/virtio/device-faults.test.ts); a device error on a legacy virtio device
 * (no DEVICE_NEEDS_RESET in legacy: the driver cannot tell it from a slow device).
 */
export interface FaultMode {
  readonly name: string;
  readonly kind: FaultKind;
  readonly applies: (port: SoakPort) => boolean;
  readonly on: (port: SoakPort, rand: () => number) => void;
  readonly off: (port: SoakPort) => void;
  readonly atReset?: boolean;
  readonly reset?: boolean;
  /** A one-shot fault that clears itself: armed again every round while the mode is on. */
  readonly rearm?: (port: SoakPort, rand: () => number) => void;
}

const isVirtio = (p: SoakPort) => p.virtio !== null;
const isIxgbe = (p: SoakPort) => p.ixgbe !== null;
const nothing = () => {};
const v = (p: SoakPort) => p.virtio!;
const x = (p: SoakPort) => p.ixgbe!;

export const FAULTS: readonly FaultMode[] = [
  // Ridden through.
  { name: "ixgbe link flap", kind: "ride", applies: isIxgbe, on: (p) => x(p).setLink(false), off: (p) => x(p).setLink(true) },
  { name: "ixgbe PHY powered down", kind: "ride", applies: isIxgbe, on: (p) => (x(p).faults.phyPoweredDown = true), off: (p) => (x(p).faults.phyPoweredDown = false) },
  { name: "ixgbe partner PAUSE (stallTx)", kind: "ride", applies: (p) => isIxgbe(p) && p.role === "b", on: (p) => (x(p).faults.stallTx = true), off: (p) => { x(p).faults.stallTx = false; x(p).step(); } },
  { name: "ixgbe RX buffer full", kind: "ride", applies: (p) => isIxgbe(p) && p.role === "a", on: (p) => (x(p).faults.rxBufferFull = true), off: (p) => (x(p).faults.rxBufferFull = false) },
  { name: "ixgbe master disable stuck at close", kind: "ride", atReset: true, applies: isIxgbe, on: (p) => (x(p).faults.masterDisableStuck = true), off: (p) => (x(p).faults.masterDisableStuck = false) },
  { name: "virtio link flap", kind: "ride", applies: isVirtio, on: (p) => v(p).setLink(false), off: (p) => v(p).setLink(true) },
  { name: "virtio stall", kind: "ride", applies: isVirtio, on: (p) => (v(p).faults.stall = true), off: (p) => { v(p).faults.stall = false; v(p).poll(); } },
  { name: "virtio bad used length", kind: "ride", applies: (p) => isVirtio(p) && p.role === "a", on: (p) => (v(p).faults.badUsedLength = true), off: (p) => (v(p).faults.badUsedLength = false) },
  { name: "virtio config generation churn", kind: "ride", atReset: true, applies: isVirtio, on: (p, r) => (v(p).faults.configGenerationChurn = 1 + Math.floor(r() * 40)), off: (p) => (v(p).faults.configGenerationChurn = 0) },
  { name: "virtio slow reset", kind: "ride", atReset: true, applies: isVirtio, on: (p, r) => (v(p).faults.resetReads = 1 + Math.floor(r() * 20)), off: (p) => (v(p).faults.resetReads = 0) },
  { name: "lane close and reopen", kind: "ride", reset: true, applies: () => true, on: nothing, off: nothing },
  // Detected and refused: the lane recovers by closing and reopening.
  { name: "virtio bad used id", kind: "error", applies: isVirtio, on: (p) => (v(p).faults.badUsedId = true), off: (p) => (v(p).faults.badUsedId = false) },
  { name: "virtio repeated used id", kind: "error", applies: isVirtio, on: (p) => (v(p).faults.repeatUsedId = true), off: (p) => (v(p).faults.repeatUsedId = false) },
  { name: "virtio stale used id", kind: "error", applies: isVirtio, on: (p) => (v(p).faults.staleUsedId = true), off: (p) => (v(p).faults.staleUsedId = false) },
  // On a full receive ring a jump over held ids cannot be told from real completions (the
  // model's comment), and an asynchronous device may hold more than the jump: transmit rings
  // of instant devices only.
  { name: "virtio used index jump", kind: "error", applies: (p) => isVirtio(p) && p.role === "b" && !p.async, on: (p, r) => (v(p).faults.usedIndexJump = 1 + Math.floor(r() * 255)), off: (p) => (v(p).faults.usedIndexJump = 0) },
  // Seen only when the driver reads used.idx between that publication and the next (which puts
  // it right), and only if it had consumed up to the previous one: armed again every round.
  {
    name: "virtio used index back", kind: "error", applies: isVirtio,
    on: (p, r) => (v(p).faults.usedIndexBack = 1 + Math.floor(r() * 8)), off: (p) => (v(p).faults.usedIndexBack = 0),
    rearm: (p, r) => void (v(p).faults.usedIndexBack ||= 1 + Math.floor(r() * 8)),
  },
  // A legacy device has no DEVICE_NEEDS_RESET (§2.1.2 is virtio 1.0): a broken one just stops,
  // which its driver cannot tell from a slow one. Modern devices only.
  { name: "virtio device error (NEEDS_RESET)", kind: "error", applies: (p) => isVirtio(p) && p.kind !== "virtio-legacy", on: (p) => v(p).breakDevice("soak: an injected device error"), off: nothing },
  { name: "virtio reset behind the driver's back", kind: "error", applies: isVirtio, on: (p) => v(p).pci.reset(), off: nothing },
  { name: "ixgbe reset behind the driver's back", kind: "error", applies: isIxgbe, on: (p) => x(p).pci.reset(), off: nothing },
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

/** Per fault mode: injected; detected (errors: a DeviceProtocolError from its port); recovered (errors: the lane reopened and worked; ride: survived). */
export interface FaultCount {
  readonly kind: FaultKind;
  injected: number;
  detected: number;
  recovered: number;
}

export interface SoakResult {
  readonly offered: number;
  readonly delivered: number;
  readonly forwarded: number;
  readonly received: number;
  /** Frames txBatch took that a close discarded (in B's ring when it broke or was closed). */
  readonly discarded: number;
  readonly checkedBytes: number;
  readonly faultsByMode: Record<string, FaultCount>;
  /** Lane resets (close and reopen of both ports) in all. */
  readonly reopens: number;
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
/** Rounds between two readStats() per port (an application's periodic statistics). */
const STATS_EVERY = 16;
/** Rounds an error fault stays on waiting to be detected. */
const ERROR_PATIENCE = 2000;
/** The lane's own stream: lane number + OWN on the wire. */
const OWN = 128;

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

/** Frame `seq` of stream `stream` into `frame` (its first frameLength bytes). */
function writeFrameOf(frame: Uint8Array, stream: number, seq: number, sample: number): number {
  const length = frameLength(stream, seq);
  writeHeader(frame, stream, seq);
  if (seq % sample === 0) for (let i = 20; i < length; i++) frame[i] = patternByte(seq, i);
  else frame.fill(0, 20, length);
  return length;
}

const DEVICE_OPTIONS = { rxRingSize: 256, txRingSize: 256, mempoolSize: 1024, checked: true, linkTimeoutMs: 1000 };

function openDevice(port: { readonly ixgbe: Ixgbe82599Model | null; readonly virtio: VirtioNetModel | null }, dma: SimDma): NicDevice {
  return port.ixgbe !== null
    ? createIxgbeDevice(port.ixgbe.pci, dma, DEVICE_OPTIONS)
    : createVirtioDevice(port.virtio!.pci, dma, DEVICE_OPTIONS);
}

function openPort(kind: SoakPort["kind"], role: SoakPort["role"], async: boolean, dma: SimDma, name: string, seed: number): SoakPort {
  if (kind === "ixgbe") {
    const model = new Ixgbe82599Model({ dma, address: `sim:${name}`, asynchronous: async, seed });
    const step = async ? () => void model.step() : nothing;
    return {
      kind, role, async, name, ixgbe: model, virtio: null, dev: null!,
      inject: (f) => model.inject(f, 0), step, drain: () => void model.drain(),
    };
  }
  const model = new VirtioNetModel({
    dma, legacy: kind === "virtio-legacy", address: `sim:${name}`, queueSize: 256, completion: async ? "async" : "instant", seed,
  });
  const step = async ? () => { model.step(); model.step(); } : () => model.poll();
  return { kind, role, async, name, ixgbe: null, virtio: model, dev: null!, inject: (f) => model.inject(f), step, drain: () => model.poll() };
}

interface Stream {
  nextSeq: number;
  lastSeen: number;
  received: number;
}

interface Lane {
  readonly index: number;
  readonly name: string;
  readonly dma: SimDma;
  /** SimDma.mark() after the lane's own pool: the ports' allocations come after it. */
  readonly mark: number;
  readonly a: SoakPort;
  readonly b: SoakPort;
  /** The lane's own pool (frames it sends itself through B), across reopens. */
  readonly own: Mempool;
  readonly forwardedStream: Stream;
  readonly ownStream: Stream;
  /** This instance of B: frames txBatch took, and frames its wire carried. */
  taken: number;
  transmitted: number;
  /** Violations per model already looked at. */
  seenViolations: [number, number];
}

interface ActiveFault {
  readonly mode: FaultMode;
  readonly lane: Lane;
  readonly port: SoakPort;
  roundsLeft: number;
}

/** Every live mempool whose memory is `dma`'s (the drivers' receive pools and the lane's own). */
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
    if (top !== pool.count) problems.push(`${pool.name}: ${pool.count - top} of its ${pool.count} buffers are not in it`);
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

/** Violations a model reports as a consequence of an injected error (not the driver's fault). */
const EXPECTED_VIOLATION: Record<string, RegExp> = {
  "virtio device error (NEEDS_RESET)": /soak: an injected device error/,
  // Until the driver looks at the status, it notifies a device that no longer has DRIVER_OK.
  "virtio reset behind the driver's back": /before DRIVER_OK/,
};

export async function runSoak(options: SoakOptions = {}): Promise<SoakResult> {
  const frames = options.frames ?? 100_000_000;
  const sample = options.sample ?? 64;
  const faultRate = options.faultRate ?? 0.01;
  const faultModes = options.faults ?? FAULTS;
  const rand = prng(options.seed ?? 1);
  const started = performance.now();
  const problems: string[] = [];
  const problem = (p: string) => {
    if (problems.length < 1000) problems.push(p);
  };
  const faultsByMode: Record<string, FaultCount> = {};
  for (const m of faultModes) faultsByMode[m.name] = { kind: m.kind, injected: 0, detected: 0, recovered: 0 };

  const layout: [SoakPort["kind"], SoakPort["kind"], boolean][] = [
    ["ixgbe", "ixgbe", false],
    ["virtio-modern", "virtio-legacy", false],
    ["ixgbe", "virtio-modern", false],
    ["virtio-modern", "ixgbe", false],
    ["ixgbe", "virtio-modern", true],
    ["virtio-legacy", "ixgbe", true],
  ];
  let checkedBytes = 0;
  const lanes: Lane[] = layout.map(([ka, kb, async], index) => {
    const name = `soak${index}${async ? "-async" : ""}`;
    const dma = new SimDma(`${name} DMA`);
    const own = new Mempool(dma, { count: 64, checked: true, name: `${name} own TX pool` });
    const lane: Lane = {
      index,
      name,
      dma,
      mark: dma.mark(),
      a: openPort(ka, "a", async, dma, `${name}a-${ka}`, 1000 + index),
      b: openPort(kb, "b", async, dma, `${name}b-${kb}`, 2000 + index),
      own,
      forwardedStream: { nextSeq: 0, lastSeen: -1, received: 0 },
      ownStream: { nextSeq: 0, lastSeen: -1, received: 0 },
      taken: 0,
      transmitted: 0,
      seenViolations: [0, 0],
    };
    lane.a.dev = openDevice(lane.a, dma);
    lane.b.dev = openDevice(lane.b, dma);
    const check = (frame: Uint8Array) => {
      lane.transmitted++;
      const stream = frame[14]!;
      const seq = ((frame[15]! << 24) | (frame[16]! << 16) | (frame[17]! << 8) | frame[18]!) >>> 0;
      if ((stream !== lane.index && stream !== lane.index + OWN) || frame[12] !== 0x88 || frame[13] !== 0xb5) {
        problem(`lane ${lane.index}: a frame of stream ${stream} (seq ${seq}) or no soak frame at all came out`);
        return;
      }
      const s = stream === lane.index ? lane.forwardedStream : lane.ownStream;
      if (seq <= s.lastSeen) problem(`lane ${lane.index}: stream ${stream}: seq ${seq} after ${s.lastSeen} (reordered, duplicated or stale)`);
      s.lastSeen = seq;
      s.received++;
      const length = frameLength(stream, seq);
      if (frame.length !== length) problem(`lane ${lane.index}: stream ${stream}: seq ${seq} came out ${frame.length} bytes long, not ${length}`);
      if (seq % sample === 0) {
        for (let i = 20; i < length; i++) {
          if (frame[i] !== patternByte(seq, i)) {
            problem(`lane ${lane.index}: stream ${stream}: seq ${seq} byte ${i} is ${frame[i]}, not ${patternByte(seq, i)}`);
            break;
          }
        }
        checkedBytes += length;
      }
    };
    if (lane.b.ixgbe) lane.b.ixgbe.onTransmit = check;
    else lane.b.virtio!.onTransmit = check;
    return lane;
  });

  const scratch = new Uint8Array(MAX_FRAME);
  const batch = new Int32Array(BATCH);
  const ownBatch = new Int32Array(4);
  const stats = newStats();
  const active: ActiveFault[] = [];
  let offered = 0;
  let delivered = 0;
  let forwarded = 0;
  let discarded = 0;
  let reopens = 0;
  let round = 0;
  let lastProgress = started;

  const violationsOf = (p: SoakPort): readonly string[] => (p.ixgbe !== null ? p.ixgbe.violations : p.virtio!.violations);

  /** New model violations of the lane: a problem unless `cause` (a mode name) explains them. */
  const checkViolations = (lane: Lane, cause: string | null): void => {
    [lane.a, lane.b].forEach((p, i) => {
      const all = violationsOf(p);
      const expected = cause === null ? undefined : EXPECTED_VIOLATION[cause];
      for (const message of all.slice(lane.seenViolations[i])) {
        if (expected === undefined || !expected.test(message)) problem(`${p.name}: model violation: ${message}`);
      }
      lane.seenViolations[i] = all.length;
    });
  };

  /**
   * Closes both ports of the lane (the broken one's ring buffers go back to their pools after
   * its reset), checks that every buffer of the lane is home, gives the ports' memory back, and
   * opens both again on the same models. `cause`: the mode behind it (for its violations).
   */
  const resetLane = (lane: Lane, cause: string | null): void => {
    // B's frames still on the ring are the close's to discard; async devices finish nothing more.
    for (const p of [lane.b, lane.a]) p.dev.close();
    const lost = lane.taken - lane.transmitted;
    if (lost < 0) problem(`lane ${lane.index}: ${lane.b.name} sent ${lane.transmitted} frames, but txBatch took only ${lane.taken}`);
    discarded += lost;
    lane.taken = 0;
    lane.transmitted = 0;
    checkViolations(lane, cause);
    const pools = poolsOn(lane.dma);
    const account = lostBuffers(pools);
    for (const p of account.problems) problem(`lane ${lane.index} reset: ${p}`);
    if (account.lost !== 0) throw new Error(`soak: lane ${lane.index}: ${account.lost} buffers lost at a close (${account.problems.join("; ")})`);
    for (const pool of pools) if (pool !== lane.own) pool.close();
    lane.dma.releaseSince(lane.mark);
    lane.a.dev = openDevice(lane.a, lane.dma);
    lane.b.dev = openDevice(lane.b, lane.dma);
    reopens++;
  };

  /** A lane's port threw `error`: a detected device error if an error fault is on there. */
  const onDeviceError = (lane: Lane, port: SoakPort, error: unknown): void => {
    if (!(error instanceof DeviceProtocolError)) throw error;
    const at = active.findIndex((f) => f.lane === lane && f.mode.kind === "error");
    const fault = at >= 0 ? active[at]! : null;
    if (fault === null || fault.port !== port) {
      problem(`lane ${lane.index}: ${port.name}: a DeviceProtocolError with ${fault === null ? "no device error injected" : `the fault on ${fault.port.name}`}: ${error.message}`);
    }
    // Every fault of the lane ends here: the lane is reset.
    for (let i = active.length - 1; i >= 0; i--) {
      const f = active[i]!;
      if (f.lane !== lane) continue;
      f.mode.off(f.port);
      active.splice(i, 1);
      if (f.mode.kind === "ride") faultsByMode[f.mode.name]!.recovered++;
    }
    if (fault !== null) faultsByMode[fault.mode.name]!.detected++;
    resetLane(lane, fault?.mode.name ?? null);
    if (fault !== null) faultsByMode[fault.mode.name]!.recovered++;
  };

  const forward = (lane: Lane): void => {
    lane.a.step();
    let n: number;
    try {
      n = lane.a.dev.rxBatch(0, batch, BATCH);
    } catch (error) {
      onDeviceError(lane, lane.a, error);
      return;
    }
    if (n === 0) return;
    let sent: number;
    try {
      sent = lane.b.dev.txBatch(0, batch, n);
    } catch (error) {
      freeBuffers(batch, 0, n); // not taken: they are ours
      onDeviceError(lane, lane.b, error);
      return;
    }
    lane.taken += sent;
    forwarded += sent;
    if (sent < n) freeBuffers(batch, sent, n - sent);
    lane.b.step();
  };

  /** A few frames of the lane's own stream, from its own pool, through B. */
  const sendOwn = (lane: Lane): void => {
    const n = lane.own.allocBatch(ownBatch, 1 + Math.floor(rand() * ownBatch.length));
    for (let i = 0; i < n; i++) {
      const buf = ownBatch[i]!;
      const seq = lane.ownStream.nextSeq++;
      setFrameLength(buf, frameLength(lane.index + OWN, seq));
      writeFrameOf(frameOf(buf), lane.index + OWN, seq, sample);
    }
    offered += n;
    delivered += n;
    let sent: number;
    try {
      sent = lane.b.dev.txBatch(0, ownBatch, n);
    } catch (error) {
      lane.own.freeBatch(ownBatch, n);
      onDeviceError(lane, lane.b, error);
      return;
    }
    lane.taken += sent;
    forwarded += sent;
    if (sent < n) freeBuffers(ownBatch, sent, n - sent);
    lane.b.step();
  };

  const offer = (lane: Lane): void => {
    const seq = lane.forwardedStream.nextSeq++;
    const length = writeFrameOf(scratch, lane.index, seq, sample);
    offered++;
    if (lane.a.inject(scratch.subarray(0, length))) delivered++;
  };

  const readStats = (lane: Lane): void => {
    for (const p of [lane.a, lane.b]) {
      try {
        p.dev.readStats(stats);
      } catch (error) {
        onDeviceError(lane, p, error);
        return;
      }
    }
  };

  /** Switches a fault on; atReset and reset modes act at once (a lane reset) and are over. */
  const startFault = (lane: Lane, port: SoakPort, mode: FaultMode): void => {
    const count = faultsByMode[mode.name]!;
    count.injected++;
    mode.on(port, rand);
    if (mode.atReset === true || mode.reset === true) {
      try {
        resetLane(lane, mode.name);
      } finally {
        mode.off(port);
      }
      count.recovered++;
      return;
    }
    const rounds = mode.kind === "error" ? ERROR_PATIENCE : 1 + Math.floor(rand() * 40);
    active.push({ mode, lane, port, roundsLeft: rounds });
  };

  try {
    while (offered < frames) {
      round++;
      for (const lane of lanes) {
        const k = 1 + Math.floor(rand() * BATCH);
        for (let j = 0; j < k && offered < frames; j++) offer(lane);
        forward(lane);
        if ((round & 7) === lane.index) sendOwn(lane);
        if (round % STATS_EVERY === lane.index) readStats(lane);
      }
      // Faults: end the ones that ran out, perhaps start a new one.
      for (let i = active.length - 1; i >= 0; i--) {
        const f = active[i]!;
        if (--f.roundsLeft > 0) {
          f.mode.rearm?.(f.port, rand);
          continue;
        }
        f.mode.off(f.port);
        active.splice(i, 1);
        if (f.mode.kind === "ride") faultsByMode[f.mode.name]!.recovered++;
        else problem(`${f.port.name}: "${f.mode.name}" went undetected for ${ERROR_PATIENCE} rounds`);
      }
      if (faultModes.length > 0 && rand() < faultRate) {
        // A mode first (each as often as the others), then a port it applies to that is free
        // for it: one error fault per lane at a time, alone; lane resets only on a quiet lane.
        const mode = faultModes[Math.floor(rand() * faultModes.length)]!;
        const candidates: [Lane, SoakPort][] = [];
        for (const lane of lanes) {
          const busy = active.filter((a) => a.lane === lane);
          const alone = mode.kind === "error" || mode.atReset === true || mode.reset === true;
          if (busy.length > 0 && (alone || busy.some((a) => a.mode.kind === "error"))) continue;
          for (const port of [lane.a, lane.b]) {
            if (mode.applies(port) && !busy.some((a) => a.port === port && a.mode === mode)) candidates.push([lane, port]);
          }
        }
        if (candidates.length > 0) {
          const [lane, port] = candidates[Math.floor(rand() * candidates.length)]!;
          startFault(lane, port, mode);
        }
      }
      if (options.progress !== undefined && (round & 255) === 0) {
        const now = performance.now();
        if (now - lastProgress >= 1000) {
          lastProgress = now;
          options.progress(offered, now - started);
        }
      }
    }
    // Drain: faults off (an error fault not detected yet is detected here), then forward until
    // nothing moves.
    for (const f of active.splice(0)) {
      if (f.mode.kind === "error") {
        active.push(f); // still on: traffic and a look at the status must find it
        continue;
      }
      f.mode.off(f.port);
      faultsByMode[f.mode.name]!.recovered++;
    }
    for (let r = 0; r < 64 && active.length > 0; r++) {
      for (const lane of lanes) {
        for (let j = 0; j < 4; j++) offer(lane);
        forward(lane);
        sendOwn(lane);
        readStats(lane);
      }
    }
    for (const f of active.splice(0)) {
      f.mode.off(f.port);
      problem(`${f.port.name}: "${f.mode.name}" went undetected until the end`);
    }
    for (let r = 0; r < 64; r++) {
      for (const lane of lanes) {
        lane.a.drain();
        forward(lane);
        lane.b.drain();
      }
    }
    // Every lane must still work once the faults are over: a last burst must get through whole.
    for (const lane of lanes) {
      const before = lane.forwardedStream.received;
      const burst = 16;
      for (let j = 0; j < burst; j++) {
        offer(lane);
        lane.a.drain();
        forward(lane);
        lane.b.drain();
      }
      for (let r = 0; r < 8; r++) {
        lane.a.drain();
        forward(lane);
        lane.b.drain();
      }
      if (lane.forwardedStream.received - before !== burst) {
        problem(
          `lane ${lane.index} (${lane.a.kind} -> ${lane.b.kind}): after the faults, ${lane.forwardedStream.received - before} of ${burst} ` +
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
  let buffersLost = 0;
  let buffersTotal = 0;
  let received = 0;
  for (const lane of lanes) {
    discarded += lane.taken - lane.transmitted;
    if (lane.taken < lane.transmitted) problem(`lane ${lane.index}: ${lane.b.name} sent more frames than txBatch took`);
    checkViolations(lane, null);
    const pools = poolsOn(lane.dma);
    const account = lostBuffers(pools);
    for (const p of account.problems) problem(`lane ${lane.index} end: ${p}`);
    buffersLost += account.lost;
    buffersTotal += account.total;
    received += lane.forwardedStream.received + lane.ownStream.received;
    for (const pool of pools) pool.close();
    lane.dma.close();
  }
  // Every frame txBatch took came out of B's wire, or was in B's ring when it was closed.
  if (received + discarded !== forwarded) problem(`${forwarded} frames forwarded, but ${received} came out of the B ports and ${discarded} were discarded at a close`);
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
    discarded,
    checkedBytes,
    faultsByMode,
    reopens,
    lanes: lanes.map((l) =>
      `${l.a.kind} -> ${l.b.kind}${l.a.async ? " (async)" : ""}: ${l.forwardedStream.received} of ${l.forwardedStream.nextSeq}, own ${l.ownStream.received} of ${l.ownStream.nextSeq}`),
    vhostUser,
    buffersLost: buffersLost + (vhostUser?.buffersLost ?? 0),
    buffersTotal: buffersTotal + (vhostUser?.buffersTotal ?? 0),
    problems: problems.slice(0, 20),
    elapsedMs: performance.now() - started,
  };
}

/** Sums of the fault counts of one kind. */
export function faultTotals(r: SoakResult, kind: FaultKind): { injected: number; detected: number; recovered: number } {
  const t = { injected: 0, detected: 0, recovered: 0 };
  for (const c of Object.values(r.faultsByMode)) {
    if (c.kind !== kind) continue;
    t.injected += c.injected;
    t.detected += c.detected;
    t.recovered += c.recovered;
  }
  return t;
}

/** The fault table: one line per mode. */
export function faultTable(r: SoakResult): string {
  const rows = Object.entries(r.faultsByMode).map(([name, c]) =>
    `  ${name.padEnd(40)} ${c.kind.padEnd(6)} ${String(c.injected).padStart(7)} ${c.kind === "error" ? String(c.detected).padStart(9) : "        -"} ${String(c.recovered).padStart(9)}`);
  return [`  ${"mode".padEnd(40)} ${"kind".padEnd(6)} injected  detected recovered`, ...rows].join("\n");
}

/** The one-line summary. */
export function summary(r: SoakResult): string {
  const rate = r.offered / (r.elapsedMs / 1000);
  const ok = r.problems.length === 0 && r.buffersLost === 0;
  const ride = faultTotals(r, "ride");
  const error = faultTotals(r, "error");
  return (
    `soak ${ok ? "OK" : "FAILED"}: ${r.offered} frames offered, ${r.delivered} delivered, ${r.forwarded} forwarded, ` +
    `${r.received} received in order (0 reordered, duplicated or corrupted${r.problems.length ? `: NO, ${r.problems.length} problems` : ""}; ` +
    `${r.checkedBytes} bytes compared), ${r.discarded} discarded by a close; faults ridden through ${ride.recovered} of ${ride.injected}, ` +
    `device errors ${error.injected} injected, ${error.detected} detected, ${error.recovered} recovered (${r.reopens} lane reopens); ` +
    `${r.buffersLost} of ${r.buffersTotal} buffers lost, ${(r.elapsedMs / 1000).toFixed(1)} s (${(rate / 1e6).toFixed(2)} M frames/s)` +
    (r.vhostUser === null ? "" : r.vhostUser.skipped !== null ? `; vhost-user lane skipped: ${r.vhostUser.skipped}` : `; vhost-user lane: ${r.vhostUser.received} of ${r.vhostUser.sent} back`)
  );
}
