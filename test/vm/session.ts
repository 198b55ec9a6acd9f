/**
 * One testbed session: boot a guest in a mode, run a command in it (a forwarder), drive traffic
 * through it from the host while it runs, stop it, collect everything.
 *
 *   import { runTrafficSession } from './session.ts';
 *   const s = await runTrafficSession({
 *     mode: 'kernel', command: 'sh test/vm/bridge.sh',
 *     traffic: { rate: 2000, durationMs: 5000 },
 *   });
 *   s.vm.exitCode; s.vm.dmarFaults; s.traffic?.ok; s.traffic?.streams[0].lost
 *
 * CLI: tsx test/vm/session.ts [--mode m] [--timeout s] [--show-console] [traffic options] -- <guest command>
 * Prints the traffic report (text or --json) and exits 0 when the command exited 0 (or was
 * stopped by the host), no DMAR fault was logged and the traffic was clean.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatReport, parseTrafficArgs, runTraffic, trafficExitCode, TRAFFIC_USAGE } from './traffic.ts';
import type { TrafficOptions, TrafficReport } from './traffic.ts';
import { runVm, VM_MODES, wiresFor } from './vm.ts';
import type { VmMode, VmOptions, VmResult } from './vm.ts';

export { runVm } from './vm.ts';
export type { VmHandle, VmOptions, VmResult } from './vm.ts';
export { runTraffic } from './traffic.ts';
export type { TrafficOptions, TrafficReport } from './traffic.ts';

export interface SessionOptions extends Omit<VmOptions<TrafficReport>, 'onGuestReady' | 'stopAfterReady'> {
  /** Traffic settings; the wires come from the VM (basePort). */
  readonly traffic: Omit<TrafficOptions, 'wires' | 'signal'>;
}

export interface SessionResult {
  readonly vm: VmResult<TrafficReport>;
  /** Undefined when the traffic could not run (see trafficError). */
  readonly traffic?: TrafficReport;
  readonly trafficError?: unknown;
}

/**
 * Boots, waits for the guest to forward (traffic probes), measures, then stops the guest command
 * with the stop signal (default SIGINT) and waits for the guest to power off.
 */
export async function runTrafficSession(o: SessionOptions): Promise<SessionResult> {
  const vm = await runVm<TrafficReport>({
    ...o,
    stopAfterReady: true,
    onGuestReady: (h) => runTraffic({ ...o.traffic, wires: h.wires, signal: h.signal }),
  });
  return { vm, traffic: vm.ready, trafficError: vm.readyError };
}

async function main(argv: readonly string[]): Promise<number> {
  const dash = argv.indexOf('--');
  if (dash < 0 || dash === argv.length - 1) {
    process.stderr.write(`usage: tsx test/vm/session.ts [--mode modern|legacy|kernel] [--timeout s] [--show-console] ` +
      `[--stop-signal INT|TERM] [traffic options] -- <guest command>\n${TRAFFIC_USAGE}`);
    return 2;
  }
  const { cli, rest } = parseTrafficArgs(argv.slice(0, dash));
  const command = argv.slice(dash + 1).join(' ');
  let mode: VmMode = 'modern';
  let timeoutMs = 300_000;
  let showConsole = false;
  let stopSignal: 'INT' | 'TERM' = 'INT';
  for (let i = 0; i < rest.length; i++) {
    const f = rest[i];
    if (f === '--mode' && VM_MODES.includes(rest[i + 1] as VmMode)) mode = rest[++i] as VmMode;
    else if (f === '--timeout') timeoutMs = Number(rest[++i]) * 1000;
    else if (f === '--show-console') showConsole = true;
    else if (f === '--stop-signal' && (rest[i + 1] === 'INT' || rest[i + 1] === 'TERM')) stopSignal = rest[++i] as 'INT' | 'TERM';
    else {
      process.stderr.write(`session: unknown argument ${f}\n`);
      return 2;
    }
  }
  const basePort = cli.options.wires[0].qemuPort;
  wiresFor(basePort); // validates
  const { wires: _w, ...traffic } = cli.options;
  void _w;
  const s = await runTrafficSession({
    mode, command, timeoutMs, basePort, stopSignal,
    onOutput: showConsole ? (t) => process.stderr.write(t) : undefined,
    traffic: { ...traffic, log: (l) => process.stderr.write(`traffic: ${l}\n`) },
  });
  const v = s.vm;
  process.stderr.write(`session: guest exit code ${v.exitCode ?? 'none'}; DMAR faults ${v.dmarFaults}; ` +
    `boot-to-command ${v.bootMs ?? '-'} ms; total ${v.totalMs} ms${v.error ? `; ${v.error}` : ''}\n`);
  if (!showConsole && (v.error || (v.exitCode !== 0 && v.exitCode !== 130 && v.exitCode !== 143))) process.stderr.write(v.output + '\n');
  if (!s.traffic) {
    process.stderr.write(`session: no traffic result: ${s.trafficError instanceof Error ? s.trafficError.message : String(s.trafficError)}\n`);
    return 1;
  }
  process.stdout.write((cli.json ? JSON.stringify({ vm: { exitCode: v.exitCode, dmarFaults: v.dmarFaults,
    bootMs: v.bootMs, totalMs: v.totalMs, guestNics: v.guestNics, error: v.error }, traffic: s.traffic }, null, 2)
    : formatReport(s.traffic)) + '\n');
  const guestOk = (v.exitCode === 0 || v.exitCode === 130 || v.exitCode === 143) && v.dmarFaults === 0;
  return guestOk ? trafficExitCode(s.traffic, cli.maxLossPercent) : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
