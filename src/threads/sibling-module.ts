/**
 * The URL of a module next to the caller's, in the caller's own form: `name.ts` when the caller
 * runs from its TypeScript source (under tsx, in the repository), `name.js` when it runs compiled
 * (dist/, the npm package). Worker and child-process entries use it, so that the same source
 * starts its workers from .ts files in development and from .js files once installed.
 */
export function siblingModule(name: string, callerUrl: string): URL {
  const ext = new URL(callerUrl).pathname.endsWith(".ts") ? ".ts" : ".js";
  return new URL(`./${name}${ext}`, callerUrl);
}

/** Whether a module URL is TypeScript source (needs tsx's loader to run). */
export function isTypeScriptModule(url: URL): boolean {
  return url.pathname.endsWith(".ts");
}
