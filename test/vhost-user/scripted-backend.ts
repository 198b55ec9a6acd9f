/**
 * A scripted vhost-user backend for fault injection: a child process (plain node, node:net) that
 * listens on a unix socket, logs every request it reads, answers like a minimal backend that
 * never touches the rings, and breaks the protocol where the test says: a reply with the wrong
 * request code, flags or size, a refusal (ack 1), no reply at all, or a hang-up.
 *
 * It runs in another process because the transport waits synchronously for each reply. File
 * descriptors the front-end sends are dropped by the kernel (node reads without a control
 * buffer), which is all this backend needs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export type FaultKind = "close" | "exit" | "hang" | "nack" | "wrongRequest" | "badFlags" | "badSize";

export interface Fault {
  /** The request that triggers it ... */
  readonly request: number;
  /** ... the nth time it arrives (default 1). */
  readonly nth?: number;
  readonly kind: FaultKind;
}

export interface ScriptOptions {
  /** GET_FEATURES answer (default VIRTIO_F_VERSION_1 | VHOST_USER_F_PROTOCOL_FEATURES). */
  readonly features?: bigint;
  /** GET_PROTOCOL_FEATURES answer (default REPLY_ACK | MQ). */
  readonly protocolFeatures?: bigint;
  /** GET_QUEUE_NUM answer (default 1). */
  readonly queueNum?: number;
  /** GET_CONFIG answers from these bytes (struct virtio_net_config). */
  readonly config?: Uint8Array;
  readonly faults?: readonly Fault[];
  /** Milliseconds before it starts listening (a backend still starting). */
  readonly listenDelayMs?: number;
}

export interface LoggedRequest {
  readonly request: number;
  readonly flags: number;
  readonly size: number;
  readonly payload: Buffer;
}

const SCRIPT = String.raw`
const net = require("node:net");
const fs = require("node:fs");
const cfg = JSON.parse(process.argv[1]);
const counts = new Map();
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
function reply(sock, request, flags, payload) {
  const b = Buffer.alloc(12 + payload.length);
  b.writeUInt32LE(request, 0); b.writeUInt32LE(flags, 4); b.writeUInt32LE(payload.length, 8);
  payload.copy(b, 12);
  sock.write(b);
}
const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
function handle(sock, request, flags, payload) {
  out({ request, flags, size: payload.length, payload: payload.toString("hex") });
  const n = (counts.get(request) || 0) + 1;
  counts.set(request, n);
  const fault = (cfg.faults || []).find((f) => f.request === request && (f.nth || 1) === n);
  const kind = fault ? fault.kind : null;
  if (kind === "close") return sock.destroy();
  if (kind === "exit") process.exit(0);
  if (kind === "hang") return;
  let body = null;
  if (request === 1) body = u64(cfg.features);
  else if (request === 15) body = u64(cfg.protocolFeatures);
  else if (request === 17) body = u64(cfg.queueNum);
  else if (request === 11) { body = Buffer.alloc(8); body.writeUInt32LE(payload.readUInt32LE(0), 0); }
  else if (request === 24) {
    const offset = payload.readUInt32LE(0), size = payload.readUInt32LE(4);
    body = Buffer.alloc(12 + size);
    body.writeUInt32LE(offset, 0); body.writeUInt32LE(size, 4);
    Buffer.from(cfg.config, "hex").copy(body, 12, offset, offset + size);
  } else if (flags & 8) body = u64(kind === "nack" ? 1 : 0);
  if (body === null) return;
  let replyRequest = request, replyFlags = 0x5;
  if (kind === "wrongRequest") replyRequest = request === 1 ? 15 : 1;
  if (kind === "badFlags") replyFlags = 0x1;
  if (kind === "badSize") body = Buffer.concat([body, Buffer.alloc(4)]);
  reply(sock, replyRequest, replyFlags, body);
}
const server = net.createServer((sock) => {
  let buf = Buffer.alloc(0);
  sock.on("error", () => {});
  sock.on("close", () => out({ closed: true }));
  sock.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 12) {
      const size = buf.readUInt32LE(8);
      if (buf.length < 12 + size) break;
      const m = buf.subarray(0, 12 + size);
      buf = buf.subarray(12 + size);
      handle(sock, m.readUInt32LE(0), m.readUInt32LE(4), Buffer.from(m.subarray(12)));
    }
  });
});
setTimeout(() => {
  try { fs.unlinkSync(cfg.path); } catch {}
  server.listen(cfg.path, () => out({ listening: true }));
}, cfg.listenDelayMs || 0);
`;

let counter = 0;

/** A fresh socket path in a private directory (removed by stop()). */
export function socketPath(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-vu-"));
  return path.join(dir, `b${counter++}.sock`);
}

export class ScriptedBackend {
  readonly path: string;
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  readonly #exited: Promise<void>;
  #partial = "";

  private constructor(child: ChildProcess, socket: string) {
    this.#child = child;
    this.path = socket;
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      const text = this.#partial + chunk;
      const lines = text.split("\n");
      this.#partial = lines.pop()!;
      this.#lines.push(...lines);
    });
    // "close": the process exited and its pipes are closed (their fds are gone from this process).
    this.#exited = new Promise((resolve) => child.on("close", () => resolve()));
  }

  /** Starts the backend; unless `listenDelayMs` is set, waits until it listens. */
  static async start(options: ScriptOptions = {}): Promise<ScriptedBackend> {
    const socket = socketPath();
    const cfg = {
      path: socket,
      features: `${options.features ?? (1n << 32n) | (1n << 30n)}`,
      protocolFeatures: `${options.protocolFeatures ?? (1n << 3n) | 1n}`,
      queueNum: options.queueNum ?? 1,
      config: Buffer.from(options.config ?? new Uint8Array(16)).toString("hex"),
      faults: options.faults ?? [],
      listenDelayMs: options.listenDelayMs ?? 0,
    };
    const child = spawn(process.execPath, ["-e", SCRIPT, JSON.stringify(cfg)], { stdio: ["ignore", "pipe", "inherit"] });
    const backend = new ScriptedBackend(child, socket);
    if (!options.listenDelayMs) await backend.#waitFor((l) => l.includes('"listening"'), "listening");
    return backend;
  }

  /** The requests logged so far (call settle() first after a synchronous exchange). */
  requests(): LoggedRequest[] {
    return this.#lines
      .map((l) => JSON.parse(l) as { request?: number; flags: number; size: number; payload: string })
      .filter((l) => l.request !== undefined)
      .map((l) => ({ request: l.request!, flags: l.flags, size: l.size, payload: Buffer.from(l.payload, "hex") }));
  }

  /** Lets the log of what the backend did so far arrive. */
  async settle(ms = 100): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
  }

  /** True once the backend saw the front-end close the connection. */
  async sawClose(): Promise<boolean> {
    try {
      await this.#waitFor((l) => l.includes('"closed"'), "closed", 2000);
      return true;
    } catch {
      return false;
    }
  }

  /** Kills it (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    this.#child.kill("SIGKILL");
    await this.#exited;
  }

  /** Kills it and removes its socket directory. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGKILL");
    await this.#exited;
    fs.rmSync(path.dirname(this.path), { recursive: true, force: true });
  }

  async #waitFor(test: (line: string) => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#lines.some(test)) {
      if (Date.now() > deadline) throw new Error(`scripted backend: not ${what} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}
