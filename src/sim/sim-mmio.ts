/**
 * SimMmio: a register file for device models. Plain registers behave like memory; a model
 * attaches hooks to the registers that do something — a self-clearing reset bit, a
 * clear-on-read counter, a doorbell that makes the model process a ring.
 *
 * Hooks see the access width, so a model can also refuse accesses of the wrong width, as real
 * hardware (and qemu) does.
 */
import { checkAccess, type Mmio } from "../pci/mmio.ts";
import { PostedWrites, type SharedMmio } from "../pci/shared-mmio.ts";

/**
 * Every mailbox of a register file handed to a worker in this thread (see deliverPostedWrites),
 * held weakly: the register file holds its own mailboxes, so they live as long as the model,
 * and a model nobody uses any more takes its mailboxes with it.
 */
const mailboxes: WeakRef<PostedWrites>[] = [];

/**
 * Applies the register writes that worker threads posted to the models' register files of this
 * thread (src/pci/shared-mmio.ts): the thread that runs a model calls it in its loop, as a real
 * device sees the CPU's posted writes some time after they were issued. Returns how many
 * registers it wrote.
 */
export function deliverPostedWrites(): number {
  let n = 0;
  for (let i = 0; i < mailboxes.length; i++) {
    const posted = mailboxes[i]!.deref();
    if (posted !== undefined) n += posted.deliver();
    else mailboxes.splice(i--, 1);
  }
  return n;
}

export type ReadHook = (offset: number, width: 1 | 2 | 4) => number;
export type WriteHook = (value: number, offset: number, width: 1 | 2 | 4) => void;

export class SimMmio implements Mmio {
  readonly name: string;
  readonly size: number;
  /** Accesses run code here, so there are no plain words to store into. */
  readonly words16 = null;
  readonly words32 = null;
  readonly #u8: Uint8Array;
  readonly #u16: Uint16Array;
  readonly #u32: Uint32Array;
  readonly #readHooks = new Map<number, ReadHook>();
  readonly #writeHooks = new Map<number, WriteHook>();
  /** Mailboxes of the workers this register file was shared with (share()). */
  readonly #posted: PostedWrites[] = [];

  constructor(name: string, size: number) {
    if (size % 4 !== 0) throw new RangeError(`${name}: size must be a multiple of 4`);
    this.name = name;
    this.size = size;
    const buffer = new ArrayBuffer(size);
    this.#u8 = new Uint8Array(buffer);
    this.#u16 = new Uint16Array(buffer);
    this.#u32 = new Uint32Array(buffer);
  }

  /**
   * For a worker thread that writes the registers at `offsets`: a mailbox that this thread's
   * deliverPostedWrites() applies through the hooks (the model cannot run in the worker).
   */
  share(offsets: readonly number[]): SharedMmio {
    const posted = new PostedWrites(this, offsets);
    this.#posted.push(posted);
    mailboxes.push(new WeakRef(posted));
    return { kind: "posted", name: this.name, size: this.size, offsets: offsets.slice(), mailbox: posted.mailbox };
  }

  /** Calls `hook` instead of reading the backing store for any access starting at `offset`. */
  onRead(offset: number, hook: ReadHook): void {
    this.#readHooks.set(offset, hook);
  }

  /** The read hook at `offset`, if any (so that a test can wrap a model's hook). */
  readHookAt(offset: number): ReadHook | undefined {
    return this.#readHooks.get(offset);
  }

  /** Calls `hook` instead of writing the backing store for any access starting at `offset`. */
  onWrite(offset: number, hook: WriteHook): void {
    this.#writeHooks.set(offset, hook);
  }

  // Backing-store access for the model itself: no hooks.
  peek8(offset: number): number { return this.#u8[offset]!; }
  peek16(offset: number): number { return this.#u16[offset >>> 1]!; }
  peek32(offset: number): number { return this.#u32[offset >>> 2]!; }
  poke8(offset: number, value: number): void { this.#u8[offset] = value; }
  poke16(offset: number, value: number): void { this.#u16[offset >>> 1] = value; }
  poke32(offset: number, value: number): void { this.#u32[offset >>> 2] = value; }
  /** Zeroes the backing store (hooks stay). */
  clear(): void { this.#u8.fill(0); }

  read8(offset: number): number {
    checkAccess(this, offset, 1);
    const hook = this.#readHooks.get(offset);
    return hook ? hook(offset, 1) & 0xff : this.#u8[offset]!;
  }
  read16(offset: number): number {
    checkAccess(this, offset, 2);
    const hook = this.#readHooks.get(offset);
    return hook ? hook(offset, 2) & 0xffff : this.#u16[offset >>> 1]!;
  }
  read32(offset: number): number {
    checkAccess(this, offset, 4);
    const hook = this.#readHooks.get(offset);
    return hook ? hook(offset, 4) >>> 0 : this.#u32[offset >>> 2]!;
  }
  write8(offset: number, value: number): void {
    checkAccess(this, offset, 1);
    const hook = this.#writeHooks.get(offset);
    if (hook) hook(value & 0xff, offset, 1);
    else this.#u8[offset] = value;
  }
  write16(offset: number, value: number): void {
    checkAccess(this, offset, 2);
    const hook = this.#writeHooks.get(offset);
    if (hook) hook(value & 0xffff, offset, 2);
    else this.#u16[offset >>> 1] = value;
  }
  write32(offset: number, value: number): void {
    checkAccess(this, offset, 4);
    const hook = this.#writeHooks.get(offset);
    if (hook) hook(value >>> 0, offset, 4);
    else this.#u32[offset >>> 2] = value;
  }
}
