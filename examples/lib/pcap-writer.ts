/**
 * A pcap file writer (the classic libpcap format: a 24-byte global header, then a 16-byte record
 * header per frame; https://wiki.wireshark.org/Development/LibpcapFileFormat), microsecond
 * timestamps, link type Ethernet. Writes synchronously in chunks.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { IxyError } from "../../src/errors.ts";

const LINKTYPE_ETHERNET = 1;

/** The output file cannot be created or written: the message says why, in one line. */
export class PcapFileError extends IxyError {
  override name = "PcapFileError";
}

/** One line for a file system error on `file`: what is wrong, in the user's terms. */
function fileProblem(file: string, e: NodeJS.ErrnoException): string {
  const dir = path.dirname(file);
  switch (e.code) {
    case "ENOENT":
      return `cannot create ${file}: there is no directory ${dir}`;
    case "ENOTDIR":
      return `cannot create ${file}: ${dir} is not a directory`;
    case "EISDIR":
      return `cannot write to ${file}: it is a directory (give a file name in it)`;
    case "EACCES":
    case "EPERM":
      return `cannot write to ${file}: permission denied`;
    case "EROFS":
      return `cannot write to ${file}: the file system is read-only`;
    case "ENOSPC":
      return `cannot write to ${file}: no space left on the device`;
    default:
      return `cannot write to ${file}: ${e.code ?? ""} ${e.message}`.replace(/\s+/g, " ");
  }
}

export class PcapWriter {
  readonly #fd: number;
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #used = 0;
  #closed = false;
  readonly #path: string;
  packets = 0;
  /** Bytes of the frames written (the file has 24 + 16 per frame more). */
  bytes = 0;

  /** Creates (truncates) the file: PcapFileError, one line, when it cannot. */
  constructor(file: string, snaplen = 65535, bufferSize = 1 << 20) {
    this.#path = file;
    if (file === "") throw new PcapFileError("the output file's name is empty");
    try {
      this.#fd = fs.openSync(file, "w");
    } catch (e) {
      throw new PcapFileError(fileProblem(file, e as NodeJS.ErrnoException));
    }
    this.#buf = new Uint8Array(bufferSize);
    // DataView is fine here: this is our own file buffer, not device memory.
    this.#view = new DataView(this.#buf.buffer);
    const h = new Uint32Array(6);
    h[0] = 0xa1b2c3d4; // magic: microsecond timestamps, written in host (little-endian) order
    h[1] = 2 | (4 << 16); // version 2.4
    h[2] = 0; // thiszone
    h[3] = 0; // sigfigs
    h[4] = snaplen;
    h[5] = LINKTYPE_ETHERNET;
    this.#write(new Uint8Array(h.buffer), h.byteLength);
  }

  /**
   * Appends the frame bytes[start .. start + length) with the given timestamp (ms since the
   * epoch, fractional: microseconds are kept, e.g. performance.timeOrigin + performance.now()). For a packet buffer b of pool p:
   * write(p.bytes, bufDataOffset[b], bufLength[b], t) — copied straight out of the DMA memory.
   */
  write(bytes: Uint8Array, start: number, length: number, timeMs: number): void {
    if (this.#used + 16 + length > this.#buf.length) this.flush();
    if (16 + length > this.#buf.length) throw new RangeError("frame larger than the pcap write buffer");
    const sec = Math.floor(timeMs / 1000);
    const usec = Math.min(999_999, Math.floor((timeMs - sec * 1000) * 1000));
    const v = this.#view;
    const at = this.#used;
    v.setUint32(at, sec, true);
    v.setUint32(at + 4, usec, true);
    v.setUint32(at + 8, length, true); // captured length
    v.setUint32(at + 12, length, true); // length on the wire
    // A byte loop rather than set(bytes.subarray(...)): no view object per frame.
    const out = this.#buf;
    for (let i = 0; i < length; i++) out[at + 16 + i] = bytes[start + i]!;
    this.#used = at + 16 + length;
    this.packets++;
    this.bytes += length;
  }

  flush(): void {
    if (this.#used > 0) this.#write(this.#buf, this.#used);
    this.#used = 0;
  }

  #write(bytes: Uint8Array, length: number): void {
    try {
      fs.writeSync(this.#fd, bytes, 0, length);
    } catch (e) {
      throw new PcapFileError(fileProblem(this.#path, e as NodeJS.ErrnoException));
    }
  }

  /** Closes and removes the file: nothing was captured (the port did not open). */
  discard(): void {
    this.close();
    fs.rmSync(this.#path, { force: true });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.flush();
    fs.closeSync(this.#fd);
  }
}
