/**
 * The device's side of a split virtqueue (virtio 1.2 §2.7): it reads descriptors and the
 * available ring, and writes the used ring — all through its address space's resolve(), so an
 * address the driver never allocated is a DmaFaultError, as it would be a DMAR fault behind a
 * real IOMMU.
 *
 * What qemu treats as fatal (its virtio_error(): the device is marked broken, sets
 * DEVICE_NEEDS_RESET and stops processing) goes to `fatal`; what it tolerates to `violation`.
 */
import type { DeviceAddressSpace } from "../address-space.ts";
import { join64 } from "../../mem/u64.ts";
import { DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE, USED_F_NO_NOTIFY } from "./virtio-spec.ts";

/** One descriptor's buffer: device address and length. */
export interface Segment {
  readonly addr: number;
  readonly len: number;
}

/** A descriptor chain taken from the available ring. */
export interface Chain {
  readonly head: number;
  readonly readable: Segment[];
  readonly writable: Segment[];
  readonly readableBytes: number;
  readonly writableBytes: number;
}

export interface RingAddresses {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
}

export class DeviceRing {
  readonly index: number;
  readonly size: number;
  /** Next available-ring entry the device will take, and the used index it will write next. */
  lastAvail = 0;
  usedIdx = 0;
  /** The used.idx the driver sees (usually usedIdx). */
  published = 0;
  readonly #desc32: Uint32Array;
  readonly #desc16: Uint16Array;
  readonly #avail16: Uint16Array;
  readonly #used16: Uint16Array;
  readonly #used32: Uint32Array;
  readonly #violation: (message: string) => void;
  readonly #fatal: (message: string) => void;

  constructor(dma: DeviceAddressSpace, device: string, index: number, size: number, at: RingAddresses, violation: (message: string) => void,
    fatal: (message: string) => void = violation) {
    this.index = index;
    this.size = size;
    this.#violation = violation;
    this.#fatal = fatal;
    // §2.7: alignment 16 (descriptors), 2 (available ring), 4 (used ring).
    if (at.desc % 16 !== 0 || at.avail % 2 !== 0 || at.used % 4 !== 0) {
      violation(`queue ${index}: misaligned rings (desc 0x${at.desc.toString(16)}, avail 0x${at.avail.toString(16)}, used 0x${at.used.toString(16)})`);
    }
    const desc = dma.resolve(at.desc, 16 * size, `queue ${index} descriptor table`, device);
    const avail = dma.resolve(at.avail, 4 + 2 * size, `queue ${index} available ring`, device);
    const used = dma.resolve(at.used, 4 + 8 * size, `queue ${index} used ring`, device);
    this.#desc32 = new Uint32Array(desc.buffer, desc.byteOffset, 4 * size);
    this.#desc16 = new Uint16Array(desc.buffer, desc.byteOffset, 8 * size);
    this.#avail16 = new Uint16Array(avail.buffer, avail.byteOffset, 2 + size);
    this.#used16 = new Uint16Array(used.buffer, used.byteOffset, 2);
    this.#used32 = new Uint32Array(used.buffer, used.byteOffset, 1 + 2 * size);
  }

  /** Entries the driver made available that the device has not taken yet. */
  get pending(): number {
    const pending = (this.#avail16[1]! - this.lastAvail) & 0xffff;
    if (pending > this.size) {
      // qemu: "Guest moved avail index from %u to %u" (virtio_error).
      this.#fatal(`queue ${this.index}: avail.idx ${this.#avail16[1]} is ${pending} ahead of the device, more than the ring's ${this.size}`);
      return 0;
    }
    return pending;
  }

  /** avail.idx as the driver last published it. */
  get availIdx(): number {
    return this.#avail16[1]!;
  }

  get availFlags(): number {
    return this.#avail16[0]!;
  }

  /** Takes the next available chain (§2.7.13 from the device's side), or null. */
  pop(): Chain | null {
    if (this.pending === 0) return null;
    const head = this.#avail16[2 + (this.lastAvail % this.size)]!;
    this.lastAvail = (this.lastAvail + 1) & 0xffff;
    if (head >= this.size) {
      this.#fatal(`queue ${this.index}: available ring names descriptor ${head}, beyond the ring's ${this.size}`);
      return null;
    }
    const readable: Segment[] = [];
    const writable: Segment[] = [];
    let readableBytes = 0;
    let writableBytes = 0;
    let id = head;
    for (let n = 0; ; n++) {
      if (n >= this.size) {
        this.#fatal(`queue ${this.index}: descriptor chain from ${head} loops or is longer than the ring`);
        return null;
      }
      const addr = join64(this.#desc32[4 * id]!, this.#desc32[4 * id + 1]!);
      const len = this.#desc32[4 * id + 2]!;
      const flags = this.#desc16[8 * id + 6]!;
      const next = this.#desc16[8 * id + 7]!;
      if ((flags & DESC_F_INDIRECT) !== 0) {
        this.#fatal(`queue ${this.index}: indirect descriptor ${id}, but VIRTIO_RING_F_INDIRECT_DESC was not negotiated`);
        return null;
      }
      if (len === 0) {
        // qemu virtqueue_map_desc: "virtio: zero sized buffers are not allowed" (virtio_error).
        this.#fatal(`queue ${this.index}: descriptor ${id} (chain ${head}) has length 0`);
        return null;
      }
      if ((flags & DESC_F_WRITE) !== 0) {
        writable.push({ addr, len });
        writableBytes += len;
      } else {
        // §2.7.5: device-readable descriptors come before device-writable ones.
        // qemu: "Incorrect order for descriptors" (virtio_error).
        if (writable.length > 0) {
          this.#fatal(`queue ${this.index}: readable descriptor ${id} after a writable one`);
          return null;
        }
        readable.push({ addr, len });
        readableBytes += len;
      }
      if ((flags & DESC_F_NEXT) === 0) break;
      if (next >= this.size) {
        this.#fatal(`queue ${this.index}: descriptor ${id} chains to ${next}, beyond the ring's ${this.size}`);
        return null;
      }
      id = next;
    }
    return { head, readable, writable, readableBytes, writableBytes };
  }

  /** Puts the chain just popped back (the device could not use it yet). */
  unpop(): void {
    this.lastAvail = (this.lastAvail - 1) & 0xffff;
  }

  /** §2.7.8: returns a chain to the driver: element first, then the index. */
  push(id: number, len: number): void {
    this.write(id, len);
    this.publish();
  }

  /** Writes the next used element without publishing it (publish() does). */
  write(id: number, len: number): void {
    const slot = this.usedIdx % this.size;
    this.#used32[1 + 2 * slot] = id >>> 0;
    this.#used32[2 + 2 * slot] = len >>> 0;
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
  }

  /** Publishes used.idx: the device's own count, or (fault injection) another value. */
  publish(value = this.usedIdx): void {
    this.published = value & 0xffff;
    this.#used16[1] = this.published;
  }

  /** Fault injection: used.idx runs `n` entries beyond what the device wrote, and the device carries on from there. */
  jumpUsed(n: number): void {
    this.usedIdx = (this.usedIdx + n) & 0xffff;
    this.publish();
  }

  /** Fault injection: publishes a used.idx `n` entries behind the one published last. */
  publishBehind(n: number): void {
    this.publish(this.published - n);
  }

  /** The ids the driver has made available that the device has not taken yet. */
  availablePending(): number[] {
    const ids: number[] = [];
    const pending = (this.#avail16[1]! - this.lastAvail) & 0xffff;
    for (let k = 0; k < pending && k < this.size; k++) ids.push(this.#avail16[2 + ((this.lastAvail + k) % this.size)]!);
    return ids;
  }

  /** §2.7.10: tells the driver whether to send available-buffer notifications. */
  setNoNotify(on: boolean): void {
    this.#used16[0] = on ? USED_F_NO_NOTIFY : 0;
  }
}
