/**
 * The apps' command lines as a user meets them (child processes through tsx): --help, usage
 * errors (exit 2, one line and the usage, no stack trace), port arguments, the device options,
 * and the scripts' options. formatHelp/parse themselves in-process.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { COMMON_OPTIONS, DEVICE_OPTIONS, formatHelp, HelpRequested, parse, parseScript, UsageError, type CommandSpec, type OptionSpecs } from "../../examples/lib/cli.ts";

const root = new URL("../..", import.meta.url).pathname;
const APPS = ["fwd", "pktgen", "pcap", "pipeline"] as const;

function run(args: string[], timeout = 90_000) {
  return spawnSync(process.execPath, ["--import", "tsx", ...args], { cwd: root, encoding: "utf8", timeout });
}

/** The flags a --help lists, with whether each takes a value: "  -h, --help" / "  --batch N". */
function helpFlags(help: string): { name: string; takesValue: boolean }[] {
  return [...help.matchAll(/^ {2}(?:-\w, )?--([\w-]+)( \S+)?$/gm)].map((m) => ({ name: m[1]!, takesValue: m[2] !== undefined }));
}

function noStack(stderr: string) {
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe.each(APPS)("ixy-%s --help", (app) => {
  it("exits 0 with the installed name first, 80 columns, and every flag it lists is accepted", { timeout: 180_000 }, () => {
    const r = run([`examples/${app}.ts`, "--help"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.startsWith(`ixy-${app}: `)).toBe(true);
    expect(r.stdout).toMatch(new RegExp(`^usage:\\n  ixy-${app} `, "m"));
    for (const line of r.stdout.split("\n")) expect(line.length, line).toBeLessThanOrEqual(80);
    const flags = helpFlags(r.stdout);
    for (const name of [...Object.keys(DEVICE_OPTIONS), ...Object.keys(COMMON_OPTIONS)]) expect(flags.map((f) => f.name)).toContain(name);
    // Every listed flag at once, then --help: the parser knows them all, or it exits 2.
    const args = flags.filter((f) => f.name !== "help").flatMap((f) => (f.takesValue ? [`--${f.name}`, "1"] : [`--${f.name}`]));
    const all = run([`examples/${app}.ts`, ...args, "--help"]);
    expect(all.status, all.stderr).toBe(0);
    expect(all.stdout).toBe(r.stdout);
  });
});

describe("usage errors exit 2 with one line and the usage", () => {
  it("an unknown option", () => {
    const r = run(["examples/fwd.ts", "--sim", "--bogus"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("ixy-fwd: Unknown option '--bogus'\nusage: ixy-fwd <port-a> <port-b> [options]  (ixy-fwd --help lists the options)\n");
  });

  it("--sim with ports", () => {
    for (const args of [["examples/fwd.ts", "--sim", "0000:01:00.0", "0000:01:00.1"], ["examples/pipeline.ts", "--sim", "0000:01:00.0"], ["examples/pcap.ts", "--sim", "0000:01:00.0", "/tmp/x.pcap"]]) {
      const r = run(args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^ixy-\w+: --sim runs on device models: give no ports \(got 0000:01:00\.0.*\)\nusage: /);
    }
  });

  it("a malformed PCI address, named, before any device is touched", () => {
    const r = run(["examples/fwd.ts", "0000:01:00.0", "01:00:0"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^ixy-fwd: port "01:00:0": not a PCI address: expected domain:bus:device\.function like 0000:01:00\.0 \(ixy-devbind --status lists them\)\nusage: /);
    noStack(r.stderr);
    expect(run(["examples/pipeline.ts", "0000:01:20.0"]).stderr).toMatch(/^ixy-pipeline: port "0000:01:20\.0": .*device number must be 00 to 1f/);
    // pktgen checks its port and --rx-port with checkPortAddresses before opening either.
    const g = run(["examples/pktgen.ts", "bus:01"]);
    expect(g.status).toBe(2);
    expect(g.stderr).toMatch(/port "bus:01": not a PCI address/);
    noStack(g.stderr);
  });

  it("device options with bad values", () => {
    expect(run(["examples/fwd.ts", "--sim", "--rx-ring", "100"]).stderr).toBe("--rx-ring must be a power of two, got 100\n");
    const r = run(["examples/pcap.ts", "--sim", "/tmp/x.pcap", "--link-timeout", "soon"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("--link-timeout must be an integer from 0 to 86400000, got soon\n");
  });
});

describe("device options reach the driver", () => {
  it("--rx-ring and --mempool: the driver checks them against each other", () => {
    const r = run(["examples/fwd.ts", "--sim", "--rx-ring", "1024", "--mempool", "1000", "--seconds", "1"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: RangeError: sim:ixgbe0: mempoolSize must be an integer larger than rxRingSize \(1024\)/);
  });

  it("a run with smaller rings and pools forwards", { timeout: 120_000 }, () => {
    const r = run(["examples/fwd.ts", "--sim", "--rx-ring", "128", "--tx-ring", "64", "--mempool", "512", "--link-timeout", "0", "--seconds", "1"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/simulated wire of sim:ixgbe1: offered \d+, taken by the NIC \d+, transmitted [1-9]\d*/);
  });
});

describe("the scripts' options", () => {
  it("npm run demo -- --rate abc fails at once, before building the testbed", () => {
    const started = Date.now();
    const r = run(["scripts/demo.ts", "--rate", "abc"], 30_000);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("--rate must be an integer from 1 to 1000000, got abc\n");
    expect(r.stdout).not.toMatch(/building the testbed/);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it("test/vm/traffic.ts --rate abc: exit 2, one line and the usage, no stack trace", () => {
    const r = run(["test/vm/traffic.ts", "--rate", "abc"], 30_000);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("traffic: --rate needs a number\nusage: tsx test/vm/traffic.ts [options]\n");
  });

  it("npm run soak --: bad values and unknown options exit 2; --help lists the options", () => {
    expect(run(["scripts/soak.ts", "--frames", "1.5"]).status).toBe(2);
    expect(run(["scripts/soak.ts", "--fault-rate", "2"]).stderr).toBe("--fault-rate must be a number from 0 to 1, got 2\n");
    const r = run(["scripts/soak.ts", "--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout.startsWith("npm run soak --: ")).toBe(true);
    expect(helpFlags(r.stdout).map((f) => f.name)).toEqual(["frames", "seed", "sample", "fault-rate", "without", "vhost-user-frames", "help"]);
  });
});

describe("formatHelp and parse", () => {
  const spec = {
    name: "ixy-test",
    summary: "a test command",
    usage: ["<port> [options]"],
    options: {
      count: { type: "string", arg: "N", help: "stop after N frames (0: no limit)", default: "0", unit: "frames" },
      cores: { type: "string", arg: "LIST", help: "cores", default: "the CPUs near the port", unit: "cores" },
      quiet: { type: "boolean", help: "say nothing" },
    },
  } as const satisfies CommandSpec<OptionSpecs>;

  it("lists every option parse accepts, with default and unit (the unit only after a number)", () => {
    const help = formatHelp(spec);
    for (const name of [...Object.keys(spec.options), ...Object.keys(DEVICE_OPTIONS), ...Object.keys(COMMON_OPTIONS)]) {
      expect(help).toMatch(new RegExp(`^ {2}(-\\w, )?--${name}\\b`, "m"));
      // and parse takes it
      const o = { ...spec.options, ...DEVICE_OPTIONS, ...COMMON_OPTIONS }[name]!;
      expect(() => parse(spec, o.type === "string" ? [`--${name}`, "1", "--help"] : [`--${name}`, "--help"])).toThrow(HelpRequested);
    }
    expect(help).toContain("stop after N frames (0: no limit) [default: 0 frames]");
    expect(help).toContain("cores [default: the CPUs near the port]");
  });

  it("parse returns the device options as DeviceOptions, only those given", () => {
    expect(parse(spec, ["x"]).device).toEqual({});
    expect(parse(spec, ["x", "--rx-ring", "256", "--tx-ring", "128", "--mempool", "2048", "--link-timeout", "0"]).device).toEqual({
      rxRingSize: 256, txRingSize: 128, mempoolSize: 2048, linkTimeoutMs: 0,
    });
    expect(() => parse(spec, ["--mempool", "0"])).toThrow(UsageError);
  });

  it("parseScript takes no positionals and none of the examples' options", () => {
    expect(() => parseScript(spec, ["extra"])).toThrow(/ixy-test: Unexpected argument 'extra'/);
    expect(() => parseScript(spec, ["--sim"])).toThrow(/Unknown option '--sim'/);
    expect(parseScript(spec, ["--count", "3"])).toEqual({ count: "3" });
  });
});
