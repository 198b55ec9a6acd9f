/**
 * The command area of the control virtqueue (§5.1.6.5), the same for split and packed rings: a
 * 64-byte DMA area holding the three parts of a command, each its own descriptor.
 *
 *   offset  0   device-readable   u8 class, u8 command
 *   offset 16   device-readable   command-specific data (1 to 32 bytes)
 *   offset 48   device-writable   u8 ack (VIRTIO_NET_OK / VIRTIO_NET_ERR)
 */
import { DeviceProtocolError, DeviceTimeoutError } from "../../errors.ts";
import { pollUntil } from "../../pci/regs.ts";
import { VIRTIO_NET_OK } from "./virtio-types.ts";

export const CMD_HEADER = 0;
export const CMD_DATA = 16;
export const CMD_ACK = 48;
export const CTRL_COMMAND_AREA_SIZE = 64;
const MAX_DATA = CMD_ACK - CMD_DATA;

/**
 * Checks a command before anything is written (its data length; a queue broken by an earlier
 * command), then writes header, data and an ack of 0xff into `cmd` (anything but OK, in case the
 * device completes the command without writing the ack).
 */
export function writeCommand(
  queue: string, cmd: Uint8Array, broken: Error | null, cls: number, command: number, data: Uint8Array, what: string,
): void {
  if (data.length < 1 || data.length > MAX_DATA) throw new RangeError(`${queue}: command data must be 1 to ${MAX_DATA} bytes`);
  if (broken !== null) throw new DeviceProtocolError(`${queue}: ${what}: the control queue is broken (${broken.message})`);
  cmd[CMD_HEADER] = cls;
  cmd[CMD_HEADER + 1] = command;
  cmd.set(data, CMD_DATA);
  cmd[CMD_ACK] = 0xff;
}

/** After the device completed the command: throws unless it wrote VIRTIO_NET_OK. */
export function checkAck(queue: string, cmd: Uint8Array, what: string): void {
  const ack = cmd[CMD_ACK]!;
  if (ack !== VIRTIO_NET_OK) {
    throw new DeviceProtocolError(`${queue}: ${what}: the device answered ${ack === 1 ? "VIRTIO_NET_ERR" : `ack ${ack}`}`);
  }
}

/**
 * Waits for the device to answer a command, the same for split and packed rings: a device model
 * or an emulator that handles the notification synchronously is done already; otherwise spin
 * briefly, then poll every millisecond, checking the device each time (`checkDevice` throws for
 * a device that needs a reset and will never answer). Whatever ends the wait without an answer
 * goes through `breakQueue`, which marks the queue broken and returns the error to throw.
 */
export function awaitAnswer(
  queue: string, what: string, timeoutMs: number, answered: () => boolean,
  checkDevice: () => void, breakQueue: (error: Error) => Error,
): void {
  for (let spin = 0; spin < 1000; spin++) if (answered()) return;
  pollUntil(() => {
    if (answered()) return true;
    try {
      checkDevice();
    } catch (error) {
      throw breakQueue(error as Error);
    }
    return false;
  }, {
    timeoutMs,
    pollMs: 1,
    onTimeout: () => breakQueue(new DeviceTimeoutError(
      `${queue}: ${what}: no answer on the control queue within ${timeoutMs} ms; the device seems ` +
        `stalled: close the device and open it again`,
    )),
  });
}
