import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { allowedCores, formatCoreList, getAffinity, onlineCores, parseCoreList, pinThread } from "../../src/threads/affinity.ts";
import { gettid } from "../../src/sys/libc.ts";
import { startTsWorker } from "../../src/threads/ts-worker.ts";

const PROBE = new URL("./workers/pin-probe.ts", import.meta.url);

interface Probe {
  before: number[];
  affinity?: number[];
  tid?: number;
  pid?: number;
  threadSelf?: string;
  task?: string;
  error?: { name: string; message: string };
  after?: number[];
}

function probe(cores: unknown): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const worker = startTsWorker(PROBE, { workerData: { cores } });
    worker.once("message", resolve);
    worker.once("error", reject);
  });
}

describe("parseCoreList", () => {
  it("reads single cores, ranges and lists, in the order written", () => {
    expect(parseCoreList("0")).toEqual([0]);
    expect(parseCoreList("0,1")).toEqual([0, 1]);
    expect(parseCoreList("0-3")).toEqual([0, 1, 2, 3]);
    expect(parseCoreList("6, 0-2")).toEqual([6, 0, 1, 2]);
    expect(parseCoreList("5-5")).toEqual([5]);
  });

  it("refuses what is not a core list, naming the option", () => {
    expect(() => parseCoreList("", "--cores")).toThrow(new RangeError('--cores: "" is not a list of cores like "0,1" or "0-3" (it is empty)'));
    expect(() => parseCoreList("0,,1", "--cores")).toThrow(/--cores: "0,,1" is not a list of cores .*"" is neither a core number nor a range/);
    expect(() => parseCoreList("a", "--cores")).toThrow(RangeError);
    expect(() => parseCoreList("-1", "--cores")).toThrow(RangeError);
    expect(() => parseCoreList("1.5", "--cores")).toThrow(RangeError);
    expect(() => parseCoreList("3-1", "--cores")).toThrow(/the range 3-1 runs backwards/);
    expect(() => parseCoreList("0,1,0", "--cores")).toThrow(/core 0 is listed twice/);
    expect(() => parseCoreList("0-1,1-2", "--cores")).toThrow(/core 1 is listed twice/);
    expect(() => parseCoreList("1024", "--cores")).toThrow(/core numbers go up to 1023/);
    expect(() => parseCoreList(3, "--cores")).toThrow(new TypeError('--cores: must be a list of cores like "0,1" or "0-3", got 3'));
  });

  it("writes lists the way Linux does", () => {
    expect(formatCoreList([6, 0, 1, 2, 3])).toBe("0-3,6");
    expect(formatCoreList([1])).toBe("1");
    expect(formatCoreList([0, 2, 4, 5])).toBe("0,2,4-5");
  });
});

describe("pinning threads", () => {
  const online = onlineCores();
  const main = getAffinity();

  it("knows this machine's cores", () => {
    expect(online.length).toBeGreaterThan(0);
    expect(formatCoreList(online)).toBe(readFileSync("/sys/devices/system/cpu/online", "utf8").trim());
    // The calling thread's mask matches what the kernel shows for it.
    const status = readFileSync(`/proc/self/task/${gettid()}/status`, "utf8");
    expect(formatCoreList(main)).toBe(/^Cpus_allowed_list:\s*(\S+)$/m.exec(status)![1]);
    expect(allowedCores().every((c) => online.includes(c))).toBe(true);
    expect(getAffinity()).toEqual(main); // allowedCores() put the mask back
  });

  it("pins a worker thread to each core in turn, and only that thread", async () => {
    for (const core of allowedCores()) {
      const p = await probe([core]);
      expect(p.error).toBeUndefined();
      expect(p.affinity).toEqual([core]);
      expect(p.threadSelf).toBe(String(core));
      expect(p.task).toBe(String(core));
      expect(p.tid).not.toBe(p.pid); // a thread of its own, not the process
    }
    expect(getAffinity()).toEqual(main);
  }, 60_000);

  it("pins a worker thread to a list of cores", async () => {
    const cores = allowedCores();
    const p = await probe(cores);
    expect(p.error).toBeUndefined();
    expect(p.affinity).toEqual(cores);
    expect(p.task).toBe(formatCoreList(cores));
  }, 60_000);

  it("refuses a core that does not exist, and leaves the affinity as it was", async () => {
    const missing = online[online.length - 1]! + 1;
    const p = await probe([missing]);
    expect(p.error).toEqual({
      name: "RangeError",
      message: `pin-probe: core ${missing} does not exist on this machine (online: ${formatCoreList(online)}): pick cores from that list`,
    });
    expect(p.after).toEqual(p.before);
    expect(() => pinThread(1023, "--cores")).toThrow(/--cores: core 1023 does not exist on this machine/);
  }, 60_000);

  it("refuses bad arguments", () => {
    expect(() => pinThread([], "w")).toThrow(new RangeError("w: needs at least one core to pin to"));
    expect(() => pinThread(-1, "w")).toThrow(RangeError);
    expect(() => pinThread(0.5, "w")).toThrow(RangeError);
    expect(() => pinThread(["0"] as never, "w")).toThrow(new TypeError('w: a core must be a number, got the string "0"'));
    expect(() => pinThread("0" as never, "w")).toThrow(TypeError);
    expect(getAffinity()).toEqual(main);
  });
});
