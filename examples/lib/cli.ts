/** Command-line helpers shared by the examples: flags, usage errors, signal handling. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { IxyError } from "../../src/errors.ts";
import { SimKind } from "./ports.ts";

export class UsageError extends Error {
  override name = "UsageError";
}

/** --help: runMain prints the usage to stdout and exits 0. */
export class HelpRequested extends Error {
  override name = "HelpRequested";
}

const COMMON_OPTIONS = {
  help: { type: "boolean", short: "h" },
  sim: { type: "boolean" },
  "sim-nic": { type: "string" },
  mac: { type: "string" },
  "unsafe-no-iommu": { type: "boolean" },
} as const;

/** Ports are PCI addresses (0000:01:00.0) or vhost-user backends (vhost-user:/path/to/socket). */
export const PORTS_HELP =
  "ports: PCI addresses, or vhost-user:<socket> with [--mac aa:bb:cc:dd:ee:ff] for their MAC; " +
  "--unsafe-no-iommu allows legacy virtio devices (1af4:1000), whose DMA bypasses the IOMMU (physical addresses, root)";

/**
 * Parses the app's own flags plus the ones every example takes (--help, --sim, --sim-nic, --mac,
 * --unsafe-no-iommu); returns them with `sim`, the device model to run on (null: hardware),
 * `mac`, and `unsafeNoIommu` (true only when --unsafe-no-iommu was given: openDevice's option).
 */
export function parse<T extends NonNullable<ParseArgsConfig["options"]>>(usage: string, options: T) {
  let parsed;
  try {
    parsed = parseArgs({ options: { ...options, ...COMMON_OPTIONS }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${usage}`);
  }
  const common = parsed.values as { help?: boolean; sim?: boolean; "sim-nic"?: string; mac?: string; "unsafe-no-iommu"?: boolean };
  if (common.help) throw new HelpRequested(usage);
  const unsafeNoIommu = common["unsafe-no-iommu"] === true;
  return { ...parsed, sim: simOption(common.sim, common["sim-nic"]), mac: macOption(common.mac), unsafeNoIommu };
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

/** Calls `stop` on the first SIGINT/SIGTERM; a second one exits at once. */
export function onStopSignal(stop: () => void): void {
  let stopping = false;
  const handler = () => {
    if (stopping) process.exit(130);
    stopping = true;
    stop();
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
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
  }
}
