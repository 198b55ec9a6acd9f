/**
 * Host-side traffic for the testbed: sends numbered Ethernet frames into one NIC's wire and checks
 * what comes out of the other NIC's wire, in both directions at once, paced at a fixed rate.
 *
 *   tsx test/vm/traffic.ts [--base-port 40000] [--rate 1000] [--duration 5 | --count N] [--json]
 *
 * Stream 0 goes into NIC0 (wire 0) and is expected out of NIC1 (wire 1); stream 1 the other way.
 * A guest program that forwards NIC0 <-> NIC1 (or a bridge) makes both streams come back.
 *
 * Frame layout (multi-byte fields big-endian; 40-byte header, then payload):
 *    0  destination MAC        default broadcast (passes every receive filter)
 *    6  source MAC             02:00:00:00:00:0<stream+1>, locally administered
 *   12  EtherType 0x88b5       IEEE "local experimental": nothing in the guest reacts to it
 *   14  magic "IXYT"
 *   18  format version (1)
 *   19  stream (0 or 1)
 *   20  run id                random per run: frames of earlier runs or of the probe phase that
 *                              were queued in qemu are recognised as stale and ignored
 *   24  sequence number       0, 1, 2 ... per stream
 *   28  frame length          the whole frame, so truncation or padding is caught
 *   30  reserved (0)
 *   32  send time             host monotonic clock in microseconds, mod 2^32 (for latency)
 *   36  checksum              CRC-32 (IEEE 802.3, as zlib's crc32) over bytes 12..35 and 40..end
 *   40  payload               a window into an 8 KiB xorshift32 pattern made from the run id; the
 *                              window's start depends on stream and sequence number
 * Frames are 60..1514 bytes (no FCS, as on qemu's wire). The checksum does not cover the MACs or
 * itself, so a forwarder may rewrite MACs; a frame whose length or checksum does not match counts as
 * corrupted. Valid frames are also compared byte for byte against a rebuilt copy (MACs excluded).
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { crc32 } from '../../src/net/crc32.ts';
import type { Socket } from 'node:dgram';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_BASE_PORT, wiresFor } from './wires.ts';
import type { Wire } from './wires.ts';

export const ETHERTYPE = 0x88b5;
export const MAGIC = 0x49585954; // "IXYT"
export const FORMAT_VERSION = 1;
export const HEADER_LENGTH = 40;
export const MIN_FRAME = 60;
export const MAX_FRAME = 1514;
export const BROADCAST_MAC = 'ff:ff:ff:ff:ff:ff';

// CRC-32: the library's (src/net/crc32.ts), re-exported for the tools that import it from here.
export { crc32 };

// --- frames ------------------------------------------------------------------------------------

export interface FrameHeader {
  readonly stream: number;
  readonly runId: number;
  readonly seq: number;
  /** Whole frame, MIN_FRAME..MAX_FRAME. */
  readonly length: number;
  readonly dst?: string;
  readonly src?: string;
  /** Microseconds, mod 2^32 (default 0). */
  readonly sentAtUs?: number;
}

export function parseMac(mac: string): Uint8Array {
  const parts = mac.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new TypeError(`"${mac}" is not a MAC address like 02:00:00:00:00:01`);
  }
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

const macCache = new Map<string, Uint8Array>();
function macBytes(mac: string): Uint8Array {
  let b = macCache.get(mac);
  if (b === undefined) {
    b = parseMac(mac);
    if (macCache.size < 64) macCache.set(mac, b);
  }
  return b;
}

/** The default source MAC of a stream: 02:00:00:00:00:01 for stream 0, ...:02 for stream 1. */
export function streamMac(stream: number): string {
  return `02:00:00:00:00:${(stream + 1).toString(16).padStart(2, '0')}`;
}

const PATTERN_LENGTH = 8192;
const MAX_PAYLOAD = MAX_FRAME - HEADER_LENGTH;
let patternRunId = -1;
let patternBytes = new Uint8Array(PATTERN_LENGTH);

/** The payload source of a run (cached for the last run id). */
function pattern(runId: number): Uint8Array {
  if (runId !== patternRunId) {
    const p = new Uint8Array(PATTERN_LENGTH);
    let x = runId >>> 0 || 1;
    for (let i = 0; i < PATTERN_LENGTH; i++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      p[i] = x & 0xff;
    }
    patternRunId = runId;
    patternBytes = p;
  }
  return patternBytes;
}

const STREAM_MACS = [parseMac(streamMac(0)), parseMac(streamMac(1))];

function payloadStart(stream: number, seq: number): number {
  const h = (Math.imul(seq, 0x9e3779b1) ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0;
  return h % (PATTERN_LENGTH - MAX_PAYLOAD + 1);
}

function expectedPayload(runId: number, stream: number, seq: number, length: number): Uint8Array {
  const start = payloadStart(stream, seq);
  return pattern(runId).subarray(start, start + length - HEADER_LENGTH);
}

function checksum(frame: Uint8Array, length: number): number {
  return crc32(frame, HEADER_LENGTH, length, crc32(frame, 12, 36));
}

/** Builds a test frame (a fresh buffer, or into `out`, which must hold header.length bytes). */
export function buildFrame(h: FrameHeader, out?: Uint8Array): Uint8Array {
  const { stream, runId, seq, length } = h;
  if (!Number.isInteger(length) || length < MIN_FRAME || length > MAX_FRAME) {
    throw new RangeError(`frame length ${length} is not in ${MIN_FRAME}..${MAX_FRAME}`);
  }
  if (!Number.isInteger(stream) || stream < 0 || stream > 255) throw new RangeError(`stream ${stream} is not a byte`);
  const f = out ?? new Uint8Array(length);
  if (f.length < length) throw new RangeError(`buffer of ${f.length} bytes cannot hold a ${length}-byte frame`);
  f.set(macBytes(h.dst ?? BROADCAST_MAC), 0);
  f.set(h.src !== undefined ? macBytes(h.src) : STREAM_MACS[stream] ?? macBytes(streamMac(stream)), 6);
  const be16 = (o: number, v: number): void => { f[o] = v >>> 8; f[o + 1] = v & 0xff; };
  const be32 = (o: number, v: number): void => { be16(o, v >>> 16); be16(o + 2, v & 0xffff); };
  be16(12, ETHERTYPE);
  be32(14, MAGIC);
  f[18] = FORMAT_VERSION;
  f[19] = stream;
  be32(20, runId >>> 0);
  be32(24, seq >>> 0);
  be16(28, length);
  be16(30, 0);
  be32(32, (h.sentAtUs ?? 0) >>> 0);
  f.set(expectedPayload(runId >>> 0, stream, seq, length), HEADER_LENGTH);
  be32(36, checksum(f, length));
  return f;
}

export type FrameVerdict =
  /** Not a test frame (other EtherType or magic): something else talking on the wire. */
  | { readonly kind: 'foreign' }
  /** A test frame that arrived damaged. */
  | { readonly kind: 'corrupted'; readonly reason: string; readonly stream?: number; readonly runId?: number }
  | { readonly kind: 'ok'; readonly stream: number; readonly runId: number; readonly seq: number;
      readonly length: number; readonly sentAtUs: number };

/** Checks a received frame: format, length, checksum, then payload byte for byte. */
export function verifyFrame(frame: Uint8Array): FrameVerdict {
  const be16 = (o: number): number => (frame[o]! << 8) | frame[o + 1]!;
  const be32 = (o: number): number => ((be16(o) << 16) | be16(o + 2)) >>> 0;
  if (frame.length < 18 || be16(12) !== ETHERTYPE || be32(14) !== MAGIC) return { kind: 'foreign' };
  if (frame.length < HEADER_LENGTH) return { kind: 'corrupted', reason: `${frame.length}-byte frame` };
  const stream = frame[19]!;
  const runId = be32(20);
  const bad = (reason: string): FrameVerdict => ({ kind: 'corrupted', reason, stream, runId });
  if (frame[18] !== FORMAT_VERSION) return bad(`format version ${frame[18]}`);
  const length = be16(28);
  if (length !== frame.length) return bad(`length field ${length}, frame ${frame.length} bytes`);
  const sum = checksum(frame, length);
  if (sum !== be32(36)) return bad(`checksum ${sum.toString(16)}, expected ${be32(36).toString(16)}`);
  const seq = be32(24);
  if (Buffer.compare(frame.subarray(HEADER_LENGTH, length), expectedPayload(runId, stream, seq, length)) !== 0) {
    return bad('payload differs from the one sent');
  }
  return { kind: 'ok', stream, runId, seq, length, sentAtUs: be32(32) };
}

// --- counting ----------------------------------------------------------------------------------

export interface StreamReport {
  /** e.g. "NIC0->NIC1" */
  readonly name: string;
  readonly stream: number;
  readonly sent: number;
  /** Distinct valid frames received. */
  readonly received: number;
  readonly lost: number;
  /** Valid frames that arrived after a frame with a higher sequence number. */
  readonly reordered: number;
  /** Extra copies of frames already received. */
  readonly duplicated: number;
  /** Frames of this run that failed verification (attributed to the stream expected on the wire). */
  readonly corrupted: number;
  /** Valid frames of this stream that came out of the wrong NIC (sent back where they came in). */
  readonly misrouted: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Frames/s offered over the sending period. */
  readonly sentRate: number;
  /** Distinct frames/s delivered, from the first send to the last receive. */
  readonly receivedRate: number;
  readonly lossPercent: number;
  /** One-way host->guest->host latency in ms (null without received frames). */
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number } | null;
}

/** Counts one stream: what was sent, what came back, and how. */
export class StreamCounter {
  readonly name: string;
  readonly stream: number;
  #sent = 0;
  #bytesSent = 0;
  #received = 0;
  #bytesReceived = 0;
  #duplicated = 0;
  #reordered = 0;
  #corrupted = 0;
  #misrouted = 0;
  #maxSeq = -1;
  #seen = new Uint8Array(1024);
  #latenciesUs: number[] = [];
  #firstSendMs = 0;
  #lastSendMs = 0;
  #lastReceiveMs = 0;

  constructor(stream: number, name = `stream ${stream}`) {
    this.stream = stream;
    this.name = name;
  }

  get sent(): number { return this.#sent; }
  get received(): number { return this.#received; }

  /** The next sequence number to send. */
  get nextSeq(): number { return this.#sent; }

  noteSent(length: number, nowMs = performance.now()): void {
    if (this.#sent === 0) this.#firstSendMs = nowMs;
    this.#lastSendMs = nowMs;
    this.#sent++;
    this.#bytesSent += length;
  }

  /** Records a valid frame of this stream; returns how it was counted. */
  noteReceived(seq: number, length: number, latencyUs?: number, nowMs = performance.now()):
    'new' | 'reordered' | 'duplicate' | 'unknown' {
    if (seq >= this.#sent) { this.#corrupted++; return 'unknown'; } // never sent: damaged beyond the checksum
    if (seq >= this.#seen.length) {
      const bigger = new Uint8Array(Math.max(this.#seen.length * 2, seq + 1));
      bigger.set(this.#seen);
      this.#seen = bigger;
    }
    if (this.#seen[seq]) { this.#duplicated++; return 'duplicate'; }
    this.#seen[seq] = 1;
    this.#received++;
    this.#bytesReceived += length;
    this.#lastReceiveMs = nowMs;
    if (latencyUs !== undefined) this.#latenciesUs.push(latencyUs);
    if (seq < this.#maxSeq) { this.#reordered++; return 'reordered'; }
    this.#maxSeq = seq;
    return 'new';
  }

  noteCorrupted(): void { this.#corrupted++; }
  noteMisrouted(): void { this.#misrouted++; }

  /** True when every frame sent has come back. */
  get complete(): boolean { return this.#received === this.#sent; }

  report(): StreamReport {
    const sendS = Math.max(this.#lastSendMs - this.#firstSendMs, 1) / 1000;
    const recvS = Math.max(this.#lastReceiveMs - this.#firstSendMs, 1) / 1000;
    const lat = this.#latenciesUs.slice().sort((a, b) => a - b);
    const pick = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]! / 1000;
    return {
      name: this.name, stream: this.stream, sent: this.#sent, received: this.#received,
      lost: this.#sent - this.#received, reordered: this.#reordered, duplicated: this.#duplicated,
      corrupted: this.#corrupted, misrouted: this.#misrouted,
      bytesSent: this.#bytesSent, bytesReceived: this.#bytesReceived,
      sentRate: this.#sent > 1 ? (this.#sent - 1) / sendS : this.#sent,
      receivedRate: this.#received > 0 ? this.#received / recvS : 0,
      lossPercent: this.#sent > 0 ? (100 * (this.#sent - this.#received)) / this.#sent : 0,
      latencyMs: lat.length > 0 ? { p50: pick(0.5), p99: pick(0.99), max: lat[lat.length - 1]! / 1000 } : null,
    };
  }
}

/** Deterministic frame sizes: fixed, or uniform in [min, max] from a seeded xorshift32. */
export function sizeSequence(size: number | 'random', seed = 1, min = MIN_FRAME, max = MAX_FRAME): () => number {
  if (size !== 'random') {
    if (!Number.isInteger(size) || size < MIN_FRAME || size > MAX_FRAME) {
      throw new RangeError(`frame size ${size} is not in ${MIN_FRAME}..${MAX_FRAME}`);
    }
    return () => size;
  }
  if (min < MIN_FRAME || max > MAX_FRAME || min > max) throw new RangeError(`size range ${min}..${max} is not within ${MIN_FRAME}..${MAX_FRAME}`);
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return min + (x % (max - min + 1));
  };
}

// --- running traffic ---------------------------------------------------------------------------

export type Directions = 'both' | '0to1' | '1to0';

export interface TrafficOptions {
  /** The two NICs' wires (from vm.ts / wires.ts). */
  readonly wires: readonly [Wire, Wire];
  /** Frames per second per direction (default 1000). */
  readonly rate?: number;
  /** Frames per direction; default: rate x duration. */
  readonly count?: number;
  /** Sending time when no count is given (default 5000 ms). */
  readonly durationMs?: number;
  /** Fixed frame size or 'random' (default) in [minSize, maxSize]. */
  readonly size?: number | 'random';
  readonly minSize?: number;
  readonly maxSize?: number;
  readonly directions?: Directions;
  /** Wait this long after the last frame for stragglers (default 1000 ms; ends early when all are back). */
  readonly drainMs?: number;
  /**
   * Before counting, send probe frames (10/s) until one crosses in every direction used, for at most
   * this long (default 60000 ms; 0: no probing). Frames sent before the guest forwards queue up in
   * qemu and arrive later; they belong to the probe run and are counted as stale.
   */
  readonly waitReadyMs?: number;
  /** Pause between the first probe coming back and the measurement (default 300 ms). */
  readonly settleMs?: number;
  readonly dstMac?: string;
  /** Seed of the frame sizes (default 1). */
  readonly seed?: number;
  /** Most frames sent per direction in one 1-ms timer tick (default 256). */
  readonly maxBurst?: number;
  readonly signal?: AbortSignal;
  /** Progress messages (default: none). */
  readonly log?: (line: string) => void;
}

export interface TrafficReport {
  readonly ok: boolean;
  readonly streams: readonly StreamReport[];
  /** Time until the first probe crossed (null without probing). */
  readonly readyMs: number | null;
  readonly sendMs: number;
  /** Frames of earlier runs or of the probe phase that arrived during the measurement. */
  readonly stale: number;
  /** Datagrams that were not test frames. */
  readonly foreign: number;
  /** Foreign datagrams by EtherType, e.g. { '0x0800': 2 }. */
  readonly foreignTypes: Readonly<Record<string, number>>;
  /** Failed sends (e.g. qemu gone). */
  readonly sendErrors: number;
  /**
   * Datagrams dropped by the host kernel during the measurement at qemu's sockets (wire 0, wire 1)
   * and at this tool's sockets (null where unknown). See udpDrops().
   */
  readonly socketDrops: { readonly qemu: readonly (number | null)[]; readonly host: readonly (number | null)[] };
  readonly rate: number;
  readonly size: number | 'random';
  readonly aborted: boolean;
}

export class NotReadyError extends Error {
  override name = 'NotReadyError';
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((res) => {
  if (signal?.aborted) { res(); return; }
  const t = setTimeout(done, ms);
  function done(): void { clearTimeout(t); signal?.removeEventListener('abort', done); res(); }
  signal?.addEventListener('abort', done, { once: true });
});

function openWire(w: Wire): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
    s.once('error', rej);
    s.bind(w.hostPort, '127.0.0.1', () => {
      s.connect(w.qemuPort, '127.0.0.1', () => {
        s.off('error', rej);
        // ECONNREFUSED once qemu is gone: counted by the sender, not fatal
        s.on('error', () => {});
        res(s);
      });
    });
  });
}

/**
 * Datagrams the kernel dropped at the UDP socket bound to 127.0.0.1:port because its receive
 * buffer was full (last column of /proc/net/udp); null if there is no such socket. Drops at qemu's
 * sockets mean the guest did not take frames fast enough; drops at ours mean this tool was slow.
 */
export function udpDrops(port: number): number | null {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  try {
    for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n')) {
      const cols = line.trim().split(/\s+/);
      if (cols[1] === local) return Number(cols[cols.length - 1]);
    }
  } catch {
    // not Linux
  }
  return null;
}

const nowUs = (): number => Math.floor(performance.now() * 1000) >>> 0;

/** Runs one measurement: probe until ready, send paced frames both ways, drain, count. */
export async function runTraffic(o: TrafficOptions): Promise<TrafficReport> {
  const rate = o.rate ?? 1000;
  if (!(rate > 0)) throw new RangeError(`rate ${rate} is not positive`);
  const size = o.size ?? 'random';
  const total = o.count ?? Math.max(1, Math.round((rate * (o.durationMs ?? 5000)) / 1000));
  const dirs = o.directions ?? 'both';
  const active = dirs === 'both' ? [0, 1] : dirs === '0to1' ? [0] : [1];
  const log = o.log ?? (() => {});
  const maxBurst = o.maxBurst ?? 256;
  const dst = o.dstMac ?? BROADCAST_MAC;
  parseMac(dst);

  const sockets = await Promise.all(o.wires.map(openWire));
  const runId = (Math.random() * 0xffffffff) >>> 0 || 1;
  let probeRunId = (runId ^ 0x5a5a5a5a) >>> 0;
  const counters = [new StreamCounter(0, 'NIC0->NIC1'), new StreamCounter(1, 'NIC1->NIC0')];
  const sizes = active.map((s) => sizeSequence(size, (o.seed ?? 1) + s, o.minSize, o.maxSize));
  let stale = 0;
  let foreign = 0;
  const foreignTypes: Record<string, number> = {};
  const probeSeen = [false, false];
  let measuring = false;

  // Frames of stream s are sent into wire s and expected out of wire 1 - s.
  sockets.forEach((sock, wire) => {
    sock.on('message', (msg: Buffer) => {
      const now = performance.now();
      const v = verifyFrame(msg);
      if (v.kind === 'foreign') {
        foreign++;
        const type = msg.length >= 14 ? `0x${msg.readUInt16BE(12).toString(16).padStart(4, '0')}` : 'runt';
        foreignTypes[type] = (foreignTypes[type] ?? 0) + 1;
        return;
      }
      const expected = 1 - wire;
      if (v.kind === 'corrupted') {
        if (v.runId === undefined || v.runId === runId || v.runId === probeRunId) counters[expected]!.noteCorrupted();
        else stale++;
        return;
      }
      if (v.runId === probeRunId) {
        if (v.stream === expected) probeSeen[v.stream] = true;
        if (measuring) stale++;
        return;
      }
      if (v.runId !== runId || v.stream > 1) { stale++; return; }
      if (v.stream !== expected) { counters[v.stream]!.noteMisrouted(); return; }
      counters[v.stream]!.noteReceived(v.seq, v.length, (nowUs() - v.sentAtUs) >>> 0, now);
    });
  });

  let sendErrors = 0;
  const onSent = (err: Error | null): void => { if (err) sendErrors++; };
  const send = (stream: number, frame: Uint8Array): void => {
    sockets[stream]!.send(frame, onSent);
  };

  let readyMs: number | null = null;
  try {
    const waitReady = o.waitReadyMs ?? 60_000;
    if (waitReady > 0) {
      const t0 = performance.now();
      let seq = 0;
      log(`waiting up to ${waitReady / 1000} s for the guest to forward`);
      while (!active.every((s) => probeSeen[s])) {
        if (o.signal?.aborted) throw new NotReadyError('the VM exited before forwarding any frame');
        if (performance.now() - t0 > waitReady) {
          const missing = active.filter((s) => !probeSeen[s]).map((s) => counters[s]!.name).join(', ');
          throw new NotReadyError(`no probe frame came back ${missing} within ${waitReady} ms ` +
            `(meanwhile: ${foreign} foreign datagrams, ${stale} stale frames, ` +
            `${counters[0]!.report().corrupted + counters[1]!.report().corrupted} damaged test frames)`);
        }
        for (const s of active) {
          if (!probeSeen[s]) send(s, buildFrame({ stream: s, runId: probeRunId, seq, length: MIN_FRAME, dst }));
        }
        seq++;
        await sleep(100, o.signal);
      }
      readyMs = performance.now() - t0;
      log(`guest forwards after ${(readyMs / 1000).toFixed(1)} s`);
      await sleep(o.settleMs ?? 300, o.signal);
    }

    const dropPorts = o.wires.flatMap((w) => [w.qemuPort, w.hostPort]);
    const dropsBefore = dropPorts.map(udpDrops);
    measuring = true;
    const t0 = performance.now();
    let sent = 0;
    while (sent < total && !o.signal?.aborted) {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000) + 1);
      const burst = Math.min(due - sent, maxBurst);
      for (let i = 0; i < burst; i++) {
        for (let k = 0; k < active.length; k++) {
          const s = active[k]!;
          const c = counters[s]!;
          const length = sizes[k]!();
          send(s, buildFrame({ stream: s, runId, seq: c.nextSeq, length, dst, sentAtUs: nowUs() }));
          c.noteSent(length);
        }
      }
      sent += burst;
      // give the receive callbacks a turn; timers run about once per millisecond
      if (sent < due) await new Promise<void>((res) => setImmediate(res));
      else await sleep(1);
    }
    const sendMs = performance.now() - t0;
    log(`sent ${sent} frames per direction in ${(sendMs / 1000).toFixed(2)} s; draining`);
    const drainEnd = performance.now() + (o.drainMs ?? 1000);
    while (performance.now() < drainEnd && !active.every((s) => counters[s]!.complete)) {
      await sleep(10, o.signal);
      if (o.signal?.aborted) break;
    }
    measuring = false;
    probeRunId = -1;
    const drops = dropPorts.map((p, i) => {
      const after = udpDrops(p);
      const before = dropsBefore[i];
      return after === null || before === null || before === undefined ? null : after - before;
    });
    const socketDrops = { qemu: [drops[0] ?? null, drops[2] ?? null], host: [drops[1] ?? null, drops[3] ?? null] };
    const streams = active.map((s) => counters[s]!.report());
    const ok = streams.every((r) => r.lost === 0 && r.corrupted === 0 && r.duplicated === 0 &&
      r.reordered === 0 && r.misrouted === 0);
    return { ok, streams, readyMs, sendMs, stale, foreign, foreignTypes, sendErrors, socketDrops, rate, size, aborted: o.signal?.aborted ?? false };
  } finally {
    for (const s of sockets) s.close();
  }
}

// --- text report -------------------------------------------------------------------------------

export function formatReport(r: TrafficReport): string {
  const head = ['direction', 'sent', 'received', 'lost', 'loss%', 'reordered', 'duplicated', 'corrupted',
    'misrouted', 'offered/s', 'delivered/s', 'lat p50/p99 ms'];
  const rows = r.streams.map((s) => [s.name, s.sent, s.received, s.lost, s.lossPercent.toFixed(2), s.reordered,
    s.duplicated, s.corrupted, s.misrouted, s.sentRate.toFixed(0), s.receivedRate.toFixed(0),
    s.latencyMs ? `${s.latencyMs.p50.toFixed(2)}/${s.latencyMs.p99.toFixed(2)}` : '-'].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const sizeText = r.size === 'random' ? 'random size' : `${r.size} B`;
  return [
    `traffic: ${r.rate} frames/s per direction, ${sizeText}, sent for ${(r.sendMs / 1000).toFixed(2)} s` +
      (r.readyMs !== null ? `, guest forwarding after ${(r.readyMs / 1000).toFixed(1)} s` : ''),
    line(head), ...rows.map(line),
    `stale frames (probes, earlier runs): ${r.stale}; foreign datagrams: ${r.foreign}` +
      (r.foreign > 0 ? ` (${Object.entries(r.foreignTypes).map(([t, n]) => `${t} x${n}`).join(', ')})` : '') +
      `; send errors: ${r.sendErrors}` +
      (r.aborted ? '; ABORTED (VM exited)' : ''),
    `host socket drops: qemu's wire0/wire1 ${r.socketDrops.qemu.map((d) => d ?? '?').join('/')}, ` +
      `this tool's wire0/wire1 ${r.socketDrops.host.map((d) => d ?? '?').join('/')}`,
    `result: ${r.ok ? 'OK (nothing lost, corrupted, duplicated, reordered or misrouted)' : 'NOT OK'}`,
  ].join('\n');
}

// --- CLI ---------------------------------------------------------------------------------------

export const TRAFFIC_USAGE = `traffic options:
  --base-port <n>        wires of vm.ts: host ports n+1 (NIC0) and n+3 (NIC1) (default ${DEFAULT_BASE_PORT})
  --wire0 <host>:<qemu>  explicit ports of NIC0's wire (and --wire1 for NIC1)
  --rate <fps>           frames/s per direction (default 1000)
  --duration <s>         sending time (default 5), or --count <n> frames per direction
  --size <n|random>      frame size 60..1514, default random; --min/--max bound random sizes
  --direction both|0to1|1to0
  --drain <s>            wait for stragglers (default 1)
  --wait-ready <s>       probe until the guest forwards, at most this long (default 60; 0: off)
  --dst <mac>            destination MAC (default broadcast)
  --seed <n>             frame-size seed (default 1)
  --max-loss <percent>   still exit 0 with this much loss (default 0)
  --json                 print the report as JSON
`;

export interface TrafficCli {
  readonly options: Omit<TrafficOptions, 'signal' | 'log'>;
  readonly json: boolean;
  readonly maxLossPercent: number;
}

/** Parses traffic options; unknown arguments are returned in `rest`. */
export function parseTrafficArgs(argv: readonly string[]): { cli: TrafficCli; rest: string[] } {
  let wires = wiresFor(DEFAULT_BASE_PORT) as readonly [Wire, Wire];
  const wireOverride: (Wire | undefined)[] = [undefined, undefined];
  const opt: { -readonly [K in keyof TrafficOptions]?: TrafficOptions[K] } = {};
  let json = false;
  let maxLossPercent = 0;
  const rest: string[] = [];
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n)) throw new TypeError(`${flag} needs a number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    const v = (): string | undefined => argv[++i];
    switch (f) {
      case '--base-port': wires = wiresFor(num(f, v())); break;
      case '--wire0': case '--wire1': {
        const m = /^(\d+):(\d+)$/.exec(v() ?? '');
        if (!m) throw new TypeError(`${f} needs <host port>:<qemu port>`);
        wireOverride[f === '--wire0' ? 0 : 1] = { hostPort: Number(m[1]), qemuPort: Number(m[2]) };
        break;
      }
      case '--rate': opt.rate = num(f, v()); break;
      case '--duration': opt.durationMs = num(f, v()) * 1000; break;
      case '--count': opt.count = num(f, v()); break;
      case '--size': { const s = v(); opt.size = s === 'random' ? 'random' : num(f, s); break; }
      case '--min': opt.minSize = num(f, v()); break;
      case '--max': opt.maxSize = num(f, v()); break;
      case '--direction': {
        const d = v();
        if (d !== 'both' && d !== '0to1' && d !== '1to0') throw new TypeError('--direction is both, 0to1 or 1to0');
        opt.directions = d;
        break;
      }
      case '--drain': opt.drainMs = num(f, v()) * 1000; break;
      case '--wait-ready': opt.waitReadyMs = num(f, v()) * 1000; break;
      case '--dst': opt.dstMac = v(); break;
      case '--seed': opt.seed = num(f, v()); break;
      case '--max-loss': maxLossPercent = num(f, v()); break;
      case '--json': json = true; break;
      default: rest.push(f);
    }
  }
  opt.wires = [wireOverride[0] ?? wires[0], wireOverride[1] ?? wires[1]];
  return { cli: { options: opt as TrafficOptions, json, maxLossPercent }, rest };
}

/** Exit status for a report: 0 ok, 1 corrupted/duplicated/reordered/misrouted or too much loss. */
export function trafficExitCode(r: TrafficReport, maxLossPercent: number): number {
  const clean = r.streams.every((s) => s.corrupted === 0 && s.duplicated === 0 && s.reordered === 0 &&
    s.misrouted === 0 && s.lossPercent <= maxLossPercent && s.sent > 0);
  return clean ? 0 : 1;
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseTrafficArgs(argv);
  } catch (e) {
    // A bad value ("--rate abc needs a number"): a usage error, one line, as the apps' are.
    process.stderr.write(`traffic: ${(e as Error).message}\nusage: tsx test/vm/traffic.ts [options]\n`);
    return 2;
  }
  const { cli, rest } = parsed;
  if (rest.length > 0) {
    process.stderr.write(`unknown arguments: ${rest.join(' ')}\nusage: tsx test/vm/traffic.ts [options]\n${TRAFFIC_USAGE}`);
    return 2;
  }
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  try {
    const r = await runTraffic({ ...cli.options, signal: ac.signal, log: (l) => process.stderr.write(`traffic: ${l}\n`) });
    process.stdout.write((cli.json ? JSON.stringify(r, null, 2) : formatReport(r)) + '\n');
    return trafficExitCode(r, cli.maxLossPercent);
  } catch (e) {
    process.stderr.write(`traffic: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
