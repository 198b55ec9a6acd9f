/** The Ethernet frame check sequence (IEEE 802.3 CRC-32, reflected polynomial 0xEDB88320). */

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
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
