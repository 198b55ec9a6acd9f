/**
 * Guest program for the promiscuous-mode test: receives on one NIC for two phases, first with
 * promiscuous mode off, then on (both set through the virtio control queue), and prints how many
 * frames arrived for the NIC's own MAC and for other addresses in each phase, as JSON lines.
 *   node promisc.js <pci> <seconds per phase>
 */
import { openDevice } from "../../../src/open-device.ts";
import { bufDataOffset, bufPool, poolBytes } from "../../../src/mem/buffer-table.ts";
import { freeBuffers } from "../../../src/mem/mempool.ts";

const [address, secondsArg] = process.argv.slice(2) as [string, string];
const dev = openDevice(address);
const mac = dev.macAddress();
const bufs = new Int32Array(32);

function phase(promisc: boolean): void {
  dev.setPromisc(promisc);
  // Frames that were already in the ring or queued in qemu passed the old filter: drop them.
  const settle = Date.now() + 1000;
  while (Date.now() < settle) {
    freeBuffers(bufs, 0, dev.rxBatch(0, bufs, 32));
  }
  let own = 0;
  let other = 0;
  const end = Date.now() + Number(secondsArg) * 1000;
  while (Date.now() < end) {
    const n = dev.rxBatch(0, bufs, 32);
    for (let i = 0; i < n; i++) {
      // The destination MAC: the frame's first 6 bytes, in its pool's memory.
      const bytes = poolBytes[bufPool[bufs[i]!]!]!;
      const start = bufDataOffset[bufs[i]!]!;
      let mine = true;
      for (let j = 0; j < 6; j++) if (bytes[start + j] !== mac[j]) mine = false;
      if (mine) own++;
      else other++;
    }
    freeBuffers(bufs, 0, n);
  }
  console.log(JSON.stringify({ promisc, own, other }));
}

phase(false);
phase(true);
dev.close();
