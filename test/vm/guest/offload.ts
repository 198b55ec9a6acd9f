/**
 * Guest program of the qemu offload test: opens the NIC (a virtio-net-pci on a tap netdev, which
 * offers CSUM and HOST_TSO4/6), prints its offloads as a JSON line, then sends the frames of
 * offload-frames.ts, each with its checksum or TSO request, and closes the device.
 *   node offload.js <pci>
 */
import { openDevice } from "../../../src/open-device.ts";
import { Mempool } from "../../../src/mem/mempool.ts";
import { requestChecksum, requestTso } from "../../../src/mem/offload.ts";
import { writeFrame } from "../../../src/mem/packet.ts";
import { offloadFrames } from "../offload-frames.ts";

const [address] = process.argv.slice(2) as [string];
const dev = openDevice(address);
console.log(JSON.stringify({ offloads: dev.offloads }));
const small = new Mempool(dev.dma, { count: 256, name: "small" });
const big = new Mempool(dev.dma, { count: 8, entrySize: 65536, name: "big" });
const one = new Int32Array(1);
let sent = 0;
for (const f of offloadFrames()) {
  const b = (f.mss === 0 ? small : big).alloc();
  writeFrame(b, f.bytes);
  if (f.mss === 0) requestChecksum(b);
  else requestTso(b, f.mss);
  one[0] = b;
  const end = Date.now() + 5000;
  while (dev.txBatch(0, one, 1) === 0 && Date.now() < end) {}
  sent++;
  // One at a time: qemu's TX path is slow under TCG, and a big pool holds only 8.
  const pause = Date.now() + 20;
  while (Date.now() < pause) {}
}
const settle = Date.now() + 3000;
while (Date.now() < settle) dev.txBatch(0, one, 0);
console.log(JSON.stringify({ sent }));
dev.close();
