/**
 * The npm package as a user gets it: `npm pack` (prepack builds dist/), the tarball installed into
 * a fresh project, then used from plain Node (ESM), from a TypeScript consumer compiled with tsc
 * against the shipped .d.ts, and through the bins. Slow (a build and an npm install): one test.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const TSC = join(ROOT, "node_modules/.bin/tsc");
const work = mkdtempSync(join(tmpdir(), "ixy-pack-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const run = (cmd: string, args: string[], cwd: string) =>
  execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 300_000 });

describe("npm package", () => {
  it("packs, installs, imports from .mjs and a tsc consumer, runs the bins", () => {
    run("npm", ["pack", "--pack-destination", work, "--silent"], ROOT);
    const tarball = join(work, readdirSync(work).find((f) => f.endsWith(".tgz"))!);

    // Contents: compiled code, declarations, bins, docs; no tests, CI, sources or testbed.
    const files = run("tar", ["tzf", tarball], work).split("\n").filter(Boolean);
    expect(files).toContain("package/dist/src/index.js");
    expect(files).toContain("package/dist/src/index.d.ts");
    expect(files).toContain("package/dist/examples/fwd.js");
    expect(files).toContain("package/examples/bin/fwd.js");
    expect(files).toContain("package/LICENSE");
    expect(files.filter((f) => /^package\/(test|\.ci|scripts|bench)\//.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);

    const app = join(work, "app");
    run("mkdir", ["-p", app], work);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    run("npm", ["i", tarball, "--no-audit", "--no-fund", "--prefer-offline", "--silent"], app);

    // Plain Node: a device on the simulated 82599, one frame in, one frame out through the driver.
    writeFileSync(
      join(app, "app.mjs"),
      `import { openDevice, SimDma, Ixgbe82599Model, createIxgbeDevice, Mempool } from "ixy.ts";
import { PcapWriter } from "ixy.ts/pcap-writer";
if (typeof openDevice !== "function" || typeof Mempool !== "function" || typeof PcapWriter !== "function") throw new Error("missing exports");
const dma = new SimDma("app");
const model = new Ixgbe82599Model({ dma, address: "sim:app0", mac: Uint8Array.of(2, 0, 0, 0, 0, 1) });
let sent = 0;
model.onTransmit = () => { sent++; };
const dev = createIxgbeDevice(model.pci, dma, {});
const bufs = new Int32Array(32);
let got = 0;
for (let i = 0; i < 1000 && got === 0; i++) { model.inject(new Uint8Array(60).fill(7)); got = dev.rxBatch(0, bufs, 32); }
const out = dev.txBatch(0, bufs, got);
for (let i = 0; i < 1000 && sent === 0; i++) dev.txBatch(0, bufs, 0);
console.log("received", got, "sent", out, "wire", sent, dev.address);
dev.close();
`,
    );
    expect(run("node", ["app.mjs"], app)).toMatch(/received [1-9]\d* sent [1-9]/);

    // CommonJS: require(esm), Node 20.19+ / 22.12+ (docs/package.md).
    writeFileSync(join(app, "app.cjs"), `const m = require("ixy.ts"); console.log(typeof m.openDevice);\n`);
    expect(run("node", ["app.cjs"], app)).toMatch(/^function/);

    // TypeScript consumer: tsc against the shipped declarations, no errors (TS5097 was the bug).
    writeFileSync(
      join(app, "consumer.ts"),
      `import { openDevice, type NicDevice, type DeviceStats, newStats } from "ixy.ts";
const s: DeviceStats = newStats();
const open: (address: string) => NicDevice = (a) => openDevice(a);
console.log(typeof open, s.rxPackets);
`,
    );
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({ compilerOptions: { module: "nodenext", moduleResolution: "nodenext", target: "es2022", strict: true, types: ["node"], typeRoots: [join(ROOT, "node_modules/@types")], outDir: "out" }, files: ["consumer.ts"] }),
    );
    run(TSC, ["-p", "."], app);
    expect(run("node", ["out/consumer.js"], app)).toMatch(/^function 0/);

    // The bins: plain JavaScript, no tsx in this project.
    expect(run("npx", ["--no-install", "ixy-fwd", "--help"], app)).toMatch(/ixy-fwd/);
    const sim = spawnSync("npx", ["--no-install", "ixy-fwd", "--sim", "--seconds", "1"], { cwd: app, encoding: "utf8", timeout: 120_000 });
    expect(sim.stdout + sim.stderr).toMatch(/sim:ixgbe0 total rx [1-9]/);
    expect(sim.status).toBe(0);
  }, 600_000);
});
