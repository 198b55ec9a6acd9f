/**
 * pktgen's frames: the option syntax for addresses, sizes and flows, and the precomputed header
 * templates that per-flow and per-size variation come from.
 *
 * Flow i (0 .. flows-1) has source IP src-ip + i and UDP source port src-port + i (both wrap);
 * everything else is the same. A template is the IPv4 + UDP header (frame bytes 14 .. 41) of one
 * (flow, size) pair; the send loop copies template (seq mod K) over the buffer's header, 28 byte
 * stores, and sets the buffer's length. The payload (a byte pattern) was written once per buffer
 * at start for the largest size, so any template's length fits. With one flow and one size there
 * is one template and the loop does not copy at all: the ixy trick of a sequence-number store
 * per frame.
 */
import { UsageError } from "./cli.ts";
import { ETH_HLEN, MAX_FRAME, MIN_FRAME, SEQ_OFFSET, writeUdpFrame } from "./udp-frame.ts";

/** Bytes of a template: the IPv4 and UDP headers. */
export const TEMPLATE_BYTES = SEQ_OFFSET - ETH_HLEN;
/** Distinct sizes drawn for a size range (times the flows: at most MAX_TEMPLATES templates). */
const RANGE_SIZES = 256;
export const MAX_TEMPLATES = 1 << 16;
export const MAX_FLOWS = 65536;

export type Ipv4 = readonly [number, number, number, number];

export function macArg(name: string, value: string | undefined): Uint8Array | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(value)) throw new UsageError(`--${name} takes six hex bytes like 02:00:00:00:00:01, got ${value}`);
  return Uint8Array.from(value.split(":"), (b) => parseInt(b, 16));
}

export function ipArg(name: string, value: string | undefined, fallback: Ipv4): Ipv4 {
  if (value === undefined) return fallback;
  const parts = value.split(".");
  const n = parts.map(Number);
  if (parts.length !== 4 || n.some((x, i) => !/^\d{1,3}$/.test(parts[i]!) || x > 255)) {
    throw new UsageError(`--${name} takes an IPv4 address like 10.0.0.1, got ${value}`);
  }
  return n as unknown as Ipv4;
}

/** The sizes of --size: "N", "MIN-MAX" (uniform random) or "A,B,C" (a mix, in turn). */
export interface SizeSpec {
  readonly kind: "fixed" | "range" | "mix";
  /** The sizes the templates cycle through. */
  readonly sizes: readonly number[];
  readonly min: number;
  readonly max: number;
}

export function sizeArg(value: string | undefined, seed = 0x9e3779b9): SizeSpec {
  if (value === undefined) return { kind: "fixed", sizes: [MIN_FRAME], min: MIN_FRAME, max: MIN_FRAME };
  const one = (s: string): number => {
    const n = Number(s);
    if (!/^\d+$/.test(s) || n < MIN_FRAME || n > MAX_FRAME) {
      throw new UsageError(`--size must be an integer from ${MIN_FRAME} to ${MAX_FRAME}, MIN-MAX or a list A,B,C, got ${value}`);
    }
    return n;
  };
  const range = /^(\d+)-(\d+)$/.exec(value);
  if (range) {
    const min = one(range[1]!);
    const max = one(range[2]!);
    if (min > max) throw new UsageError(`--size ${value}: MIN is more than MAX`);
    const random = xorshift(seed);
    const sizes = Array.from({ length: RANGE_SIZES }, () => min + Math.floor(random() * (max - min + 1)));
    return { kind: "range", sizes, min, max };
  }
  const sizes = value.split(",").map(one);
  return { kind: sizes.length === 1 ? "fixed" : "mix", sizes, min: Math.min(...sizes), max: Math.max(...sizes) };
}

/** A small deterministic PRNG (xorshift32) for the size draw: the same sizes every run. */
function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

export interface FrameFields {
  readonly srcMac: Uint8Array;
  readonly dstMac: Uint8Array;
  readonly srcIp: Ipv4;
  readonly dstIp: Ipv4;
  readonly srcPort: number;
  readonly dstPort: number;
  readonly flows: number;
}

/** The IPv4 address ip + i (mod 2^32). */
export function addIp(ip: Ipv4, i: number): Ipv4 {
  const v = (((ip[0] << 24) >>> 0) + (ip[1] << 16) + (ip[2] << 8) + ip[3] + i) >>> 0;
  return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

/** UDP port p + i, wrapping within 1 .. 65535. */
export function addPort(p: number, i: number): number {
  return ((p - 1 + i) % 65535) + 1;
}

export class FrameTemplates {
  /** K templates of TEMPLATE_BYTES each, and each one's frame length. */
  readonly headers: Uint8Array;
  readonly lengths: Uint16Array;
  readonly count: number;
  /** The largest frame: what every buffer is filled with at start. */
  readonly maxSize: number;
  /** Mean frame length over the K templates (for --rate-mbit). */
  readonly meanSize: number;
  readonly #fields: FrameFields;

  constructor(fields: FrameFields, size: SizeSpec) {
    if (!Number.isInteger(fields.flows) || fields.flows < 1 || fields.flows > MAX_FLOWS) throw new RangeError(`flows must be 1 to ${MAX_FLOWS}`);
    this.#fields = fields;
    const sizes = size.kind === "range" ? size.sizes.slice(0, Math.max(1, Math.floor(MAX_TEMPLATES / fields.flows))) : size.sizes;
    const k = fields.flows * sizes.length;
    if (k > MAX_TEMPLATES * 16) throw new UsageError(`--flows ${fields.flows} times ${sizes.length} sizes is more than ${MAX_TEMPLATES * 16} templates`);
    this.count = k;
    this.headers = new Uint8Array(k * TEMPLATE_BYTES);
    this.lengths = new Uint16Array(k);
    this.maxSize = size.max;
    const frame = new Uint8Array(MAX_FRAME);
    let total = 0;
    // Template j: flow j mod flows, size j div flows: every frame of a run of `flows` frames has
    // another flow, so a receiver's queues (RSS) all get work at once.
    for (let j = 0; j < k; j++) {
      const len = sizes[Math.floor(j / fields.flows)]!;
      this.frame(frame, len, j % fields.flows);
      this.headers.set(frame.subarray(ETH_HLEN, SEQ_OFFSET), j * TEMPLATE_BYTES);
      this.lengths[j] = len;
      total += len;
    }
    this.meanSize = total / k;
  }

  /** Writes the whole frame of `flow` at `size` bytes into out. */
  frame(out: Uint8Array, size: number, flow: number): void {
    const f = this.#fields;
    writeUdpFrame(out, size, {
      srcMac: f.srcMac,
      dstMac: f.dstMac,
      srcIp: addIp(f.srcIp, flow),
      dstIp: f.dstIp,
      srcPort: addPort(f.srcPort, flow),
      dstPort: f.dstPort,
    });
  }
}

/** Copies template j over the headers of the frame at bytes[start]; returns its length. */
export function applyTemplate(t: FrameTemplates, j: number, bytes: Uint8Array, start: number): number {
  const h = t.headers;
  const from = j * TEMPLATE_BYTES;
  const to = start + ETH_HLEN;
  for (let i = 0; i < TEMPLATE_BYTES; i++) bytes[to + i] = h[from + i]!;
  return t.lengths[j]!;
}
