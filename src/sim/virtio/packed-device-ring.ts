/**
 * The device's side of a packed virtqueue (virtio 1.2 §2.8, VIRTIO_F_RING_PACKED): one ring of
 * descriptors that the driver makes available and the device overwrites with used descriptors,
 * and the two event suppression structures (§2.8.10). Same interface as the split DeviceRing
 * (device-ring.ts), so the network device (virtio-model.ts) runs on either; written from the
 * specification, sharing nothing with the driver.
 *
 * What the device keeps (§2.8.1-2.8.2): the next descriptor it will read and its avail wrap
 * counter, the next slot it will write a used descriptor to and its used wrap counter (both
 * counters start at 1 and flip when the position passes the end of the ring), and the buffer ids
 * it holds, each with the number of descriptors of its list (a used descriptor stands for the
 * whole list and both sides skip that many slots, §2.8.6).
 *
 * Strict, like qemu's virtqueue_packed_pop and more. What qemu treats as fatal (virtio_error():
 * the device is marked broken, sets DEVICE_NEEDS_RESET and stops processing) goes to `fatal`, as
 * on the split ring: a list longer than the ring, a zero-length descriptor ("zero sized buffers
 * are not allowed"), a device-readable descriptor after a device-writable one ("Incorrect order
 * for descriptors"), an indirect descriptor (not negotiated), a buffer id beyond the ring. Recorded
 * as violations only: a buffer id the device still holds, a list that runs into a descriptor the
 * driver has not made available, and event suppression flags the negotiated features do not allow
 * (DESC without VIRTIO_F_RING_EVENT_IDX).
 *
 * Used descriptors are written with write() and become visible with publish(), the first one's
 * flags last, so that the device's fault modes (virtio-model.ts) can return several at once as a
 * split ring's single used.idx store does.
 */
import type { DeviceAddressSpace } from "../address-space.ts";
import { join64 } from "../../mem/u64.ts";
import type { Chain, RingAddresses, Segment } from "./device-ring.ts";
import { DESC_F_INDIRECT, DESC_F_NEXT, DESC_F_WRITE } from "./virtio-spec.ts";

/** §2.8.2 flags of a packed descriptor (bits of le16 flags) and of pvirtq_event_suppress (§2.8.10). */
export const PACKED_DESC_F_AVAIL = 1 << 7;
export const PACKED_DESC_F_USED = 1 << 15;
export const PACKED_EVENT_FLAG_ENABLE = 0;
export const PACKED_EVENT_FLAG_DISABLE = 1;
export const PACKED_EVENT_FLAG_DESC = 2;
/** What the split ring's availFlags reports for "no used-buffer notifications" (VIRTQ_AVAIL_F_NO_INTERRUPT). */
const NO_INTERRUPT = 1;

export class PackedDeviceRing {
  readonly packed = true;
  readonly index: number;
  readonly size: number;
  /** Next descriptor the device reads, and its avail wrap counter (§2.8.1). */
  nextAvail = 0;
  availWrap = 1;
  /** Next slot the device writes a used descriptor to, and its used wrap counter. */
  nextUsed = 0;
  usedWrap = 1;
  readonly #desc32: Uint32Array;
  readonly #desc16: Uint16Array;
  readonly #driver16: Uint16Array;
  readonly #device16: Uint16Array;
  readonly #violation: (message: string) => void;
  readonly #fatal: (message: string) => void;
  readonly #eventIdx: boolean;
  /** Used descriptors written and not yet published: slot, flags (pairs). */
  readonly #unpublished: number[] = [];
  /** Buffer id -> descriptors in its list, for every buffer the device holds. */
  readonly #held = new Map<number, number>();
  /** pop() has taken a list, or reported a slot available for the other wrap counter. */
  #started = false;
  /** What the last pop() took, for unpop(). */
  #lastPop: { readonly id: number; readonly at: number; readonly wrap: number } | null = null;

  /**
   * `at`: desc = the descriptor ring, avail = the driver area, used = the device area (§4.1.4.3:
   * queue_desc, queue_driver, queue_device). `eventIdx`: VIRTIO_F_RING_EVENT_IDX was negotiated.
   */
  constructor(dma: DeviceAddressSpace, device: string, index: number, size: number, at: RingAddresses, violation: (message: string) => void,
    fatal: (message: string) => void = violation, eventIdx = false) {
    this.index = index;
    this.size = size;
    this.#violation = violation;
    this.#fatal = fatal;
    this.#eventIdx = eventIdx;
    // §2.8.10.1 / §2.8.13: descriptors 16-byte aligned, the event suppression structures 4-byte.
    if (at.desc % 16 !== 0 || at.avail % 4 !== 0 || at.used % 4 !== 0) {
      violation(`queue ${index}: misaligned packed ring (desc 0x${at.desc.toString(16)}, driver area 0x${at.avail.toString(16)}, device area 0x${at.used.toString(16)})`);
    }
    const desc = dma.resolve(at.desc, 16 * size, `queue ${index} packed descriptor ring`, device);
    const driver = dma.resolve(at.avail, 4, `queue ${index} driver event suppression`, device);
    const deviceArea = dma.resolve(at.used, 4, `queue ${index} device event suppression`, device);
    this.#desc32 = new Uint32Array(desc.buffer, desc.byteOffset, 4 * size);
    this.#desc16 = new Uint16Array(desc.buffer, desc.byteOffset, 8 * size);
    this.#driver16 = new Uint16Array(driver.buffer, driver.byteOffset, 2);
    this.#device16 = new Uint16Array(deviceArea.buffer, deviceArea.byteOffset, 2);
  }

  /** Position and wrap counter in one number, as vhost-user's ring base: bits 0-14 and bit 15. */
  get lastAvail(): number {
    return this.nextAvail | (this.availWrap << 15);
  }
  set lastAvail(base: number) {
    this.nextAvail = (base & 0x7fff) % this.size;
    this.availWrap = (base >>> 15) & 1;
  }
  /** The used position and wrap counter, encoded as lastAvail. */
  get usedIdx(): number {
    return this.nextUsed | (this.usedWrap << 15);
  }
  set usedIdx(base: number) {
    this.nextUsed = (base & 0x7fff) % this.size;
    this.usedWrap = (base >>> 15) & 1;
  }
  /** The driver has no index to publish on a packed ring: the position up to which it made descriptors available. */
  get availIdx(): number {
    let at = this.nextAvail;
    let wrap = this.availWrap;
    for (let n = 0; n < this.size && this.#isAvailable(at, wrap); n++) {
      if (++at === this.size) {
        at = 0;
        wrap ^= 1;
      }
    }
    return at | (wrap << 15);
  }

  /** NO_INTERRUPT (1) when the driver's event suppression says DISABLE, as avail.flags would (§2.8.10). */
  get availFlags(): number {
    const flags = this.#driver16[1]!;
    if (flags === PACKED_EVENT_FLAG_DESC && !this.#eventIdx) {
      this.#violation(`queue ${this.index}: driver event suppression flags DESC, but VIRTIO_F_RING_EVENT_IDX was not negotiated`);
    } else if (flags > PACKED_EVENT_FLAG_DESC) {
      this.#violation(`queue ${this.index}: driver event suppression flags ${flags} are reserved`);
    }
    return flags === PACKED_EVENT_FLAG_DISABLE ? NO_INTERRUPT : 0;
  }

  /** Buffers (descriptor lists) the driver made available that the device has not taken yet. */
  get pending(): number {
    let at = this.nextAvail;
    let wrap = this.availWrap;
    let lists = 0;
    for (let n = 0; n < this.size && this.#isAvailable(at, wrap); n++) {
      if ((this.#desc16[8 * at + 7]! & DESC_F_NEXT) === 0) lists++;
      if (++at === this.size) {
        at = 0;
        wrap ^= 1;
      }
    }
    return lists;
  }

  /** Buffer ids the device holds now. */
  get held(): number {
    return this.#held.size;
  }

  /** §2.8.1: available in wrap `wrap` when AVAIL equals the wrap counter and USED does not. */
  #isAvailable(at: number, wrap: number): boolean {
    const flags = this.#desc16[8 * at + 7]!;
    const avail = (flags & PACKED_DESC_F_AVAIL) !== 0 ? 1 : 0;
    const used = (flags & PACKED_DESC_F_USED) !== 0 ? 1 : 0;
    return avail === wrap && used !== wrap;
  }

  /** Takes the next available descriptor list (§2.8.6, §2.8.21 from the device's side), or null. */
  pop(): Chain | null {
    const startAt = this.nextAvail;
    const startWrap = this.availWrap;
    if (!this.#isAvailable(startAt, startWrap)) {
      // Before the ring's first list: a slot "available" for the other counter means the two
      // sides started with different wrap counters (a vhost-user base without bit 15, say).
      // Only then: later, the inner descriptors of a list keep the flags of the lap they were
      // written in (the device writes one used descriptor per list), so stale ones are normal.
      if (!this.#started && this.#isAvailable(startAt, startWrap ^ 1)) {
        this.#started = true;
        this.#violation(
          `queue ${this.index}: slot ${startAt} is marked available for wrap counter ${startWrap ^ 1}, but the device's ` +
            `avail wrap counter is ${startWrap} (§2.8.1)`,
        );
      }
      return null;
    }
    const readable: Segment[] = [];
    const writable: Segment[] = [];
    let readableBytes = 0;
    let writableBytes = 0;
    let at = startAt;
    let wrap = startWrap;
    let count = 0;
    let id = 0;
    for (;;) {
      if (count >= this.size) {
        this.#fatal(`queue ${this.index}: descriptor list from slot ${startAt} is longer than the ring's ${this.size}`);
        return null;
      }
      if (count > 0 && !this.#isAvailable(at, wrap)) {
        // The driver must make the list's later descriptors available before (or with) its first.
        this.#violation(`queue ${this.index}: descriptor list from slot ${startAt} continues into slot ${at}, which is not available`);
        return null;
      }
      const addr = join64(this.#desc32[4 * at]!, this.#desc32[4 * at + 1]!);
      const len = this.#desc32[4 * at + 2]!;
      id = this.#desc16[8 * at + 6]!;
      const flags = this.#desc16[8 * at + 7]!;
      count++;
      if (++at === this.size) {
        at = 0;
        wrap ^= 1;
      }
      if ((flags & DESC_F_INDIRECT) !== 0) {
        this.#fatal(`queue ${this.index}: indirect descriptor in slot ${(at + this.size - 1) % this.size}, but VIRTIO_RING_F_INDIRECT_DESC was not negotiated`);
        return null;
      }
      if (len === 0) {
        // qemu virtqueue_map_desc: "virtio: zero sized buffers are not allowed" (virtio_error).
        this.#fatal(`queue ${this.index}: zero-length descriptor in the list from slot ${startAt}`);
        return null;
      }
      if ((flags & DESC_F_WRITE) !== 0) {
        writable.push({ addr, len });
        writableBytes += len;
      } else {
        if (writable.length > 0) {
          // qemu: "Incorrect order for descriptors" (virtio_error).
          this.#fatal(`queue ${this.index}: device-readable descriptor after a device-writable one in the list from slot ${startAt}`);
          return null;
        }
        readable.push({ addr, len });
        readableBytes += len;
      }
      if ((flags & DESC_F_NEXT) === 0) break;
    }
    this.nextAvail = at;
    this.availWrap = wrap;
    // §2.8.6: the buffer id is in the list's last descriptor.
    if (id >= this.size) {
      this.#fatal(`queue ${this.index}: buffer id ${id} beyond the ring's ${this.size} (slot ${startAt})`);
      return null;
    }
    if (this.#held.has(id)) {
      this.#violation(`queue ${this.index}: buffer id ${id} made available again (slot ${startAt}) while the device still holds it`);
      return null;
    }
    this.#held.set(id, count);
    this.#started = true;
    this.#lastPop = { id, at: startAt, wrap: startWrap };
    return { head: id, readable, writable, readableBytes, writableBytes };
  }

  /** Puts the list just popped back (the device could not use it yet). */
  unpop(): void {
    const last = this.#lastPop;
    if (last === null) return;
    this.#held.delete(last.id);
    this.nextAvail = last.at;
    this.availWrap = last.wrap;
    this.#lastPop = null;
  }

  /** §2.8.7-2.8.8: returns buffer `id` to the driver at once (write(), then publish()). */
  push(id: number, len: number): void {
    this.write(id, len);
    this.publish();
  }

  /**
   * Writes a used descriptor for buffer `id` with `len` at the next used slot, flags not yet
   * (publish() writes them: AVAIL = USED = the used wrap counter of that slot), then moves the
   * slot on by the number of descriptors in the buffer's list. An id the device does not hold
   * (only the fault modes write one) moves it on by one.
   */
  write(id: number, len: number): void {
    const count = this.#held.get(id) ?? 1;
    this.#held.delete(id);
    this.#lastPop = null;
    const at = this.nextUsed;
    this.#desc32[4 * at + 2] = len >>> 0;
    this.#desc16[8 * at + 6] = id & 0xffff;
    this.#unpublished.push(at, this.usedWrap !== 0 ? PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED : 0);
    this.#advanceUsed(count);
  }

  #advanceUsed(count: number): void {
    let next = this.nextUsed + count;
    if (next >= this.size) {
      next -= this.size;
      this.usedWrap ^= 1;
    }
    this.nextUsed = next;
  }

  /**
   * Publishes the used descriptors written since the last publication (all but the last `keep`):
   * later ones first, the first one last, so the driver sees them all or none (as one store of a
   * split ring's used.idx).
   */
  publish(keep = 0): void {
    const u = this.#unpublished;
    const n = u.length / 2 - keep;
    if (n <= 0) return;
    for (let k = n - 1; k >= 0; k--) Atomics.store(this.#desc16, 8 * u[2 * k]! + 7, u[2 * k + 1]!);
    u.splice(0, 2 * n);
  }

  /**
   * Fault injection (a split ring's used.idx jumping ahead): the next `n` slots after the used
   * descriptors written are marked used as well, id and length left as the driver wrote them,
   * and the device carries on after them; then everything is published.
   */
  jumpUsed(n: number): void {
    for (let k = 0; k < n; k++) {
      this.#unpublished.push(this.nextUsed, this.usedWrap !== 0 ? PACKED_DESC_F_AVAIL | PACKED_DESC_F_USED : 0);
      this.#advanceUsed(1);
    }
    this.publish();
  }

  /**
   * Fault injection (a split ring's used.idx going back): a packed ring has no index to move
   * back, so the last `n` used descriptors written stay unpublished until the next publication.
   */
  publishBehind(n: number): void {
    this.publish(n);
  }

  /** The buffer ids the driver has made available that the device has not taken yet. */
  availablePending(): number[] {
    const ids: number[] = [];
    let at = this.nextAvail;
    let wrap = this.availWrap;
    for (let n = 0; n < this.size && this.#isAvailable(at, wrap); n++) {
      if ((this.#desc16[8 * at + 7]! & DESC_F_NEXT) === 0) ids.push(this.#desc16[8 * at + 6]!);
      if (++at === this.size) {
        at = 0;
        wrap ^= 1;
      }
    }
    return ids;
  }

  /** §2.8.10: tells the driver whether to send available-buffer notifications. */
  setNoNotify(on: boolean): void {
    this.#device16[0] = 0;
    this.#device16[1] = on ? PACKED_EVENT_FLAG_DISABLE : PACKED_EVENT_FLAG_ENABLE;
  }
}
