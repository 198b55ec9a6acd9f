/**
 * npm run soak [-- --frames N] [--seed S] [--sample K] [--fault-rate P] [--without "mode,mode"]
 * [--vhost-user-frames N]: the soak of test/soak/soak.ts (default 100 million frames through the
 * model lanes, a hundredth of that more through the vhost-user lane), a progress line every 10 s on stderr, the
 * one-line summary and the fault table (per mode: kind, injected, detected, recovered) on stdout; exit code 1
 * when anything was lost, reordered or corrupted, or a device error went undetected.
 */
import { parseArgs } from "node:util";
import { FAULTS, faultTable, runSoak, summary } from "../test/soak/soak.ts";

const { values } = parseArgs({
  options: {
    frames: { type: "string" },
    seed: { type: "string" },
    sample: { type: "string" },
    "fault-rate": { type: "string" },
    without: { type: "string" },
    "vhost-user-frames": { type: "string" },
  },
  strict: true,
});

function num(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.replace(/_/g, ""));
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`soak: --${name} must be a number >= 0, got ${value}\n`);
    process.exit(2);
  }
  return n;
}

const without = (values.without ?? "").split(",").map((n) => n.trim()).filter((n) => n !== "");
for (const name of without) {
  if (!FAULTS.some((f) => f.name === name)) {
    process.stderr.write(`soak: --without: no fault mode "${name}" (modes: ${FAULTS.map((f) => f.name).join(", ")})\n`);
    process.exit(2);
  }
}

let lastReport = 0;
const result = await runSoak({
  frames: Math.floor(num("frames", values.frames, 100_000_000)),
  seed: num("seed", values.seed, 1),
  sample: Math.max(1, Math.floor(num("sample", values.sample, 64))),
  faultRate: num("fault-rate", values["fault-rate"], 0.01),
  faults: FAULTS.filter((f) => !without.includes(f.name)),
  ...(values["vhost-user-frames"] === undefined ? {} : { vhostUserFrames: Math.floor(num("vhost-user-frames", values["vhost-user-frames"], 0)) }),
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
process.exitCode = result.problems.length === 0 && result.buffersLost === 0 ? 0 : 1;
