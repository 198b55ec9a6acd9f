// A test thread: pins itself to workerData.cores and reports what it then sees of its own
// affinity three ways (sched_getaffinity, /proc/thread-self/status, /proc/self/task/<tid>/status),
// or the error pinThread() threw.
import { readFileSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { getAffinity, pinThread } from "../../../src/threads/affinity.ts";
import { gettid } from "../../../src/sys/libc.ts";

const cpusAllowed = (status: string) => /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1];
const { cores } = workerData as { cores: unknown };
const before = getAffinity();
try {
  pinThread(cores as number[], "pin-probe");
  const tid = gettid();
  parentPort!.postMessage({
    before,
    affinity: getAffinity(),
    tid,
    pid: process.pid,
    threadSelf: cpusAllowed(readFileSync("/proc/thread-self/status", "utf8")),
    task: cpusAllowed(readFileSync(`/proc/self/task/${tid}/status`, "utf8")),
  });
} catch (e) {
  parentPort!.postMessage({ before, error: { name: (e as Error).constructor.name, message: (e as Error).message }, after: getAffinity() });
}
