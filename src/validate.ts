/**
 * Argument and option checks for every public entry point off the hot path: device options
 * (both drivers and openDevice), mempool options and ranges, allocator arguments. One module,
 * so that the same mistake gets the same error everywhere:
 *
 *   - a value of the wrong type (a string where a number belongs, null for an options object)
 *     is a TypeError that shows what was passed: `must be a number, got the string "100"`;
 *   - a number that is not allowed (out of range, not an integer where one is needed, not a
 *     power of two) is a RangeError that says what is allowed;
 *   - the message starts with who complains (the device's address, the pool's name) and names
 *     the argument.
 *
 * Batch counts (rxBatch/txBatch, allocBatch/freeBatch) follow the packet API's older rule, kept
 * for compatibility: NaN or a fraction is a TypeError there (docs/packet-api.md).
 *
 * Nothing here is called per packet: the hot loops check with a few comparisons and call in
 * here only to build the error.
 */

/** What `value` is, for "got ..." in an error message. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  switch (typeof value) {
    case "string":
      return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "..." : value)}`;
    case "number":
      return String(value);
    case "bigint":
      return `the bigint ${value}n`;
    case "boolean":
      return `the boolean ${value}`;
    case "function":
      return "a function";
    case "symbol":
      return "a symbol";
    default:
      if (Array.isArray(value)) return "an Array";
      return `an object (${(value as object).constructor?.name ?? "no prototype"})`;
  }
}

/** Throws unless `options` is undefined or an object; returns it, or {} for undefined. */
export function checkOptionsObject<T extends object>(owner: string, what: string, options: T | undefined): T {
  if (options === undefined) return {} as T;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`${owner}: ${what} must be an object (or left out), got ${describeValue(options)}`);
  }
  return options;
}

/** Throws a TypeError unless `value` is a number (any number: the range checks come after). */
function needNumber(owner: string, name: string, value: unknown): number {
  if (typeof value !== "number") throw new TypeError(`${owner}: ${name} must be a number, got ${describeValue(value)}`);
  return value;
}

/** An integer from `min` to `max`: TypeError for a non-number, RangeError otherwise. */
export function checkInteger(owner: string, name: string, value: unknown, min: number, max: number): number {
  const n = needNumber(owner, name, value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new RangeError(`${owner}: ${name} must be an integer from ${min} to ${max}, got ${n}`);
  }
  return n;
}

/** A power of two from `min` to `max`. */
export function checkPowerOfTwo(owner: string, name: string, value: unknown, min: number, max: number): number {
  const n = needNumber(owner, name, value);
  if (!Number.isInteger(n) || n < min || n > max || (n & (n - 1)) !== 0) {
    throw new RangeError(`${owner}: ${name} must be a power of two from ${min} to ${max}, got ${n}`);
  }
  return n;
}

/** A finite number from 0 up (milliseconds, say). */
export function checkNonNegative(owner: string, name: string, value: unknown, unit: string): number {
  const n = needNumber(owner, name, value);
  if (!(n >= 0) || n === Infinity) throw new RangeError(`${owner}: ${name} must be a finite number of ${unit} >= 0, got ${n}`);
  return n;
}

/** undefined or a boolean. */
export function checkBoolean(owner: string, name: string, value: unknown): boolean | undefined {
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(`${owner}: ${name} must be true or false, got ${describeValue(value)}`);
  }
  return value;
}

/** undefined or a string. */
export function checkString(owner: string, name: string, value: unknown): string | undefined {
  if (value !== undefined && typeof value !== "string") {
    throw new TypeError(`${owner}: ${name} must be a string, got ${describeValue(value)}`);
  }
  return value;
}

/** undefined or one of `allowed`. */
export function checkOneOf<T extends string>(owner: string, name: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value !== undefined && !allowed.includes(value as T)) {
    const list = allowed.map((a) => `"${a}"`).join(" or ");
    // A TypeError even for a string: the value is of the wrong kind, not out of a numeric range.
    throw new TypeError(`${owner}: ${name} must be ${list}, got ${describeValue(value)}`);
  }
  return value as T | undefined;
}

/** The option keys of DeviceOptions (src/device.ts) and the type each must have. */
const DEVICE_OPTION_TYPES = {
  rxQueues: "number",
  txQueues: "number",
  rxRingSize: "number",
  txRingSize: "number",
  mempoolSize: "number",
  checked: "boolean",
  linkTimeoutMs: "number",
  hotPath: "string",
  unsafeNoIommu: "boolean",
  flowDirector: "boolean",
  maxFrameSize: "number",
  interrupts: "boolean",
} as const;

/**
 * A receive-side scaling key (DeviceOptions.rssKey): undefined, or a Uint8Array of exactly
 * `size` bytes (the 82599's Toeplitz key is 40). Returns a copy, so that a caller changing its
 * array later does not change what the driver programmed.
 */
export function checkRssKey(owner: string, value: unknown, size: number): Uint8Array | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${owner}: rssKey must be a Uint8Array of ${size} bytes, got ${describeValue(value)}`);
  }
  if (value.length !== size) {
    throw new RangeError(`${owner}: rssKey must have exactly ${size} bytes (the Toeplitz key of this device), got ${value.length}`);
  }
  return Uint8Array.from(value);
}

/**
 * The type checks every driver makes on its DeviceOptions before its own range checks: an
 * options object (or nothing), numbers where numbers belong, booleans where booleans do, and
 * hotPath "specialized" or "shared". Returns the options ({} for undefined).
 */
export function checkDeviceOptionTypes<T extends object>(address: string, options: T | undefined): T {
  const o = checkOptionsObject(address, "the device options", options) as Record<string, unknown>;
  for (const [key, type] of Object.entries(DEVICE_OPTION_TYPES)) {
    const value = o[key];
    if (value === undefined) continue;
    if (type === "number") needNumber(address, key, value);
    else if (type === "boolean") checkBoolean(address, key, value);
  }
  checkOneOf(address, "hotPath", o["hotPath"], ["specialized", "shared"]);
  return o as T;
}

/**
 * Throws the error for a bad (array, count, start) triple of a batch call (allocBatch,
 * freeBatch): TypeError for a non-Int32Array or a count that is no integer, RangeError for a
 * range outside the array.
 */
export function badBatchRange(owner: string, call: string, array: unknown, n: unknown, start: unknown): never {
  if (!(array instanceof Int32Array)) {
    throw new TypeError(`${owner}: ${call}() needs an Int32Array of buffer numbers, got ${describeValue(array)}`);
  }
  if (typeof n !== "number" || !Number.isInteger(n)) {
    throw new TypeError(`${owner}: ${call}() needs an integer count of buffers, got ${describeValue(n)}`);
  }
  if (typeof start !== "number" || !Number.isInteger(start)) {
    throw new TypeError(`${owner}: ${call}() needs an integer start index, got ${describeValue(start)}`);
  }
  throw new RangeError(
    `${owner}: ${call}() of ${n} buffers at ${start} does not fit a batch of ${array.length}: ` +
      `pass a count and start from 0 with start + count <= ${array.length}`,
  );
}
