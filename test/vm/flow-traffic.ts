/**
 * Traffic for multiqueue NICs (test/vm/mq.vm.test.ts): IPv4/UDP frames of several flows (UDP
 * source ports) in both directions through two tap wires, so that the kernel's tap spreads them
 * over the tap's queues and qemu over the NIC's queue pairs. Every frame carries its direction,
 * flow and sequence number, and a body derived from them: the receiver rebuilds the frame it
 * expects and compares it byte for byte. Order is checked per flow (a flow stays on one queue;
 * two queues are two workers, which interleave as they like).
 */
import { TapWire } from './tap-wire.ts';

const MAGIC = 0x49585951; // "IXYQ"
const ETH = 14;
const IP = 20;
const UDP = 8;
/** Where the test header starts: after Ethernet, IPv4 and UDP. */
const HDR = ETH + IP + UDP;
/** magic, direction, flow, sequence. */
const TEST_HDR = 12;
const PROBE_FLOW = 255;

export interface FlowTrafficOptions {
  readonly wires: readonly [TapWire, TapWire];
  /** Frames per second per direction. */
  readonly rate: number;
  /** Frames per direction. */
  readonly count: number;
  readonly flows: number;
  readonly seed: number;
  /** How long to wait for the first probe to come back (the guest's forwarder starting). */
  readonly waitReadyMs?: number;
  readonly signal?: AbortSignal;
}

export interface DirectionReport {
  sent: number;
  received: number;
  corrupted: number;
  reordered: number;
  duplicated: number;
  /** Flows of which at least one frame arrived. */
  flowsSeen: number;
}

export interface FlowTrafficReport {
  readonly directions: [DirectionReport, DirectionReport];
  readonly readyAfterMs: number;
}

function frameLength(dir: number, flow: number, seq: number, seed: number): number {
  return 64 + (((seq * 2654435761 + flow * 40503 + dir * 977 + seed) >>> 0) % 1400);
}

/** Writes the frame of (dir, flow, seq) into out; returns its length. */
export function buildFrame(out: Uint8Array, dir: number, flow: number, seq: number, seed: number): number {
  const length = flow === PROBE_FLOW ? 64 : frameLength(dir, flow, seq, seed);
  out.fill(0, 0, length);
  out.set([0x02, 0, 0, 0, dir, 0x02, 0x02, 0, 0, 0, dir, 0x01], 0);
  out[12] = 0x08; // IPv4
  out[13] = 0x00;
  const ipLen = length - ETH;
  out.set([0x45, 0, ipLen >>> 8, ipLen & 0xff, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, dir, 1, 10, 0, dir, 2], ETH);
  let sum = 0;
  for (let i = ETH; i < ETH + IP; i += 2) sum += (out[i]! << 8) | out[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const csum = ~sum & 0xffff;
  out[ETH + 10] = csum >>> 8;
  out[ETH + 11] = csum & 0xff;
  const sport = 1000 + flow;
  const udpLen = length - ETH - IP;
  out.set([sport >>> 8, sport & 0xff, 0x07, 0xd0, udpLen >>> 8, udpLen & 0xff, 0, 0], ETH + IP);
  const v = new DataView(out.buffer, out.byteOffset);
  v.setUint32(HDR, MAGIC);
  out[HDR + 4] = dir;
  out[HDR + 5] = flow;
  v.setUint32(HDR + 8, seq);
  let x = (seq * 1103515245 + flow * 12345 + dir * 7 + seed) >>> 0;
  for (let i = HDR + TEST_HDR; i < length; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return length;
}

export async function runFlowTraffic(o: FlowTrafficOptions): Promise<FlowTrafficReport> {
  const { wires, rate, count, flows, seed } = o;
  const out = new Uint8Array(2048);
  const buf = new Uint8Array(2048);
  const want = new Uint8Array(2048);
  const reports: [DirectionReport, DirectionReport] = [0, 1].map(() => ({
    sent: 0, received: 0, corrupted: 0, reordered: 0, duplicated: 0, flowsSeen: 0,
  })) as [DirectionReport, DirectionReport];
  // Per direction and flow: the next sequence number expected, and the sequence numbers seen.
  const next = [new Array<number>(flows).fill(0), new Array<number>(flows).fill(0)];
  const seen = [0, 1].map(() => Array.from({ length: flows }, () => new Uint8Array(Math.ceil(count / flows) + 1)));
  let probesBack = 0;

  /** Drains what wire `w` received: frames of direction 1 - w... i.e. sent into the other wire. */
  const drain = (w: 0 | 1): void => {
    for (;;) {
      const n = wires[w].receive(buf);
      if (n === 0) return;
      if (n < HDR + TEST_HDR) continue;
      const v = new DataView(buf.buffer, buf.byteOffset);
      if (v.getUint32(HDR) !== MAGIC) continue; // not ours
      const dir = buf[HDR + 4]!;
      const flow = buf[HDR + 5]!;
      const seq = v.getUint32(HDR + 8);
      if (dir !== 1 - w) continue;
      if (flow === PROBE_FLOW) {
        probesBack++;
        continue;
      }
      const r = reports[dir]!;
      if (flow >= flows || Math.floor(seq / flows) >= seen[dir]![flow]!.length) {
        r.corrupted++;
        continue;
      }
      const index = Math.floor(seq / flows);
      const length = buildFrame(want, dir, flow, seq, seed);
      let same = n === length;
      for (let i = 0; same && i < length; i++) same = buf[i] === want[i];
      if (!same) {
        r.corrupted++;
        continue;
      }
      if (seen[dir]![flow]![index] !== 0) {
        r.duplicated++;
        continue;
      }
      seen[dir]![flow]![index] = 1;
      if (index === 0 && next[dir]![flow] === 0) r.flowsSeen++;
      if (index < next[dir]![flow]!) r.reordered++;
      else next[dir]![flow] = index + 1;
      r.received++;
    }
  };
  const pollBoth = () => {
    drain(0);
    drain(1);
  };
  const tick = () => new Promise<void>((r) => setTimeout(r, 1));

  // Probes until one comes back each way: the forwarder in the guest is up.
  const started = Date.now();
  const waitReady = o.waitReadyMs ?? 120_000;
  let probeSeq = 0;
  while (probesBack < 2) {
    if (o.signal?.aborted) throw new Error('flow traffic: aborted while waiting for the guest');
    if (Date.now() - started > waitReady) throw new Error(`flow traffic: no probe came back within ${waitReady} ms`);
    for (const d of [0, 1] as const) wires[d].send(out.subarray(0, buildFrame(out, d, PROBE_FLOW, probeSeq++, seed)));
    for (let i = 0; i < 100 && probesBack < 2; i++) {
      pollBoth();
      await tick();
    }
  }
  const readyAfterMs = Date.now() - started;
  // Frame seq of a direction goes to flow seq % flows: every flow gets every flows-th frame.
  const t0 = Date.now();
  let sent = 0;
  while (sent < count) {
    if (o.signal?.aborted) break;
    const due = Math.min(count, Math.floor(((Date.now() - t0) * rate) / 1000) + 1);
    for (; sent < due; sent++) {
      for (const d of [0, 1] as const) {
        const flow = sent % flows;
        wires[d].send(out.subarray(0, buildFrame(out, d, flow, sent, seed)));
        reports[d].sent++;
      }
    }
    pollBoth();
    await tick();
  }
  // Stragglers.
  const end = Date.now() + 5000;
  while (Date.now() < end && (reports[0].received < reports[0].sent || reports[1].received < reports[1].sent)) {
    pollBoth();
    await tick();
  }
  return { directions: reports, readyAfterMs };
}
