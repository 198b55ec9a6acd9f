/**
 * Trace mode over vhost-user (docs/trace.md): each request the front-end sends, decoded by name
 * with its main payload (qemu docs/interop/vhost-user.rst: "Front-end message types"), e.g.
 *
 *   vhost-user SET_VRING_NUM queue 0 num 256
 *   vhost-user SET_FEATURES MAC STATUS PROTOCOL_FEATURES VERSION_1
 */
import { featureShortNames } from "../virtio-types.ts";
import { HEADER_SIZE, requestName, VhostUserFlag, VhostUserProtocolFeature, VhostUserRequest as R, VRING_INDEX_MASK, VRING_NOFD } from "./protocol.ts";

const u32 = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
const u64 = (b: Uint8Array, at: number): bigint => BigInt(u32(b, at)) | (BigInt(u32(b, at + 4)) << 32n);
const hex = (v: bigint): string => `0x${v.toString(16)}`;

const PROTOCOL_NAMES = new Map<number, string>(Object.entries(VhostUserProtocolFeature).map(([name, bit]) => [bit, name]));

function protocolNames(features: bigint): string {
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) if ((features >> BigInt(bit)) & 1n) names.push(PROTOCOL_NAMES.get(bit) ?? `bit${bit}`);
  return names.join(" ");
}

/** One request message (header and payload, as sent) as a trace line. */
export function describeRequest(message: Uint8Array): string {
  const request = u32(message, 0);
  const flags = u32(message, 4);
  const p = HEADER_SIZE;
  const name = requestName(request).replace(/^VHOST_USER_/, "");
  const ack = (flags & VhostUserFlag.NEED_REPLY) !== 0 ? " (NEED_REPLY)" : "";
  let payload = "";
  switch (request) {
    case R.SET_FEATURES:
      payload = featureShortNames(u64(message, p)).join(" ");
      break;
    case R.SET_PROTOCOL_FEATURES:
      payload = protocolNames(u64(message, p));
      break;
    case R.SET_VRING_NUM:
    case R.SET_VRING_BASE:
      payload = `queue ${u32(message, p)} ${request === R.SET_VRING_NUM ? "num" : "base"} ${u32(message, p + 4)}`;
      break;
    case R.GET_VRING_BASE:
      // The request's num means nothing; the reply carries the ring's last available index.
      payload = `queue ${u32(message, p)} (stops the ring)`;
      break;
    case R.SET_VRING_ENABLE:
      payload = `queue ${u32(message, p)} ${u32(message, p + 4) === 1 ? "enable" : "disable"}`;
      break;
    case R.SET_VRING_ADDR:
      payload = `queue ${u32(message, p)} desc ${hex(u64(message, p + 8))} used ${hex(u64(message, p + 16))} avail ${hex(u64(message, p + 24))}`;
      break;
    case R.SET_VRING_KICK:
    case R.SET_VRING_CALL: {
      const value = Number(u64(message, p));
      payload = `queue ${value & VRING_INDEX_MASK}${(value & VRING_NOFD) !== 0 ? " no fd" : " eventfd"}`;
      break;
    }
    case R.SET_MEM_TABLE: {
      const regions = u32(message, p);
      const parts = [`${regions} region${regions === 1 ? "" : "s"}`];
      for (let i = 0; i < regions; i++) {
        const at = p + 8 + 32 * i;
        parts.push(`guest ${hex(u64(message, at))} size ${hex(u64(message, at + 8))}`);
      }
      payload = parts.join(", ");
      break;
    }
    case R.GET_CONFIG:
      payload = `offset ${u32(message, p)} size ${u32(message, p + 4)}`;
      break;
  }
  return `vhost-user ${name}${payload === "" ? "" : ` ${payload}`}${ack}`;
}
