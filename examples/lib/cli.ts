/**
 * Command-line helpers shared by the examples: declared options with their help, usage errors,
 * signal handling.
 *
 * Every app declares its options once, as a CommandSpec: the parser takes its types from there and
 * `--help` prints each option with its description, default and unit, under the app's installed
 * name (ixy-fwd, ixy-pktgen, ...). An option the spec does not declare is a usage error (exit 2).
 */
import { basename } from "node:path";
import { parseArgs } from "node:util";
import type { DeviceOptions } from "../../src/device.ts";
import { IxyError } from "../../src/errors.ts";
import { PciAddress } from "../../src/pci/pci-address.ts";
import { watchParent } from "./parent-watch.ts";
import { SimKind } from "./sim-ports.ts";
import { UsageError } from "./usage-error.ts";

export { UsageError };

/** --help: runMain prints the usage to stdout and exits 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
}

/** One option: its parser type and what --help says of it. */
export interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly short?: string;
  /** Repeatable: the values come as an array. */
  readonly multiple?: boolean;
  /** The value's placeholder in --help: N, LIST, FILE ... (string options; default "VALUE"). */
  readonly arg?: string;
  /** What the option does, one or two sentences. */
  readonly help: string;
  /** The default as --help shows it (the code applies its own: intOption's fallback). */
  readonly default?: string;
  /** The value's unit: "frames/s", "bytes", "s" ... */
  readonly unit?: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** An app's command line: the name it is installed under, what it does, its synopsis and options. */
export interface CommandSpec<T extends OptionSpecs> {
  /** The installed bin's name, e.g. "ixy-fwd". */
  readonly name: string;
  /** One line: what the app does. */
  readonly summary: string;
  /** Synopsis lines, each without the name: "<port-a> <port-b> [options]". */
  readonly usage: readonly string[];
  readonly options: T;
  /** Paragraphs printed after the options (ports, examples). */
  readonly details?: string;
}

/** The parsed values of a spec's options, typed from the spec. */
export type OptionValues<T extends OptionSpecs> = {
  -readonly [K in keyof T]?: T[K] extends { readonly type: "boolean" } ? boolean : T[K] extends { readonly multiple: true } ? string[] : string;
};

/** --help, which every command takes (the examples and the scripts). */
export const HELP_OPTION = {
  help: { type: "boolean", short: "h", help: "print this help and exit" },
} as const satisfies OptionSpecs;

/** --seconds, the same in every app that runs until stopped. */
export const SECONDS_OPTION = {
  seconds: { type: "string", arg: "N", help: "stop after N seconds (0: run until SIGINT or SIGTERM)", default: "0", unit: "s" },
} as const satisfies OptionSpecs;

/** The options every example takes. */
export const COMMON_OPTIONS = {
  ...HELP_OPTION,
  sim: { type: "boolean", help: "run on device models instead of hardware (give no ports then)" },
  "sim-nic": { type: "string", arg: "ixgbe|virtio", help: "which device model --sim runs on", default: "ixgbe" },
  mac: { type: "string", arg: "MAC", help: "the MAC address of vhost-user ports, as aa:bb:cc:dd:ee:ff (NICs and models have their own)" },
  "unsafe-no-iommu": {
    type: "boolean",
    help: "allow legacy virtio devices (1af4:1000), whose DMA bypasses the IOMMU (physical addresses; root)",
  },
} as const satisfies OptionSpecs;

/**
 * The device options every example takes, openDevice()'s DeviceOptions (src/device.ts): the
 * driver checks the values against the device (ixgbe: rings of 64 to 4096, virtio: up to the
 * queue size the device offers) and its error names the option's DeviceOptions field.
 */
export const DEVICE_OPTIONS = {
  "rx-ring": { type: "string", arg: "N", help: "descriptors per receive ring, a power of two (rxRingSize)", default: "ixgbe 512, virtio the device's maximum" },
  "tx-ring": { type: "string", arg: "N", help: "descriptors per transmit ring, a power of two (txRingSize)", default: "as --rx-ring" },
  mempool: { type: "string", arg: "N", help: "buffers per receive queue's pool, more than --rx-ring (mempoolSize)", default: "the larger of 4096 and twice --rx-ring", unit: "buffers" },
  "link-timeout": { type: "string", arg: "MS", help: "how long to wait for the link when a port opens (0: do not wait)", default: "10000", unit: "ms" },
  trace: {
    type: "boolean",
    help: "print every register access of init and control operations to stderr, named, with its datasheet section; hot-path accesses as counts once a second (docs/trace.md)",
  },
  "trace-each": { type: "boolean", help: "as --trace, with the hot-path accesses one by one too" },
} as const satisfies OptionSpecs;

/** The DeviceOptions of DEVICE_OPTIONS' flags: only those given (the driver applies its defaults). */
function deviceOptions(values: OptionValues<typeof DEVICE_OPTIONS>): DeviceOptions {
  const o: { -readonly [K in keyof DeviceOptions]: DeviceOptions[K] } = {};
  if (values["rx-ring"] !== undefined) o.rxRingSize = powerOfTwoOption("rx-ring", values["rx-ring"], 32768);
  if (values["tx-ring"] !== undefined) o.txRingSize = powerOfTwoOption("tx-ring", values["tx-ring"], 32768);
  if (values.mempool !== undefined) o.mempoolSize = intOption("mempool", values.mempool, 0, 1, 1 << 24);
  if (values["link-timeout"] !== undefined) o.linkTimeoutMs = intOption("link-timeout", values["link-timeout"], 0, 0, 86_400_000);
  if (values["trace-each"]) o.trace = { hotPath: "each" };
  else if (values.trace) o.trace = true;
  return o;
}

/** Ports are PCI addresses (0000:01:00.0) or vhost-user backends (vhost-user:/path/to/socket). */
export const PORTS_HELP =
  "A port is a PCI address (0000:01:00.0, bound to vfio-pci: see ixy-devbind) or a vhost-user " +
  "backend, vhost-user:<socket> (DPDK's testpmd, say).";

const WIDTH = 80;

/** Words of `text` in lines of at most `width` columns, each indented by `indent`. */
export function wrap(text: string, width: number, indent: string, firstIndent = indent): string {
  const lines: string[] = [];
  let line = firstIndent;
  let empty = true;
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent + word;
    } else {
      line += (empty ? "" : " ") + word;
    }
    empty = false;
  }
  lines.push(line);
  return lines.join("\n");
}

/** The --help text of a command: summary, usage, options with description, default and unit. */
export function formatHelp<T extends OptionSpecs>(spec: CommandSpec<T>, common: readonly [string, OptionSpecs][] = EXAMPLE_SECTIONS): string {
  const out: string[] = [wrap(`${spec.name}: ${spec.summary}`, WIDTH, "  ", ""), "", "usage:"];
  for (const u of spec.usage) out.push(wrap(u, WIDTH, "      ", `  ${spec.name} `));
  const section = (title: string, options: OptionSpecs) => {
    out.push("", `${title}:`);
    for (const [name, o] of Object.entries(options)) {
      const flag = `  ${o.short ? `-${o.short}, ` : ""}--${name}${o.type === "string" ? ` ${o.arg ?? "VALUE"}` : ""}`;
      // The unit follows a number ("default 32 frames"), not a phrase ("default the CPUs near ...").
      const unit = o.unit && (o.default === undefined || /^\d/.test(o.default)) ? ` ${o.unit}` : "";
      const extra = [o.default !== undefined ? `default: ${o.default}${unit}` : unit ? `in${unit}` : "", o.multiple ? "repeatable" : ""]
        .filter((s) => s !== "")
        .join("; ");
      const text = o.help + (extra ? ` [${extra}]` : "");
      out.push(flag);
      out.push(wrap(text, WIDTH, "        "));
    }
  };
  section("options", spec.options);
  for (const [title, options] of common) section(title, options);
  if (spec.details) {
    for (const p of spec.details.split("\n\n")) out.push("", wrap(p, WIDTH, ""));
  }
  return out.join("\n");
}

/** The option sections every example's --help ends with. */
const EXAMPLE_SECTIONS: readonly [string, OptionSpecs][] = [
  ["device options", DEVICE_OPTIONS],
  ["common options", COMMON_OPTIONS],
];

/** The one-line usage error hint: "usage: ixy-fwd <port-a> ...; ixy-fwd --help for more". */
export function shortUsage<T extends OptionSpecs>(spec: CommandSpec<T>): string {
  return `usage: ${spec.name} ${spec.usage[0] ?? "[options]"}  (${spec.name} --help lists the options)`;
}

/** A usage error: "<name>: <what>", then the usage line. */
export function usageError<T extends OptionSpecs>(spec: CommandSpec<T>, what: string): UsageError {
  return new UsageError(`${spec.name}: ${what}\n${shortUsage(spec)}`);
}

/**
 * A script's options (scripts/demo.ts, scripts/soak.ts): the spec's options and --help, nothing
 * of the examples' device and port options. Unknown options and stray arguments: UsageError.
 */
export function parseScript<T extends OptionSpecs>(spec: CommandSpec<T>, args: readonly string[] = process.argv.slice(2)): OptionValues<T> {
  const options = { ...spec.options, ...HELP_OPTION } as OptionSpecs;
  const parsed = parseWith(spec, options, args, false);
  if ((parsed.values as { help?: boolean }).help) throw new HelpRequested(formatHelp(spec, [["common options", HELP_OPTION]]));
  return parsed.values as OptionValues<T>;
}

/**
 * A tool's options and arguments (ixy-devbind): like parseScript, with positionals, and nothing of
 * the apps' device and port options (they would mean nothing there).
 */
export function parseTool<T extends OptionSpecs>(spec: CommandSpec<T>, args: readonly string[] = process.argv.slice(2)): { values: OptionValues<T>; positionals: string[] } {
  const options = { ...spec.options, ...HELP_OPTION } as OptionSpecs;
  const parsed = parseWith(spec, options, args, true);
  if ((parsed.values as { help?: boolean }).help) throw new HelpRequested(formatHelp(spec, [["common options", HELP_OPTION]]));
  return { values: parsed.values as OptionValues<T>, positionals: parsed.positionals };
}

function parseWith<T extends OptionSpecs>(spec: CommandSpec<T>, options: OptionSpecs, args: readonly string[], positionals: boolean) {
  const config: Record<string, { type: "string" | "boolean"; short?: string; multiple?: boolean }> = {};
  for (const [name, o] of Object.entries(options)) {
    config[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  try {
    return parseArgs({ args: [...args], options: config, allowPositionals: positionals, strict: true });
  } catch (e) {
    // Node's messages end in advice for its own API ("To specify a positional argument starting
    // with a '-', place it at the end of the command after '--'"): keep the first sentence.
    const first = (e as Error).message.split(/\.\s/)[0]!.replace(/\.$/, "");
    throw usageError(spec, first);
  }
}

/**
 * Parses the app's own options plus the ones every example takes (--help, --sim, --sim-nic, --mac,
 * --unsafe-no-iommu); returns them with `sim`, the device model to run on (null: hardware),
 * `mac`, and `unsafeNoIommu` (true only when --unsafe-no-iommu was given: openDevice's option).
 */
export function parse<T extends OptionSpecs>(spec: CommandSpec<T>, args: readonly string[] = process.argv.slice(2)) {
  const parsed = parseWith(spec, { ...spec.options, ...DEVICE_OPTIONS, ...COMMON_OPTIONS } as OptionSpecs, args, true);
  const common = parsed.values as OptionValues<typeof COMMON_OPTIONS>;
  if (common.help) throw new HelpRequested(formatHelp(spec));
  const unsafeNoIommu = common["unsafe-no-iommu"] === true;
  return {
    values: parsed.values as OptionValues<T>,
    positionals: parsed.positionals,
    sim: simOption(common.sim, common["sim-nic"]),
    mac: macOption(common.mac),
    unsafeNoIommu,
    /** --rx-ring, --tx-ring, --mempool, --link-timeout as DeviceOptions: spread into openDevice's (and the device models') options. */
    device: deviceOptions(parsed.values as OptionValues<typeof DEVICE_OPTIONS>),
  };
}

/**
 * The port arguments: exactly `count` of them on hardware, none with --sim (the models are the
 * ports), each a PCI address (checked here, so that a typo is a usage error, exit 2, before any
 * device is touched) or vhost-user:<socket>. Returns them, or with --sim an empty list.
 */
export function portArguments<T extends OptionSpecs>(spec: CommandSpec<T>, ports: readonly string[], count: number, sim: boolean): string[] {
  if (sim) {
    if (ports.length > 0) throw usageError(spec, `--sim runs on device models: give no ports (got ${ports.join(" ")})`);
    return [];
  }
  if (ports.length !== count) {
    throw usageError(spec, `needs ${count === 1 ? "one port" : count === 2 ? "two ports" : `${count} ports`} (PCI addresses or vhost-user:<socket>), got ${ports.length}`);
  }
  for (const p of ports) {
    const problem = pciAddressProblem(p);
    if (problem !== null) throw usageError(spec, problem);
  }
  return [...ports];
}

/**
 * Every address checked before the first device is opened, as portArguments does: a typo is a
 * usage error (exit 2), "port "x": not a PCI address: ...", with no device touched. For ports
 * that come from options as well as arguments (pktgen's --rx-port).
 */
export function checkPortAddresses(ports: readonly string[]): void {
  for (const p of ports) {
    const problem = pciAddressProblem(p);
    if (problem !== null) throw new UsageError(problem);
  }
}

/** "port "x": not a PCI address: ..." for a port argument that is neither a PCI address nor vhost-user:<socket>; null when it is one. */
export function pciAddressProblem(port: string): string | null {
  if (port.startsWith("vhost-user:")) return port.length === "vhost-user:".length ? `port "${port}": vhost-user: needs the socket's path` : null;
  try {
    PciAddress.parse(port);
    return null;
  } catch (e) {
    return `port "${port}": ${(e as Error).message.replace(/^malformed PCI address "[^"]*": /, "not a PCI address: ")}`;
  }
}

/** --mac aa:bb:cc:dd:ee:ff: the MAC of vhost-user ports (NICs and device models have their own). */
function macOption(value: string | undefined): Uint8Array | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(value)) throw new UsageError(`--mac takes six hex bytes like 02:00:00:00:00:01, got ${value}`);
  return Uint8Array.from(value.split(":"), (b) => parseInt(b, 16));
}

export function intOption(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${value}`);
  return n;
}

function powerOfTwoOption(name: string, value: string, max: number): number {
  const n = intOption(name, value, 0, 1, max);
  if ((n & (n - 1)) !== 0) throw new UsageError(`--${name} must be a power of two, got ${value}`);
  return n;
}

/** --sim [--sim-nic ixgbe|virtio]: which device model to run on, or null for hardware. */
function simOption(sim: boolean | undefined, nic: string | undefined): SimKind | null {
  if (!sim) {
    if (nic !== undefined) throw new UsageError("--sim-nic goes with --sim");
    return null;
  }
  if (nic === undefined) return SimKind.ixgbe;
  if (nic === SimKind.ixgbe || nic === SimKind.virtio) return nic;
  throw new UsageError(`--sim-nic takes ixgbe or virtio, got ${nic}`);
}

/**
 * A stop signal this soon after the first is the same stop delivered again, not a second ^C: a
 * terminal's ^C and `timeout -s INT` signal the whole process group, and npm and tsx also relay
 * what they receive to their child, so one stop reaches the app two or three times within
 * milliseconds. Exiting 130 on those (as a real second ^C does) lost the totals and the exit code 0.
 */
const SAME_STOP_MS = 1000;
/** After the parent is gone, how long the app gets to stop before it exits anyway. */
const ORPHAN_EXIT_MS = 5000;

const stopCallbacks = new Set<() => void>();
let firstStopAt = -1;
let installed = false;

function stopAll(): void {
  for (const stop of [...stopCallbacks]) stop();
}

function installStopHandlers(): void {
  if (installed) return;
  installed = true;
  const handler = () => {
    const now = performance.now();
    if (firstStopAt < 0) {
      firstStopAt = now;
      stopAll();
    } else if (now - firstStopAt > SAME_STOP_MS) {
      process.exit(130); // a second ^C: the user does not want to wait for the orderly stop
    }
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  // No app outlives what started it (npx killed with SIGKILL leaves its sh and the app behind).
  watchParent(() => {
    process.stderr.write(`${basename(process.argv[1] ?? "ixy")}: the parent process exited, stopping\n`);
    if (firstStopAt < 0) firstStopAt = performance.now();
    stopAll();
    setTimeout(() => process.exit(1), ORPHAN_EXIT_MS).unref();
  });
}

/**
 * Calls `stop` on the first SIGINT/SIGTERM (or when the parent process exits); a second signal
 * more than SAME_STOP_MS later exits at once with 130. The handlers are the process's, shared by
 * every caller; the result unregisters `stop` (a loop that has ended).
 */
export function onStopSignal(stop: () => void): () => void {
  installStopHandlers();
  stopCallbacks.add(stop);
  if (firstStopAt >= 0) stop(); // the stop came before this loop started
  return () => {
    stopCallbacks.delete(stop);
  };
}

/** Runs an example's main; prints errors the way a user needs them and sets the exit code. */
export async function runMain(main: () => Promise<number> | number): Promise<void> {
  try {
    process.exitCode = await main();
  } catch (e) {
    if (e instanceof HelpRequested) {
      process.stdout.write(`${e.message}\n`);
      process.exitCode = 0;
    } else if (e instanceof UsageError) {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = 2;
    } else if (e instanceof IxyError || e instanceof TypeError || e instanceof RangeError) {
      process.stderr.write(`error: ${e.name}: ${e.message}\n`);
      process.exitCode = 1;
    } else {
      throw e;
    }
  } finally {
    await absorbStopCopies();
  }
}

/**
 * An app stops in a few milliseconds: the copies of its stop signal that npm, tsx or the process
 * group deliver a moment after the first would otherwise arrive while Node tears the process down,
 * with the handlers gone, and kill it (exit by SIGINT, not 0). So the process stays, handlers in
 * place, until STOP_COPIES_MS after the first stop signal.
 */
const STOP_COPIES_MS = 250;
async function absorbStopCopies(): Promise<void> {
  if (firstStopAt < 0) return;
  const left = firstStopAt + STOP_COPIES_MS - performance.now();
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
}
