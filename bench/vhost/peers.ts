// The forwarders under test in bench/vhost: a peer connects two vhost-user ports to the
// backend's sockets and forwards port 0 <-> port 1 on its own CPU until it is stopped.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { startTestpmd, type Testpmd } from "../../test/dpdk/testpmd.ts";

export type PeerName = "ixy" | "testpmd";
export type Traffic = "flowgen" | "tx-first";

export interface PeerStart {
  sockets: [string, string];
  /** The CPU the forwarder runs on (the backend forwards on the other one). */
  cpu: number;
  /** The CPU its idle threads may use (testpmd's main lcore). */
  otherCpu: number;
  traffic: Traffic;
  frameSize: number;
  /** How long it must keep running, at least (a peer told a duration gets this plus a margin). */
  seconds: number;
  /** ixy only: its --batch. */
  batch: number | null;
  /** testpmd only: appended to each net_virtio_user --vdev, e.g. "mrg_rxbuf=0,in_order=0". */
  vdevArgs?: string;
  /** Queue pairs per port (1: the default, one pair). */
  queues?: number;
}

export interface PeerStop {
  /** What the peer itself says it dropped, if it says (testpmd's forward statistics). */
  dropped: number | null;
  exit: string;
}

export interface Peer {
  readonly name: PeerName;
  /** The command line it was started with. */
  readonly command: string;
  /** Its process id (the forwarder's own: the wrappers exec it). */
  readonly pid: number | undefined;
  /** Non-null once it has exited (or could not start): what happened, with its output's tail. */
  failure(): Error | null;
  /** Resolves when it has exited. */
  readonly exited: Promise<void>;
  stop(): Promise<PeerStop>;
  /** The last lines it printed. */
  output(): string;
}

export class PeerError extends Error {
  override name = "PeerError";
}

// ---------------------------------------------------------------------------------------------
// testpmd with net_virtio_user ports: DPDK's virtio driver, the yardstick.

export async function startTestpmdPeer(o: PeerStart): Promise<Peer> {
  const t: Testpmd = await startTestpmd({
    role: "virtio-user",
    sockets: [...o.sockets],
    lcores: `0@${o.otherCpu},1@${o.cpu}`,
    filePrefix: "bench-vhost-peer",
    forwardMode: "io",
    txFirst: o.traffic === "tx-first",
    frameSize: o.frameSize,
    totalNumMbufs: 32768,
    // N queue pairs: virtio-user queues=N (it then serves a control queue of its own and sends
    // SET_VRING_ENABLE for the pairs testpmd configures), forwarded queue q <-> queue q.
    ...(o.vdevArgs || (o.queues ?? 1) > 1 ? { vdevArgs: [o.vdevArgs, (o.queues ?? 1) > 1 ? `queues=${o.queues}` : ""].filter(Boolean).join(",") } : {}),
    ...((o.queues ?? 1) > 1 ? { extraArgs: [`--rxq=${o.queues}`, `--txq=${o.queues}`] } : {}),
  });
  let failed: Error | null = null;
  let stopping = false;
  let final: string[] = [];
  const exited = t.exited.then((e) => {
    if (!stopping) failed = new PeerError(`testpmd peer exited (${e.signal ?? `exit code ${e.code}`}) before it was stopped\n${t.outputTail()}`);
  });
  try {
    await t.ready;
  } catch (e) {
    await t.stop().catch(() => {});
    throw e;
  }
  return {
    name: "testpmd",
    command: t.commandLine,
    pid: t.pid,
    failure: () => failed,
    exited,
    output: () => (final.length ? final.join("\n") : t.outputTail(15)),
    async stop() {
      stopping = true;
      const r = await t.stop();
      final = r.forwardStats.map((p) => `    port ${p.port}: RX-packets ${p.rxPackets} RX-dropped ${p.rxDropped} TX-packets ${p.txPackets} TX-dropped ${p.txDropped}`);
      return {
        dropped: r.forwardStats.reduce((s, p) => s + p.rxDropped + p.txDropped, 0),
        exit: r.killed ? "SIGKILL after SIGINT timed out" : r.signal ?? `exit code ${r.code}`,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// ixy.ts's forwarder: any command line, with placeholders.

export const DEFAULT_IXY_CMD: Record<Traffic, string> = {
  "tx-first": "node --import tsx examples/fwd.ts vhost-user:{s0} vhost-user:{s1} --tx-first --frame-size {frameSize} --seconds {seconds}",
  flowgen: "node --import tsx examples/fwd.ts vhost-user:{s0} vhost-user:{s1} --seconds {seconds}",
};

/** With --queues N > 1 (flowgen only): the forwarder of N queue pairs per port, bench/vhost/mq-fwd.ts. */
export const DEFAULT_IXY_MQ_CMD = "node --import tsx bench/vhost/mq-fwd.ts {s0} {s1} --queues {queues} --seconds {seconds}";

/** The ixy command for one run: placeholders filled in, --batch added if asked and not placed. */
export function ixyCommand(template: string, o: PeerStart): string {
  let cmd = template
    .replaceAll("{s0}", o.sockets[0])
    .replaceAll("{s1}", o.sockets[1])
    .replaceAll("{frameSize}", String(o.frameSize))
    .replaceAll("{seconds}", String(o.seconds))
    .replaceAll("{queues}", String(o.queues ?? 1))
    .replaceAll("{batch}", String(o.batch ?? 32));
  if (o.batch !== null && !template.includes("{batch}")) cmd += ` --batch ${o.batch}`;
  return cmd;
}

function tail(text: string, lines = 20): string {
  const all = text.trimEnd().split("\n");
  return all.slice(-lines).map((l) => `    ${l}`).join("\n");
}

export function startIxyPeer(template: string, o: PeerStart, cwd: string): Peer {
  const command = ixyCommand(template, o);
  // Pinned with taskset; setpriv makes it die with this harness; `exec` so that signals reach it.
  const wrap = existsSync("/usr/bin/setpriv") ? ["/usr/bin/setpriv", "--pdeathsig", "TERM", "--"] : [];
  const argv = [...wrap, "taskset", "-c", String(o.cpu), "sh", "-c", `exec ${command}`];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { cwd, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const keep = (s: string): void => {
    out += s;
    if (out.length > 64_000) out = out.slice(-32_000);
  };
  child.stdout!.setEncoding("utf8").on("data", keep);
  child.stderr!.setEncoding("utf8").on("data", keep);
  let failed: Error | null = null;
  let stopping = false;
  let exitText = "";
  const exited = new Promise<void>((resolve) => {
    child.on("error", (err) => {
      failed = new PeerError(`cannot run ${command}: ${err.message}`);
      exitText = "could not start";
      resolve();
    });
    child.on("close", (code, signal) => {
      exitText = signal ? `signal ${signal}` : `exit code ${code}`;
      if (!stopping || (code !== 0 && code !== null && signal === null && code !== 130)) {
        failed ??= new PeerError(`ixy.ts peer exited (${exitText})${stopping ? " when stopped" : " before it was stopped"}: ${command}\n  its output, last lines:\n${tail(out)}`);
      }
      resolve();
    });
  });
  return {
    name: "ixy",
    command,
    pid: child.pid,
    failure: () => failed,
    exited,
    output: () => tail(out, 15),
    async stop() {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGINT");
        const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(t);
      }
      return { dropped: null, exit: exitText };
    },
  };
}
