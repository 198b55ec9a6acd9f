/**
 * For VM tests: sends frames into one NIC's wire from the host every `intervalMs` until the guest
 * has powered off (its command ended), then closes the socket. Frame `seq` comes from `frame(seq)`.
 */
import * as dgram from "node:dgram";
import type { VmHandle } from "./vm.ts";

export function sendUntilGuestExits(h: VmHandle, nic: 0 | 1, frame: (seq: number) => Uint8Array, intervalMs = 5): Promise<void> {
  const wire = h.wires[nic];
  return new Promise<void>((resolve) => {
    const sock = dgram.createSocket("udp4");
    sock.bind(wire.hostPort, "127.0.0.1", () => {
      let seq = 0;
      const timer = setInterval(() => sock.send(frame(seq++), wire.qemuPort, "127.0.0.1"), intervalMs);
      h.signal.addEventListener("abort", () => {
        clearInterval(timer);
        sock.close(() => resolve());
      });
    });
  });
}
