/**
 * Handing a queue's doorbell to another thread. A worker that drives a queue writes one or two
 * registers: the ring's tail (ixgbe RDT/TDT) or its notify register (virtio). How another thread
 * reaches them depends on what the register window is:
 *
 * - a mapped BAR (VFIO mmap, or shared memory standing in for one): the worker makes its own
 *   view of the same memory and stores into it, as the thread that opened the device would;
 * - a file-descriptor window (pread/pwrite: VFIO I/O-port BARs, a legacy virtio device): the
 *   descriptor is the process's, so the worker does the same pwrite;
 * - a vhost-user kick eventfd: the worker writes the same eventfd;
 * - a device model's register file (SimMmio): the model is JavaScript of the thread that made it
 *   and cannot run in another thread. The worker's writes are posted to a mailbox in shared
 *   memory, and the model's thread applies them (deliverPostedWrites) as register writes, in the
 *   order of each register's last value: a PCI posted write, which real devices also see some
 *   time after the CPU issued it. A register that is written again before delivery delivers only
 *   its newest value, which is harmless for a tail (the newest tail covers the older ones) and
 *   for a notify register (one notification covers all before it).
 *
 * Reads are refused in a worker: every register read a driver does (status, statistics) stays
 * in the thread that opened the device.
 */
import { IxyError } from "../errors.ts";
import { KickMmio } from "../drivers/virtio/vhost-user/kick-mmio.ts";
import { openView, type SharedView } from "../threads/shared-view.ts";
import { checkAccess, TypedArrayMmio, type Mmio } from "./mmio.ts";
import { PreadMmio } from "./pread-mmio.ts";

export type SharedMmio =
  | { readonly kind: "memory"; readonly name: string; readonly bytes: SharedView }
  | { readonly kind: "fd"; readonly name: string; readonly fd: number; readonly base: number; readonly size: number }
  | { readonly kind: "kick"; readonly name: string; readonly fd: number }
  | { readonly kind: "posted"; readonly name: string; readonly size: number; readonly offsets: readonly number[]; readonly mailbox: Int32Array };

/** An Mmio that can be handed to another thread. */
export interface ShareableMmio extends Mmio {
  /** The window for another thread that writes only the registers at `offsets`. */
  share(offsets: readonly number[]): SharedMmio;
}

function isShareableMmio(mmio: Mmio): mmio is ShareableMmio {
  return typeof (mmio as Partial<ShareableMmio>).share === "function";
}

/** `mmio` for a worker that writes the registers at `offsets`; throws for a window that cannot be shared. */
export function shareMmio(mmio: Mmio, offsets: readonly number[]): SharedMmio {
  if (!isShareableMmio(mmio)) {
    throw new IxyError(`${mmio.name}: this register window (${mmio.constructor.name}) cannot be handed to a worker thread`);
  }
  return mmio.share(offsets);
}

/** This thread's window of a SharedMmio. */
export function openMmio(shared: SharedMmio): Mmio {
  switch (shared.kind) {
    case "memory": {
      const bytes = openView(shared.bytes) as Uint8Array;
      return new TypedArrayMmio(shared.name, bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length);
    }
    case "fd":
      return new PreadMmio(shared.name, shared.fd, shared.base, shared.size);
    case "kick":
      // The same eventfd, written by the same class as the driver's (a kick allocates nothing).
      return new KickMmio(shared.name, shared.fd);
    case "posted":
      return new PostedMmio(shared);
  }
}

/** Mailbox slot layout: per posted register, [writes so far, last value, width]. */
const SLOT = 3;

/** A device model's register file as a worker sees it: writes go to the mailbox. */
class PostedMmio implements Mmio {
  readonly name: string;
  readonly size: number;
  readonly words16 = null;
  readonly words32 = null;
  readonly #slots = new Map<number, number>();
  readonly #mailbox: Int32Array;

  constructor(shared: Extract<SharedMmio, { kind: "posted" }>) {
    this.name = shared.name;
    this.size = shared.size;
    this.#mailbox = shared.mailbox;
    shared.offsets.forEach((offset, i) => this.#slots.set(offset, i * SLOT));
  }

  #post(offset: number, value: number, width: number): void {
    const at = this.#slots.get(offset);
    if (at === undefined) refuseWrite(this.name, offset);
    checkAccess(this, offset, width);
    const m = this.#mailbox;
    Atomics.store(m, at + 1, value | 0);
    Atomics.store(m, at + 2, width);
    // Last: the model's thread delivers a slot when it sees the count change, and the value and
    // width stored above happen-before its loads (Atomics are sequentially consistent).
    Atomics.add(m, at, 1);
  }

  write16(offset: number, value: number): void { this.#post(offset, value & 0xffff, 2); }
  write32(offset: number, value: number): void { this.#post(offset, value, 4); }
  write8(offset: number): void { refuseWrite(this.name, offset); }
  read8(): number { return refuseRead(this.name); }
  read16(): number { return refuseRead(this.name); }
  read32(): number { return refuseRead(this.name); }
}

/**
 * The model side of a mailbox: the thread that owns the register file calls deliver() to apply
 * what the worker posted, through the register file's own write hooks.
 */
export class PostedWrites {
  readonly mailbox: Int32Array;
  readonly #offsets: readonly number[];
  readonly #seen: Int32Array;
  readonly #target: Mmio;

  constructor(target: Mmio, offsets: readonly number[]) {
    for (const o of offsets) checkAccess(target, o, 2);
    this.#target = target;
    this.#offsets = offsets.slice();
    this.mailbox = new Int32Array(new SharedArrayBuffer(offsets.length * SLOT * 4));
    this.#seen = new Int32Array(offsets.length);
  }

  /** Applies every register write posted since the last call; returns how many registers changed. */
  deliver(): number {
    const m = this.mailbox;
    let delivered = 0;
    for (let i = 0; i < this.#offsets.length; i++) {
      const count = Atomics.load(m, i * SLOT);
      if (count === this.#seen[i]) continue;
      this.#seen[i] = count;
      const value = Atomics.load(m, i * SLOT + 1);
      if (Atomics.load(m, i * SLOT + 2) === 2) this.#target.write16(this.#offsets[i]!, value & 0xffff);
      else this.#target.write32(this.#offsets[i]!, value >>> 0);
      delivered++;
    }
    return delivered;
  }
}

function refuseRead(name: string): never {
  throw new IxyError(`${name}: register reads are made by the thread that opened the device, not by a worker thread`);
}

function refuseWrite(name: string, offset: number): never {
  throw new IxyError(
    `${name}: a worker thread writes only its queues' doorbells; offset 0x${offset.toString(16)} is none of them`,
  );
}
