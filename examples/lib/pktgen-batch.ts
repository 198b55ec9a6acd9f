/**
 * What pktgen's send loop writes into each buffer of a batch before txBatch: the buffers were
 * filled with a whole frame once at start (ixy's init_mempool), so per frame only what changes
 * is written, straight into the pool's memory at the buffer's data offset:
 * - by default (one flow, one size) a 4-byte sequence number, ixy's loop;
 * - with --flows or a size mix also the 28-byte IPv4+UDP header template of the frame's turn
 *   (pktgen-frames.ts), and its length;
 * - with --pcap the file's next frame, whole;
 * - with --latency also an 8-byte send time, one clock reading per batch.
 * No allocation: a batch is an Int32Array of buffer numbers (docs/packet-api.md).
 */
import { bufDataOffset, bufLength } from "../../src/mem/buffer-table.ts";
import { writeTime } from "./latency-stamp.ts";
import { applyTemplate, type FrameTemplates } from "./pktgen-frames.ts";
import { setSequence } from "./udp-frame.ts";

export class BatchWriter {
  /** The pool's memory: buffer b's frame starts at #bytes[bufDataOffset[b]]. */
  readonly #bytes: Uint8Array;
  readonly #templates: FrameTemplates;
  /** --pcap's frames, sent in turn (null: generated frames). */
  readonly #pcap: readonly Uint8Array[] | null;
  /** --latency: the send time's clock (null: no stamps). */
  readonly #clock: (() => number) | null;
  readonly #oneTemplate: boolean;
  /** The template, or the pcap frame, of the next frame to send. */
  #nextTemplate = 0;
  #nextPcap = 0;

  constructor(bytes: Uint8Array, templates: FrameTemplates, pcap: readonly Uint8Array[] | null, clock: (() => number) | null) {
    this.#bytes = bytes;
    this.#templates = templates;
    this.#pcap = pcap;
    this.#clock = clock;
    this.#oneTemplate = templates.count === 1;
  }

  /** Writes frames seq, seq + 1, ... into bufs[0 .. count). */
  write(bufs: Int32Array, count: number, seq: number): void {
    const bytes = this.#bytes;
    const frames = this.#pcap;
    if (frames !== null) {
      for (let i = 0; i < count; i++) {
        const b = bufs[i]!;
        const f = frames[this.#nextPcap]!;
        bytes.set(f, bufDataOffset[b]!);
        bufLength[b] = f.length;
        if (++this.#nextPcap === frames.length) this.#nextPcap = 0;
      }
    } else if (this.#oneTemplate) {
      // The default: ixy's loop, a sequence number per frame.
      const size = this.#templates.lengths[0]!;
      for (let i = 0; i < count; i++) {
        const b = bufs[i]!;
        bufLength[b] = size;
        setSequence(bytes, bufDataOffset[b]!, seq + i);
      }
    } else {
      const templates = this.#templates;
      const k = templates.count;
      let t = this.#nextTemplate;
      for (let i = 0; i < count; i++) {
        const b = bufs[i]!;
        const off = bufDataOffset[b]!;
        bufLength[b] = applyTemplate(templates, t, bytes, off);
        setSequence(bytes, off, seq + i);
        if (++t === k) t = 0;
      }
    }
    if (this.#clock !== null) {
      const now = this.#clock(); // one reading per batch: the frames leave together
      for (let i = 0; i < count; i++) writeTime(bytes, bufDataOffset[bufs[i]!]!, now);
    }
  }

  /**
   * txBatch took `sent` of the `written` frames: the next batch goes on from the first one not
   * sent (its sequence number is the caller's seq; the template and the pcap frame are ours).
   */
  sent(written: number, sent: number): void {
    const frames = this.#pcap;
    if (frames !== null) {
      if (sent < written) this.#nextPcap = (this.#nextPcap - (written - sent) + frames.length * written) % frames.length;
    } else if (!this.#oneTemplate) {
      this.#nextTemplate = (this.#nextTemplate + sent) % this.#templates.count;
    }
  }
}
