/**
 * The frames of the qemu offload test (offload.vm.test.ts), made the same way in the guest
 * (guest/offload.ts sends them with checksum and TSO requests) and on the host (which checks what
 * qemu hands its tap): TCP and UDP over IPv4 and IPv6 with correct checksums, and TCP super-frames
 * with the MSS to segment them by.
 */
import { buildFrame } from "../helpers/frames.ts";
import { prng, randInt } from "../helpers/prng.ts";

export interface OffloadFrame {
  readonly bytes: Uint8Array;
  readonly l2: number;
  readonly l3: number;
  readonly l4: number;
  readonly ipv6: boolean;
  /** 0: a checksum request; else a TSO request with this MSS. */
  readonly mss: number;
}

export function offloadFrames(): OffloadFrame[] {
  const rand = prng(2026);
  const out: OffloadFrame[] = [];
  for (let i = 0; i < 40; i++) {
    const ipv6 = i % 3 === 0;
    const f = buildFrame({ proto: i % 2 === 0 ? "tcp" : "udp", ipv6, payload: randInt(rand, 0, 1400) }, rand);
    out.push({ ...f, ipv6, mss: 0 });
  }
  for (const [payload, mss, ipv6] of [[5000, 1448, false], [20000, 1400, true], [60000, 1460, false]] as const) {
    const f = buildFrame({ proto: "tcp", ipv6, payload }, rand);
    out.push({ ...f, ipv6, mss });
  }
  return out;
}
