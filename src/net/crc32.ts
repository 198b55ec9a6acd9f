/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib's crc32): the Ethernet frame
 * check sequence, and the checksum of the testbed's traffic frames. The one implementation here.
 */
import * as zlib from "node:zlib";

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

// zlib.crc32 (Node >= 20.15) is native and much faster on long inputs; same polynomial and result.
const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of bytes[start, end); pass a previous result as `crc` to continue it. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0): number {
  if (nativeCrc32 !== undefined && end - start >= 64) return nativeCrc32(bytes.subarray(start, end), crc) >>> 0;
  let c = ~crc >>> 0;
  for (let i = start; i < end; i++) c = TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** The frame followed by its FCS, as it is on the wire (least significant byte first). */
export function withFcs(frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(frame.length + 4);
  out.set(frame);
  const fcs = crc32(frame);
  out[frame.length] = fcs & 0xff;
  out[frame.length + 1] = (fcs >>> 8) & 0xff;
  out[frame.length + 2] = (fcs >>> 16) & 0xff;
  out[frame.length + 3] = fcs >>> 24;
  return out;
}
