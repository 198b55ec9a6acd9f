/**
 * Boots the qemu testbed (test/vm/README.md): one guest with two virtio-net NICs whose wires are
 * UDP sockets on 127.0.0.1, runs one shell command in the guest from the project folder, and
 * returns the command's exit code, the guest's console output and the DMAR faults the guest's
 * kernel logged.
 *
 *   import { runVm } from './vm.ts';
 *   const r = await runVm({ mode: 'modern', command: 'node examples/fwd.js $IXY_NIC0 $IXY_NIC1',
 *     onGuestReady: async (vm) => runTraffic({ wires: vm.wires, ... }) });
 *
 * CLI: tsx test/vm/vm.ts [--mode modern|legacy|kernel] [--timeout s] [--base-port n] -- <command>
 * (test/vm/run.sh is the same). Exit status: the guest command's, 124 on timeout, 125 if the
 * guest never ran the command.
 */
import { spawn, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crossWires, DEFAULT_BASE_PORT, NIC_ADDRESSES, NIC_MACS, NUMA_NIC_ADDRESSES, wiresFor } from './wires.ts';
import type { Wire } from './wires.ts';

export { DEFAULT_BASE_PORT, NIC_ADDRESSES, NIC_MACS, wiresFor };
export type { Wire };

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const TESTBED_DIR = join(PROJECT_ROOT, '.testbed');

/**
 * - modern: virtio 1.0 devices (1af4:1041) behind the emulated IOMMU (iommu_platform=on, ats=on),
 *   bound to vfio-pci.
 * - legacy: transitional devices (1af4:1000, legacy I/O BAR; no iommu_platform, so their DMA
 *   bypasses the IOMMU and needs physical addresses), bound to vfio-pci.
 * - kernel: modern devices left to the guest's virtio_net driver (netdevs $IXY_NETDEV0/1), for
 *   testing the harness itself with a Linux bridge.
 */
export type VmMode = 'modern' | 'legacy' | 'kernel';
export const VM_MODES: readonly VmMode[] = ['modern', 'legacy', 'kernel'];

/** What the guest reported about one NIC (IXYVM:NIC marker). */
export interface GuestNic {
  readonly index: number;
  readonly bdf: string;
  /** vendor:device, e.g. 1af4:1041 */
  readonly id: string;
  readonly driver: string;
  readonly group: string;
  readonly netdev: string;
}

/** Handed to onGuestReady while the guest command runs. */
export interface VmHandle {
  readonly mode: VmMode;
  readonly wires: readonly [Wire, Wire];
  readonly nics: readonly [string, string];
  readonly guestNics: readonly GuestNic[];
  /** Host path of the writable control share (/ctl in the guest, $IXY_CTL). */
  readonly ctlDir: string;
  /** Aborted when qemu exits. */
  readonly signal: AbortSignal;
  /** The console output so far. */
  output(): string;
  /** Asks the guest to stop the command (stop signal, then TERM, then KILL). */
  stop(): void;
}

export interface VmOptions<T = unknown> {
  readonly mode: VmMode;
  /** Shell command run by `sh` in the guest from the project folder (same path as on the host). */
  readonly command: string;
  /** Kill qemu after this long (default 180 s). */
  readonly timeoutMs?: number;
  readonly basePort?: number;
  /**
   * Cable the two NICs to each other instead of to the host: what NIC0 sends arrives at NIC1 and
   * back (wires.ts crossWires), for tests that need a pair of ports, such as test:hw's suite.
   */
  readonly crossCabled?: boolean;
  /** Guest vCPUs (default 1; the host has 2 cores and the traffic program needs one). */
  readonly smp?: number;
  readonly memMiB?: number;
  /** 2 MiB hugepages reserved on the kernel command line (default 64). */
  readonly hugepages?: number;
  /** Modern NICs with packed virtqueues offered (qemu virtio-net-pci packed=on); default off, as qemu. */
  readonly packed?: boolean;
  /**
   * Two NUMA nodes: vCPU 0 and half the memory on node 0, vCPU 1 and the other half on node 1
   * (smp 2 unless given), NIC1 behind a pxb-pcie on node 1 at NUMA_NIC_ADDRESSES[1]. The
   * kernel's hugepages= reservation is split between the nodes.
   */
  readonly numa?: boolean;
  /**
   * Multiqueue NICs on host tap interfaces instead of UDP wires: `-netdev tap,queues=N` named
   * `names[i]`, and virtio-net-pci mq=on with 2N+2 MSI-X vectors (modern mode only). qemu creates
   * the taps; the host side (test/vm/tap-wire.ts) brings them up and sends and receives frames
   * on them with packet sockets. The UDP wires of the result are then unused.
   */
  readonly taps?: { readonly names: readonly [string, string]; readonly queues: number };
  /** Extra environment for the guest command. */
  readonly env?: Readonly<Record<string, string>>;
  /** Signal for stop() (default INT); TERM and KILL follow after stopGraceMs (default 5000). */
  readonly stopSignal?: 'INT' | 'TERM' | 'KILL';
  readonly stopGraceMs?: number;
  /** Called with each chunk of console output (CR removed). */
  readonly onOutput?: (text: string) => void;
  /** onGuestReady fires when the console matches this (default: the READY marker). */
  readonly readyPattern?: RegExp;
  /** Runs while the guest command runs; its value is returned as `ready`. */
  readonly onGuestReady?: (vm: VmHandle) => Promise<T> | T;
  /** Stop the guest command when onGuestReady settles (default true). */
  readonly stopAfterReady?: boolean;
  /** Keep the control directory after the run (default: only if the run failed). */
  readonly keepCtl?: boolean;
  /**
   * Firmware that starts the kernel: 'seabios' (default, qemu's standard BIOS; assigns the BARs as
   * a real BIOS would) or 'qboot' (minimal; ~0.5 s faster, Linux assigns the BARs itself).
   * Default from $IXY_VM_FIRMWARE.
   */
  readonly firmware?: 'seabios' | 'qboot';
  /** Extra kernel command-line parameters. */
  readonly kernelArgs?: readonly string[];
  readonly extraQemuArgs?: readonly string[];
}

export interface VmResult<T = unknown> {
  /** Exit status of the guest command; null if it never finished (timeout, crash, setup failure). */
  readonly exitCode: number | null;
  /** The whole console output, CR removed. */
  readonly output: string;
  /** Output between the READY and EXIT markers: what the command printed (plus kernel messages). */
  readonly commandOutput: string;
  readonly dmarFaults: number;
  readonly dmarLines: readonly string[];
  readonly timedOut: boolean;
  /** Set when the guest's init failed (IXYVM:INIT-FAILED) or qemu failed to start. */
  readonly error?: string;
  readonly guestNics: readonly GuestNic[];
  readonly wires: readonly [Wire, Wire];
  /** qemu start to READY marker (the command starts), ms. */
  readonly bootMs: number | null;
  /** Guest uptime at the BOOTED marker (kernel + stage-1 init), s. */
  readonly guestUptimeAtBoot: number | null;
  readonly totalMs: number;
  readonly qemuStderr: string;
  readonly ctlDir: string;
  /** Value of onGuestReady, if it resolved. */
  readonly ready?: T;
  readonly readyError?: unknown;
}

interface TestbedInfo {
  readonly kernelImage: string;
  readonly initramfs: string;
  readonly kernelVersion: string;
  readonly node: string;
}

/** Runs test/vm/build.sh (fast when the cache is complete) and reads what it built. */
export function ensureTestbed(): TestbedInfo {
  // progress and errors of a (re)build go to our stderr; an up-to-date cache prints nothing
  execFileSync(join(PROJECT_ROOT, 'test/vm/build.sh'), ['--quiet'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return readTestbed();
}

function readTestbed(): TestbedInfo {
  const env = readFileSync(join(TESTBED_DIR, 'testbed.env'), 'utf8');
  const get = (k: string): string => {
    const m = new RegExp(`^${k}='([^']*)'`, 'm').exec(env);
    if (!m) throw new Error(`.testbed/testbed.env has no ${k}: run test/vm/build.sh --force`);
    return m[1]!;
  };
  return {
    kernelImage: join(TESTBED_DIR, get('TESTBED_KERNEL_IMAGE')),
    initramfs: join(TESTBED_DIR, 'initramfs.cpio'),
    kernelVersion: get('TESTBED_KERNEL_VERSION'),
    node: get('TESTBED_NODE'),
  };
}

let testbedChecked: TestbedInfo | undefined;

function firmwareFromEnv(): 'seabios' | 'qboot' {
  const f = process.env.IXY_VM_FIRMWARE ?? 'seabios';
  if (f !== 'seabios' && f !== 'qboot') throw new TypeError(`IXY_VM_FIRMWARE must be seabios or qboot, not "${f}"`);
  return f;
}

/**
 * A git worktree's node_modules and .testbed may be symlinks into another checkout (the one that
 * installed and built them): the guest sees only the project share, so that checkout is shared
 * too, read-only, and mounted at the same path (guest-init.sh, ixy_links). null when neither is
 * a link out of the project.
 */
function linkedRoot(): string | null {
  for (const name of ['node_modules', '.testbed']) {
    const path = join(PROJECT_ROOT, name);
    if (!existsSync(path) || !lstatSync(path).isSymbolicLink()) continue;
    const target = dirname(realpathSync(path));
    if (relative(PROJECT_ROOT, target).startsWith('..') && !/\s/.test(target)) return target;
  }
  return null;
}

/** The qemu command line for a run (exported for --dry-run and for reading). */
export function qemuArgs(o: {
  mode: VmMode; wires: readonly [Wire, Wire]; ctlDir: string; testbed: TestbedInfo;
  smp?: number; memMiB?: number; hugepages?: number; firmware?: 'seabios' | 'qboot'; kernelArgs?: readonly string[]; extra?: readonly string[];
  packed?: boolean; numa?: boolean; taps?: VmOptions['taps'];
}): string[] {
  const nics = o.numa === true ? NUMA_NIC_ADDRESSES : NIC_ADDRESSES;
  const memMiB = o.memMiB ?? 2048;
  const nodeDir = dirname(realpathSync(o.testbed.node));
  const links = linkedRoot();
  if (/\s/.test(PROJECT_ROOT)) throw new Error(`project path "${PROJECT_ROOT}" contains white space`);
  const append = [
    'console=ttyS0', 'intel_iommu=on', 'iommu=pt', 'hugepagesz=2M', `hugepages=${o.hugepages ?? 64}`,
    'panic=-1', 'quiet', 'loglevel=4', 'cryptomgr.notests', 'no_timer_check', 'mitigations=off',
    'tsc=reliable',
    // no dots in these names: the kernel hands them to init as environment variables
    `ixy_mode=${o.mode}`, `ixy_nics=${nics.join(',')}`, `ixy_root=${PROJECT_ROOT}`,
    ...(links === null ? [] : [`ixy_links=${links}`]),
    ...(o.kernelArgs ?? []),
  ].join(' ');
  const nic = (i: 0 | 1): string[] => {
    const w = o.wires[i];
    const taps = o.taps;
    const netdev = taps !== undefined
      // vhost=off: qemu itself moves the frames (no vhost-net kernel module in the path).
      ? `tap,id=n${i},ifname=${taps.names[i]},script=no,downscript=no,queues=${taps.queues},vhost=off`
      : `dgram,id=n${i},local.type=inet,local.host=127.0.0.1,local.port=${w.qemuPort}` +
        `,remote.type=inet,remote.host=127.0.0.1,remote.port=${w.hostPort}`;
    const mq = taps !== undefined && taps.queues > 1 ? `,mq=on,vectors=${2 * taps.queues + 2}` : '';
    const flavour = o.mode === 'legacy'
      ? 'disable-legacy=off,disable-modern=off'
      : `disable-legacy=on,iommu_platform=on,ats=on${o.packed === true ? ',packed=on' : ''}${mq}`;
    const slot = NIC_ADDRESSES[i].split(':')[2]!.split('.')[0]!;
    if (o.numa === true && i === 1) {
      // An expander bridge on node 1 (ACPI _PXM of its host bridge: sysfs numa_node of what
      // is behind it), a root port on it, the NIC on that port.
      return ['-netdev', netdev,
        '-device', 'pxb-pcie,id=pxb1,bus_nr=32,numa_node=1,bus=pcie.0,addr=0x3',
        '-device', 'pcie-root-port,id=rp1,bus=pxb1,chassis=1,addr=0x0',
        '-device', `virtio-net-pci,netdev=n${i},${flavour},mac=${NIC_MACS[i]},bus=rp1,addr=0x0,romfile=`];
    }
    return ['-netdev', netdev, '-device',
      `virtio-net-pci,netdev=n${i},${flavour},mac=${NIC_MACS[i]},addr=0x${slot},romfile=`];
  };
  const share = (id: string, tag: string, path: string, ro: boolean, slot: string): string[] => [
    '-fsdev', `local,id=${id},path=${path},security_model=none${ro ? ',readonly=on' : ''}`,
    '-device', `virtio-9p-pci,fsdev=${id},mount_tag=${tag},addr=${slot}`,
  ];
  return [
    '-machine', 'q35,kernel-irqchip=split', '-accel', 'tcg', '-cpu', 'max',
    '-smp', String(o.smp ?? (o.numa === true ? 2 : 1)), '-m', `${memMiB}M`,
    ...(o.numa === true ? numaArgs(memMiB) : []),
    '-nodefaults', '-no-reboot', '-no-user-config', '-display', 'none', '-serial', 'stdio',
    // the IOMMU first: devices with iommu_platform must find it when they are realized
    '-device', 'intel-iommu,intremap=on,caching-mode=on',
    ...(o.firmware === 'qboot' ? ['-bios', 'qboot.rom'] : []),
    '-kernel', o.testbed.kernelImage, '-initrd', o.testbed.initramfs, '-append', append,
    ...nic(0), ...(o.numa === true ? [] : nic(1)),
    ...share('fs0', 'app', PROJECT_ROOT, true, '0x8'),
    ...share('fs1', 'nodebin', nodeDir, true, '0x9'),
    ...share('fs2', 'ctl', o.ctlDir, false, '0xa'),
    ...(links === null ? [] : share('fs3', 'links', links, true, '0xb')),
    // Last: qemu puts a -device without bus= on the newest bus, which would be the expander's.
    ...(o.numa === true ? nic(1) : []),
    ...(o.extra ?? []),
  ];
}

/** Two NUMA nodes of half the memory each, vCPU 0 on node 0 and vCPU 1 on node 1. */
function numaArgs(memMiB: number): string[] {
  const half = Math.floor(memMiB / 2);
  return [
    '-object', `memory-backend-ram,id=m0,size=${memMiB - half}M`, '-object', `memory-backend-ram,id=m1,size=${half}M`,
    '-numa', 'node,nodeid=0,cpus=0,memdev=m0', '-numa', 'node,nodeid=1,cpus=1,memdev=m1',
  ];
}

// --- net.core.rmem_default --------------------------------------------------------------------
// qemu's dgram sockets get the system's default receive buffer (208 KiB) and qemu has no option
// for it; at tens of thousands of frames/s that loses frames. Raise the default while qemu creates
// its sockets, then put it back. The original value is also kept in a file, so that a launcher
// that died in between does not make the raised value permanent.
const RMEM_DEFAULT = '/proc/sys/net/core/rmem_default';
const RMEM_WANTED = 4 * 1024 * 1024;
const RMEM_SAVED = join(TESTBED_DIR, 'rmem_default.orig');
let rmemUsers = 0;

function raiseRmem(): boolean {
  try {
    if (rmemUsers++ > 0) return true;
    const saved = existsSync(RMEM_SAVED) ? readFileSync(RMEM_SAVED, 'utf8').trim() : '';
    const current = readFileSync(RMEM_DEFAULT, 'utf8').trim();
    const original = saved !== '' ? saved : current;
    if (Number(current) >= RMEM_WANTED && saved === '') return true;
    writeFileSync(RMEM_SAVED, original + '\n');
    writeFileSync(RMEM_DEFAULT, String(RMEM_WANTED));
    return true;
  } catch {
    return false; // not root: qemu keeps the default buffer
  }
}

function restoreRmem(): void {
  if (rmemUsers === 0 || --rmemUsers > 0) return;
  try {
    if (!existsSync(RMEM_SAVED)) return;
    writeFileSync(RMEM_DEFAULT, readFileSync(RMEM_SAVED, 'utf8').trim());
    rmSync(RMEM_SAVED, { force: true });
  } catch {
    // nothing to restore
  }
}

/** True when a UDP socket is bound to 127.0.0.1:port (reads /proc/net/udp). */
function udpBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  try {
    return readFileSync('/proc/net/udp', 'utf8').includes(`0100007F${hex}`);
  } catch {
    return false;
  }
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
  while (rmemUsers > 0) restoreRmem();
});

let runCounter = 0;

function makeCtlDir(o: VmOptions<unknown>, timeoutMs: number): string {
  const runs = join(TESTBED_DIR, 'runs');
  mkdirSync(runs, { recursive: true });
  const dayAgo = Date.now() - 24 * 3600 * 1000;
  for (const name of readdirSync(runs)) {
    try {
      if (statSync(join(runs, name)).mtimeMs < dayAgo) rmSync(join(runs, name), { recursive: true, force: true });
    } catch {
      // raced with another launcher
    }
  }
  const dir = join(runs, `${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}-${runCounter++}`);
  mkdirSync(dir);
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const lines = [`export IXY_STOP_SIGNAL=${o.stopSignal ?? 'INT'}`,
    `export IXY_STOP_GRACE=${Math.ceil((o.stopGraceMs ?? 5000) / 100)}`,
    // the guest stops the command by itself a little after the host's timeout, in case the
    // launcher died and nobody kills qemu
    `export IXY_DEADLINE=${Math.ceil(timeoutMs / 1000) + 10}`];
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new TypeError(`bad environment variable name "${k}"`);
    lines.push(`export ${k}=${q(v)}`);
  }
  writeFileSync(join(dir, 'config.sh'), lines.join('\n') + '\n');
  writeFileSync(join(dir, 'cmd.sh'), o.command + '\n');
  return dir;
}

const MARK = /IXYVM:([A-Z-]+)(?: (.*))?$/gm;

/** Boots a guest, runs `command` in it, powers it off; never rejects for guest-side failures. */
export async function runVm<T = unknown>(o: VmOptions<T>): Promise<VmResult<T>> {
  if (!VM_MODES.includes(o.mode)) throw new TypeError(`mode must be one of ${VM_MODES.join(', ')}`);
  testbedChecked ??= ensureTestbed();
  const testbed = testbedChecked;
  const wires = (o.crossCabled === true ? crossWires : wiresFor)(o.basePort ?? DEFAULT_BASE_PORT);
  const timeoutMs = o.timeoutMs ?? 180_000;
  const ctlDir = makeCtlDir(o as VmOptions<unknown>, timeoutMs);
  const args = qemuArgs({ mode: o.mode, wires, ctlDir, testbed, smp: o.smp, memMiB: o.memMiB,
    hugepages: o.hugepages, firmware: o.firmware ?? firmwareFromEnv(), kernelArgs: o.kernelArgs, extra: o.extraQemuArgs,
    packed: o.packed, numa: o.numa, taps: o.taps });
  const started = Date.now();

  raiseRmem();
  let rmemRestored = false;
  const restoreOnce = (): void => {
    if (!rmemRestored) { rmemRestored = true; restoreRmem(); }
  };
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(qemu);
  const poll = setInterval(() => {
    if (wires.every((w) => udpBound(w.qemuPort)) || Date.now() - started > 10_000) {
      clearInterval(poll);
      restoreOnce();
    }
  }, 20);

  const exited = new AbortController();
  let output = '';
  let stderr = '';
  let bootMs: number | null = null;
  let readyPromise: Promise<void> | undefined;
  let ready: T | undefined;
  let readyError: unknown;
  const guestNics: GuestNic[] = [];
  const readyPattern = o.readyPattern ?? /IXYVM:READY/;

  const stop = (): void => {
    try {
      writeFileSync(join(ctlDir, 'stop'), '');
    } catch {
      // the run is over
    }
  };
  const handle: VmHandle = {
    mode: o.mode, wires, nics: o.numa === true ? [NUMA_NIC_ADDRESSES[0], NUMA_NIC_ADDRESSES[1]] : [NIC_ADDRESSES[0], NIC_ADDRESSES[1]], guestNics, ctlDir,
    signal: exited.signal, output: () => output, stop,
  };

  qemu.stdout!.setEncoding('utf8');
  qemu.stdout!.on('data', (chunk: string) => {
    const text = chunk.replace(/\r/g, '');
    output += text;
    o.onOutput?.(text);
    if (bootMs === null && /IXYVM:READY/.test(output)) bootMs = Date.now() - started;
    if (readyPromise === undefined && o.onGuestReady && readyPattern.test(output)) {
      guestNics.push(...parseNics(output));
      readyPromise = (async () => {
        try {
          ready = await o.onGuestReady!(handle);
        } catch (e) {
          readyError = e;
        } finally {
          if (o.stopAfterReady ?? true) stop();
        }
      })();
    }
  });
  qemu.stderr!.setEncoding('utf8');
  qemu.stderr!.on('data', (chunk: string) => { stderr += chunk; });

  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; qemu.kill('SIGKILL'); }, timeoutMs);
  await new Promise<void>((res) => {
    qemu.once('close', () => res());
    qemu.once('error', (e) => { stderr += `\n${String(e)}`; res(); });
  });
  clearTimeout(timer);
  clearInterval(poll);
  restoreOnce();
  live.delete(qemu);
  exited.abort();
  if (readyPromise) await readyPromise;

  const marks = [...output.matchAll(MARK)];
  const last = (name: string): string | undefined => marks.filter((m) => m[1] === name).at(-1)?.[2];
  const exit = last('EXIT');
  const exitCode = exit !== undefined ? Number(/code=(\d+)/.exec(exit)?.[1] ?? NaN) : null;
  const dmar = last('DMAR');
  const booted = last('BOOTED');
  const initFailed = last('INIT-FAILED');
  const readyAt = output.search(/IXYVM:READY\n/);
  const exitAt = output.search(/\nIXYVM:EXIT /);
  const commandOutput = readyAt >= 0
    ? output.slice(readyAt + 'IXYVM:READY\n'.length, exitAt > readyAt ? exitAt : undefined)
    : '';
  let error: string | undefined;
  if (initFailed !== undefined) error = `guest init failed: ${initFailed}`;
  else if (timedOut) error = `timed out after ${timeoutMs} ms`;
  else if (exitCode === null) error = `qemu exited (${qemu.exitCode ?? qemu.signalCode}) before the command finished: ${stderr.trim()}`;
  const failed = error !== undefined || exitCode !== 0;
  if (!(o.keepCtl ?? failed)) rmSync(ctlDir, { recursive: true, force: true });
  if (guestNics.length === 0) guestNics.push(...parseNics(output));
  return {
    exitCode: exitCode !== null && Number.isNaN(exitCode) ? null : exitCode,
    output, commandOutput,
    dmarFaults: dmar !== undefined ? Number(/faults=(\d+)/.exec(dmar)?.[1] ?? 0) : 0,
    dmarLines: marks.filter((m) => m[1] === 'DMAR-LINE').map((m) => m[2] ?? ''),
    timedOut, error, guestNics, wires, bootMs,
    guestUptimeAtBoot: booted !== undefined ? Number(/uptime=([\d.]+)/.exec(booted)?.[1]) : null,
    totalMs: Date.now() - started, qemuStderr: stderr, ctlDir, ready, readyError,
  };
}

/** Parses the IXYVM:NIC markers. */
export function parseNics(output: string): GuestNic[] {
  const nics: GuestNic[] = [];
  for (const m of output.matchAll(/IXYVM:NIC (.*)$/gm)) {
    const f = Object.fromEntries(m[1]!.split(' ').map((kv) => kv.split('=') as [string, string]));
    nics.push({ index: Number(f.index), bdf: f.bdf ?? '', id: f.id ?? '', driver: f.driver ?? '',
      group: f.group ?? '', netdev: f.netdev ?? '' });
  }
  return nics;
}

// --- CLI ----------------------------------------------------------------------------------------

function usage(): never {
  process.stderr.write(`usage: test/vm/run.sh [options] -- <command run in the guest>
  --mode modern|legacy|kernel   NIC flavour and binding (default modern)
  --timeout <s>                 kill qemu after this (default 180)
  --base-port <n>               wires: NIC0 qemu n / host n+1, NIC1 qemu n+2 / host n+3 (default ${DEFAULT_BASE_PORT})
  --smp <n> --mem <MiB> --hugepages <n>
  --env NAME=VALUE              environment for the command (repeatable)
  --keep-ctl                    keep .testbed/runs/<run>/ (the guest's /ctl)
  --qboot                       boot with qboot instead of SeaBIOS (~0.5 s faster)
  --dry-run                     print the qemu command line and exit
  --quiet                       do not echo the console
`);
  process.exit(125);
}

async function main(argv: readonly string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const flags = dash >= 0 ? argv.slice(0, dash) : argv;
  const command = dash >= 0 ? argv.slice(dash + 1).join(' ') : '';
  let mode: VmMode = 'modern';
  let timeoutMs = 180_000;
  let basePort = DEFAULT_BASE_PORT;
  let smp: number | undefined;
  let memMiB: number | undefined;
  let hugepages: number | undefined;
  let keepCtl = false;
  let dryRun = false;
  let firmware: 'seabios' | 'qboot' | undefined;
  let quiet = false;
  const env: Record<string, string> = {};
  for (let i = 0; i < flags.length; i++) {
    const f = flags[i]!;
    const val = (): string => flags[++i] ?? usage();
    if (f === '--mode') {
      const m = val();
      if (!VM_MODES.includes(m as VmMode)) usage();
      mode = m as VmMode;
    } else if (f === '--timeout') timeoutMs = Number(val()) * 1000;
    else if (f === '--base-port') basePort = Number(val());
    else if (f === '--smp') smp = Number(val());
    else if (f === '--mem') memMiB = Number(val());
    else if (f === '--hugepages') hugepages = Number(val());
    else if (f === '--env') {
      const [k, ...v] = val().split('=');
      env[k!] = v.join('=');
    } else if (f === '--keep-ctl') keepCtl = true;
    else if (f === '--dry-run') dryRun = true;
    else if (f === '--qboot') firmware = 'qboot';
    else if (f === '--quiet') quiet = true;
    else usage();
  }
  if (dryRun) {
    const args = qemuArgs({ mode, wires: wiresFor(basePort), ctlDir: join(TESTBED_DIR, 'runs', 'DRY-RUN'),
      testbed: ensureTestbed(), smp, memMiB, hugepages, firmware: firmware ?? firmwareFromEnv() });
    process.stdout.write(['qemu-system-x86_64', ...args.map((a) => (/[\s,']/.test(a) ? `'${a}'` : a))].join(' ') + '\n');
    return 0;
  }
  if (command === '') usage();
  const wires = wiresFor(basePort);
  process.stderr.write(`vm: mode ${mode}; NICs ${NIC_ADDRESSES[0]} (wire qemu ${wires[0].qemuPort} <-> host ${wires[0].hostPort}), ` +
    `${NIC_ADDRESSES[1]} (wire qemu ${wires[1].qemuPort} <-> host ${wires[1].hostPort})\n`);
  const r = await runVm({
    mode, command, timeoutMs, basePort, smp, memMiB, hugepages, env, keepCtl, firmware,
    onOutput: quiet ? undefined : (t) => process.stdout.write(t),
    stopAfterReady: false,
    onGuestReady: (vm) => {
      process.stderr.write(`vm: command running; to stop it: touch ${relative(process.cwd(), join(vm.ctlDir, 'stop'))}\n`);
    },
  });
  process.stderr.write(`vm: exit code ${r.exitCode ?? 'none'}; DMAR faults ${r.dmarFaults}; ` +
    `boot-to-command ${r.bootMs ?? '-'} ms; total ${r.totalMs} ms` +
    (r.error ? `; ${r.error}` : '') + (keepCtl || r.exitCode !== 0 ? `; ctl ${r.ctlDir}` : '') + '\n');
  if (r.timedOut) return 124;
  return r.exitCode ?? 125;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let code = 125;
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
  try {
    code = await main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`vm: ${e instanceof Error ? e.message : String(e)}\n`);
  }
  process.exit(code);
}
