/**
 * Self-test of the testbed, without the project's driver:
 *   1. modern and legacy modes: both NICs bound to vfio-pci with /dev/vfio/<group>, koffi loads,
 *      the VFIO container offers the type1v2 IOMMU, both groups are viable (test/vm/probe.ts);
 *   2. kernel mode: a Linux bridge joins the NICs and traffic.ts frames come back byte-exact;
 *   3. a deliberate DMA to an unmapped IOVA is reported as DMAR faults (test/vm/dmar-fault.ts).
 * With --timings it also measures, in one guest, the start-up of plain node, of a compiled probe
 * and of the same probe under tsx.
 *
 *   tsx test/vm/selftest.ts [--timings] [--rate 2000] [--duration 3]
 * Exit status 0 when every check passed.
 */
import { compileForGuest } from './compile.ts';
import { runTrafficSession } from './session.ts';
import { formatReport } from './traffic.ts';
import { runVm } from './vm.ts';
import type { VmMode } from './vm.ts';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const say = (s: string): void => { process.stdout.write(s + '\n'); };
const results: { name: string; ok: boolean; detail: string }[] = [];
const record = (name: string, ok: boolean, detail: string): void => {
  results.push({ name, ok, detail });
  say(`${ok ? 'PASS' : 'FAIL'} ${name}: ${detail}`);
};

const [probeJs, faultJs] = await compileForGuest(['test/vm/probe.ts', 'test/vm/dmar-fault.ts']);

for (const [mode, id] of [['modern', '1af4:1041'], ['legacy', '1af4:1000']] as const satisfies readonly (readonly [VmMode, string])[]) {
  const r = await runVm({ mode, command: `node ${probeJs} $IXY_NIC0 $IXY_NIC1; ls -1 /dev/vfio`, timeoutMs: 60_000 });
  const probe = /^\{.*"ok":(true|false).*\}$/m.exec(r.commandOutput);
  const nicsOk = r.guestNics.length === 2 &&
    r.guestNics.every((n) => n.id === id && n.driver === 'vfio-pci' && r.commandOutput.includes(`\n${n.group}\n`));
  record(`${mode}: vfio-pci, /dev/vfio groups, koffi`, r.exitCode === 0 && nicsOk && probe?.[1] === 'true' && r.dmarFaults === 0,
    `exit ${r.exitCode}, NICs ${r.guestNics.map((n) => `${n.bdf} ${n.id} ${n.driver} group ${n.group}`).join('; ')}, ` +
    `probe ${probe?.[0] ?? 'missing'}, DMAR faults ${r.dmarFaults}, boot-to-command ${r.bootMs} ms` +
    (r.error ? `, ${r.error}` : ''));
}

const s = await runTrafficSession({
  mode: 'kernel', command: 'sh test/vm/bridge.sh', timeoutMs: 120_000,
  traffic: { rate: arg('--rate', 2000), durationMs: arg('--duration', 3) * 1000 },
});
record('kernel: bridge forwards traffic.ts frames byte-exact', s.traffic?.ok === true && s.vm.exitCode === 0,
  s.traffic ? `\n${formatReport(s.traffic)}` : `no traffic: ${String(s.trafficError)}; ${s.vm.error ?? ''}`);

const f = await runVm({ mode: 'modern', command: `node ${faultJs} $IXY_NIC0`, timeoutMs: 60_000 });
record('modern: DMA to an unmapped IOVA shows up as DMAR faults', f.exitCode === 0 && f.dmarFaults > 0,
  `exit ${f.exitCode}, DMAR faults ${f.dmarFaults}${f.dmarLines[1] ? ` (${f.dmarLines[1].trim()})` : ''}`);

if (argv.includes('--timings')) {
  const t = await runVm({
    mode: 'modern', timeoutMs: 120_000,
    command: `for c in "node -e 1" "node ${probeJs} $IXY_NIC0" "tsx test/vm/probe.ts $IXY_NIC0" "tsx -e 1"; do ` +
      `echo "timing: $c"; time $c > /dev/null; done`,
  });
  const lines = [...t.commandOutput.matchAll(/timing: (.*)\nreal\s+(\d+m\s*[\d.]+s)/g)].map((m) => `${m[2]} ${m[1]}`);
  record('guest start-up times (busybox time, real)', t.exitCode === 0, `\n  ${lines.join('\n  ')}`);
}

const failed = results.filter((r) => !r.ok).length;
say(failed === 0 ? 'selftest: all passed' : `selftest: ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
