/**
 * The host end of a NIC whose qemu netdev is a tap interface (VmOptions.taps): a packet socket
 * bound to the tap. What the host sends on it is transmitted on the tap, which qemu reads from
 * one of the tap's queues (the kernel picks the queue by flow hash, tun_automq_select_queue) and
 * hands to the guest's virtio-net receive queue of that number; what the guest transmits on
 * queue i, qemu writes to the tap's queue i, and the packet socket receives it.
 *
 * The tap is taken out of the host's own networking first: IPv6 off (neighbour discovery and
 * router solicitations would add frames), no address, so that only the test's frames cross.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { bind, close, read, setsockopt, socket, SOCK_NONBLOCK, WOULD_BLOCK, write } from '../../src/sys/libc.ts';

const AF_PACKET = 17;
const SOCK_RAW = 3;
const ETH_P_ALL = 0x0003;
const SOL_PACKET = 263;
/** Linux 4.20: do not deliver the frames this host sends on the interface back to its own packet sockets. */
const PACKET_IGNORE_OUTGOING = 23;
const htons = (v: number): number => ((v & 0xff) << 8) | (v >>> 8);

/** Waits until qemu has created the tap `name` (it does so before the guest boots). */
export async function waitForTap(name: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!existsSync(`/sys/class/net/${name}`)) {
    if (Date.now() > end) throw new Error(`tap ${name} did not appear within ${timeoutMs} ms (qemu -netdev tap failed?)`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class TapWire {
  readonly name: string;
  readonly #fd: number;
  #closed = false;

  constructor(name: string) {
    this.name = name;
    writeFileSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, '1');
    execFileSync('ip', ['link', 'set', 'dev', name, 'up']);
    const ifindex = Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim());
    const fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL), `packet socket on ${name}`);
    try {
      setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, new Uint8Array(new Int32Array([1]).buffer), `${name}: PACKET_IGNORE_OUTGOING`);
      // struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8]
      const sll = new Uint8Array(20);
      const v = new DataView(sll.buffer);
      v.setUint16(0, AF_PACKET, true);
      v.setUint16(2, ETH_P_ALL, false);
      v.setInt32(4, ifindex, true);
      bind(fd, sll, sll.length, `bind to ${name}`);
    } catch (e) {
      close(fd);
      throw e;
    }
    this.#fd = fd;
  }

  /** Transmits `frame` on the tap (to the guest); false if the socket's buffer is full. */
  send(frame: Uint8Array): boolean {
    return write(this.#fd, frame, `send on ${this.name}`) !== WOULD_BLOCK;
  }

  /** One frame the guest sent into `buf`; its length, or 0 when none is waiting. */
  receive(buf: Uint8Array): number {
    const n = read(this.#fd, buf, `receive on ${this.name}`);
    return n === WOULD_BLOCK ? 0 : n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    close(this.#fd);
  }
}
