/**
 * The control virtqueue (virtio 1.2 §5.1.6.5) on a packed ring: the same commands as
 * ctrl-queue.ts (header, data, ack: three descriptors), laid out as a packed descriptor list
 * (§2.8.6, §2.8.21): three consecutive ring entries, NEXT on the first two, buffer id 0 in all
 * three; the device answers with one used descriptor at the list's first slot and both sides then
 * skip the three slots. Not on the hot path.
 *
 * As on the split ring (ctrl-queue.ts): every command must be answered by exactly one used
 * descriptor naming buffer id 0 (the slot after the list must not be marked used too), and a
 * command that times out leaves the queue out of step (the device may still process it later,
 * reading whatever the descriptors then hold), so the queue is broken from then on and every
 * later command fails at once.
 */
import { DeviceProtocolError } from "../../errors.ts";
import { hi32, lo32 } from "../../mem/u64.ts";
import type { NotifyTarget } from "./transport.ts";
import { CMD_ACK, CMD_DATA, CMD_HEADER, CTRL_COMMAND_AREA_SIZE, awaitAnswer, checkAck, writeCommand } from "./ctrl-command.ts";
import {
  availFlags,
  VRING_DESC_F_NEXT,
  VRING_DESC_F_WRITE,
  VRING_PACKED_DESC_F_AVAIL,
  VRING_PACKED_DESC_F_USED,
  VRING_PACKED_EVENT_FLAG_DISABLE,
  type PackedRing,
} from "./packed-ring.ts";

const BUFFER_ID = 0;

export class PackedCtrlQueue {
  readonly name: string;
  readonly #ring: PackedRing;
  readonly #cmd: Uint8Array;
  readonly #cmdIova: number;
  readonly #notify: NotifyTarget;
  readonly #timeoutMs: number;
  readonly #checkDevice: () => void;
  #broken: Error | null = null;
  #availPos = 0;
  #availWrap = 1;
  #usedPos = 0;
  #usedWrap = 1;

  /**
   * `cmd` is a CTRL_COMMAND_AREA_SIZE-byte DMA area at device address `cmdIova`. `checkDevice`
   * throws when the device needs a reset; it is called while a command is waited for.
   */
  constructor(name: string, ring: PackedRing, notify: NotifyTarget, cmd: Uint8Array, cmdIova: number,
    checkDevice: () => void = () => {}, timeoutMs = 1000) {
    if (ring.size < 3) throw new DeviceProtocolError(`${name}: the control queue has ${ring.size} entries, a command needs 3`);
    if (cmd.length < CTRL_COMMAND_AREA_SIZE) throw new RangeError(`${name}: the command area must be ${CTRL_COMMAND_AREA_SIZE} bytes`);
    this.name = name;
    this.#ring = ring;
    this.#cmd = cmd;
    this.#cmdIova = cmdIova;
    this.#notify = notify;
    this.#timeoutMs = timeoutMs;
    this.#checkDevice = checkDevice;
  }

  /** Whether a command went wrong in a way that leaves the queue unusable (see the file comment). */
  get broken(): boolean {
    return this.#broken !== null;
  }

  /** Sends one command and waits for the device's ack; throws unless it is VIRTIO_NET_OK. */
  command(cls: number, command: number, data: Uint8Array, what: string): void {
    writeCommand(this.name, this.#cmd, this.#broken, cls, command, data, what);
    const ring = this.#ring;
    const cmd = this.#cmd;
    const iova = this.#cmdIova;
    const head = this.#availPos;
    const parts: [number, number, number][] = [
      [iova + CMD_HEADER, 2, VRING_DESC_F_NEXT],
      [iova + CMD_DATA, data.length, VRING_DESC_F_NEXT],
      [iova + CMD_ACK, 1, VRING_DESC_F_WRITE],
    ];
    let headWord = 0;
    for (const [addr, len, flags] of parts) {
      const d = this.#availPos << 2;
      ring.desc32[d] = lo32(addr);
      ring.desc32[d + 1] = hi32(addr);
      ring.desc32[d + 2] = len;
      const word = (BUFFER_ID | (availFlags(this.#availWrap, flags) << 16)) >>> 0;
      // §2.8.21: the list's first descriptor is made available last, so the device never sees half a list.
      if (this.#availPos === head) headWord = word;
      else ring.desc32[d + 3] = word;
      if (++this.#availPos === ring.size) {
        this.#availPos = 0;
        this.#availWrap ^= 1;
      }
    }
    Atomics.store(ring.desc32, (head << 2) + 3, headWord);
    if (ring.device16[1] !== VRING_PACKED_EVENT_FLAG_DISABLE) this.#notify.mmio.write16(this.#notify.offset, ring.index);

    const word = this.#waitForCompletion(what);
    const id = word & 0xffff;
    // §2.8.6: the used descriptor stands for the whole list: skip its three slots.
    for (let i = 0; i < parts.length; i++) {
      if (++this.#usedPos === ring.size) {
        this.#usedPos = 0;
        this.#usedWrap ^= 1;
      }
    }
    // Exactly one used descriptor per command: the slot after the list is the next command's,
    // and the device may not have marked it used (x86-64 ordering: a plain load after the one
    // that saw the command's used descriptor).
    const next = (this.#usedPos << 2) + 3;
    const both = VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED;
    if (((ring.desc32[next]! >>> 16) & both) === (this.#usedWrap !== 0 ? both : 0)) {
      throw this.#break(new DeviceProtocolError(
        `${this.name}: ${what}: the device marked more than one descriptor used for one command (slot ${this.#usedPos} ` +
          `too, id ${ring.desc32[next]! & 0xffff}; exactly one is due): close the device and open it again`,
      ));
    }
    if (id !== BUFFER_ID) {
      throw this.#break(new DeviceProtocolError(
        `${this.name}: ${what}: the device completed buffer id ${id}, but the command was ${BUFFER_ID}; close the ` +
          `device and open it again`,
      ));
    }
    checkAck(this.name, cmd, what);
  }

  #break<E extends Error>(error: E): E {
    this.#broken ??= error;
    return error;
  }

  /** The used descriptor's id/flags word once AVAIL = USED = the used wrap counter (§2.8.2). */
  #waitForCompletion(what: string): number {
    const desc32 = this.#ring.desc32;
    const both = VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED;
    const want = this.#usedWrap !== 0 ? both : 0;
    const at = (this.#usedPos << 2) + 3;
    const used = (): boolean => ((desc32[at]! >>> 16) & both) === want;
    awaitAnswer(this.name, what, this.#timeoutMs, used, () => this.#checkDevice(), (e) => this.#break(e));
    return desc32[at]!;
  }
}
