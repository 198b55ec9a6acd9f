/**
 * The asynchronous eventfd wait (src/irq): it resolves on a signal, times out, leaves the event
 * loop running, is ended by close(), and shares one threadpool thread among any number of waits.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { InterruptWait } from "../../src/irq/interrupt-wait.ts";
import { irqPoller } from "../../src/irq/irq-poller.ts";
import { createEventFd, eventfdRead, eventfdWrite } from "../../src/sys/eventfd.ts";
import { close } from "../../src/sys/libc.ts";

const fds: number[] = [];
function newFd(): number {
  const fd = createEventFd("test");
  fds.push(fd);
  return fd;
}
afterEach(() => {
  for (const fd of fds.splice(0)) close(fd);
});

describe("InterruptWait", () => {
  it("resolves true when the eventfd is signalled, and reads its counter back to 0", async () => {
    const fd = newFd();
    const w = new InterruptWait(fd, "test irq");
    const t0 = performance.now();
    setTimeout(() => eventfdWrite(fd, 3), 30);
    expect(await w.wait(5000)).toBe(true);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(25);
    expect(took).toBeLessThan(4000);
    expect(eventfdRead(fd)).toBe(0);
    expect(irqPoller().pending).toBe(0);
  });

  it("resolves true at once for a signal that came before the wait (none is lost)", async () => {
    const fd = newFd();
    eventfdWrite(fd);
    const parks = irqPoller().parks;
    expect(await new InterruptWait(fd, "test irq").wait(5000)).toBe(true);
    expect(irqPoller().parks).toBe(parks); // no threadpool call
  });

  it("resolves false after the timeout", async () => {
    const w = new InterruptWait(newFd(), "test irq");
    const t0 = performance.now();
    expect(await w.wait(60)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(55);
    expect(await w.wait(0)).toBe(false);
  });

  it("keeps the event loop running: a timer ticks during a wait", async () => {
    const w = new InterruptWait(newFd(), "test irq");
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      expect(await w.wait(300)).toBe(false);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThanOrEqual(10);
  });

  it("close() ends a parked wait at once (false), and later waits resolve false", async () => {
    const w = new InterruptWait(newFd(), "test irq");
    const t0 = performance.now();
    const p = w.wait(20_000);
    setTimeout(() => w.close(), 20);
    expect(await p).toBe(false);
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(w.waiting).toBe(false);
    expect(await w.wait(20_000)).toBe(false);
    // The pool thread was handed back: nothing is parked for a wait that is gone.
    await new Promise((r) => setTimeout(r, 50));
    expect(irqPoller().parked).toBe(false);
  });

  it("refuses a second wait on the same interrupt while one is parked", async () => {
    const w = new InterruptWait(newFd(), "rx queue 3 irq");
    const p = w.wait(5000);
    await expect(w.wait(10)).rejects.toThrow(/rx queue 3 irq: a wait is already pending/);
    w.close();
    expect(await p).toBe(false);
  });

  it("a shorter wait that starts while a longer one is parked still times out on time", async () => {
    const long = new InterruptWait(newFd(), "long");
    const shortFd = newFd();
    const short = new InterruptWait(shortFd, "short");
    const pLong = long.wait(20_000);
    await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    expect(await short.wait(50)).toBe(false);
    expect(performance.now() - t0).toBeLessThan(2000);
    // and a signal on one wakes that one only
    const pShort = short.wait(20_000);
    eventfdWrite(shortFd);
    expect(await pShort).toBe(true);
    expect(long.waiting).toBe(true);
    long.close();
    expect(await pLong).toBe(false);
  });

  it("many parked waits hold one threadpool thread: file reads still complete, each wait wakes on its own signal", async () => {
    // With one threadpool call per wait, 64 waits would take every thread of the pool (4 by
    // default, UV_THREADPOOL_SIZE) and the readFile below would hang until they timed out.
    const n = 64;
    const waitFds = Array.from({ length: n }, () => newFd());
    const waits = waitFds.map((fd, i) => new InterruptWait(fd, `irq ${i}`));
    const results = waits.map((w) => w.wait(20_000));
    await new Promise((r) => setTimeout(r, 20));
    expect(irqPoller().pending).toBe(n);
    const t0 = performance.now();
    const text = await fs.promises.readFile(new URL(import.meta.url), "utf8");
    expect(text).toContain("many parked waits");
    expect(performance.now() - t0).toBeLessThan(5000);
    for (let i = 0; i < n; i += 2) eventfdWrite(waitFds[i]!);
    for (let i = 0; i < n; i += 2) expect(await results[i]).toBe(true);
    for (let i = 1; i < n; i += 2) expect(waits[i]!.waiting).toBe(true);
    for (const w of waits) w.close();
    for (let i = 1; i < n; i += 2) expect(await results[i]).toBe(false);
  });
});

describe("process exit with a parked wait", () => {
  const poller = new URL("../../src/irq/interrupt-wait.ts", import.meta.url).pathname;
  const eventfd = new URL("../../src/sys/eventfd.ts", import.meta.url).pathname;
  function runChild(body: string): Promise<{ code: number | null; ms: number; out: string }> {
    const script = `
      import { InterruptWait } from ${JSON.stringify(poller)};
      import { createEventFd } from ${JSON.stringify(eventfd)};
      const w = new InterruptWait(createEventFd(), "child irq");
      ${body}`;
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        cwd: new URL("../..", import.meta.url).pathname,
        stdio: ["ignore", "pipe", "ignore"],
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const killer = setTimeout(() => child.kill("SIGKILL"), 25_000);
      child.on("error", reject);
      child.on("exit", (code) => {
        clearTimeout(killer);
        resolve({ code, ms: performance.now() - t0 - startup, out });
      });
    });
  }
  // tsx's start-up is part of the measured time; the waits are 60 s, so "prompt" has room.
  const startup = 0;

  it("process.exit() during a 60 s wait ends the process at once", async () => {
    const r = await runChild(`
      w.wait(60_000).then((v) => console.log("resolved", v));
      setTimeout(() => { console.log("exiting"); process.exit(7); }, 200);`);
    expect(r.out).toContain("exiting");
    expect(r.code).toBe(7);
    expect(r.ms).toBeLessThan(20_000);
  });

  it("an uncaught exception during a 60 s wait ends the process at once", async () => {
    const r = await runChild(`
      w.wait(60_000);
      setTimeout(() => { throw new Error("boom"); }, 200);`);
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(20_000);
  });

  it("close() lets the process end on its own (nothing else keeps it alive)", async () => {
    const r = await runChild(`
      w.wait(60_000).then((v) => console.log("resolved", v));
      setTimeout(() => w.close(), 200);`);
    expect(r.out).toContain("resolved false");
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(20_000);
  });
});
