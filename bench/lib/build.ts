// Compiles the C reference forwarders. Plain -O2 (no -march=native) so the yardstick is the
// portable build a distribution would ship, and the numbers compare across machines.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Driver } from './types.ts';

export const BUILD_DIR = 'bench/.build';
export const CFLAGS = ['-O2', '-Wall', '-Wextra'] as const;

export class BuildError extends Error {}

function gccVersion(): string | null {
  const r = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return r.stdout.split('\n')[0]!.trim();
}

// Returns gcc's version line, installing gcc first if it is missing (Debian, as root).
export function ensureGcc(log: (line: string) => void): string {
  const have = gccVersion();
  if (have) return have;
  if (process.getuid?.() !== 0) throw new BuildError('gcc is missing; install it (apt-get install -y gcc) and run again');
  log('gcc not found: installing it with apt-get install -y gcc');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', 'gcc'], { stdio: 'inherit', env });
  if (r.status !== 0) {
    // A fresh image may have no package lists yet.
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', 'gcc'], { stdio: 'inherit', env });
  }
  const now = gccVersion();
  if (!now) throw new BuildError('apt-get install -y gcc did not give a working gcc');
  return now;
}

export function binaryPath(driver: Driver): string {
  return join(BUILD_DIR, `${driver}-fwd`);
}

// Always rebuilds: it takes a fraction of a second and never measures a stale binary.
export function buildReference(drivers: readonly Driver[]): void {
  mkdirSync(BUILD_DIR, { recursive: true });
  for (const driver of drivers) {
    const args = [...CFLAGS, '-o', binaryPath(driver), `bench/ref/${driver}-fwd.c`];
    const r = spawnSync('gcc', args, { encoding: 'utf8' });
    const output = (r.stdout + r.stderr).trim();
    if (r.status !== 0) throw new BuildError(`gcc ${args.join(' ')} failed:\n${output}`);
    if (output) process.stderr.write(`gcc ${args.join(' ')}:\n${output}\n`);
  }
}
