/**
 * Starting a worker_thread whose entry is a TypeScript file. The project runs its .ts files
 * through tsx, but on Node 20 a worker does not inherit the main thread's loader hooks, and
 * `execArgv: ["--import", "tsx"]` registers them too late for the worker's own entry file
 * (ERR_UNKNOWN_FILE_EXTENSION). So the worker starts from a two-line script that registers
 * tsx's loader in the worker (tsx/esm/api register(), as examples/bin/fwd.js does for the
 * process) and then imports the entry. transferList and the rest pass unchanged.
 *
 * The worker also gets this thread's buffer table: its workerData is the caller's object with
 * one more key (BUFFER_TABLE_KEY), from which the worker's src/mem/buffer-table.ts takes the
 * columns instead of making new ones, so that a buffer number means the same buffer in both
 * threads (a queue pair shared with the worker, src/threads/queue-pair.ts, depends on it).
 * The caller's workerData must then be an object (or absent).
 */
import { Worker, type WorkerOptions } from "node:worker_threads";
import { BUFFER_TABLE_KEY, shareBufferTable } from "../mem/buffer-table.ts";
import { isTypeScriptModule } from "./sibling-module.ts";

// Resolved here, where tsx is a dependency (the worker's eval script has no directory of its own),
// and as an import: the CommonJS build's register() resolves its hooks against the caller's
// location, which an eval script does not have.
// Only for a .ts entry: the npm package (compiled, dist/) has no tsx, and resolving it at import
// time would break every importer of the library.
let tsxApi: string | null = null;
function tsxApiUrl(): string {
  tsxApi ??= import.meta.resolve("tsx/esm/api");
  return tsxApi;
}

/**
 * A Worker running the module at `entry` (a file: URL, e.g. new URL("./w.ts", import.meta.url));
 * a .js entry starts as it is.
 */
export function startTsWorker(entry: URL, options: Omit<WorkerOptions, "eval"> = {}): Worker {
  const data = options.workerData;
  if (data !== undefined && (typeof data !== "object" || data === null || Array.isArray(data))) {
    throw new TypeError(`startTsWorker(${entry.href}): workerData must be an object (the buffer table is added to it), got ${typeof data}`);
  }
  const workerData = { ...(data as object | undefined), [BUFFER_TABLE_KEY]: shareBufferTable() };
  // A JavaScript entry (a bundle, say: test/vm/compile.ts) needs no loader.
  if (!isTypeScriptModule(entry)) return new Worker(entry, { ...options, workerData });
  // An eval worker's script is CommonJS, but import() works there.
  const code = `import(${JSON.stringify(tsxApiUrl())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(code, { ...options, workerData, eval: true });
}
