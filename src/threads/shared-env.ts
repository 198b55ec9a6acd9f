/**
 * A queue's hot-loop environment (the `env` its factory is compiled with, src/drivers/specialize.ts)
 * as another thread receives it. The env holds three kinds of things:
 *
 * - data: numbers, booleans, typed arrays (the rings in DMA memory, the queue's own state on
 *   SharedArrayBuffers, the buffer table's columns): each crosses as it is or as a SharedView;
 * - the queue's register window: crosses as a SharedMmio that writes only the queue's doorbells;
 * - functions and the per-pool arrays of views (poolWords16 and the like): they belong to the
 *   thread that made them and are left out. The receiving side supplies its own
 *   (queue-pair.ts), and the compiled copy there is the same factory with the same data.
 */
import type { Mmio } from "../pci/mmio.ts";
import { openMmio, shareMmio, type SharedMmio } from "../pci/shared-mmio.ts";
import { openView, shareView, type SharedView } from "./shared-view.ts";

type Entry =
  | { readonly kind: "value"; readonly value: number | boolean | string | null }
  | { readonly kind: "view"; readonly view: SharedView }
  | { readonly kind: "mmio"; readonly mmio: SharedMmio };

export type SharedEnv = Readonly<Record<string, Entry>>;

function isMmio(value: object): value is Mmio {
  return typeof (value as Partial<Mmio>).write32 === "function" && typeof (value as Partial<Mmio>).read32 === "function";
}

/** `env` for another thread; the Mmio in it will write only the registers at `doorbells`. */
export function shareEnv(env: object, owner: string, doorbells: readonly number[]): SharedEnv {
  const out: Record<string, Entry> = {};
  for (const [key, value] of Object.entries(env)) {
    if (typeof value === "function" || Array.isArray(value)) continue;
    if (value === null || typeof value === "number" || typeof value === "boolean" || typeof value === "string") {
      out[key] = { kind: "value", value };
    } else if (ArrayBuffer.isView(value)) {
      out[key] = { kind: "view", view: shareView(value, `${owner} (${key})`) };
    } else if (typeof value === "object" && isMmio(value)) {
      out[key] = { kind: "mmio", mmio: shareMmio(value, doorbells) };
    } else {
      throw new TypeError(`${owner}: env field ${key} (${typeof value}) cannot be handed to another thread`);
    }
  }
  return out;
}

/** This thread's env of a SharedEnv, without the functions and view arrays (the caller adds its own). */
export function openEnv(shared: SharedEnv): Record<string, unknown> {
  const env: Record<string, unknown> = {};
  // One Mmio object for every field that named the same window.
  let mmio: Mmio | null = null;
  for (const [key, entry] of Object.entries(shared)) {
    if (entry.kind === "value") env[key] = entry.value;
    else if (entry.kind === "view") env[key] = openView(entry.view);
    else env[key] = mmio ??= openMmio(entry.mmio);
  }
  return env;
}
