/**
 * DeviceOptions.offloads, checked and decided the same way by every driver: for each offload,
 * undefined turns it on where the device offers it, false turns it off, true requires it.
 */
import type { OffloadOptions } from "../device.ts";
import { NotSupportedError } from "../errors.ts";
import { checkBoolean, checkOptionsObject } from "../validate.ts";

const OFFLOAD_NAMES = ["rxChecksum", "txChecksum", "tso"] as const;
export type OffloadName = (typeof OFFLOAD_NAMES)[number];

/** The options object, its type and keys checked (TypeError for a non-object or a non-boolean, RangeError for an unknown key). */
export function checkOffloadOptions(address: string, offloads: unknown): OffloadOptions {
  if (offloads === undefined) return {};
  const o = checkOptionsObject(address, "offloads", offloads as object) as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!(OFFLOAD_NAMES as readonly string[]).includes(key)) {
      throw new RangeError(`${address}: offloads.${key} is no offload; the offloads are ${OFFLOAD_NAMES.join(", ")}`);
    }
    if (o[key] !== undefined) checkBoolean(address, `offloads.${key}`, o[key]);
  }
  return o as OffloadOptions;
}

/**
 * Whether offload `name` is on: what the caller asked (options) against what the device offers
 * (`available`; `why` says why not, e.g. "the device does not offer VIRTIO_NET_F_CSUM").
 */
export function decideOffload(address: string, options: OffloadOptions, name: OffloadName, available: boolean, why: string): boolean {
  const asked = options[name];
  if (asked === false) return false;
  if (!available && asked === true) {
    throw new NotSupportedError(`${address}: offloads.${name} is required but ${why}; open the device without offloads.${name}: true (the driver then does without it)`);
  }
  return available;
}
