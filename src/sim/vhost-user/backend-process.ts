/**
 * Starts the vhost-user model backend (backend-main.ts) as a child process and talks to it over
 * its stdin/stdout line protocol (control-protocol.ts), for tests:
 *
 *   const backend = startModelBackend({ socket: "/tmp/x/vhost.sock", mode: "loopback" });
 *   await backend.ready;                 // it listens: connect the driver now
 *   await backend.inject(frame);         // a frame for the driver's receive ring
 *   await backend.transmitted();         // frames the driver sent
 *   await backend.stats();               // rings, counters, violations
 *   await backend.stop();                // stdin EOF: it unlinks its socket and exits 0
 *
 * Every request is bounded by a timeout; errors carry the tail of the child's stderr.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import * as readline from "node:readline";
import { fileURLToPath } from "node:url";
import { type BackendEvent, type BackendMode, type BackendStats, fromHex, toHex } from "./control-protocol.ts";
import { BackendProcessError } from "./errors.ts";
import { isTypeScriptModule, siblingModule } from "../../threads/sibling-module.ts";

export interface ModelBackendOptions {
  readonly socket: string;
  readonly mode?: BackendMode;
  readonly queueSize?: number;
  /** Queue pairs (--queues; default 1). */
  readonly queuePairs?: number;
  /** "52:54:00:12:34:56" */
  readonly mac?: string;
  readonly keep?: number;
  readonly backlog?: number;
  /** Offer packed virtqueues (--packed). */
  readonly packed?: boolean;
  /** How long to wait for the "listening" line (default 20 s: tsx compiles on first start). */
  readonly readyTimeoutMs?: number;
  /** How long a command may take (default 5 s). */
  readonly commandTimeoutMs?: number;
}

export interface BackendExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ModelBackend {
  readonly socket: string;
  readonly pid: number;
  /** Resolves once the backend listens; rejects if it exits or times out first. */
  readonly ready: Promise<void>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<BackendExit>;
  /** Every event line so far (listening, connected, disconnected, violation, error). */
  readonly events: readonly BackendEvent[];
  /** The child's stderr so far. */
  readonly stderr: () => string;
  /** A frame for the driver's receive ring: true if written at once, false if it waits in the backlog. */
  inject(frame: Uint8Array): Promise<boolean>;
  /** The frames the driver transmitted (the latest `keep`), oldest first. */
  transmitted(): Promise<Uint8Array[]>;
  stats(): Promise<BackendStats>;
  /** Polls stats() until `predicate` holds; rejects with the last stats after `timeoutMs` (default 5 s). */
  waitFor(predicate: (stats: BackendStats) => boolean, timeoutMs?: number): Promise<BackendStats>;
  kill(signal?: NodeJS.Signals): void;
  /** Closes stdin (the backend unlinks its socket and exits), SIGKILL after `timeoutMs` (default 5 s). */
  stop(timeoutMs?: number): Promise<BackendExit>;
}

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
// backend-main.ts run through tsx in the repository, backend-main.js compiled (the npm package).
const MAIN_URL = siblingModule("backend-main", import.meta.url);
const MAIN = fileURLToPath(MAIN_URL);
const LOADER = isTypeScriptModule(MAIN_URL) ? ["--import", "tsx"] : [];
const STDERR_KEPT = 8192;

interface Pending {
  readonly resolve: (reply: Record<string, unknown>) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export function startModelBackend(options: ModelBackendOptions): ModelBackend {
  const args = [MAIN, "--socket", options.socket, "--mode", options.mode ?? "loopback"];
  if (options.queueSize !== undefined) args.push("--queue-size", String(options.queueSize));
  if (options.queuePairs !== undefined) args.push("--queues", String(options.queuePairs));
  if (options.mac !== undefined) args.push("--mac", options.mac);
  if (options.keep !== undefined) args.push("--keep", String(options.keep));
  if (options.backlog !== undefined) args.push("--backlog", String(options.backlog));
  if (options.packed === true) args.push("--packed");
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [...LOADER, ...args], { cwd: ROOT, stdio: "pipe" });
  const commandTimeout = options.commandTimeoutMs ?? 5000;
  const events: BackendEvent[] = [];
  const pending = new Map<number, Pending>();
  let stderr = "";
  let nextId = 1;
  let exit: BackendExit | null = null;

  const describe = (what: string) => {
    const tail = stderr.trim();
    return new BackendProcessError(`vhost-user model backend (pid ${child.pid}, ${options.socket}): ${what}${tail ? `; its stderr:\n${tail}` : ""}`);
  };

  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_KEPT);
  });

  let onReady: () => void = () => {};
  let onNotReady: (e: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onNotReady = reject;
  });
  ready.catch(() => {}); // a caller that never awaits it must not see an unhandled rejection
  const readyTimer = setTimeout(() => onNotReady(describe(`did not listen within ${options.readyTimeoutMs ?? 20_000} ms`)), options.readyTimeoutMs ?? 20_000);

  const exited = new Promise<BackendExit>((resolve) => {
    child.on("exit", (code, signal) => {
      exit = { code, signal };
      clearTimeout(readyTimer);
      onNotReady(describe(`exited (code ${code}, signal ${signal}) before it listened`));
      for (const [, p] of pending) {
        clearTimeout(p.timer);
        p.reject(describe(`exited (code ${code}, signal ${signal}) before it answered`));
      }
      pending.clear();
      resolve(exit);
    });
  });
  child.on("error", (e) => onNotReady(describe(`could not be started: ${e.message}`)));

  readline.createInterface({ input: child.stdout, crlfDelay: Infinity }).on("line", (line) => {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line) as Record<string, unknown>;
    } catch {
      stderr = (stderr + `(stdout, not JSON) ${line}\n`).slice(-STDERR_KEPT);
      return;
    }
    if (typeof message.event === "string") {
      events.push(message as unknown as BackendEvent);
      if (message.event === "listening") {
        clearTimeout(readyTimer);
        onReady();
      }
      return;
    }
    const p = pending.get(message.id as number);
    if (p === undefined) return;
    pending.delete(message.id as number);
    clearTimeout(p.timer);
    if (message.ok === true) p.resolve(message);
    else p.reject(describe(`refused a command: ${String(message.error)}`));
  });

  const command = (cmd: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      if (exit !== null) {
        reject(describe(`has exited (code ${exit.code}, signal ${exit.signal})`));
        return;
      }
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(describe(`did not answer ${cmd} within ${commandTimeout} ms`));
      }, commandTimeout);
      pending.set(id, { resolve, reject, timer });
      child.stdin.write(`${JSON.stringify({ id, cmd, ...fields })}\n`);
    });
  child.stdin.on("error", () => {}); // EPIPE after the child died: reported through `exited`

  const stats = async () => (await command("stats")).stats as BackendStats;

  return {
    socket: options.socket,
    pid: child.pid ?? -1,
    ready,
    exited,
    events,
    stderr: () => stderr,
    inject: async (frame) => (await command("inject", { frame: toHex(frame) })).delivered as boolean,
    transmitted: async () => ((await command("transmitted")).frames as string[]).map(fromHex),
    stats,
    async waitFor(predicate, timeoutMs = 5000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const s = await stats();
        if (predicate(s)) return s;
        if (performance.now() >= deadline) throw describe(`stats did not reach the expected state within ${timeoutMs} ms; last: ${JSON.stringify(s)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    kill(signal = "SIGTERM") {
      if (exit === null) child.kill(signal);
    },
    async stop(timeoutMs = 5000) {
      if (exit !== null) return exit;
      child.stdin.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}
