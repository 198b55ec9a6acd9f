/**
 * The soak's vhost-user lane: the virtio driver over vhost-user against the project's model
 * backend in a child process (src/sim/vhost-user), in loopback mode: every frame the driver
 * sends comes back on its receive ring. Frames are numbered and of mixed sizes as in the model
 * lanes (soak.ts); they must come back all, in order, of the right length, the sampled ones
 * byte for byte, and every buffer must be back in its pool after close().
 *
 * vhost-user memory is an address space of its own (shared with the backend), so this lane
 * cannot be joined to the model lanes' SimDma: it runs by itself, on its own pool.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { acquireSharedMemory, releaseSharedMemory } from "../../src/drivers/virtio/vhost-user/shared-memory.ts";
import { bufHome, ownerOf, poolTop, ROWS_IN_USE, tableState } from "../../src/mem/buffer-table.ts";
import { hugepageCounts } from "../../src/mem/hugepages.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { frameOf, writeFrame } from "../../src/mem/packet.ts";
import { startModelBackend } from "../../src/sim/vhost-user/backend-process.ts";

export interface VhostUserLaneResult {
  /** Why the lane did not run (no hugepages), or null. */
  readonly skipped: string | null;
  readonly sent: number;
  readonly received: number;
  readonly checkedBytes: number;
  readonly buffersLost: number;
  readonly buffersTotal: number;
  readonly problems: readonly string[];
}

export interface LaneFrames {
  readonly lane: number;
  readonly length: (lane: number, seq: number) => number;
  readonly header: (frame: Uint8Array, lane: number, seq: number) => void;
  readonly pattern: (seq: number, i: number) => number;
  readonly sample: number;
}

const BATCH = 32;
const IN_FLIGHT = 512;

export async function runVhostUserLane(frames: number, f: LaneFrames, rand: () => number): Promise<VhostUserLaneResult> {
  const { free, total } = hugepageCounts();
  if (free < 8) {
    return { skipped: `needs 8 free hugepages (HugePages_Free ${free} of ${total})`, sent: 0, received: 0, checkedBytes: 0, buffersLost: 0, buffersTotal: 0, problems: [] };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ixy-soak-vu-"));
  const backend = startModelBackend({ socket: path.join(dir, "soak.sock"), mode: "loopback", queueSize: 256 });
  const problems: string[] = [];
  let sent = 0;
  let received = 0;
  let checkedBytes = 0;
  let buffersLost = 0;
  let buffersTotal = 0;
  let holding = false;
  try {
    await backend.ready;
    const dev = createVhostUserDevice(backend.socket, {
      memoryBytes: 16 << 20, rxRingSize: 256, txRingSize: 256, mempoolSize: 1024, linkTimeoutMs: 0, checked: true,
    });
    const pool = new Mempool(dev.dma, { count: 1024, checked: true, name: "soak vhost-user TX pool" });
    const frame = new Uint8Array(1514);
    const out = new Int32Array(BATCH);
    const back = new Int32Array(BATCH);
    let nextSeq = 0;
    let lastSeen = -1;
    const receive = (): void => {
      const n = dev.rxBatch(0, back, BATCH);
      for (let i = 0; i < n; i++) {
        const got = frameOf(back[i]!);
        const seq = ((got[15]! << 24) | (got[16]! << 16) | (got[17]! << 8) | got[18]!) >>> 0;
        if (got[14] !== f.lane) problems.push(`vhost-user lane: a frame of lane ${got[14]} came back`);
        else if (seq !== lastSeen + 1) problems.push(`vhost-user lane: seq ${seq} after ${lastSeen} (lost, reordered or duplicated)`);
        lastSeen = seq;
        const length = f.length(f.lane, seq);
        if (got.length !== length) problems.push(`vhost-user lane: seq ${seq} came back ${got.length} bytes long, not ${length}`);
        if (seq % f.sample === 0) {
          for (let j = 20; j < length; j++) {
            if (got[j] !== f.pattern(seq, j)) {
              problems.push(`vhost-user lane: seq ${seq} byte ${j} is ${got[j]}, not ${f.pattern(seq, j)}`);
              break;
            }
          }
          checkedBytes += length;
        }
      }
      received += n;
      if (n > 0) pool.freeBatch(back, n);
    };
    // The backend starts its queues a moment after the handshake: wait for a first frame back.
    let spins = 0;
    while (sent < frames && problems.length < 20) {
      // At most IN_FLIGHT frames out at once: the backend keeps what the receive ring cannot take
      // yet in a backlog of 1024 and drops beyond it, so a sender that runs ahead would lose frames.
      const room = IN_FLIGHT - (sent - received);
      const want = Math.min(1 + Math.floor(rand() * BATCH), frames - sent, Math.max(room, 0));
      const k = pool.allocBatch(out, want);
      for (let i = 0; i < k; i++) {
        const seq = nextSeq + i;
        const length = f.length(f.lane, seq);
        f.header(frame, f.lane, seq);
        if (seq % f.sample === 0) for (let j = 20; j < length; j++) frame[j] = f.pattern(seq, j);
        else frame.fill(0, 20, length);
        writeFrame(out[i]!, frame.subarray(0, length));
      }
      const taken = k === 0 ? 0 : dev.txBatch(0, out, k);
      nextSeq += taken;
      sent += taken;
      if (taken < k) pool.freeBatch(out, k - taken, taken);
      receive();
      // Let the event loop run now and then (the backend's control pipe), never per frame.
      if (++spins % 4096 === 0) await new Promise((r) => setImmediate(r));
    }
    // Drain: whatever is still with the backend comes back.
    const deadline = performance.now() + 5000;
    while (received < sent && performance.now() < deadline && problems.length < 20) {
      receive();
      dev.txBatch(0, out, 0); // reclaims what the backend has consumed
      await new Promise((r) => setImmediate(r));
    }
    if (received !== sent) problems.push(`vhost-user lane: ${sent} frames sent, ${received} came back`);
    // Hold the shared memory across close(), which would otherwise release it with the last
    // device (and every pool with it), so that the account below sees the pools after close.
    acquireSharedMemory(16 << 20);
    holding = true;
    dev.close();
    // Every buffer of the TX pool and of the driver's receive pool must be home.
    const end = tableState[ROWS_IN_USE]!;
    for (let b = 0; b < end;) {
      const owner = ownerOf(b);
      if (owner instanceof Mempool) {
        if (!owner.dead && (owner === pool || owner.name.startsWith(dev.address))) {
          buffersTotal += owner.count;
          buffersLost += owner.count - poolTop[owner.id]!;
          let home = 0;
          for (let x = owner.first; x < owner.first + owner.count; x++) home += bufHome[x] === 1 ? 1 : 0;
          if (owner.checked && home !== poolTop[owner.id]) problems.push(`${owner.name}: ${home} marked home, ${poolTop[owner.id]} free`);
        }
        b = owner.first + owner.count;
      } else b++;
    }
    pool.close();
  } finally {
    if (holding) releaseSharedMemory();
    await backend.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { skipped: null, sent, received, checkedBytes, buffersLost, buffersTotal, problems: problems.slice(0, 20) };
}
