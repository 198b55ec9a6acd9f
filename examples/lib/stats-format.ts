/**
 * Rates and units of the examples' statistics (docs/statistics.md), as testpmd and MoonGen print
 * them: packets per second in kpps below 1 Mpps (so that 0.003 Mpps reads 3.00 kpps), and two
 * Mbit/s figures, labelled:
 *
 * - "frame" Mbit/s: the bytes the driver counts (DeviceStats.rxBytes/txBytes: destination MAC
 *   through payload, WITHOUT the 4-byte FCS, for both drivers — ixgbe takes the FCS off its
 *   octet counters, virtio never sees one). This is what testpmd's Rx-bps/Tx-bps show.
 * - "wire" Mbit/s: what the frames cost on an Ethernet wire, 24 more bytes each: preamble 7,
 *   start delimiter 1, FCS 4, inter-frame gap 12 (MoonGen's "with framing", ixy's figure).
 *
 * 525,000 frames/s of 60 bytes: 252 Mbit/s frame, 353 Mbit/s wire (84/60 of it).
 */

/** Bytes an Ethernet frame costs on the wire beyond the FCS-less bytes DeviceStats counts. */
export const WIRE_OVERHEAD_BYTES = 7 + 1 + 4 + 12;

/** The widest line the text output prints (an 80-column terminal). */
export const LINE_WIDTH = 80;

/** Mbit/s of `bytes` in `seconds` (frame bytes as counted: testpmd's figure). */
export function frameMbit(bytes: number, seconds: number): number {
  return seconds > 0 ? (bytes * 8) / seconds / 1e6 : 0;
}

/** Mbit/s on the wire of `packets` frames totalling `bytes` (as counted) in `seconds`. */
export function wireMbit(bytes: number, packets: number, seconds: number): number {
  return frameMbit(bytes + packets * WIRE_OVERHEAD_BYTES, seconds);
}

/** "14.881 Mpps", "525.0 kpps", "3.00 kpps", "0 pps". */
export function formatPps(pps: number): string {
  if (pps >= 1e6) return `${(pps / 1e6).toFixed(3)} Mpps`;
  if (pps >= 1e4) return `${(pps / 1e3).toFixed(1)} kpps`;
  if (pps > 0) return `${(pps / 1e3).toFixed(2)} kpps`;
  return "0 pps";
}

/** A Mbit/s figure without its unit: "9999", "252", "19.6", "0.35". */
export function formatMbit(mbit: number): string {
  if (mbit >= 100) return mbit.toFixed(0);
  if (mbit >= 10) return mbit.toFixed(1);
  return mbit.toFixed(2);
}

/** "252 Mbit/s (353 wire)": frame Mbit/s, then wire Mbit/s, labelled. */
export function formatBitrate(frame: number, wire: number): string {
  return `${formatMbit(frame)} Mbit/s (${formatMbit(wire)} wire)`;
}

/** A counter in a live line: exact up to 99999, then "123k", "14.9M" (the totals print it exact). */
export function formatCount(n: number): string {
  if (n < 1e5) return String(n);
  if (n < 1e6) return `${Math.round(n / 1e3)}k`;
  if (n < 99.95e6) return `${(n / 1e6).toFixed(1)}M`;
  return `${Math.round(n / 1e6)}M`;
}

/** The MAC address as aa:bb:cc:dd:ee:ff. */
export function formatMac(mac: Uint8Array): string {
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * Segments joined with `sep` into lines of at most `width` columns: a segment that would cross
 * the edge starts a new line, indented by `indent`. A segment longer than a line is cut.
 */
export function fitLine(segments: readonly string[], indent = "  ", width = LINE_WIDTH, sep = "  "): string[] {
  const lines: string[] = [];
  let line = "";
  for (const raw of segments) {
    const s = raw.length > width - indent.length ? raw.slice(0, width - indent.length) : raw;
    if (line === "") line = lines.length === 0 ? s : indent + s;
    else if (line.length + sep.length + s.length <= width) line += sep + s;
    else {
      lines.push(line);
      line = indent + s;
    }
  }
  if (line !== "" || lines.length === 0) lines.push(line);
  return lines;
}

/**
 * The label of a port in the text lines: its address when short (PCI, sim:...), "port N"
 * otherwise (vhost-user:<socket>); the start lines name each port's address in full.
 */
export function portLabel(address: string, index: number): string {
  return address.length <= 14 ? address : `port ${index}`;
}
