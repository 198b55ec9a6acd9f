/**
 * Starting a worker_thread whose entry is a TypeScript file. The project runs its .ts files
 * through tsx, but on Node 20 a worker does not inherit the main thread's loader hooks, and
 * `execArgv: ["--import", "tsx"]` registers them too late for the worker's own entry file
 * (ERR_UNKNOWN_FILE_EXTENSION). So the worker starts from a two-line script that registers
 * tsx's loader in the worker (tsx/esm/api register(), as examples/bin/fwd.js does for the
 * process) and then imports the entry. workerData, transferList and the rest pass unchanged.
 */
import { Worker, type WorkerOptions } from "node:worker_threads";

// Resolved here, where tsx is a dependency (the worker's eval script has no directory of its own),
// and as an import: the CommonJS build's register() resolves its hooks against the caller's
// location, which an eval script does not have.
const TSX_API = import.meta.resolve("tsx/esm/api");

/** A Worker running the TypeScript module at `entry` (a file: URL, e.g. new URL("./w.ts", import.meta.url)). */
export function startTsWorker(entry: URL, options: Omit<WorkerOptions, "eval"> = {}): Worker {
  // An eval worker's script is CommonJS, but import() works there.
  const code = `import(${JSON.stringify(TSX_API)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(code, { ...options, eval: true });
}
