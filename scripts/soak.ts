/**
 * npm run soak [-- --frames N] [--seed S] [--sample K] [--fault-rate P] [--without "mode,mode"]
 * [--vhost-user-frames N]: the soak of test/soak/soak.ts (default 100 million frames through the
 * model lanes, a hundredth of that more through the vhost-user lane), a progress line every 10 s on stderr, the
 * one-line summary and the fault table (per mode: kind, injected, detected, recovered) on stdout; exit code 1
 * when anything was lost, reordered or corrupted, or a device error went undetected.
 */
import { intOption, parseScript, runMain, UsageError, type CommandSpec, type OptionSpecs } from "../examples/lib/cli.ts";
import { FAULTS, faultTable, runSoak, summary } from "../test/soak/soak.ts";

const SPEC = {
  name: "npm run soak --",
  summary: "frames through the device models and a vhost-user backend with faults injected, every frame checked",
  usage: ["[options]"],
  options: {
    frames: { type: "string", arg: "N", help: "frames through the model lanes (1_000_000 style allowed)", default: "100000000", unit: "frames" },
    seed: { type: "string", arg: "N", help: "seed of the traffic and fault generator", default: "1" },
    sample: { type: "string", arg: "K", help: "one frame in K carries a payload pattern checked byte for byte", default: "64" },
    "fault-rate": { type: "string", arg: "P", help: "probability per round that a fault starts, 0 to 1", default: "0.01" },
    without: { type: "string", arg: "LIST", help: `fault modes to leave out, comma-separated (${FAULTS.map((f) => f.name).join(", ")})` },
    "vhost-user-frames": { type: "string", arg: "N", help: "frames through the vhost-user lane", default: "a hundredth of --frames", unit: "frames" },
  },
} as const satisfies CommandSpec<OptionSpecs>;

/** An integer option that may be written 100_000_000. */
function count(name: string, value: string | undefined, fallback: number, min: number): number {
  return intOption(name, value?.replace(/_/g, ""), fallback, min, Number.MAX_SAFE_INTEGER);
}

await runMain(async () => {
  const values = parseScript(SPEC);
  const faultRate = Number(values["fault-rate"] ?? 0.01);
  if (!Number.isFinite(faultRate) || faultRate < 0 || faultRate > 1) throw new UsageError(`--fault-rate must be a number from 0 to 1, got ${values["fault-rate"]}`);
  const without = (values.without ?? "").split(",").map((n) => n.trim()).filter((n) => n !== "");
  for (const name of without) {
    if (!FAULTS.some((f) => f.name === name)) throw new UsageError(`--without: no fault mode "${name}" (modes: ${FAULTS.map((f) => f.name).join(", ")})`);
  }
  return soak({
    frames: count("frames", values.frames, 100_000_000, 1),
    seed: count("seed", values.seed, 1, 0),
    sample: count("sample", values.sample, 64, 1),
    faultRate,
    faults: FAULTS.filter((f) => !without.includes(f.name)),
    ...(values["vhost-user-frames"] === undefined ? {} : { vhostUserFrames: count("vhost-user-frames", values["vhost-user-frames"], 0, 0) }),
  });
});

async function soak(options: Omit<Parameters<typeof runSoak>[0], "progress">): Promise<number> {
  let lastReport = 0;
  const result = await runSoak({
    ...options,
    progress: (offered, ms) => {
      if (ms - lastReport < 10_000) return;
      lastReport = ms;
      process.stderr.write(`soak: ${offered} frames after ${(ms / 1000).toFixed(0)} s (${(offered / ms / 1000).toFixed(2)} M frames/s)\n`);
    },
  });
  process.stdout.write(summary(result) + "\n");
  if (result.problems.length > 0) process.stdout.write(result.problems.map((p) => `  ${p}`).join("\n") + "\n");
  process.stdout.write(`${faultTable(result)}\nlanes: ${result.lanes.join("; ")}\n`);
  const memory = process.memoryUsage();
  process.stdout.write(`memory at the end: rss ${(memory.rss / 1e6).toFixed(0)} MB, array buffers ${(memory.arrayBuffers / 1e6).toFixed(0)} MB\n`);
  return result.problems.length === 0 && result.buffersLost === 0 ? 0 : 1;
}
