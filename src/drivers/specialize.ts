/**
 * One compiled copy of a hot loop per queue.
 *
 * Each queue's receive and transmit loops are written once, as a factory: a plain TypeScript
 * function that takes the queue's rings, tables and constants (its "env") and returns the loop as
 * a closure over them. Called directly, every queue's loop would be a closure of the same
 * function literal — and that costs half the speed:
 *
 *   TurboFan (V8's optimizing compiler) treats the variables a closure captures as constants —
 *   the typed arrays' base addresses and lengths embedded in the machine code, bounds checks
 *   against known lengths, no reloads — only while that function literal has produced exactly
 *   one closure ("function context specialization"). A second queue makes a second closure of
 *   the same literal, and from then on both are compiled generically: every typed-array access
 *   re-checks the array's map, reloads its length and base pointer, and the loop spills
 *   registers. Measured on the ixgbe receive loop: about 200 x86 instructions per descriptor
 *   generic, about 85 specialized (gcc: 25). See docs/performance.md.
 *
 * So specialize() compiles the factory's source again for every queue, with `new Function`: a
 * new function literal each time, so each queue's closure is the only one of its kind and gets
 * its own specialized code. The source is the factory itself (Function.prototype.toString), so
 * what runs is exactly what a reader sees in the driver's file; the factories take everything
 * they use through `env` and refer to nothing else in their module, because the copy is compiled
 * outside it. A `//# sourceURL` names each copy in stack traces and profiles ("ixgbe
 * 0000:01:00.0 RX 0").
 *
 * The switch: IXY_HOT_PATH=shared in the environment (or DeviceOptions.hotPath: "shared") calls
 * the factories directly instead — slower, but breakpoints and source maps work in the loops.
 */

/** "specialized": a compiled copy per queue (the default); "shared": the factory called directly. */
export const HotPathMode = { specialized: "specialized", shared: "shared" } as const;
export type HotPathMode = (typeof HotPathMode)[keyof typeof HotPathMode];

/** The mode set by the environment: IXY_HOT_PATH=shared turns specialization off. */
export function defaultHotPathMode(): HotPathMode {
  return process.env["IXY_HOT_PATH"] === HotPathMode.shared ? HotPathMode.shared : HotPathMode.specialized;
}

/**
 * Some TypeScript transforms (esbuild with keepNames, which tsx uses) wrap named functions in
 * a call to a module-level helper `__name(fn, "name")` that only attaches the name. The copy is
 * compiled outside that module, so it gets a stand-in.
 */
function keepName<T>(fn: T): T {
  return fn;
}

let copies = 0;

/** Returns factory(env), compiled afresh for this caller unless `mode` is "shared". */
export function specialize<E, T>(factory: (env: E) => T, env: E, label: string, mode: HotPathMode = defaultHotPathMode()): T {
  if (mode === HotPathMode.shared) return factory(env);
  const source = factory.toString();
  // The counter makes every copy's source unique, so that V8's cache of compiled eval code
  // cannot hand two queues the same function literal.
  const url = `ixy-hot-path/${label.replace(/[^\w.:-]+/g, "_")}/${++copies}`;
  const compile = new Function("__name", `"use strict";\nreturn (${source});\n//# sourceURL=${url}`) as (
    name: typeof keepName,
  ) => (env: E) => T;
  return compile(keepName)(env);
}
