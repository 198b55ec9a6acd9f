/** A command line the app cannot run with: runMain prints the message (one line, the usage) and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}
