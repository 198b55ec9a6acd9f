/**
 * ixy-devbind: lists the PCI network devices and binds them to vfio-pci for ixy.ts, and back.
 * Like DPDK's dpdk-devbind.py, it refuses to take an interface the machine uses (addresses,
 * routes, above all the default route) unless --force, and remembers the kernel driver so that
 * --restore gives the device back.
 */
import { type CommandSpec, type OptionSpecs, parseTool, runMain, shortUsage, UsageError } from "./lib/cli.ts";
import { bindToVfio, DEFAULT_STATE_DIR, normalizeAddress, restoreDriver } from "./lib/devbind-bind.ts";
import { formatStatus, ipv4Addresses } from "./lib/devbind-status.ts";
import { listPciNetDevices } from "../src/pci/sysfs-devices.ts";

const SPEC = {
  name: "ixy-devbind",
  summary: "lists PCI network devices and binds them to vfio-pci for ixy.ts, or back to their kernel driver",
  usage: ["--status", "--bind [--force] <pci-address>...", "--restore <pci-address>...", "--unbind [--force] <pci-address>..."],
  options: {
    status: { type: "boolean", short: "s", help: "list the network devices: driver, interfaces, whether they are in use, IOMMU group" },
    bind: { type: "boolean", short: "b", help: "bind the devices to vfio-pci (as root); refuses an interface in use" },
    force: { type: "boolean", help: "with --bind or --unbind: go ahead even with an interface that is up with addresses or carries routes (the default route too: that cuts the machine off)" },
    restore: { type: "boolean", help: "give the devices back to the kernel driver they had before --bind (or the one the kernel picks)" },
    unbind: { type: "boolean", short: "u", help: "release the devices from their driver and leave them with none; refuses an interface in use, as --bind" },
    verbose: { type: "boolean", short: "v", help: "print each sysfs write" },
    "sysfs-root": { type: "string", arg: "DIR", help: "where sysfs is mounted; tests point it at a tree of their own", default: "/sys" },
    "proc-root": { type: "string", arg: "DIR", help: "where procfs is mounted, for net/route, net/ipv6_route and net/if_inet6", default: "/proc" },
    "state-dir": { type: "string", arg: "DIR", help: "where --bind records each device's kernel driver for --restore", default: DEFAULT_STATE_DIR },
  },
  details:
    "A PCI address is 0000:01:00.0 (the domain may be left out: 01:00.0); --status lists them.\n\n" +
    "An interface is in use when a route goes through it or it is up with an address: binding it " +
    "to vfio-pci takes it from the kernel, and when it carries the default route, an SSH session " +
    "through it ends. vfio-pci needs an IOMMU (intel_iommu=on or amd_iommu=on).",
} as const satisfies CommandSpec<OptionSpecs>;

function main(): number {
  const { values, positionals } = parseTool(SPEC);
  const modes = (["status", "bind", "restore", "unbind"] as const).filter((m) => values[m]);
  if (modes.length !== 1) throw new UsageError(`ixy-devbind takes one of --status, --bind, --restore, --unbind\n${shortUsage(SPEC)}`);
  const mode = modes[0]!;
  if (values.force && mode !== "bind" && mode !== "unbind") throw new UsageError("--force goes with --bind or --unbind");
  const sysfsRoot = values["sysfs-root"] ?? "/sys";
  const procRoot = values["proc-root"] ?? "/proc";
  const real = sysfsRoot === "/sys" && procRoot === "/proc";
  if (mode === "status") {
    if (positionals.length) throw new UsageError("--status takes no addresses");
    // ip reports the machine's own interfaces: only meaningful on the real trees.
    process.stdout.write(`${formatStatus(listPciNetDevices({ sysfsRoot, procRoot }, real ? ipv4Addresses() : undefined))}\n`);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`--${mode} needs at least one PCI address\n${shortUsage(SPEC)}`);
  const addresses = positionals.map(normalizeAddress);
  const options = {
    sysfsRoot,
    procRoot,
    stateDir: values["state-dir"] ?? DEFAULT_STATE_DIR,
    force: values.force === true,
    ...(values.verbose ? { log: (line: string) => process.stderr.write(`  ${line}\n`) } : {}),
  };
  for (const address of addresses) {
    if (mode === "bind") {
      const r = bindToVfio(address, options);
      process.stdout.write(
        r.already
          ? `${address}: already bound to vfio-pci (IOMMU group ${r.group})\n`
          : `${address}: bound to vfio-pci (was ${r.was ?? "no driver"}); /dev/vfio/${r.group}; back with ixy-devbind --restore ${address}\n`,
      );
    } else {
      const r = restoreDriver(address, { ...options, detachOnly: mode === "unbind" });
      process.stdout.write(`${address}: ${r.was === r.now ? `still on ${r.now ?? "no driver"}` : `${r.was ?? "no driver"} -> ${r.now ?? "no driver"}`}\n`);
    }
  }
  return 0;
}

await runMain(main);
