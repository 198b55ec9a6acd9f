/**
 * The diagrams of docs/tour.md, drawn from data in this file: `npm run diagrams` writes
 * docs/img/*.svg. No dependencies: the SVG is built as text. test/docs/links.test.ts checks that
 * the files on disk are what this script makes now, so edit the data here, not the SVGs.
 *
 *   ixgbe-ring.svg     an ixgbe receive ring of 16 descriptors right after an rxBatch call:
 *                      who owns each descriptor (device or driver), head (RDH), tail (RDT) and
 *                      the driver's next index (IxgbeRxQueue's state[0]), as in ixgbe-rx-queue.ts
 *   buffer-table.svg   a mempool's DMA region cut into entries (64-byte headroom, then data) and
 *                      the buffer-table columns of its buffer numbers, as in mempool.ts and
 *                      buffer-table.ts
 *   pipeline-threads.svg the threads of examples/pipeline.ts: which thread drives which queue of
 *                      queue pair 0, the two SpscRings between them, where freed buffers go, and
 *                      the memory they share, as in examples/lib/pipeline-worker(s).ts
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { hi32, lo32 } from "../src/mem/u64.ts";


function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A monospace label; `extra` adds attributes other than the font's (an attribute twice makes the SVG invalid XML). */
function text(x: number, y: number, s: string, extra = "", size = 12): string {
  return `<text x="${x}" y="${y}" font-family="monospace" font-size="${size}"${extra === "" ? "" : ` ${extra}`}>${escapeXml(s)}</text>`;
}

function rect(x: number, y: number, w: number, h: number, fill: string): string {
  return `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="${fill}" stroke="#333"/>`;
}

function svg(width: number, height: number, body: string[]): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n` +
    `<rect width="${width}" height="${height}" fill="#fff"/>\n` +
    body.join("\n") +
    "\n</svg>\n"
  );
}

/** The receive ring after a batch: the driver has processed up to `next`, written RDT = next - 1. */
export const RING = { size: 16, head: 7, next: 3 } as const;

type Owner = "device" | "driver-done" | "driver-held";

/** Who owns descriptor `i` of RING (datasheet 7.1.9; IxgbeRxQueue.start and receiveLoop). */
export function ringOwner(i: number): Owner {
  const { size, head, next } = RING;
  const tail = (next - 1 + size) % size;
  // Device: head .. tail - 1 (empty buffers waiting for frames).
  if ((i - head + size) % size < (tail - head + size) % size) return "device";
  // Driver: next .. head - 1 were written back by the device (DD set), not yet received.
  if ((i - next + size) % size < (head - next + size) % size) return "driver-done";
  return "driver-held"; // RDT itself: refilled, kept back so that RDH == RDT means "none for the device"
}

const OWNER_STYLE: Record<Owner, { fill: string; label: string }> = {
  device: { fill: "#cfe2ff", label: "device's: a fresh buffer, waiting for a frame" },
  "driver-done": { fill: "#d1f0d1", label: "driver's: DD set, a received frame for the next rxBatch" },
  "driver-held": { fill: "#f5e0b8", label: "driver's: refilled, held back (RDT points here)" },
};

export function ringSvg(): string {
  const { size, head, next } = RING;
  const tail = (next - 1 + size) % size;
  const w = 44;
  const x0 = 20;
  const y0 = 70;
  const body: string[] = [
    text(x0, 24, `ixgbe receive ring, ${size} descriptors, after rxBatch (datasheet 7.1.9)`, `font-weight="bold"`),
  ];
  for (let i = 0; i < size; i++) {
    const owner = ringOwner(i);
    body.push(rect(x0 + i * w, y0, w, 40, OWNER_STYLE[owner].fill));
    body.push(text(x0 + i * w + 14, y0 + 18, String(i)));
    body.push(text(x0 + i * w + 6, y0 + 34, owner === "driver-done" ? "DD=1" : "DD=0", "", 10));
  }
  const marker = (i: number, label: string, above: boolean) => {
    const x = x0 + i * w + w / 2;
    return above
      ? `<line x1="${x}" y1="${y0 - 18}" x2="${x}" y2="${y0}" stroke="#333"/>` + text(x - 20, y0 - 22, label)
      : `<line x1="${x}" y1="${y0 + 40}" x2="${x}" y2="${y0 + 58}" stroke="#333"/>` + text(x - 20, y0 + 72, label);
  };
  body.push(marker(head, "RDH (head)", true));
  body.push(marker(tail, "RDT (tail)", true));
  body.push(marker(next, "next (driver)", false));
  let y = y0 + 100;
  for (const owner of ["device", "driver-done", "driver-held"] as const) {
    body.push(rect(x0, y - 11, 14, 14, OWNER_STYLE[owner].fill));
    body.push(text(x0 + 22, y, OWNER_STYLE[owner].label));
    y += 20;
  }
  body.push(text(x0, y + 6, "The device fills descriptors from RDH and moves RDH; the driver receives from next,"));
  body.push(text(x0, y + 22, "refills each descriptor with a fresh buffer (clearing DD), and writes RDT = next - 1 once."));
  return svg(x0 * 2 + size * w, y + 40, body);
}

/** A small mempool: entry size 2048, headroom 64 (MEMPOOL_HEADROOM), rows from `first`. */
export const POOL = { entries: 4, entrySize: 2048, headroom: 64, first: 100, id: 2, iova: 0x1_0020_0000 } as const;

export function bufferTableSvg(): string {
  const { entries, entrySize, headroom, first, id, iova } = POOL;
  const x0 = 20;
  const entryW = 170;
  const headW = 26;
  const body: string[] = [
    text(x0, 24, `A mempool (id ${id}): one DMA region of ${entries} x ${entrySize}-byte entries, buffers ${first}..${first + entries - 1}`, `font-weight="bold"`),
    text(x0, 48, `region IOVA 0x${iova.toString(16)}; poolBytes[${id}] is the CPU's view of the same bytes`),
  ];
  const y0 = 62;
  for (let i = 0; i < entries; i++) {
    const x = x0 + i * entryW;
    body.push(rect(x, y0, headW, 36, "#eeeeee"));
    body.push(rect(x + headW, y0, entryW - headW, 36, "#d1f0d1"));
    body.push(text(x + 3, y0 + 22, "hr", "", 10));
    body.push(text(x + headW + 6, y0 + 22, `data of buffer ${first + i}`));
    body.push(text(x, y0 + 52, `+${i * entrySize}`, "", 10));
  }
  body.push(text(x0, y0 + 70, `hr: ${headroom}-byte headroom (virtio_net_hdr goes here); data: ${entrySize - headroom} bytes (poolCapacity)`));
  const cols = ["buffer", "bufIovaHi", "bufIovaLo", "bufDataOffset", "bufPool", "bufLength"];
  const colW = 112;
  const ty = y0 + 100;
  body.push(text(x0, ty, "The buffer table: one row per buffer number, one typed array per column (buffer-table.ts)", `font-weight="bold"`));
  cols.forEach((c, j) => {
    body.push(rect(x0 + j * colW, ty + 10, colW, 22, "#cfe2ff"));
    body.push(text(x0 + j * colW + 6, ty + 26, c));
  });
  for (let i = 0; i < entries; i++) {
    const a = iova + i * entrySize + headroom;
    const row = [
      String(first + i),
      `0x${hi32(a).toString(16)}`,
      `0x${lo32(a).toString(16).padStart(8, "0")}`,
      String(i * entrySize + headroom),
      String(id),
      i === 1 ? "60" : "0",
    ];
    row.forEach((v, j) => {
      body.push(rect(x0 + j * colW, ty + 32 + i * 22, colW, 22, "#ffffff"));
      body.push(text(x0 + j * colW + 6, ty + 48 + i * 22, v));
    });
  }
  const sy = ty + 56 + entries * 22;
  const stack = Array.from({ length: entries }, (_, i) => first + entries - 1 - i);
  body.push(text(x0, sy + 10, `poolStacks[${id}] (free buffers, Int32Array): [${stack.join(", ")}], poolTop[${id}] = ${entries}: alloc pops ${first}, then ${first + 1}, ...`));
  body.push(text(x0, sy + 28, "A descriptor gets bufIovaLo/Hi[b] as they are; the CPU reaches the frame at poolBytes[bufPool[b]][bufDataOffset[b]]."));
  return svg(860, sy + 48, body);
}

/** An arrow from (x1, y1) to (x2, y2), horizontal or vertical, its head at the end. */
function arrow(x1: number, y1: number, x2: number, y2: number): string {
  const dx = Math.sign(x2 - x1);
  const dy = Math.sign(y2 - y1);
  // The head: a triangle 8 long and 8 wide, pointing along the line.
  const bx = x2 - 8 * dx;
  const by = y2 - 8 * dy;
  const head = `${x2},${y2} ${bx - 4 * dy},${by - 4 * dx} ${bx + 4 * dy},${by + 4 * dx}`;
  return `<line x1="${x1}" y1="${y1}" x2="${bx}" y2="${by}" stroke="#333" stroke-width="1.5"/><polygon points="${head}" fill="#333"/>`;
}

/** A box with a bold first line and plain lines below it, 11-point, 15 apart. */
function box(x: number, y: number, w: number, fill: string, title: string, lines: readonly string[]): string[] {
  const out = [rect(x, y, w, 26 + lines.length * 15, fill), text(x + 8, y + 17, title, `font-weight="bold"`)];
  lines.forEach((l, i) => out.push(text(x + 8, y + 34 + i * 15, l, "", 11)));
  return out;
}

/**
 * The threads of examples/pipeline.ts and what each one does with queue pair 0 and the buffers
 * (pipeline-workers.ts, pipeline-worker.ts, pipeline-stages.ts). Kept as data so that a change
 * of who does what is a change of this table.
 */
export const PIPELINE = {
  main: [
    "opens the device and keeps it: BAR0, link, statistics, close(); shareQueuePair(0), then",
    "starts the two workers with the pair, both rings and the control words (workerData);",
    "under --sim runs the model and delivers the workers' posted doorbells; after both exit,",
    "reclaimQueuePair(0), and close() frees what the TX ring still holds (no other thread left)",
  ],
  receive: [
    "attachReceiveHalf(pair): RX queue 0, its RDT/notify",
    "owns the RX pool: alloc (refill) and every push on its",
    "free stack: acceptReturns, then once per round",
    "collectReturns() moves the returns onto the stack;",
    "rxBatch, enqueue; frees what the ring has no room for",
  ],
  process: [
    "attachPool(rxPool, { returns }), attachTransmitHalf:",
    "TX queue 0, its TDT/notify; dequeue, processFrame,",
    "txBatch; frees dropped frames and, in txBatch's",
    "reclaim, sent ones: each free of an RX pool buffer",
    "goes into the return ring, never onto the stack",
  ],
  shared: [
    "SharedArrayBuffers, seen by all three: the buffer table (bufIovaLo/Hi, bufLength, bufPool,",
    "bufDataOffset, bufHome), the pools' free stacks and poolTop, both rings' slots and indices, the",
    "pair's [STATUS, ATTACHED], the pipeline's [stop, rxDone, procDone, ready] and its counters",
    "DMA memory (hugepages; SharedArrayBuffers of the model under --sim): descriptor rings and frames;",
    "a worker makes its own view at the same address (shareView/openView), no bytes are copied",
    "not shared: a doorbell. A worker stores into its own view of a mapped BAR (or writes the same fd);",
    "a device model's registers get a worker's stores through a mailbox that the main thread delivers",
  ],
} as const;

export function pipelineSvg(): string {
  const x0 = 20;
  const width = 960;
  const colW = 400;
  const xr = width - x0 - colW; // the process worker's column
  const body: string[] = [
    text(x0, 24, "examples/pipeline.ts: three threads around queue pair 0 of one port", `font-weight="bold"`),
    text(x0, 42, "blue: a thread and what it alone touches; green: an SpscRing (one producer, one consumer); gray: shared", "", 11),
  ];
  body.push(...box(x0, 56, width - 2 * x0, "#cfe2ff", "main thread", PIPELINE.main));
  const yw = 170;
  body.push(...box(x0, yw, colW, "#cfe2ff", "receive worker (--cores, 1st)", PIPELINE.receive));
  body.push(...box(xr, yw, colW, "#cfe2ff", "process worker (--cores, 2nd)", PIPELINE.process));
  // workerData down to each worker.
  body.push(arrow(x0 + colW / 2, 142, x0 + colW / 2, yw));
  body.push(arrow(xr + colW / 2, 142, xr + colW / 2, yw));
  // The two rings in the gap between the workers.
  const gx1 = x0 + colW;
  const gx2 = xr;
  body.push(rect(gx1 + 10, yw + 4, gx2 - gx1 - 20, 34, "#d1f0d1"));
  body.push(text(gx1 + 16, yw + 17, "received bufs", "", 11));
  body.push(text(gx1 + 16, yw + 31, "--ring-size", "", 11));
  body.push(arrow(gx1, yw + 46, gx2, yw + 46));
  body.push(rect(gx1 + 10, yw + 54, gx2 - gx1 - 20, 34, "#d1f0d1"));
  body.push(text(gx1 + 16, yw + 67, "return ring", "", 11));
  body.push(text(gx1 + 16, yw + 81, ">= pool size", "", 11));
  body.push(arrow(gx2, yw + 96, gx1, yw + 96));
  // The device: each queue is driven by one worker only.
  const yd = 340;
  body.push(rect(x0, yd, width - 2 * x0, 64, "#f5e0b8"));
  // The title below the queues: the arrows from the workers end on the queues, not on text.
  body.push(rect(x0 + 20, yd + 8, colW - 40, 28, "#ffffff"));
  body.push(text(x0 + 30, yd + 26, "RX queue 0: descriptor ring", "", 11));
  body.push(rect(xr + 20, yd + 8, colW - 40, 28, "#ffffff"));
  body.push(text(xr + 30, yd + 26, "TX queue 0: descriptor ring", "", 11));
  body.push(text(x0 + 8, yd + 54, "NIC, queue pair 0 (82599 or virtio-net): DMA to and from the frames' buffers", `font-weight="bold"`));
  const yb = yw + 26 + PIPELINE.receive.length * 15;
  body.push(arrow(x0 + colW / 2 - 40, yd + 8, x0 + colW / 2 - 40, yb));
  body.push(text(x0 + colW / 2 - 30, yb + 22, "frames in (DD set)", "", 10));
  body.push(arrow(x0 + colW / 2 + 100, yb, x0 + colW / 2 + 100, yd + 8));
  body.push(text(x0 + colW / 2 + 110, yb + 22, "doorbell", "", 10));
  body.push(arrow(xr + colW / 2 - 40, yb, xr + colW / 2 - 40, yd + 8));
  body.push(text(xr + colW / 2 - 30, yb + 22, "frames out, doorbell", "", 10));
  body.push(arrow(xr + colW / 2 + 100, yd + 8, xr + colW / 2 + 100, yb));
  body.push(text(xr + colW / 2 + 110, yb + 22, "sent: reclaim", "", 10));
  const ys = yd + 84;
  body.push(...box(x0, ys, width - 2 * x0, "#eeeeee", "shared memory", PIPELINE.shared));
  const ye = ys + 26 + PIPELINE.shared.length * 15 + 22;
  body.push(text(x0, ye, "A buffer's way: RX pool stack -> receive worker's refill -> NIC -> ring -> process worker -> NIC"));
  body.push(text(x0, ye + 16, "-> TX reclaim (or a drop) -> return ring -> collectReturns -> the stack, pushed by its one owner."));
  return svg(width, ye + 36, body);
}

/** The files this script writes, by repository path. */
export function diagrams(): Record<string, string> {
  return {
    "docs/img/ixgbe-ring.svg": ringSvg(),
    "docs/img/buffer-table.svg": bufferTableSvg(),
    "docs/img/pipeline-threads.svg": pipelineSvg(),
  };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
  for (const [path, content] of Object.entries(diagrams())) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
    console.log(`wrote ${path}`);
  }
}
