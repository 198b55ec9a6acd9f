/**
 * pktgen's --sim ports: the generator's port on a device model of src/sim, driven by the same
 * driver as hardware, with what the generator needs of a wire (where lib/sim-ports.ts's models
 * have a traffic source, which a generator does not want): with `loopback` a second model wired
 * back to back to the first (--rx-port: what port 0 sends, port 1 receives, through the models'
 * connect()), and a capture of what port 0 transmits into a pcap file (--sim-capture: for tests
 * and for looking at the generated frames with tshark).
 */
import type { DeviceOptions, NicDevice } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { PcapWriter } from "./pcap-writer.ts";
import { SimKind } from "./sim-ports.ts";

export interface PktgenSimPorts {
  /** The sending port, and with `loopback` the receiving one. */
  readonly devices: NicDevice[];
  close(): void;
}

export function openPktgenSim(kind: SimKind, o: { loopback: boolean; capture?: string; device?: DeviceOptions }): PktgenSimPorts {
  const dma = new SimDma("sim DMA");
  const count = o.loopback ? 2 : 1;
  const capture = o.capture === undefined ? null : new PcapWriter(o.capture);
  const devices: NicDevice[] = [];
  const onTransmit = capture ? (frame: Uint8Array) => capture.write(frame, 0, frame.length, Date.now()) : null;
  if (kind === SimKind.ixgbe) {
    const models = Array.from({ length: count }, (_, i) => new Ixgbe82599Model({ dma, address: `sim:${kind}${i}`, mac: Uint8Array.of(0x02, 0, 0, 0, 0x82, i) }));
    if (models[1]) models[0]!.connect(models[1]);
    models[0]!.onTransmit = onTransmit;
    for (const m of models) devices.push(createIxgbeDevice(m.pci, dma, o.device));
  } else {
    const models = Array.from({ length: count }, (_, i) => new VirtioNetModel({ dma, address: `sim:${kind}${i}`, mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, i) }));
    if (models[1]) models[0]!.connect(models[1]);
    models[0]!.onTransmit = onTransmit;
    for (const m of models) devices.push(createVirtioDevice(m.pci, dma, o.device));
  }
  return {
    devices,
    close() {
      for (const d of devices) d.close();
      capture?.close();
      dma.close();
    },
  };
}
