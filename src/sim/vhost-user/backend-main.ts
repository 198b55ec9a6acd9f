/**
 * The vhost-user model backend as a process of its own, for tests that need a real one across a
 * real socket:
 *
 *   node --import tsx src/sim/vhost-user/backend-main.ts --socket /path [--mode loopback|sink]
 *        [--queue-size N] [--queues N] [--mac 52:54:00:12:34:56] [--keep N] [--backlog N] [--packed] [--no-stdin]
 *
 * --queues N: N queue pairs (default 1): GET_QUEUE_NUM answers N, and above 1 VIRTIO_NET_F_MQ is
 * offered; looped-back frames return on their own pair, injected ones are steered by flow.
 *
 * It prints {"event":"listening",...} on stdout once it listens, then takes JSON-line commands
 * on stdin and prints replies and events on stdout (control-protocol.ts). It ends, closing its
 * socket and unlinking the path, on stdin EOF (unless --no-stdin), SIGTERM or SIGINT, with exit
 * code 0; 2 for bad arguments, 1 when it cannot listen.
 */
import * as readline from "node:readline";
import { VhostUserBackend } from "./backend.ts";
import { type BackendCommand, type BackendMode, fromHex, toHex } from "./control-protocol.ts";

const USAGE =
  "usage: backend-main.ts --socket PATH [--mode loopback|sink] [--queue-size N] [--queues N] [--mac XX:XX:XX:XX:XX:XX] [--keep N] [--backlog N] [--packed] [--no-stdin]";

interface Arguments {
  socket: string;
  mode: BackendMode;
  queueSize: number;
  queuePairs: number;
  mac?: Uint8Array;
  keep: number;
  backlog: number;
  packed?: boolean;
  stdin: boolean;
}

class UsageError extends Error {
  override name = "UsageError";
}

function parseArguments(argv: readonly string[]): Arguments {
  const args: Partial<Arguments> & { stdin: boolean } = { stdin: true };
  const integer = (name: string, value: string): number => {
    if (!/^\d+$/.test(value)) throw new UsageError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
    return Number(value);
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let value: string | undefined;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = (): string => {
      if (value !== undefined) return value;
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case "--socket":
      case "--socket-path": // vhost-user: Backend program conventions
        args.socket = next();
        break;
      case "--mode": {
        const mode = next();
        if (mode !== "loopback" && mode !== "sink") throw new UsageError(`--mode must be loopback or sink, got ${JSON.stringify(mode)}`);
        args.mode = mode;
        break;
      }
      case "--queue-size":
        args.queueSize = integer(arg, next());
        break;
      case "--queues":
        args.queuePairs = integer(arg, next());
        break;
      case "--mac": {
        const mac = next();
        if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) throw new UsageError(`--mac must look like 52:54:00:12:34:56, got ${JSON.stringify(mac)}`);
        args.mac = Uint8Array.from(mac.split(":").map((b) => parseInt(b, 16)));
        break;
      }
      case "--keep":
        args.keep = integer(arg, next());
        break;
      case "--backlog":
        args.backlog = integer(arg, next());
        break;
      case "--packed":
        args.packed = true;
        break;
      case "--no-stdin":
        args.stdin = false;
        break;
      case "--help":
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  if (args.socket === undefined) throw new UsageError("--socket PATH is required");
  return { mode: "loopback", queueSize: 256, queuePairs: 1, keep: 1024, backlog: 1024, ...args, socket: args.socket };
}

function print(line: object): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function main(): void {
  let args: Arguments;
  try {
    args = parseArguments(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`backend-main: ${e.message}\n${USAGE}\n`);
    process.exit(2);
  }
  let backend: VhostUserBackend;
  try {
    backend = new VhostUserBackend({ ...args, onEvent: print });
    backend.start();
  } catch (e) {
    process.stderr.write(`backend-main: ${(e as Error).message}\n`);
    process.exit(e instanceof RangeError || e instanceof TypeError ? 2 : 1);
  }

  let stopping = false;
  const shutdown = (code: number): void => {
    if (stopping) return;
    stopping = true;
    try {
      backend.close();
    } finally {
      process.exit(code);
    }
  };
  process.on("SIGTERM", () => shutdown(0));
  process.on("SIGINT", () => shutdown(0));
  process.on("uncaughtException", (e) => {
    process.stderr.write(`backend-main: ${e.stack ?? e.message}\n`);
    shutdown(1);
  });
  // Whoever reads stdout went away: nobody is left to serve.
  process.stdout.on("error", () => shutdown(0));

  print({ event: "listening", socket: backend.socket, pid: process.pid, mode: backend.mode, queueSize: backend.queueSize, queuePairs: backend.queuePairs });

  if (!args.stdin) return;
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => {
    if (line.trim() === "") return;
    let id: unknown = null;
    try {
      const command = JSON.parse(line) as BackendCommand;
      id = command.id;
      print({ id, ok: true, ...run(backend, command) });
    } catch (e) {
      print({ id, ok: false, error: (e as Error).message });
    }
  });
  lines.on("close", () => shutdown(0));
}

function run(backend: VhostUserBackend, command: BackendCommand): object {
  switch (command.cmd) {
    case "inject":
      return backend.inject(fromHex(command.frame));
    case "transmitted":
      return { frames: backend.transmitted().map(toHex) };
    case "stats":
      return { stats: backend.stats() };
    default:
      throw new TypeError(`unknown command ${JSON.stringify((command as { cmd?: unknown }).cmd)}: send inject, transmitted or stats`);
  }
}

main();
