/** The text picture of a ring (examples/lib/ring-picture.ts): exact content, and the 80-column limit. */
import { describe, expect, it } from "vitest";
import { RingOwner, ringState, type RingState } from "../../src/ring-state.ts";
import { perColumn, RING_LEGEND, ringPicture } from "../../examples/lib/ring-picture.ts";
import { openSimPort } from "../ixgbe/helpers.ts";

/** A made-up ixgbe RX snapshot of `size` descriptors with the given owners. */
function snapshot(size: number, owner: (i: number) => RingOwner, marks: { head: number; tail: number; next: number }): RingState {
  return ringState({
    layout: "ixgbe", kind: "rx", queue: 0, size, owners: Uint8Array.from({ length: size }, (_, i) => owner(i)), ...marks,
    fields: { RDH: marks.head, RDT: marks.tail, next: marks.next },
  });
}

describe("ringPicture", () => {
  it("draws a small ring one character per descriptor, marks above and below", () => {
    const state = snapshot(8, (i) => (i < 2 ? RingOwner.done : i === 7 ? RingOwner.driver : RingOwner.device), { head: 2, tail: 7, next: 0 });
    expect(ringPicture("port", state)).toBe([
      "port RX 0 (ixgbe): 8 descriptors, 1 per column",
      "    H    T",
      "  **DDDDD.",
      "  N",
      "  RDH=2 RDT=7 next=0 | device 5, done 2, driver 1",
    ].join("\n"));
  });

  it("shows + where head and tail meet", () => {
    const state = snapshot(4, () => RingOwner.driver, { head: 1, tail: 1, next: 1 });
    expect(ringPicture("p", state).split("\n").slice(1, 4)).toEqual(["   +", "  ....", "   N"]);
  });

  it("groups a large ring: a column is * if any of its descriptors is done, else D if any is the device's", () => {
    expect(perColumn(512)).toBe(8);
    const state = snapshot(512, (i) => (i === 9 ? RingOwner.done : i < 16 ? RingOwner.driver : i === 24 ? RingOwner.device : RingOwner.driver),
      { head: 100, tail: 511, next: 9 });
    const [, marks, ring, below] = ringPicture("p", state).split("\n");
    expect(ring).toBe("  ." + "*" + "." + "D" + ".".repeat(60));
    expect(marks).toBe("  " + " ".repeat(12) + "H" + " ".repeat(50) + "T");
    expect(below).toBe("   N");
  });

  it("the picture of a real ring and the legend stay within 80 columns", () => {
    const { dev } = openSimPort({ rxRingSize: 4096 });
    const lines = [...RING_LEGEND.split("\n"), ...ringPicture("sim:ixgbe0", dev.ringState("rx", 0)).split("\n")];
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(lines.at(-1)).toBe("  RDH=0 RDT=4095 next=0 | device 4095, done 0, driver 1");
    dev.close();
  });
});
