/**
 * Pinning threads to cores. A worker that polls a queue or a ring should stay on one core: its
 * rings, buffers and branch history stay warm in that core's caches, and the scheduler does not
 * move it between cores in the middle of a burst. sched_setaffinity(2) with pid 0 sets the
 * affinity of the calling thread only (each Node worker_thread is its own kernel task), so every
 * worker pins itself, first thing; the main thread is left as it was.
 *
 * Two things can make a core unusable, and each has its own error (RangeError, as for any
 * argument that is not allowed, saying what is):
 *   - it does not exist: not in /sys/devices/system/cpu/online;
 *   - it exists but this process may not use it: its cpuset (a cgroup, a container's --cpuset-cpus)
 *     leaves it out. The kernel does not report that: sched_setaffinity silently drops such cores
 *     from the mask (EINVAL only when none is left), so pinThread() reads the mask back.
 * (taskset does not restrict a process in that sense: it only sets an affinity, which any thread
 * may change again.)
 */
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { SyscallError } from "../errors.ts";
import { CPU_SETSIZE, schedGetaffinity, schedSetaffinity } from "../sys/libc.ts";
import { describeValue } from "../validate.ts";

/**
 * A Linux CPU list ("0-3,6", "0,1", "2") as the cores in it, in the order written (the order
 * matters to `--cores`: worker i gets the i-th core). Duplicates and bad syntax are RangeErrors
 * that name `owner` (the option, say "--cores").
 */
export function parseCoreList(text: unknown, owner = "core list"): number[] {
  if (typeof text !== "string") throw new TypeError(`${owner}: must be a list of cores like "0,1" or "0-3", got ${describeValue(text)}`);
  const cores: number[] = [];
  const bad = (why: string): never => {
    throw new RangeError(`${owner}: ${JSON.stringify(text)} is not a list of cores like "0,1" or "0-3" (${why})`);
  };
  if (text.trim() === "") bad("it is empty");
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) bad(`${JSON.stringify(part)} is neither a core number nor a range`);
    const first = Number(m![1]);
    const last = m![2] === undefined ? first : Number(m![2]);
    if (last < first) bad(`the range ${first}-${last} runs backwards`);
    if (last >= CPU_SETSIZE) bad(`core numbers go up to ${CPU_SETSIZE - 1}`);
    for (let core = first; core <= last; core++) {
      if (cores.includes(core)) bad(`core ${core} is listed twice`);
      cores.push(core);
    }
  }
  return cores;
}

/** A list of cores as Linux writes one: [0, 1, 2, 3, 6] is "0-3,6". */
export function formatCoreList(cores: readonly number[]): string {
  const sorted = [...cores].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

/** The cores that exist and are online (/sys/devices/system/cpu/online), ascending. */
export function onlineCores(): number[] {
  try {
    return parseCoreList(readFileSync("/sys/devices/system/cpu/online", "utf8").trim(), "/sys/devices/system/cpu/online").sort((a, b) => a - b);
  } catch {
    // No sysfs (a sandbox): every core Node counts.
    return Array.from({ length: availableParallelism() }, (_, i) => i);
  }
}

/** The cores the calling thread may run on now (sched_getaffinity of pid 0), ascending. */
export function getAffinity(): number[] {
  return schedGetaffinity("getting the calling thread's CPU affinity");
}

/**
 * The online cores this process's cpuset lets it use: found by asking for all of them and
 * reading back what the kernel kept, then putting the calling thread's affinity back.
 */
export function allowedCores(): number[] {
  const before = getAffinity();
  try {
    schedSetaffinity(onlineCores(), "probing the allowed cores");
    return getAffinity();
  } finally {
    schedSetaffinity(before, "restoring the calling thread's CPU affinity");
  }
}

/**
 * Pins the calling thread (and only it) to `cores`: one core number or a list (the thread then
 * runs on any of them). Throws a RangeError naming the core when one does not exist or this
 * process may not use it, and leaves the affinity unchanged then.
 */
export function pinThread(cores: number | readonly number[], who = "pinThread()"): void {
  const list: readonly unknown[] = typeof cores === "number" ? [cores] : Array.isArray(cores) ? cores : badCores(who, cores);
  if (list.length === 0) throw new RangeError(`${who}: needs at least one core to pin to`);
  const online = onlineCores();
  for (const core of list) {
    if (typeof core !== "number") throw new TypeError(`${who}: a core must be a number, got ${describeValue(core)}`);
    if (!Number.isInteger(core) || core < 0) throw new RangeError(`${who}: a core is an integer from 0, got ${core}`);
    if (!online.includes(core)) {
      throw new RangeError(`${who}: core ${core} does not exist on this machine (online: ${formatCoreList(online)}): pick cores from that list`);
    }
  }
  const wanted = [...new Set(list as number[])].sort((a, b) => a - b);
  const before = getAffinity();
  try {
    schedSetaffinity(wanted, `${who}: pinning to cores ${formatCoreList(wanted)}`);
  } catch (e) {
    // EINVAL: none of the cores is in this process's cpuset.
    if (e instanceof SyscallError && e.code === "EINVAL") throw notAllowed(who, wanted, wanted);
    throw e;
  }
  const got = getAffinity();
  if (got.length !== wanted.length || got.some((core, i) => core !== wanted[i])) {
    schedSetaffinity(before, `${who}: restoring the CPU affinity`);
    throw notAllowed(who, wanted.filter((core) => !got.includes(core)), wanted);
  }
}

function notAllowed(who: string, refused: readonly number[], wanted: readonly number[]): RangeError {
  const allowed = formatCoreList(allowedCores());
  return new RangeError(
    `${who}: this process may not run on core${refused.length === 1 ? "" : "s"} ${formatCoreList(refused)} ` +
      `(asked for ${formatCoreList(wanted)}; its cpuset allows ${allowed}): pick cores from ${allowed}`,
  );
}

function badCores(who: string, cores: unknown): never {
  throw new TypeError(`${who}: cores must be a core number or an array of them, got ${describeValue(cores)}`);
}
