// The shapes shared by the harness (run.ts), the results file and the plot (plot.ts).

// virtio-packed: the virtio driver on packed virtqueues (DeviceOptions.ring 'packed'), against bench/ref/virtio-packed-fwd.c.
export const DRIVERS = ['ixgbe', 'virtio', 'virtio-packed'] as const;
export type Driver = (typeof DRIVERS)[number];

export const IMPLS = ['c', 'ts'] as const;
export type Impl = (typeof IMPLS)[number];

// One JSON line of a forwarder: one batch size of one process.
export interface BatchResult {
  impl: Impl;
  driver: Driver;
  batch: number;
  packets: number;
  runsNs: number[]; // ns per packet of each timed run
  bestNs: number; // min of runsNs
  gcs?: number; // TS only: V8 collections during the timed runs
  heapGrowthKiB?: number; // TS only: heap used after the timed runs minus before
}

// One round: each driver's TS and C process once, in `order`.
export interface Round {
  round: number;
  order: Impl[];
  results: BatchResult[];
}

// One implementation at one (driver, batch), over the rounds: each round contributes its bestNs.
export interface ImplSummary {
  bestNsPerRound: number[];
  medianNs: number;
  minNs: number;
  maxNs: number;
  spreadPct: number; // half the range, in % of the median
  mpps: number; // 1000 / medianNs
  mppsLow: number; // 1000 / maxNs, the bottom of the error bar
  mppsHigh: number; // 1000 / minNs
  gcsMax?: number;
  heapGrowthKiBMax?: number;
}

// The headline: packet rate of TS relative to C (= C ns / TS ns), per round, then the median.
export interface RatioSummary {
  perRound: number[];
  median: number;
  min: number;
  max: number;
  spreadPct: number;
}

export interface SummaryRow {
  driver: Driver;
  batch: number;
  c: ImplSummary;
  ts: ImplSummary;
  ratio: RatioSummary;
}

export interface Machine {
  cpu: string;
  cpus: number;
  kernel: string;
  os: string;
  node: string;
  gcc: string;
  pinnedTo: string | null; // the taskset CPU list, or null if not pinned
  busyAtStartPct: number | null; // CPU time others used just before the run, % of all CPUs
}

export interface Config {
  quick: boolean;
  rounds: number;
  drivers: Driver[];
  batches: number[];
  packets: number;
  runs: number;
  warmup: number;
  tsScript: string;
}

export interface ResultFile {
  schema: 'ixy.ts-bench/1';
  date: string; // ISO time the run started
  command: string;
  machine: Machine;
  config: Config;
  durationS: number;
  rounds: Round[];
  summary: SummaryRow[];
}
