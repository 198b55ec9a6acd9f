/**
 * The line protocol between the backend child process (backend-main.ts) and whoever started it
 * (backend-process.ts): one JSON object per line, frames as lowercase hex.
 *
 * stdin, commands (each with an `id` the reply repeats):
 *   {"id":1,"cmd":"inject","frame":"<hex>"}  → {"id":1,"ok":true,"delivered":true|false,"backlog":N}
 *   {"id":2,"cmd":"transmitted"}             → {"id":2,"ok":true,"frames":["<hex>",...]}
 *   {"id":3,"cmd":"stats"}                   → {"id":3,"ok":true,"stats":{...BackendStats}}
 *   a command that fails                     → {"id":N,"ok":false,"error":"..."}
 * stdin EOF (or SIGTERM, SIGINT): the backend closes, unlinks its socket and exits with 0.
 *
 * stdout, events (no `id`):
 *   {"event":"listening","socket":"/path","pid":123,"mode":"loopback","queueSize":256,"queuePairs":1}  (first line: ready)
 *   {"event":"connected","connection":1}
 *   {"event":"disconnected","connection":1,"reason":"the front-end hung up"}
 *   {"event":"violation","message":"..."}   (the first MAX_VIOLATION_EVENTS only; stats has them all)
 *   {"event":"error","message":"..."}       (a bug in the backend; the connection was closed)
 */
import type { VirtioNetCounters } from "../virtio/virtio-model.ts";
import type { SessionStats } from "./session.ts";

export type BackendMode = "loopback" | "sink";

export type BackendEvent =
  | { readonly event: "listening"; readonly socket: string; readonly pid: number; readonly mode: BackendMode; readonly queueSize: number; readonly queuePairs: number }
  | { readonly event: "connected"; readonly connection: number }
  | { readonly event: "disconnected"; readonly connection: number; readonly reason: string }
  | { readonly event: "violation"; readonly message: string }
  | { readonly event: "error"; readonly message: string };

export type BackendCommand =
  | { readonly id: number; readonly cmd: "inject"; readonly frame: string }
  | { readonly id: number; readonly cmd: "transmitted" }
  | { readonly id: number; readonly cmd: "stats" };

export interface BackendStats {
  readonly socket: string;
  readonly mode: BackendMode;
  /** Front-ends accepted so far, and whether one is connected now. */
  readonly connections: number;
  readonly connected: boolean;
  /** The connected front-end's session, or null. */
  readonly session: SessionStats | null;
  /** The virtio-net model's counters, over all connections. */
  readonly device: VirtioNetCounters;
  /** Frames the driver transmitted on an enabled ring, and their bytes (headers stripped). */
  readonly transmitted: number;
  readonly transmittedBytes: number;
  /** Frames of a disabled transmit ring, processed and dropped. */
  readonly discarded: number;
  /** Frames written to the driver's receive ring (injected, or looped back). */
  readonly delivered: number;
  /** Frames waiting for a receive buffer, and those dropped because the backlog was full. */
  readonly backlog: number;
  readonly backlogDropped: number;
  /** Frames the receive path refused for good: filtered (promiscuous mode off) or larger than the buffer. */
  readonly rejected: number;
  /** Protocol violations (the front-end's, then the device model's), the first MAX_VIOLATIONS kept. */
  readonly violations: readonly string[];
  readonly violationCount: number;
}

export const MAX_VIOLATIONS = 1000;
export const MAX_VIOLATION_EVENTS = 100;

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString("hex");
}

/** Lowercase or uppercase hex, an even number of digits; a TypeError otherwise. */
export function fromHex(hex: string): Uint8Array {
  if (typeof hex !== "string" || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new TypeError("a frame must be an even number of hex digits");
  }
  return new Uint8Array(Buffer.from(hex, "hex"));
}
