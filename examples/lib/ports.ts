/**
 * Opening the ports an example works on: real NICs or vhost-user backends ("vhost-user:<socket>")
 * through openDevice(), or with --sim the device models of src/sim, driven by the very same
 * driver code. In --sim mode each model's wire is fed from a traffic source (pump(), called
 * from the app's loop) and what the model transmits is counted, as a cable to a traffic
 * generator would be.
 */
import type { DeviceOptions, NicDevice } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { devicePlacement, openDevice, type OpenOptions } from "../../src/open-device.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { deliverPostedWrites } from "../../src/sim/sim-mmio.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { PciAddress } from "../../src/pci/pci-address.ts";
import { writeUdpFrame } from "./udp-frame.ts";
import { UsageError } from "./usage-error.ts";

/** Flows the --sim traffic source cycles through. */
const SIM_FLOWS = 16;

export const SimKind = { ixgbe: "ixgbe", virtio: "virtio" } as const;
export type SimKind = (typeof SimKind)[keyof typeof SimKind];

export interface SimWire {
  /** Frames the source offered to the model, and how many it took (the rest: no RX buffer). */
  offered: number;
  accepted: number;
  /** Frames the model put on the wire (transmitted). */
  transmitted: number;
}

export interface Ports {
  readonly devices: NicDevice[];
  /** Per port, what crossed the simulated wire (empty on real hardware). */
  readonly wires: SimWire[];
  /**
   * --sim: delivers the doorbells worker threads posted to the models, and offers each model up
   * to `burst` frames from its traffic source. No-op on hardware.
   */
  pump(burst: number): void;
  /** Closes every device (and, in --sim, the simulated DMA). Idempotent. */
  close(): void;
}

export interface OpenPortsOptions extends DeviceOptions {
  /** The MAC address of vhost-user ports (NICs and device models have their own). */
  readonly mac?: Uint8Array;
  /** Run on device models of this kind instead of hardware. */
  readonly sim?: SimKind | null;
  /** --sim: size of the frames the traffic source offers (default 60). */
  readonly simFrameSize?: number;
  /** --sim: feed the models' wires with traffic (off for a generator, which only sends). */
  readonly simTraffic?: boolean;
}

export function openPorts(addresses: readonly string[], options: OpenPortsOptions = {}): Ports {
  return options.sim ? openSimPorts(addresses.length, options.sim, options) : openRealPorts(addresses, options);
}

/** "port "x": not a PCI address: ..." for a port argument that is neither a PCI address nor vhost-user:<socket>; null when it is one. */
export function pciAddressProblem(port: string): string | null {
  if (port.startsWith("vhost-user:")) return port.length === "vhost-user:".length ? `port "${port}": vhost-user: needs the socket's path` : null;
  try {
    PciAddress.parse(port);
    return null;
  } catch (e) {
    return `port "${port}": ${(e as Error).message.replace(/^malformed PCI address "[^"]*": /, "not a PCI address: ")}`;
  }
}

function openRealPorts(addresses: readonly string[], options: OpenOptions): Ports {
  // Every address checked before the first device is opened: a typo is a usage error (exit 2).
  for (const a of addresses) {
    const problem = pciAddressProblem(a);
    if (problem !== null) throw new UsageError(problem);
  }
  const devices: NicDevice[] = [];
  try {
    for (const a of addresses) devices.push(openDevice(a, options));
  } catch (e) {
    for (const d of devices) d.close();
    throw e;
  }
  return {
    devices,
    wires: [],
    pump() {},
    close() {
      for (const d of devices) d.close();
    },
  };
}

function openSimPorts(count: number, kind: SimKind, options: OpenPortsOptions): Ports {
  // One DMA space for all ports, as one VFIO container is shared by all devices of a process:
  // a buffer received on one port can be sent on the other.
  const dma = new SimDma("sim DMA");
  // Frames of SIM_FLOWS flows (UDP source ports), in turn: the models steer flows to receive
  // queues (ixgbe RSS, virtio's flow hash), so that every queue of a multiqueue port gets some.
  const frames = Array.from({ length: SIM_FLOWS }, (_, i) => {
    const frame = new Uint8Array(options.simFrameSize ?? 60);
    writeUdpFrame(frame, frame.length, { srcPort: 1024 + i });
    return frame;
  });
  let nextFlow = 0;
  const devices: NicDevice[] = [];
  const wires: SimWire[] = [];
  const inject: ((f: Uint8Array) => boolean)[] = [];
  for (let i = 0; i < count; i++) {
    const address = `sim:${kind}${i}`;
    const wire: SimWire = { offered: 0, accepted: 0, transmitted: 0 };
    wires.push(wire);
    const sink = () => {
      wire.transmitted++;
    };
    if (kind === SimKind.ixgbe) {
      const model = new Ixgbe82599Model({ dma, address, mac: Uint8Array.of(0x02, 0, 0, 0, 0x82, i) });
      model.onTransmit = sink;
      inject.push((f) => model.inject(f));
      devices.push(createIxgbeDevice(model.pci, dma, options));
    } else {
      // As many queue pairs as asked for: qemu's mq=on,queues=N.
      const model = new VirtioNetModel({ dma, address, mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, i), queuePairs: options.rxQueues ?? 1 });
      model.onTransmit = sink;
      inject.push((f) => model.inject(f));
      devices.push(createVirtioDevice(model.pci, dma, options));
    }
  }
  const traffic = options.simTraffic ?? true;
  return {
    devices,
    wires,
    pump(burst: number) {
      // Doorbells that worker threads posted (fwd --workers): the models live in this thread.
      deliverPostedWrites();
      if (!traffic) return;
      for (let p = 0; p < inject.length; p++) {
        const wire = wires[p]!;
        const put = inject[p]!;
        for (let i = 0; i < burst; i++) {
          wire.offered++;
          if (put(frames[nextFlow]!)) wire.accepted++;
          nextFlow = (nextFlow + 1) % SIM_FLOWS;
        }
      }
    },
    close() {
      for (const d of devices) d.close();
      dma.close();
    },
  };
}

/**
 * "<app>: <address> NUMA node N (CPUs ...), DMA memory on node N": one line per PCI device, for
 * the start of an app (after its pools exist, so that their memory is counted). Nothing for
 * devices openDevice() did not open on a PCI address (device models, vhost-user).
 */
export function placementLines(app: string, devices: readonly NicDevice[]): string {
  let out = "";
  for (const d of devices) {
    const p = devicePlacement(d.address);
    if (p === null) continue;
    const node = p.node === null ? `no NUMA node${p.deviceNode < 0 ? " (sysfs numa_node -1)" : " (one node)"}` : `NUMA node ${p.node}`;
    const memory = p.memoryNodes.length === 0 ? "none yet" : `on node ${p.memoryNodes.join(", ")}`;
    const bound = p.memoryBoundTo === null ? " (no policy)" : "";
    out += `${app}: ${d.address} ${node}, CPUs ${compactList(p.cpus)}, DMA memory ${memory}${bound}\n`;
  }
  return out;
}

/** [0,1,2,3,8] as "0-3,8", the kernel's cpulist notation. */
function compactList(list: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < list.length; ) {
    let j = i;
    while (j + 1 < list.length && list[j + 1] === list[j]! + 1) j++;
    parts.push(j === i ? `${list[i]}` : `${list[i]}-${list[j]}`);
    i = j + 1;
  }
  return parts.length === 0 ? "?" : parts.join(",");
}
