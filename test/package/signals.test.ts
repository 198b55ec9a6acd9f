/**
 * The apps' stop behaviour as a user sees it: SIGINT and SIGTERM end an app with exit 0 and its
 * totals (however many copies of the signal arrive), and an app whose parent is killed with
 * SIGKILL stops on its own (examples/lib/parent-watch.ts) instead of forwarding for nobody.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const APP = ["--import", "tsx", "examples/fwd.ts", "--sim"];

/** Resolves once `child` wrote `pattern` to stderr; collects all it writes. */
function started(child: ChildProcess, pattern: RegExp, out: { text: string }): Promise<void> {
  return new Promise((done, fail) => {
    child.stderr!.on("data", (d: Buffer) => {
      out.text += d.toString();
      if (pattern.test(out.text)) done();
    });
    child.on("exit", () => fail(new Error(`exited before ${pattern}: ${out.text}`)));
  });
}

const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; signal: string | null }>((done) => child.on("exit", (code, signal) => done({ code, signal })));

/** Running (a zombie waiting for init to reap it counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

describe("stop signals", () => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`${signal}: exit 0 with totals, also when the signal arrives three times (process group + relays)`, async () => {
      const child = spawn(process.execPath, APP, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      const out = { text: "" };
      child.stdout!.on("data", (d: Buffer) => (out.text += d.toString()));
      const end = exited(child);
      await started(child, /forwarding/, out);
      await new Promise((r) => setTimeout(r, 1500));
      child.kill(signal);
      child.kill(signal);
      setTimeout(() => child.kill(signal), 20);
      const { code, signal: killedBy } = await end;
      expect(killedBy).toBeNull();
      expect(code).toBe(0);
      expect(out.text).toMatch(/sim:ixgbe0 total rx [1-9]/);
    }, 90_000);
  }

  it("an app whose parent is killed with SIGKILL stops within a few seconds", async () => {
    // parent (node) -> sh -c -> app: the shape of `npx ixy-fwd`, where the sh survives npm.
    const script = `const c = require("node:child_process").spawn("sh", ["-c", ${JSON.stringify(`${process.execPath} ${APP.join(" ")}; true`)}], { stdio: ["ignore", "ignore", "inherit"] }); console.log(c.pid);`;
    const parent = spawn(process.execPath, ["-e", script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    const out = { text: "" };
    await started(parent, /forwarding/, out);
    const appPid = Number(execPgrep(parent.pid!));
    expect(alive(appPid)).toBe(true);
    parent.kill("SIGKILL");
    const deadline = Date.now() + 15_000;
    while (alive(appPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(alive(appPid)).toBe(false);
  }, 90_000);
});

/** The app: the node grandchild of `parentPid` (parent -> sh -> node). */
function execPgrep(parentPid: number): string {
  const sh = execFileSync("pgrep", ["-P", String(parentPid)], { encoding: "utf8" }).trim().split("\n")[0]!;
  return execFileSync("pgrep", ["-P", sh], { encoding: "utf8" }).trim().split("\n")[0]!;
}
