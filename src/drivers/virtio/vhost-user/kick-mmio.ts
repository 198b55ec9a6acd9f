/**
 * The "notify register" of a queue over vhost-user: there is no register, the driver signals
 * the queue's kick eventfd instead (vhost-user: SET_VRING_KICK). The queues notify through an
 * Mmio's write16 (virtio-rx-queue.ts, virtio-tx-queue.ts), so this is an Mmio whose 16-bit write
 * at offset 0 adds 1 to the eventfd: one write(2), skipped by the queues whenever the backend set
 * VIRTQ_USED_F_NO_NOTIFY (DPDK's vhost PMD always does). words16 is null: the write must run code.
 */
import type { Mmio } from "../../../pci/mmio.ts";
import type { SharedMmio } from "../../../pci/shared-mmio.ts";
import { write } from "../../../sys/libc.ts";

// The eventfd counter increment, 1 as a native u64, made once: a kick allocates nothing.
const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);

export class KickMmio implements Mmio {
  readonly name: string;
  readonly size = 2;
  readonly words16 = null;
  readonly words32 = null;
  readonly #fd: number;

  /** `fd`: the queue's kick eventfd (the caller owns it and closes it after the queue is gone). */
  constructor(name: string, fd: number) {
    this.name = name;
    this.#fd = fd;
  }

  /** For a worker thread: it writes the same eventfd. */
  share(_offsets: readonly number[]): SharedMmio {
    return { kind: "kick", name: this.name, fd: this.#fd };
  }

  /** The kick. The value (the queue index) has no meaning over vhost-user. */
  write16(_offset: number, _value: number): void {
    // A full counter (2^64 - 2 unread kicks) returns WOULD_BLOCK: the backend is signalled anyway.
    write(this.#fd, ONE, this.name);
  }

  read8(): number {
    return 0;
  }
  read16(): number {
    return 0;
  }
  read32(): number {
    return 0;
  }
  write8(offset: number): void {
    throw new RangeError(`${this.name}: only 16-bit writes (kicks) at offset 0, got an 8-bit write at ${offset}`);
  }
  write32(offset: number): void {
    throw new RangeError(`${this.name}: only 16-bit writes (kicks) at offset 0, got a 32-bit write at ${offset}`);
  }
}
