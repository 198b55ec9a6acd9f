/**
 * The control virtqueue (virtio 1.2 §5.1.6.5): commands the driver sends to the device, one at a
 * time, waiting for each to complete. Each command is a chain of three descriptors:
 *
 *   device-readable   u8 class, u8 command
 *   device-readable   command-specific data
 *   device-writable   u8 ack (VIRTIO_NET_OK / VIRTIO_NET_ERR)
 *
 * (Separate descriptors for header, data and ack: qemu rejects a control command squeezed into
 * one descriptor, and the legacy interface without ANY_LAYOUT requires this framing.)
 * Not on the hot path: used at init and by setPromisc().
 *
 * Every command uses descriptors 0-2 and must be answered by exactly one used entry naming
 * descriptor 0. A command that times out leaves the queue out of step: the device may still
 * process it later, reading whatever the descriptors then hold, so the queue is broken from then
 * on (as Linux's virtnet_send_command gives up on a queue that never answers) and every later
 * command fails at once rather than rewrite descriptors the device may be reading.
 */
import { DeviceProtocolError } from "../../errors.ts";
import type { Mmio } from "../../pci/mmio.ts";
import type { NotifyTarget } from "./transport.ts";
import type { VirtqueueRing } from "./virtqueue.ts";
import { CMD_ACK, CMD_DATA, CMD_HEADER, awaitAnswer, checkAck, writeCommand } from "./ctrl-command.ts";
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_USED_F_NO_NOTIFY } from "./virtio-types.ts";

export { CTRL_COMMAND_AREA_SIZE } from "./ctrl-command.ts";


export class CtrlQueue {
  readonly name: string;
  readonly #ring: VirtqueueRing;
  readonly #cmd: Uint8Array;
  readonly #cmdIova: number;
  readonly #notifyMmio: Mmio;
  readonly #notifyOffset: number;
  readonly #timeoutMs: number;
  readonly #checkDevice: () => void;
  #availIdx = 0;
  #lastUsed = 0;
  #broken: Error | null = null;

  /**
   * `cmd` is a 64-byte DMA area at device address `cmdIova`. `checkDevice` throws when the device
   * needs a reset; it is called while a command is waited for.
   */
  constructor(name: string, ring: VirtqueueRing, notify: NotifyTarget, cmd: Uint8Array, cmdIova: number,
    checkDevice: () => void = () => {}, timeoutMs = 1000) {
    if (ring.size < 3) throw new DeviceProtocolError(`${name}: the control queue has ${ring.size} entries, a command needs 3`);
    this.name = name;
    this.#ring = ring;
    this.#cmd = cmd;
    this.#cmdIova = cmdIova;
    this.#notifyMmio = notify.mmio;
    this.#notifyOffset = notify.offset;
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
    ring.setDescriptor(0, iova + CMD_HEADER, 2, VIRTQ_DESC_F_NEXT, 1);
    ring.setDescriptor(1, iova + CMD_DATA, data.length, VIRTQ_DESC_F_NEXT, 2);
    ring.setDescriptor(2, iova + CMD_ACK, 1, VIRTQ_DESC_F_WRITE, 0);
    ring.avail16[2 + (this.#availIdx & (ring.size - 1))] = 0;
    this.#availIdx = (this.#availIdx + 1) & 0xffff;
    Atomics.store(ring.avail16, 1, this.#availIdx);
    if ((ring.used16[0]! & VIRTQ_USED_F_NO_NOTIFY) === 0) this.#notifyMmio.write16(this.#notifyOffset, ring.index);

    this.#waitForCompletion(what);
    // x86-64 ordering: plain loads of used.idx, then of the entry it covers (virtio_rmb()).
    const usedIdx = ring.used16[1]!;
    const moved = (usedIdx - this.#lastUsed) & 0xffff;
    const slot = this.#lastUsed & (ring.size - 1);
    const id = ring.used32[1 + 2 * slot]!;
    this.#lastUsed = usedIdx;
    if (moved !== 1) {
      throw this.#break(new DeviceProtocolError(
        `${this.name}: ${what}: the device moved used.idx by ${moved} entries for one command (exactly one is due); ` +
          `close the device and open it again`,
      ));
    }
    if (id !== 0) {
      throw this.#break(new DeviceProtocolError(
        `${this.name}: ${what}: the device completed descriptor ${id}, but the command was 0; close the device and open it again`,
      ));
    }
    checkAck(this.name, cmd, what);
  }

  #break<E extends Error>(error: E): E {
    this.#broken ??= error;
    return error;
  }

  #waitForCompletion(what: string): void {
    const used16 = this.#ring.used16;
    awaitAnswer(this.name, what, this.#timeoutMs, () => used16[1] !== this.#lastUsed, () => this.#checkDevice(), (e) => this.#break(e));
  }
}
