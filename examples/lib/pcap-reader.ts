/**
 * A pcap file reader (classic libpcap format, https://wiki.wireshark.org/Development/LibpcapFileFormat)
 * for pktgen --pcap: reads the whole file at start. Both timestamp resolutions (magic a1b2c3d4:
 * microseconds, a1b23c4d: nanoseconds) and both byte orders (the magic read swapped). pcapng is
 * not read (convert it: `editcap -F pcap in.pcapng out.pcap`).
 */
import * as fs from "node:fs";
import { IxyError } from "../../src/errors.ts";

/** The file is not a pcap file we can read, or is cut short. The message names file and place. */
export class PcapFormatError extends IxyError {
  override name = "PcapFormatError";
}

export const LINKTYPE_ETHERNET = 1;

export interface PcapFile {
  /** Link type of the global header (1: Ethernet). */
  readonly linkType: number;
  readonly nanosecond: boolean;
  readonly bigEndian: boolean;
  readonly snaplen: number;
  /** Each record's captured bytes (a copy of its own). */
  readonly frames: Uint8Array[];
  /** Each record's length on the wire (more than frames[i].length when the capture cut it). */
  readonly wireLengths: number[];
  /** Each record's timestamp in ns since the epoch (a double: exact to ~0.25 us). */
  readonly timesNs: number[];
}

export function parsePcap(data: Uint8Array, name = "pcap data"): PcapFile {
  if (data.length < 24) throw new PcapFormatError(`${name}: not a pcap file (${data.length} bytes, shorter than the 24-byte header)`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magicLe = view.getUint32(0, true);
  let le: boolean;
  let nanosecond: boolean;
  if (magicLe === 0xa1b2c3d4 || magicLe === 0xa1b23c4d) {
    le = true;
    nanosecond = magicLe === 0xa1b23c4d;
  } else {
    const magicBe = view.getUint32(0, false);
    if (magicBe !== 0xa1b2c3d4 && magicBe !== 0xa1b23c4d) {
      const hint = magicLe === 0x0a0d0d0a ? " (a pcapng file: convert it with editcap -F pcap)" : "";
      throw new PcapFormatError(`${name}: not a pcap file (magic 0x${magicBe.toString(16).padStart(8, "0")})${hint}`);
    }
    le = false;
    nanosecond = magicBe === 0xa1b23c4d;
  }
  const major = view.getUint16(4, le);
  if (major !== 2) throw new PcapFormatError(`${name}: pcap version ${major}.${view.getUint16(6, le)}, only 2.x is read`);
  const snaplen = view.getUint32(16, le);
  const linkType = view.getUint32(20, le) & 0x0fffffff; // the upper bits may carry FCS info
  const frames: Uint8Array[] = [];
  const wireLengths: number[] = [];
  const timesNs: number[] = [];
  let at = 24;
  while (at < data.length) {
    if (at + 16 > data.length) throw new PcapFormatError(`${name}: cut short in the header of record ${frames.length + 1} (byte ${at})`);
    const sec = view.getUint32(at, le);
    const frac = view.getUint32(at + 4, le);
    const caplen = view.getUint32(at + 8, le);
    const wire = view.getUint32(at + 12, le);
    if (caplen > 0x40000) throw new PcapFormatError(`${name}: record ${frames.length + 1} claims ${caplen} bytes (byte ${at}): not a pcap file, or damaged`);
    if (at + 16 + caplen > data.length) throw new PcapFormatError(`${name}: cut short in record ${frames.length + 1} (${caplen} bytes from byte ${at + 16})`);
    // A plain Uint8Array copy (not a Buffer slice: readFileSync's Buffer would leak through).
    frames.push(new Uint8Array(data.buffer, data.byteOffset + at + 16, caplen).slice());
    wireLengths.push(wire);
    timesNs.push(sec * 1e9 + frac * (nanosecond ? 1 : 1000));
    at += 16 + caplen;
  }
  return { linkType, nanosecond, bigEndian: !le, snaplen, frames, wireLengths, timesNs };
}

/** Reads and parses a pcap file (errors reading it are the usual ENOENT etc.). */
export function readPcap(path: string): PcapFile {
  let data: Uint8Array;
  try {
    data = fs.readFileSync(path);
  } catch (e) {
    throw new PcapFormatError(`${path}: cannot read: ${(e as Error).message}`);
  }
  return parsePcap(data, path);
}
