/** What the vhost-user tests share: small devices, hugepage checks, fd counting. */
import * as fs from "node:fs";
import { HUGEPAGE_SIZE, hugepageCounts } from "../../src/mem/hugepages.ts";
import type { VhostUserOptions } from "../../src/drivers/virtio/vhost-user-device.ts";

/** A device that fits one 2 MiB region: 64-entry rings, 128 receive buffers, no link wait. */
export const SMALL: VhostUserOptions = {
  memoryBytes: HUGEPAGE_SIZE,
  rxRingSize: 64,
  txRingSize: 64,
  mempoolSize: 128,
  linkTimeoutMs: 0,
  checked: true,
};

/** Why tests that map shared memory cannot run here, or null when they can. */
export function hugepagesMissing(pages = 4): string | null {
  const { free, total } = hugepageCounts();
  if (free >= pages) return null;
  return `needs ${pages} free 2 MiB hugepages, HugePages_Free is ${free} of ${total} (echo 128 > /proc/sys/vm/nr_hugepages)`;
}

/** Open file descriptors of this process. */
export function openFds(): number {
  return fs.readdirSync("/proc/self/fd").length;
}

/** The error `f` throws (fails the test if it returns). */
export function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error, but the call returned");
}
