/**
 * A pcap file writer (the classic libpcap format: a 24-byte global header, then a 16-byte record
 * header per frame; https://wiki.wireshark.org/Development/LibpcapFileFormat), microsecond
 * timestamps, link type Ethernet. Writes synchronously in chunks.
 */
import * as fs from "node:fs";

const LINKTYPE_ETHERNET = 1;

export class PcapWriter {
  readonly #fd: number;
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #used = 0;
  #closed = false;
  packets = 0;

  constructor(path: string, snaplen = 65535, bufferSize = 1 << 20) {
    this.#fd = fs.openSync(path, "w");
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
    fs.writeSync(this.#fd, new Uint8Array(h.buffer));
  }

  /**
   * Appends the frame bytes[start .. start + length) with the given timestamp (ms since the
   * epoch, fractional allowed). For a packet buffer b of pool p:
   * write(p.bytes, bufDataOffset[b], bufLength[b], t) — copied straight out of the DMA memory.
   */
  write(bytes: Uint8Array, start: number, length: number, timeMs: number): void {
    if (this.#used + 16 + length > this.#buf.length) this.flush();
    if (16 + length > this.#buf.length) throw new RangeError("frame larger than the pcap write buffer");
    const sec = Math.floor(timeMs / 1000);
    const usec = Math.floor((timeMs - sec * 1000) * 1000);
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
  }

  flush(): void {
    if (this.#used > 0) fs.writeSync(this.#fd, this.#buf, 0, this.#used);
    this.#used = 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.flush();
    fs.closeSync(this.#fd);
  }
}
