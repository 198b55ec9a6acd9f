/** Command-line helpers shared by the examples: flags, usage errors, signal handling. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { IxyError } from "../../src/errors.ts";
import { SimKind } from "./ports.ts";

export class UsageError extends Error {
  override name = "UsageError";
}

export function parse<T extends NonNullable<ParseArgsConfig["options"]>>(usage: string, options: T) {
  try {
    return parseArgs({ options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${usage}`);
  }
}

export function intOption(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${value}`);
  return n;
}

/** --sim [--sim-nic ixgbe|virtio]: which device model to run on, or null for hardware. */
export function simOption(sim: boolean | undefined, nic: string | undefined): SimKind | null {
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
    if (e instanceof UsageError) {
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
