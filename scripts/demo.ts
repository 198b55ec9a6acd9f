/**
 * npm run demo: the forwarder on two real (emulated) virtio NICs, end to end.
 *
 * Builds the qemu testbed if needed (test/vm/build.sh: Debian's kernel, an initramfs; installs its
 * apt packages when run as root), boots a guest whose two virtio-net NICs sit behind an emulated
 * Intel IOMMU and are bound to vfio-pci, runs examples/fwd.ts in it, and pumps random-size frames
 * from this host into both NICs' wires. While it runs you see the forwarder's live rates (as the
 * guest reports them); at the end, the verification: every frame back, byte-exact, in order.
 *
 *   npm run demo [-- --rate 3000 --seconds 8 --legacy]
 */
import { intOption, parseScript, runMain, type CommandSpec, type OptionSpecs } from "../examples/lib/cli.ts";
import type { PortReport, StatsReport } from "../examples/lib/live-stats.ts";
import { formatBitrate, formatPps } from "../examples/lib/stats-format.ts";
import { compileForGuest } from "../test/vm/compile.ts";
import { runTrafficSession } from "../test/vm/session.ts";
import { formatReport } from "../test/vm/traffic.ts";
import { ensureTestbed } from "../test/vm/vm.ts";


const SPEC = {
  name: "npm run demo --",
  summary: "the forwarder on two virtio-net NICs of a qemu guest, fed and checked from this host",
  usage: ["[options]"],
  options: {
    rate: { type: "string", arg: "N", help: "random-size frames the host sends into each NIC per second, 1 to 1000000", default: "3000", unit: "frames/s" },
    seconds: { type: "string", arg: "N", help: "how long the host sends, 1 to 3600", default: "8", unit: "s" },
    legacy: { type: "boolean", help: "transitional virtio-net (1af4:1000), legacy interface and physical addresses, instead of a modern one behind the IOMMU" },
  },
  details: "Builds the qemu testbed in .testbed/ first if needed (as root it installs its apt packages).",
} as const satisfies CommandSpec<OptionSpecs>;

const say = (s: string) => process.stdout.write(s + "\n");

async function main(): Promise<number> {
  // Before anything is built or booted: a bad option is a usage error, exit 2, at once.
  const values = parseScript(SPEC);
  const rate = intOption("rate", values.rate, 3000, 1, 1_000_000);
  const seconds = intOption("seconds", values.seconds, 8, 1, 3600);
  const mode = values.legacy ? "legacy" : "modern";

  say("ixy.ts demo: the TypeScript forwarder on two virtio-net NICs in a qemu guest");
  say("== building the testbed (cached in .testbed/)");
  const t0 = Date.now();
  ensureTestbed();
  const [fwd] = await compileForGuest(["examples/fwd.ts"]);
  say(`   ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  say(
    `== booting the guest: 2 x virtio-net (${mode === "modern" ? "modern 1af4:1041 behind the emulated IOMMU" : "transitional 1af4:1000, legacy interface, physical addresses"}), bound to vfio-pci`,
  );
  say(`== host: ${rate} random-size frames/s into each NIC for ${seconds} s; guest: fwd 0000:00:01.0 <-> 0000:00:02.0`);

  let pending = "";
  const tty = process.stdout.isTTY;
  // Lines of the rates block last drawn on a terminal: the next report draws over them.
  let drawn = 0;
  // The guest's fwd --json reports (docs/statistics.md), one short line per port here (under 80
  // columns, as the apps' own).
  const show = (ports: PortReport[]) => {
    const lines = ports.map((p) => {
      const d = p.drops;
      return `   fwd ${p.port.slice(-4)} rx ${formatPps(p.rx.pps)} ${formatBitrate(p.rx.mbit, p.rx.wireMbit)} tx ${formatPps(p.tx.pps)} drops ${d.rxMissed + d.rxErrors + d.txErrors + (d.txRingFull ?? 0)}`;
    });
    if (tty && drawn > 0) process.stdout.write(`\x1b[${drawn}A`);
    for (const l of lines) process.stdout.write(tty ? `\r\x1b[2K${l}\n` : `${l}\n`);
    drawn = tty ? lines.length : 0;
  };
  const s = await runTrafficSession({
    mode,
    // --tx-retries: under TCG the guest can stall for a few hundred ms; the burst that follows
    // may find qemu's TX ring still full, and qemu's I/O thread empties it a moment later.
    command: `node ${fwd} $IXY_NIC0 $IXY_NIC1 --json --tx-retries 10000${mode === "legacy" ? " --unsafe-no-iommu" : ""}`,
    timeoutMs: 240_000,
    traffic: {
      rate,
      durationMs: seconds * 1000,
      size: "random",
      log: (l) => {
        drawn = 0;
        say(`   ${l}`);
      },
    },
    onOutput: (text) => {
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line.startsWith('{"type":"interval"')) show((JSON.parse(line) as StatsReport).ports);
        else if (line.startsWith("fwd:")) {
          drawn = 0;
          say(`   guest ${line}`);
        }
      }
    },
  });
  say(`== guest: boot to command ${s.vm.bootMs ?? "?"} ms, exit code ${s.vm.exitCode}, DMAR faults ${s.vm.dmarFaults}`);
  if (!s.traffic) {
    say(`demo failed: ${String(s.trafficError ?? s.vm.error)}`);
    say(s.vm.output.slice(-2000));
    return 1;
  }
  say("== verification");
  say(formatReport(s.traffic));
  const ok = s.traffic.ok && s.vm.exitCode === 0 && s.vm.dmarFaults === 0;
  say(ok ? "demo OK: every frame came back byte-exact and in order" : "demo FAILED");
  return ok ? 0 : 1;
}

await runMain(main);
