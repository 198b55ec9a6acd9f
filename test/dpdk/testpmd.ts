/**
 * Starts and stops a dpdk-testpmd process for the vhost-user tests and bench/vhost:
 *
 *   const be = startTestpmd({ role: "backend", sockets: ["/tmp/v0", "/tmp/v1"], lcores: "0@1,1@0",
 *                             filePrefix: "be", forwardMode: "io" });
 *   await be.ready;                 // forwarding has started
 *   ...                             // connect a vhost-user frontend to /tmp/v0 and /tmp/v1
 *   await be.connected();           // every socket has a frontend whose rings are live
 *   const s = await be.nextStats(); // the next periodic statistics block
 *   await be.stop();                // SIGINT, wait, SIGKILL after a timeout; removes its files
 *
 * role "backend": one net_vhost port per socket (testpmd is the vhost-user server and creates the
 * socket); role "virtio-user": one net_virtio_user port per socket (testpmd is the frontend, its
 * sockets must exist). Both always get --no-pci --single-file-segments (the virtio-user side needs
 * it, or the backend fails with "Failed to set memory table"), --auto-start and --stats-period.
 *
 * What testpmd does with its stdin: with --auto-start and no --stats-period it prints "Press enter
 * to exit" and reads stdin, so EOF (stdin /dev/null) stops it at once. With --stats-period it
 * never reads stdin, and runs until SIGINT/SIGTERM, printing statistics. Here stdin is a pipe that
 * stays open, and --stats-period is always given. So that a testpmd outlives no crashed harness,
 * it is started through `setpriv --pdeathsig TERM` (util-linux) when that exists, and every one
 * still running is SIGKILLed when this process exits.
 *
 * Errors are TestpmdError, with a `code` and the tail of testpmd's stderr in the message.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { accessSync, constants, existsSync, lstatSync, readdirSync, readFileSync, rmSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { TestpmdOutputParser, type ForwardStats, type StatsSnapshot } from "./testpmd-output.ts";

export type { ForwardStats, PortStats, StatsSnapshot } from "./testpmd-output.ts";
export { windowRates, type WindowRates } from "./testpmd-output.ts";

export type TestpmdRole = "backend" | "virtio-user";

export interface TestpmdOptions {
  role: TestpmdRole;
  /** One port per socket path, port i on sockets[i]. */
  sockets: string[];
  /** EAL --lcores, e.g. "0@1,1@0": lcore 0 (main, mostly asleep) on CPU 1, lcore 1 (forwarding) on CPU 0. */
  lcores: string;
  /** EAL --file-prefix: names its hugepage files and /var/run/dpdk/<prefix>. Letters, digits, _ and -. */
  filePrefix: string;
  /** testpmd --forward-mode: io, mac, macswap, flowgen, txonly, rxonly, ... */
  forwardMode: string;
  /** --tx-first: send one burst on every port before forwarding (frames that then circulate). */
  txFirst?: boolean;
  /** --txpkts: frame length in bytes of what tx-first, txonly and flowgen send (testpmd's default 64). */
  frameSize?: number;
  /** --stats-period in seconds, default 1. (testpmd prints a block about every period + 1 s.) */
  statsPeriod?: number;
  /** --total-num-mbufs; testpmd's default (155456 of 2176 bytes, about 330 MiB of hugepages) if unset. */
  totalNumMbufs?: number;
  /** Appended to every --vdev, e.g. "queue_size=1024" (virtio-user) or "queues=1" (backend). */
  vdevArgs?: string;
  /** EAL arguments before "--". */
  extraEalArgs?: string[];
  /** testpmd arguments after "--". */
  extraArgs?: string[];
  /** The program; default $DPDK_TESTPMD or dpdk-testpmd on PATH. */
  binary?: string;
  /** How long `ready` waits for forwarding to start, default 30 s. */
  readyTimeoutMs?: number;
  /** Every line testpmd prints, e.g. to log it. */
  onLine?: (stream: "stdout" | "stderr", line: string) => void;
}

export type TestpmdErrorCode =
  | "bad-options" // the options make no testpmd command line
  | "not-installed" // no dpdk-testpmd to run
  | "socket-in-use" // backend: a live vhost-user server already listens on one of the sockets
  | "no-socket" // virtio-user: a socket does not exist (start the backend first)
  | "exited" // testpmd exited before it was asked to
  | "ready-timeout"
  | "connect-timeout"
  | "stats-timeout"
  | "stop-timeout"
  | "parse"; // testpmd printed a statistics block this module cannot read

export class TestpmdError extends Error {
  override name = "TestpmdError";
  readonly code: TestpmdErrorCode;
  /** The last lines testpmd printed (stderr marked !), as in the message. */
  readonly outputTail: string;
  constructor(code: TestpmdErrorCode, message: string, outputTail = "") {
    super(outputTail ? `${message}\n  testpmd's output, last lines:\n${outputTail}` : message);
    this.code = code;
    this.outputTail = outputTail;
  }
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StopResult extends ExitInfo {
  /** true if it did not exit on SIGINT in time and was SIGKILLed. */
  killed: boolean;
  /** The forwarding engine's per-port totals testpmd printed on the way out (empty if killed). */
  forwardStats: ForwardStats[];
  /** Files removed afterwards: the backend's sockets, hugepage files of its file-prefix. */
  removed: string[];
}

const PREFIX_OK = /^[A-Za-z0-9_-]+$/;
const TAIL_LINES = 400;
// Lines of the periodic statistics blocks, left out of error messages.
const STATS_LINE = /^\s*(Port statistics =|#{10,}|RX-|TX-|Rx-|Tx-|Throughput \(since last show\))/;
// VHOST_CONFIG lines that are the protocol going as it should.
const ROUTINE = /^VHOST_CONFIG: \(.*?\) (read message|\t|guest |host |mmap |vring (call|kick|base)|set queue enable|new device status|negotiated)/;
const live = new Set<Testpmd>();
let exitHookInstalled = false;

function quoteArg(a: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`;
}

/** The whole command line for the options, without setpriv. Exported for logs and tests. */
export function testpmdArgs(o: TestpmdOptions): string[] {
  if (!PREFIX_OK.test(o.filePrefix)) throw new TestpmdError("bad-options", `filePrefix ${JSON.stringify(o.filePrefix)}: use letters, digits, _ and -`);
  if (o.sockets.length === 0) throw new TestpmdError("bad-options", "sockets: give at least one socket path");
  if (new Set(o.sockets).size !== o.sockets.length) throw new TestpmdError("bad-options", `sockets: the same path twice in ${o.sockets.join(", ")}`);
  for (const s of o.sockets) {
    if (/[,\s]/.test(s)) throw new TestpmdError("bad-options", `socket path ${JSON.stringify(s)}: no commas or spaces (they would split the --vdev argument)`);
  }
  if (!/^[0-9@,()-]+$/.test(o.lcores)) throw new TestpmdError("bad-options", `lcores ${JSON.stringify(o.lcores)} is not an EAL --lcores list like 0@1,1@0`);
  if (!/^[a-z0-9-]+$/.test(o.forwardMode)) throw new TestpmdError("bad-options", `forwardMode ${JSON.stringify(o.forwardMode)}`);
  const period = o.statsPeriod ?? 1;
  if (!Number.isInteger(period) || period < 1) throw new TestpmdError("bad-options", `statsPeriod ${period}: a whole number of seconds >= 1`);
  if (o.frameSize !== undefined && (!Number.isInteger(o.frameSize) || o.frameSize < 42 || o.frameSize > 9000)) {
    throw new TestpmdError("bad-options", `frameSize ${o.frameSize}: 42..9000 bytes`);
  }
  const extra = o.vdevArgs ? `,${o.vdevArgs}` : "";
  const vdevs = o.sockets.flatMap((path, i) =>
    o.role === "backend" ? ["--vdev", `net_vhost${i},iface=${path}${extra}`] : ["--vdev", `net_virtio_user${i},path=${path}${extra}`],
  );
  return [
    o.binary ?? process.env.DPDK_TESTPMD ?? "dpdk-testpmd",
    "--lcores", o.lcores,
    "--no-pci",
    `--file-prefix=${o.filePrefix}`,
    "--single-file-segments",
    ...vdevs,
    ...(o.extraEalArgs ?? []),
    "--",
    `--forward-mode=${o.forwardMode}`,
    "--auto-start",
    ...(o.txFirst ? ["--tx-first"] : []),
    ...(o.frameSize !== undefined ? [`--txpkts=${o.frameSize}`] : []),
    ...(o.totalNumMbufs !== undefined ? [`--total-num-mbufs=${o.totalNumMbufs}`] : []),
    "--stats-period", String(period),
    ...(o.extraArgs ?? []),
  ];
}

/** Resolves true if something accepts connections on the unix socket `path`. */
function socketIsLive(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    const done = (v: boolean): void => {
      clearTimeout(t);
      c.destroy();
      resolve(v);
    };
    const t = setTimeout(() => done(true), timeoutMs); // no answer: assume someone holds it
    c.once("connect", () => done(true));
    c.once("error", () => done(false));
  });
}

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Mount points of hugetlbfs file systems (from /proc/mounts). */
export function hugetlbfsMounts(): string[] {
  try {
    return readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((l) => l.split(" "))
      .filter((f) => f[2] === "hugetlbfs")
      .map((f) => f[1]!.replace(/\\040/g, " "));
  } catch {
    return [];
  }
}

/**
 * Removes what a testpmd with this file-prefix leaves behind after it exits: its hugepage files
 * (<prefix>map_<n> in every hugetlbfs mount; DPDK keeps them at exit) and /var/run/dpdk/<prefix>.
 * Only call it when no process with that prefix runs. Returns the paths removed.
 */
export function removePrefixFiles(filePrefix: string): string[] {
  if (!PREFIX_OK.test(filePrefix)) throw new TestpmdError("bad-options", `filePrefix ${JSON.stringify(filePrefix)}`);
  const removed: string[] = [];
  const mine = new RegExp(`^${filePrefix}map_\\d+$`);
  for (const dir of hugetlbfsMounts()) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names.filter((n) => mine.test(n))) {
      try {
        unlinkSync(join(dir, n));
        removed.push(join(dir, n));
      } catch {
        // gone already
      }
    }
  }
  const run = join("/var/run/dpdk", filePrefix);
  if (existsSync(run)) {
    rmSync(run, { recursive: true, force: true });
    removed.push(run);
  }
  return removed;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const t of live) t.killNow();
  });
}

/** Stops every testpmd this process started that still runs (e.g. from a SIGINT handler). */
export async function stopAll(timeoutMs = 10_000): Promise<void> {
  await Promise.allSettled([...live].map((t) => t.stop(timeoutMs)));
}

export class Testpmd {
  readonly argv: string[];
  readonly pid: number | undefined;
  /** Resolves when testpmd says forwarding started; rejects (TestpmdError) if it exits first or takes too long. */
  readonly ready: Promise<void>;
  /** Resolves when the process has exited, however. */
  readonly exited: Promise<ExitInfo>;

  private readonly child: ChildProcessWithoutNullStreams;
  private readonly parser: TestpmdOutputParser;
  private readonly lines: { stream: "stdout" | "stderr"; line: string }[] = [];
  private exit: ExitInfo | null = null;
  private stopping = false;
  private stopPromise: Promise<StopResult> | null = null;
  private killed = false;
  private snapshotWaiters: { resolve: (s: StatsSnapshot) => void; reject: (e: Error) => void }[] = [];
  private readonly peersUp = new Set<string>();
  private readonly features = new Map<string, string>();
  private peerWaiters: (() => void)[] = [];
  private exitWaiters: (() => void)[] = [];

  readonly options: TestpmdOptions;

  constructor(options: TestpmdOptions) {
    this.options = options;
    this.argv = testpmdArgs(options);
    const wrap = existsSync("/usr/bin/setpriv") ? ["/usr/bin/setpriv", "--pdeathsig", "TERM", "--"] : [];
    const full = [...wrap, ...this.argv];
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    this.ready = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    this.ready.catch(() => {}); // a caller that never awaits it gets no unhandled rejection
    let exitResolve!: (e: ExitInfo) => void;
    this.exited = new Promise<ExitInfo>((res) => (exitResolve = res));

    this.parser = new TestpmdOutputParser(options.sockets.length, {
      onLine: (l) => this.remember("stdout", l),
      onForwardingStarted: () => readyResolve(),
      onSnapshot: (s) => {
        const waiters = this.snapshotWaiters;
        this.snapshotWaiters = [];
        for (const w of waiters) w.resolve(s);
      },
    });

    this.child = spawn(full[0]!, full.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    this.pid = this.child.pid;
    live.add(this);
    installExitHook();

    const readyTimer = setTimeout(() => {
      readyReject(this.error("ready-timeout", `testpmd did not start forwarding within ${(options.readyTimeoutMs ?? 30_000) / 1000} s`));
      this.killNow();
    }, options.readyTimeoutMs ?? 30_000);
    this.ready.then(() => clearTimeout(readyTimer), () => clearTimeout(readyTimer));

    this.child.stdin.on("error", () => {}); // EPIPE once it has exited
    this.child.stdout.setEncoding("utf8").on("data", (s: string) => {
      try {
        this.parser.push(s);
      } catch (e) {
        this.failWaiters(this.error("parse", (e as Error).message));
      }
    });
    let errPartial = "";
    this.child.stderr.setEncoding("utf8").on("data", (s: string) => {
      const parts = (errPartial + s).split("\n");
      errPartial = parts.pop()!;
      for (const l of parts) this.stderrLine(l);
    });

    this.child.on("error", (err: NodeJS.ErrnoException) => {
      const e =
        err.code === "ENOENT"
          ? new TestpmdError("not-installed", `cannot run ${full[0]}: not found (install DPDK as root: bash test/dpdk/setup.sh)`)
          : new TestpmdError("exited", `cannot run ${full.join(" ")}: ${err.message}`);
      readyReject(e);
      this.failWaiters(e);
      if (this.child.pid === undefined && this.exit === null) {
        // It never ran: there will be no "close" to wait for.
        this.exit = { code: null, signal: null };
        live.delete(this);
        for (const w of this.exitWaiters) w();
        exitResolve(this.exit);
      }
    });
    this.child.on("close", (code, signal) => {
      if (this.exit !== null) return;
      if (errPartial) this.stderrLine(errPartial);
      this.parser.end();
      this.exit = { code, signal };
      live.delete(this);
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      const e = this.error("exited", `testpmd exited (${how}) ${this.stopping ? "while stopping" : "before it was stopped"}${this.hint()}`);
      readyReject(e);
      this.failWaiters(e);
      for (const w of this.exitWaiters) w();
      exitResolve(this.exit);
    });
  }

  /** The command line, quoted for a shell. */
  get commandLine(): string {
    return this.argv.map(quoteArg).join(" ");
  }

  get running(): boolean {
    return this.exit === null;
  }

  /** The latest periodic statistics block, or null before the first. */
  stats(): StatsSnapshot | null {
    return this.parser.snapshots.at(-1) ?? null;
  }

  /** Every statistics block so far, oldest first. */
  get snapshots(): readonly StatsSnapshot[] {
    return this.parser.snapshots;
  }

  /** The next statistics block testpmd prints (about one a statsPeriod + 1 s). */
  nextStats(timeoutMs = 15_000): Promise<StatsSnapshot> {
    if (this.exit) return Promise.reject(this.error("exited", "testpmd has exited: no more statistics"));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.snapshotWaiters = this.snapshotWaiters.filter((w) => w !== waiter);
        reject(this.error("stats-timeout", `testpmd printed no statistics within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const waiter = {
        resolve: (s: StatsSnapshot) => (clearTimeout(t), resolve(s)),
        reject: (e: Error) => (clearTimeout(t), reject(e)),
      };
      this.snapshotWaiters.push(waiter);
    });
  }

  /**
   * Resolves when every port has a live peer. backend: testpmd has logged "virtio is now ready
   * for processing" for each socket (the frontend connected, set its memory table and rings, and
   * set DRIVER_OK). virtio-user: the ports connect while testpmd starts, so this is `ready`.
   */
  async connected(timeoutMs = 30_000): Promise<void> {
    await this.ready;
    if (this.options.role !== "backend") return;
    const all = (): boolean => this.options.sockets.every((s) => this.peersUp.has(s));
    if (all()) return;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        cleanup();
        const missing = this.options.sockets.filter((s) => !this.peersUp.has(s));
        reject(this.error("connect-timeout", `no vhost-user frontend became ready on ${missing.join(", ")} within ${timeoutMs / 1000} s`));
      }, timeoutMs);
      const check = (): void => {
        if (all()) {
          cleanup();
          resolve();
        }
      };
      const gone = (): void => {
        cleanup();
        reject(this.error("exited", "testpmd exited while waiting for its vhost-user peers"));
      };
      const cleanup = (): void => {
        clearTimeout(t);
        this.peerWaiters = this.peerWaiters.filter((w) => w !== check);
        this.exitWaiters = this.exitWaiters.filter((w) => w !== gone);
      };
      this.peerWaiters.push(check);
      this.exitWaiters.push(gone);
      if (this.exit) gone();
    });
  }

  /**
   * backend: the virtio feature bits each socket's frontend negotiated last, as the vhost library
   * logged them ("negotiated Virtio features: 0x950008000"), by socket path.
   */
  negotiatedFeatures(): Record<string, string> {
    return Object.fromEntries(this.features);
  }

  /** Sockets whose frontend is connected and ready (backend role). */
  get peers(): string[] {
    return [...this.peersUp];
  }

  /**
   * SIGINT (testpmd stops forwarding, prints its forward statistics, closes its ports and
   * exits), SIGKILL if it has not exited after timeoutMs; then removes the backend's socket
   * files and the hugepage files of its file-prefix. Safe to call more than once.
   */
  stop(timeoutMs = 10_000): Promise<StopResult> {
    this.stopPromise ??= this.doStop(timeoutMs);
    return this.stopPromise;
  }

  private async doStop(timeoutMs: number): Promise<StopResult> {
    this.stopping = true;
    if (this.exit === null) {
      this.child.kill("SIGINT");
      const inTime = await Promise.race([this.exited.then(() => true), sleep(timeoutMs).then(() => false)]);
      if (!inTime) {
        this.killNow();
        const gone = await Promise.race([this.exited.then(() => true), sleep(5_000).then(() => false)]);
        if (!gone) throw this.error("stop-timeout", `testpmd (pid ${this.pid}) did not exit within ${timeoutMs / 1000} s of SIGINT nor 5 s of SIGKILL`);
      }
    }
    const removed: string[] = [];
    if (this.options.role === "backend") {
      for (const s of this.options.sockets) {
        if (isSocket(s)) {
          try {
            unlinkSync(s);
            removed.push(s);
          } catch {
            // gone already
          }
        }
      }
    }
    removed.push(...removePrefixFiles(this.options.filePrefix));
    return { ...this.exit!, killed: this.killed, forwardStats: this.parser.forwardStats.filter(Boolean), removed };
  }

  /** SIGKILL now, no waiting (the exit hook; a ready timeout). */
  killNow(): void {
    if (this.exit === null && !this.killed) {
      this.killed = true;
      this.child.kill("SIGKILL");
    }
  }

  /**
   * The last lines testpmd printed: up to `n` of stderr (marked !), less the vhost library's
   * routine protocol log (every message, memory region and ring), then the last few of stdout,
   * less the periodic statistics. Indented, for error messages.
   */
  outputTail(n = 20): string {
    const err = this.lines.filter((l) => l.stream === "stderr" && !ROUTINE.test(l.line)).slice(-n);
    const out = this.lines.filter((l) => l.stream === "stdout" && !STATS_LINE.test(l.line)).slice(-Math.max(4, Math.floor(n / 3)));
    return [...err.map((l) => `    ! ${l.line}`), ...out.map((l) => `      ${l.line}`)].join("\n");
  }

  private remember(stream: "stdout" | "stderr", line: string): void {
    if (line.trim() === "" && stream === "stdout") return;
    this.lines.push({ stream, line });
    if (this.lines.length > TAIL_LINES) this.lines.splice(0, this.lines.length - TAIL_LINES);
    this.options.onLine?.(stream, line);
  }

  private stderrLine(line: string): void {
    this.remember("stderr", line);
    // VHOST_CONFIG: (/tmp/v0) virtio is now ready for processing.
    const f = line.match(/^VHOST_CONFIG: \((.+?)\) negotiated Virtio features: (0x[0-9a-f]+)/);
    if (f) this.features.set(f[1]!, f[2]!);
    const m = line.match(/^VHOST_CONFIG: \((.+?)\) (virtio is now ready for processing|vhost peer closed)/);
    if (m) {
      if (m[2] === "vhost peer closed") this.peersUp.delete(m[1]!);
      else this.peersUp.add(m[1]!);
      for (const w of [...this.peerWaiters]) w();
    }
  }

  private hint(): string {
    const text = this.lines.filter((l) => l.stream === "stderr").map((l) => l.line).join("\n");
    if (/hugepage|Cannot init memory|Not enough memory|Cannot allocate memory/i.test(text)) {
      return " -- hugepages? as root: bash test/dpdk/setup.sh (reserves them and mounts hugetlbfs on /dev/hugepages)";
    }
    if (/Failed to set memory table/.test(text)) return " -- the frontend needs --single-file-segments";
    if (/Is another primary process running/.test(text)) return ` -- another DPDK process uses --file-prefix=${this.options.filePrefix}`;
    return "";
  }

  private error(code: TestpmdErrorCode, message: string): TestpmdError {
    return new TestpmdError(code, `${this.options.role} testpmd (--file-prefix=${this.options.filePrefix}): ${message}`, this.outputTail());
  }

  private failWaiters(e: Error): void {
    const waiters = this.snapshotWaiters;
    this.snapshotWaiters = [];
    for (const w of waiters) w.reject(e);
  }
}

function onPath(bin: string): boolean {
  const exe = (p: string): boolean => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (bin.includes("/")) return exe(bin);
  return (process.env.PATH ?? "").split(":").some((d) => d !== "" && exe(join(d, bin)));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/**
 * Starts testpmd. Checks first what can be checked without it: a backend's socket paths must not
 * be served by a live process (a stale socket file left by a killed one is removed); a
 * virtio-user's sockets must exist. Await `ready` on the handle.
 */
export async function startTestpmd(options: TestpmdOptions): Promise<Testpmd> {
  const bin = testpmdArgs(options)[0]!; // option errors before anything else
  if (!onPath(bin)) throw new TestpmdError("not-installed", `no ${bin} to run (install DPDK as root: bash test/dpdk/setup.sh)`);
  for (const s of options.sockets) {
    if (options.role === "backend") {
      if (existsSync(s) || isSocket(s)) {
        if (!isSocket(s)) throw new TestpmdError("socket-in-use", `${s} exists and is not a socket: not removing it`);
        if (await socketIsLive(s)) throw new TestpmdError("socket-in-use", `a process already serves the vhost-user socket ${s}`);
        unlinkSync(s); // stale, from a process that was killed
      }
    } else if (!isSocket(s)) {
      throw new TestpmdError("no-socket", `${s} is not a socket: start the vhost-user backend first`);
    }
  }
  return new Testpmd(options);
}
