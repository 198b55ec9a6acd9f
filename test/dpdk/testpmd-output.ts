/**
 * Parses what dpdk-testpmd (DPDK 22.11) prints on stdout, fed in chunks as they arrive:
 *
 * - the line that says forwarding has started, e.g.
 *     `io packet forwarding - ports=2 - cores=1 - streams=2 - NUMA support enabled, MP allocation mode: native`
 * - with `--stats-period N`, a block every period (the screen is cleared first with ESC[2J ESC[1;1H):
 *     Port statistics ====================================
 *       ######################## NIC statistics for port 0  ########################
 *       RX-packets: 8567008    RX-missed: 0          RX-bytes:  548288512
 *       RX-errors: 0
 *       RX-nombuf:  0
 *       TX-packets: 8565440    TX-errors: 0          TX-bytes:  548188160
 *
 *       Throughput (since last show)
 *       Rx-pps:      2855251          Rx-bps:   1461888584
 *       Tx-pps:      2854728          Tx-bps:   1461621016
 *       ############################################################################
 *   and the same for every other port. The counters are the ports' totals since start (ethdev
 *   stats); the rates are over the time since the previous block, measured by testpmd.
 * - when forwarding stops (on SIGINT/SIGTERM or `quit`), per port:
 *       ---------------------- Forward statistics for port 0  ----------------------
 *       RX-packets: 15118592       RX-dropped: 0             RX-total: 15118592
 *       TX-packets: 15117024       TX-dropped: 0             TX-total: 15117024
 *       ----------------------------------------------------------------------------
 *   (the forwarding engine's own counts: TX-dropped are frames the engine could not send).
 *
 * Nothing here starts a process: test/dpdk/testpmd.ts does. Kept apart so that the parsing is
 * unit-tested on captured output without DPDK (testpmd-output.test.ts).
 */

/** One port's line in a periodic statistics block. */
export interface PortStats {
  port: number;
  rxPackets: number;
  rxMissed: number;
  rxBytes: number;
  rxErrors: number;
  rxNombuf: number;
  txPackets: number;
  txErrors: number;
  txBytes: number;
  /** Packets and bits per second since the previous block, as testpmd measured them. */
  rxPps: number;
  txPps: number;
  rxBps: number;
  txBps: number;
}

/** One periodic block: every port's statistics, and when the block arrived. */
export interface StatsSnapshot {
  /** Arrival time in ms on the parser's clock (performance.now() unless given). */
  at: number;
  /** Indexed by port number. */
  ports: PortStats[];
}

/** The forwarding engine's totals for one port, printed when forwarding stops. */
export interface ForwardStats {
  port: number;
  rxPackets: number;
  rxDropped: number;
  txPackets: number;
  txDropped: number;
}

// ESC [ ... letter: testpmd clears the screen before each statistics block.
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const FORWARDING_STARTED = /^\s*(\S+) packet forwarding - ports=(\d+)/;
const NIC_HEADER = /#+ NIC statistics for port (\d+)\s+#+/;
const FWD_HEADER = /-+ Forward statistics for port (\d+)\s+-+/;
const ONLY_HASHES = /^\s*#{10,}\s*$/;
const ONLY_DASHES = /^\s*-{10,}\s*$/;
const PAIR = /([A-Za-z][A-Za-z-]*):\s*(\d+)/g;

function pairs(line: string, into: Map<string, number>): void {
  for (const m of line.matchAll(PAIR)) into.set(m[1]!, Number(m[2]));
}

function field(fields: Map<string, number>, key: string, where: string): number {
  const v = fields.get(key);
  if (v === undefined) throw new TestpmdParseError(`testpmd printed no "${key}:" in ${where}`);
  return v;
}

export class TestpmdParseError extends Error {
  override name = "TestpmdParseError";
}

export interface ParserEvents {
  onForwardingStarted?(mode: string, ports: number): void;
  onSnapshot?(s: StatsSnapshot): void;
  onForwardStats?(f: ForwardStats): void;
  onLine?(line: string): void;
}

/**
 * Feed it stdout chunks with push(); it calls back on whole lines. `ports` is how many ports
 * testpmd has: a snapshot is complete when it holds that many.
 */
export class TestpmdOutputParser {
  readonly snapshots: StatsSnapshot[] = [];
  readonly forwardStats: ForwardStats[] = [];
  forwardingMode: string | null = null;

  private partial = "";
  private block: { kind: "nic" | "fwd"; port: number; fields: Map<string, number> } | null = null;
  private current: PortStats[] | null = null;
  private currentAt = 0;

  private readonly ports: number;
  private readonly events: ParserEvents;
  private readonly clock: () => number;

  constructor(ports: number, events: ParserEvents = {}, clock: () => number = () => performance.now()) {
    this.ports = ports;
    this.events = events;
    this.clock = clock;
  }

  push(chunk: string): void {
    const text = this.partial + chunk;
    const lines = text.split("\n");
    this.partial = lines.pop()!;
    for (const raw of lines) this.line(raw.replace(ANSI, "").replace(/\r$/, ""));
  }

  /** Call at end of stream: a last line without a newline is parsed too. */
  end(): void {
    if (this.partial) this.line(this.partial.replace(ANSI, ""));
    this.partial = "";
  }

  private line(line: string): void {
    this.events.onLine?.(line);
    let m: RegExpMatchArray | null;
    if (this.block === null) {
      if ((m = line.match(FORWARDING_STARTED))) {
        this.forwardingMode = m[1]!;
        this.events.onForwardingStarted?.(m[1]!, Number(m[2]));
      } else if ((m = line.match(NIC_HEADER))) {
        if (this.current === null) {
          this.current = [];
          this.currentAt = this.clock();
        }
        this.block = { kind: "nic", port: Number(m[1]), fields: new Map() };
      } else if ((m = line.match(FWD_HEADER))) {
        this.block = { kind: "fwd", port: Number(m[1]), fields: new Map() };
      }
      return;
    }
    const b = this.block;
    if ((b.kind === "nic" && ONLY_HASHES.test(line)) || (b.kind === "fwd" && ONLY_DASHES.test(line))) {
      this.block = null;
      if (b.kind === "nic") this.finishNic(b.port, b.fields);
      else this.finishFwd(b.port, b.fields);
      return;
    }
    pairs(line, b.fields);
  }

  private finishNic(port: number, f: Map<string, number>): void {
    const where = `the statistics of port ${port}`;
    const s: PortStats = {
      port,
      rxPackets: field(f, "RX-packets", where),
      rxMissed: field(f, "RX-missed", where),
      rxBytes: field(f, "RX-bytes", where),
      rxErrors: field(f, "RX-errors", where),
      rxNombuf: f.get("RX-nombuf") ?? 0,
      txPackets: field(f, "TX-packets", where),
      txErrors: field(f, "TX-errors", where),
      txBytes: field(f, "TX-bytes", where),
      rxPps: field(f, "Rx-pps", where),
      txPps: field(f, "Tx-pps", where),
      rxBps: f.get("Rx-bps") ?? 0,
      txBps: f.get("Tx-bps") ?? 0,
    };
    const cur = this.current ?? [];
    cur[port] = s;
    this.current = cur;
    if (cur.filter(Boolean).length >= this.ports) {
      const snap: StatsSnapshot = { at: this.currentAt, ports: cur };
      this.current = null;
      this.snapshots.push(snap);
      this.events.onSnapshot?.(snap);
    }
  }

  private finishFwd(port: number, f: Map<string, number>): void {
    const where = `the forward statistics of port ${port}`;
    const s: ForwardStats = {
      port,
      rxPackets: field(f, "RX-packets", where),
      rxDropped: field(f, "RX-dropped", where),
      txPackets: field(f, "TX-packets", where),
      txDropped: field(f, "TX-dropped", where),
    };
    this.forwardStats[port] = s;
    this.events.onForwardStats?.(s);
  }
}

/** What testpmd's own RX/TX counters did between two snapshots, per port and summed. */
export interface WindowRates {
  seconds: number;
  ports: {
    port: number;
    rxPackets: number;
    txPackets: number;
    rxMissed: number;
    rxErrors: number;
    txErrors: number;
    rxMpps: number;
    txMpps: number;
  }[];
  rxPackets: number;
  txPackets: number;
  /** Sum over ports of RX-missed + RX-errors + TX-errors in the window. */
  drops: number;
  rxMpps: number;
  txMpps: number;
}

/** Rates from the counters of two snapshots (b later than a), over their arrival times. */
export function windowRates(a: StatsSnapshot, b: StatsSnapshot): WindowRates {
  const seconds = (b.at - a.at) / 1000;
  if (!(seconds > 0)) throw new RangeError(`the second snapshot (${b.at} ms) is not later than the first (${a.at} ms)`);
  const ports = b.ports.map((pb, i) => {
    const pa = a.ports[i]!;
    const rx = pb.rxPackets - pa.rxPackets;
    const tx = pb.txPackets - pa.txPackets;
    return {
      port: pb.port,
      rxPackets: rx,
      txPackets: tx,
      rxMissed: pb.rxMissed - pa.rxMissed,
      rxErrors: pb.rxErrors - pa.rxErrors,
      txErrors: pb.txErrors - pa.txErrors,
      rxMpps: rx / seconds / 1e6,
      txMpps: tx / seconds / 1e6,
    };
  });
  const rxPackets = ports.reduce((s, p) => s + p.rxPackets, 0);
  const txPackets = ports.reduce((s, p) => s + p.txPackets, 0);
  return {
    seconds,
    ports,
    rxPackets,
    txPackets,
    drops: ports.reduce((s, p) => s + p.rxMissed + p.rxErrors + p.txErrors, 0),
    rxMpps: rxPackets / seconds / 1e6,
    txMpps: txPackets / seconds / 1e6,
  };
}
