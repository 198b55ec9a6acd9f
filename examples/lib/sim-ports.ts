/**
 * --sim's ports: device models of src/sim (the 82599, virtio-net) in place of NICs, driven by the
 * very same driver code as hardware (createIxgbeDevice, createVirtioDevice on the model's
 * PciFunction instead of VFIO's), and a simulated wire in front of each model:
 * - a traffic source: pump() offers each model a burst of UDP frames, as a traffic generator on
 *   the other end of a cable would; traffic() paces it for --sim-pps;
 * - counters: what was offered, what the model took (the rest: no free RX descriptor), what it
 *   transmitted;
 * - posted doorbells: the models live in this thread, so the register writes worker threads
 *   post (fwd --workers, pipeline) reach them when pump() runs.
 *
 * The apps call pump() through pollLoop's `wire` option, before every step: the models receive
 * their traffic there, and the app's step is the same code it runs on hardware.
 */
import type { DeviceOptions, NicDevice } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { deliverPostedWrites } from "../../src/sim/sim-mmio.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { writeUdpFrame } from "./udp-frame.ts";

/** The device models --sim-nic chooses from. */
export const SimKind = { ixgbe: "ixgbe", virtio: "virtio" } as const;
export type SimKind = (typeof SimKind)[keyof typeof SimKind];

/** Flows the traffic source cycles through. */
const SIM_FLOWS = 16;

/** What crossed one model's simulated wire. */
export interface SimWire {
  /** Frames the source offered to the model, and how many it took (the rest: no RX buffer). */
  offered: number;
  accepted: number;
  /** Frames the model put on the wire (transmitted). */
  transmitted: number;
}

export interface SimPortsOptions extends DeviceOptions {
  /** Size of the frames the traffic source offers (default 60). */
  readonly frameSize?: number;
}

/** `count` device models of `kind`, opened by the drivers, addresses sim:<kind>0, sim:<kind>1 ... */
export function openSimulatedPorts(kind: SimKind, count: number, options: SimPortsOptions = {}): SimulatedPorts {
  return new SimulatedPorts(kind, count, options);
}

export class SimulatedPorts {
  /** The drivers' devices on the models, in port order. */
  readonly devices: NicDevice[] = [];
  /** Per port, what crossed its simulated wire. */
  readonly wires: SimWire[] = [];
  /** One DMA space for all ports, as one VFIO container is shared by all devices of a process: a buffer received on one port can be sent on the other. */
  readonly #dma = new SimDma("sim DMA");
  /** Per port, hands a frame to the model's receive side; false when it had no RX buffer. */
  readonly #inject: ((frame: Uint8Array) => boolean)[] = [];
  /**
   * Frames of SIM_FLOWS flows (UDP source ports), offered in turn: the models steer flows to
   * receive queues (ixgbe RSS, virtio's flow hash), so that every queue of a multiqueue port gets some.
   */
  readonly #frames: Uint8Array[];
  #nextFlow = 0;

  constructor(kind: SimKind, count: number, options: SimPortsOptions) {
    this.#frames = Array.from({ length: SIM_FLOWS }, (_, i) => {
      const frame = new Uint8Array(options.frameSize ?? 60);
      writeUdpFrame(frame, frame.length, { srcPort: 1024 + i });
      return frame;
    });
    const dma = this.#dma;
    for (let i = 0; i < count; i++) {
      const address = `sim:${kind}${i}`;
      const wire: SimWire = { offered: 0, accepted: 0, transmitted: 0 };
      this.wires.push(wire);
      const sink = () => {
        wire.transmitted++;
      };
      if (kind === SimKind.ixgbe) {
        const model = new Ixgbe82599Model({ dma, address, mac: Uint8Array.of(0x02, 0, 0, 0, 0x82, i) });
        model.onTransmit = sink;
        this.#inject.push((f) => model.inject(f));
        this.devices.push(createIxgbeDevice(model.pci, dma, options));
      } else {
        // As many queue pairs as asked for: qemu's mq=on,queues=N.
        const model = new VirtioNetModel({ dma, address, mac: Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, i), queuePairs: options.rxQueues ?? 1 });
        model.onTransmit = sink;
        this.#inject.push((f) => model.inject(f));
        this.devices.push(createVirtioDevice(model.pci, dma, options));
      }
    }
  }

  /**
   * Delivers the doorbells worker threads posted to the models, then offers each model `burst`
   * frames from its traffic source. (pktgen, which only sends, has ports of its own: pktgen-sim.ts.)
   */
  pump(burst: number): void {
    deliverPostedWrites();
    const frames = this.#frames;
    for (let p = 0; p < this.#inject.length; p++) {
      const wire = this.wires[p]!;
      const put = this.#inject[p]!;
      for (let i = 0; i < burst; i++) {
        wire.offered++;
        if (put(frames[this.#nextFlow]!)) wire.accepted++;
        this.#nextFlow = (this.#nextFlow + 1) % SIM_FLOWS;
      }
    }
  }

  /**
   * The traffic source as pollLoop's `wire` option calls it (once per step, and while asleep).
   * `pps` < 0: `burst` frames per call, as fast as the loop runs (the models never idle);
   * otherwise `pps` frames per second and port, spread over the calls by the clock (0: an idle
   * wire), so that the --irq modes have something to sleep through.
   */
  traffic(burst: number, pps: number): () => void {
    if (pps < 0) return () => this.pump(burst);
    const start = performance.now();
    let offered = 0;
    return () => {
      const due = Math.floor(((performance.now() - start) / 1000) * pps) - offered;
      if (due <= 0) {
        this.pump(0); // still delivers the doorbells worker threads posted
        return;
      }
      offered += due; // what the wire could not take in time is gone, as on a real wire
      this.pump(Math.min(due, 4 * burst));
    };
  }

  /** "<app>: simulated wire of sim:ixgbe0: offered N, taken by the NIC N, transmitted N", a line per port. */
  wireLines(app: string): string {
    return this.wires
      .map((w, i) => `${app}: simulated wire of ${this.devices[i]!.address}: offered ${w.offered}, taken by the NIC ${w.accepted}, transmitted ${w.transmitted}\n`)
      .join("");
  }

  /** Closes every device, then the simulated DMA. Idempotent. */
  close(): void {
    for (const d of this.devices) d.close();
    this.#dma.close();
  }
}
