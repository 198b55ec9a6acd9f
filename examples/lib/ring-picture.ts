/**
 * Draws a ring snapshot (NicDevice.ringState, src/ring-state.ts) as text of at most 80 columns:
 * one character per descriptor, or per group of descriptors for rings larger than RING_COLUMNS.
 * docs/rings.md explains how to read it.
 *
 *   ixgbe sim:0 RX 0: 64 descriptors, 1 per column
 *     H                                                              T
 *     ****DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD.
 *     N
 *     RDH=4 RDT=63 next=0 | device 59, done 4, driver 1
 *
 * The row above the ring marks the device's side (H head, T tail: registers or ring indices in
 * shared memory), the row below the driver's own next slot to take back (N).
 */
import type { NicDevice } from "../../src/device.ts";
import { RingOwner, type RingState } from "../../src/ring-state.ts";

/** Columns for the ring itself; with two of indent the lines stay within 80 columns. */
export const RING_COLUMNS = 64;
const INDENT = "  ";

/** The character of each owner. */
export const RING_CHARS = { [RingOwner.device]: "D", [RingOwner.done]: "*", [RingOwner.driver]: "." } as const;

/** What the characters mean: print it once above the pictures. */
export const RING_LEGEND = [
  "rings: D device owns, * done (waiting for the driver), . driver owns (free)",
  "       above: H head, T tail, + both; below: N the driver's next to take back",
  "       a column of a large ring: * if any of its descriptors is done, else D if",
  "       any is the device's, else .",
].join("\n");

/** Descriptors per column for a ring of `size`. */
export function perColumn(size: number): number {
  return Math.max(1, Math.ceil(size / RING_COLUMNS));
}

/** The ring's row: one character per group of perColumn(size) descriptors. */
function ringRow(state: RingState): string {
  const per = perColumn(state.size);
  let row = "";
  for (let start = 0; start < state.size; start += per) {
    let any = 0; // bit per owner seen in the group
    for (let i = start; i < Math.min(start + per, state.size); i++) any |= 1 << state.owners[i]!;
    // Done first: a frame waiting for the driver is what a reader looks for.
    if ((any & (1 << RingOwner.done)) !== 0) row += RING_CHARS[RingOwner.done];
    else if ((any & (1 << RingOwner.device)) !== 0) row += RING_CHARS[RingOwner.device];
    else row += RING_CHARS[RingOwner.driver];
  }
  return row;
}

/** A row with `letter` at the column of each slot in `marks`; "+" where two different marks meet. */
function markRow(size: number, marks: ReadonlyArray<readonly [slot: number, letter: string]>): string {
  const per = perColumn(size);
  const row: string[] = [];
  for (const [slot, letter] of marks) {
    const column = Math.floor(slot / per);
    while (row.length <= column) row.push(" ");
    row[column] = row[column] === " " || row[column] === letter ? letter : "+";
  }
  return row.join("").trimEnd();
}

/** The numbers line: the raw fields, then the counts. */
function numbersLine(state: RingState): string {
  const fields = Object.entries(state.fields).map(([name, value]) => `${name}=${value}`).join(" ");
  return `${fields} | device ${state.device}, done ${state.done}, driver ${state.driver}`;
}

/** The picture of one ring: a title line, the marks, the ring, the numbers. `name` names the port. */
export function ringPicture(name: string, state: RingState): string {
  const per = perColumn(state.size);
  const kind = state.kind === "rx" ? "RX" : "TX";
  const unit = state.layout === "virtio-split" ? "slots" : "descriptors";
  return [
    `${name} ${kind} ${state.queue} (${state.layout}): ${state.size} ${unit}, ${per} per column`,
    INDENT + markRow(state.size, [[state.head, "H"], [state.tail, "T"]]),
    INDENT + ringRow(state),
    INDENT + markRow(state.size, [[state.next, "N"]]),
    INDENT + numbersLine(state),
  ].join("\n");
}

/** --show-rings: the option the apps that poll in their main thread take (fwd, pktgen). */
export const SHOW_RINGS_OPTION = {
  "show-rings": {
    type: "boolean",
    help: "once a second, draw every RX and TX ring to stderr: who owns each descriptor, head, tail (docs/rings.md); not with --workers",
  },
} as const;

/** Every RX and TX ring of `devices`, with the legend on top: what --show-rings prints once a second. */
export function ringPictures(devices: readonly NicDevice[]): string {
  const parts = [RING_LEGEND];
  for (const device of devices) {
    for (let q = 0; q < device.rxQueues; q++) parts.push(ringPicture(device.address, device.ringState("rx", q)));
    for (let q = 0; q < device.txQueues; q++) parts.push(ringPicture(device.address, device.ringState("tx", q)));
  }
  return parts.join("\n") + "\n";
}
