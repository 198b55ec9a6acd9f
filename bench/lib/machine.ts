// Facts about the machine that go with every result: numbers from different CPUs do not compare.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import type { Machine } from './types.ts';

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function cpuModel(): string {
  const info = readOr('/proc/cpuinfo', '');
  // x86 says "model name"; some arm64 kernels only say "Hardware" or nothing useful.
  for (const key of ['model name', 'Hardware', 'Model']) {
    const m = info.match(new RegExp(`^${key}\\s*:\\s*(.+)$`, 'm'));
    if (m) return m[1]!.trim();
  }
  return cpus()[0]?.model ?? 'unknown';
}

function osName(): string {
  const m = readOr('/etc/os-release', '').match(/^PRETTY_NAME="?([^"\n]*)"?$/m);
  return m ? m[1]! : 'unknown';
}

// The CPU the forwarders are pinned to: CPU 1, so that on a 2-core machine the harness, the
// terminal and whatever else mostly stay on CPU 0. Null if taskset is missing or refuses.
export function pinTarget(wanted: boolean): string | null {
  if (!wanted || cpus().length < 2) return null;
  const r = spawnSync('taskset', ['-c', '1', 'true']);
  return r.status === 0 ? '1' : null;
}

// Total and idle jiffies of all CPUs so far, from the first line of /proc/stat.
function cpuTimes(): { total: number; idle: number } | null {
  const m = readOr('/proc/stat', '').match(/^cpu\s+(.+)$/m);
  if (!m) return null;
  const t = m[1]!.trim().split(/\s+/).map(Number);
  return { total: t.reduce((a, b) => a + b, 0), idle: t[3]! + (t[4] ?? 0) }; // idle + iowait
}

// How busy the machine is before we start, in % of all CPU time over `ms`: other work on a
// 2-core machine shows up directly in the spread, so the harness warns about it.
export async function busyPercent(ms = 500): Promise<number | null> {
  const a = cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = cpuTimes();
  if (!a || !b || b.total === a.total) return null;
  return Math.round((1 - (b.idle - a.idle) / (b.total - a.total)) * 100);
}

export function machineFacts(gcc: string, pinnedTo: string | null, busyAtStartPct: number | null): Machine {
  return {
    cpu: cpuModel(),
    cpus: cpus().length,
    kernel: release(),
    os: osName(),
    node: process.version,
    gcc,
    pinnedTo,
    busyAtStartPct,
  };
}
