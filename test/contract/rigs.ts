/**
 * The NicDevice variants the contract suite runs against: the ixgbe driver on the 82599 model,
 * and the virtio driver on the virtio-net model through its modern and its legacy interface,
 * each with the model completing at once or asynchronously (and, for virtio, out of order). Each
 * opens a device on a fresh SimDma and describes, in the same terms for all, how to put frames on
 * the device's wire, what the device has sent, how to hold back and release transmission, and
 * what the rings hold.
 *
 * Own set-up on purpose (test/ixgbe/helpers.ts and test/virtio/helpers.ts are not used here).
 */
import type { DeviceStats, NicDevice } from "../../src/device.ts";
import { newStats } from "../../src/device.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { createVirtioDevice, VirtioNetDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { RDBAH, RDBAL, RDH, RDLEN, RDT, TDBAH, TDBAL, TDH, TDLEN, TDT } from "../../src/sim/ixgbe/model-registers.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";

export interface RigOptions {
  /** Descriptors per ring (default 64). */
  readonly ringSize?: number;
  /** Buffers in the driver's receive mempool (default 4 x ringSize). */
  readonly poolSize?: number;
  /** DeviceOptions.checked (default true). */
  readonly checked?: boolean;
  /** Whether the model's link is up (default true). */
  readonly link?: boolean;
  /** DeviceOptions.linkTimeoutMs (default 1000: the models' links are up at once). */
  readonly linkTimeoutMs?: number;
  /** The device's memory (default: a new SimDma). */
  readonly dma?: SimDma;
}

export interface Rig {
  readonly dev: NicDevice;
  readonly dma: SimDma;
  /** A frame arrives from the wire; true when the device placed it in a receive buffer. */
  deliver(frame: Uint8Array): boolean;
  /** Every frame the model has put on its wire so far, in order. */
  transmitted(): Uint8Array[];
  /** Lets the model do pending work (the virtio model's device thread); a no-op where none. */
  step(): void;
  /** true: the model stops sending (frames stay in the TX ring); false: it sends what is there. */
  holdTx(on: boolean): void;
  /** Frames the receive ring holds before the device has to drop. */
  readonly rxHolds: number;
  /** Frames the transmit ring takes while the device sends nothing. */
  readonly txHolds: number;
  /** Buffers the driver keeps in its receive ring. */
  readonly rxRingBuffers: number;
  /** Frames the device dropped for want of a receive buffer that the driver's rxMissed does not count. */
  modelOnlyDrops(): number;
  /** The model's view of the rings: indices (and, where reachable, descriptor memory). */
  ringState(): unknown;
  /** Protocol violations the model noticed (must stay empty). */
  violations(): readonly string[];
}

export interface Variant {
  readonly name: string;
  readonly driver: "ixgbe" | "virtio";
  open(options?: RigOptions): Rig;
}

export function stats(dev: NicDevice): DeviceStats {
  const s = newStats();
  dev.readStats(s);
  return s;
}

/**
 * The ixgbe driver on the 82599 model. Synchronous: the model sends inside the TDT write.
 * Asynchronous: it does nothing inside register writes; step() lets it work through the TX
 * rings in chunks of random size (seeded), as a device running beside the CPU would.
 */
function ixgbeVariant(asynchronous: boolean): Variant {
  return {
    name: asynchronous ? "ixgbe on the 82599 model, asynchronous" : "ixgbe on the 82599 model",
    driver: "ixgbe",
    open(options = {}) {
      const ringSize = options.ringSize ?? 64;
      const dma = options.dma ?? new SimDma(`contract ixgbe${asynchronous ? " async" : ""} DMA`);
      const model = new Ixgbe82599Model({ dma, linkUp: options.link ?? true, asynchronous, seed: ringSize + 17 });
      const sent: Uint8Array[] = [];
      model.onTransmit = (frame) => sent.push(frame);
      const dev = createIxgbeDevice(model.pci, dma, {
        rxRingSize: ringSize,
        txRingSize: ringSize,
        mempoolSize: options.poolSize ?? 4 * ringSize,
        checked: options.checked ?? true,
        linkTimeoutMs: options.linkTimeoutMs ?? 1000,
      });
      const regs = model.regs;
      const ringBytes = (bal: number, bah: number, len: number): number[] =>
        Array.from(dma.resolve((regs.peek32(bal) & ~0x7f) + regs.peek32(bah) * 0x1_0000_0000, regs.peek32(len)));
      return {
        dev,
        dma,
        deliver: (frame) => model.inject(frame, 0),
        transmitted: () => sent,
        step: () => {
          model.drain();
        },
        // Synchronous: the model sends only while the link is up, and resumes when it comes back
        // (linkUpDelayMs 0). Asynchronous: the link partner pauses transmission (XOFF).
        holdTx: (on) => {
          if (asynchronous) {
            model.faults.stallTx = on;
            if (!on) model.drain();
          } else {
            model.setLink(!on);
          }
        },
        // RDT stays one behind RDH: a ring of n descriptors holds n - 1 frames, and TX likewise.
        rxHolds: ringSize - 1,
        txHolds: ringSize - 1,
        rxRingBuffers: ringSize,
        modelOnlyDrops: () => 0, // MPC and QPRDC are the driver's rxMissed
        ringState: () => ({
          rdh: regs.peek32(RDH(0)),
          rdt: regs.peek32(RDT(0)),
          tdh: regs.peek32(TDH(0)),
          tdt: regs.peek32(TDT(0)),
          rx: ringBytes(RDBAL(0), RDBAH(0), RDLEN(0)),
          tx: ringBytes(TDBAL(0), TDBAH(0), TDLEN(0)),
          counters: { ...model.counters },
        }),
        violations: () => [...model.violations],
      };
    },
  };
}

/**
 * `async`: the model's asynchronous, out-of-order completion mode (VirtioNetModel `completion:
 * "async"`): nothing completes inside a doorbell write, receive buffers are filled in random
 * order, transmit chains complete out of order, in random chunks, when the rig steps the model
 * (step() drains all its pending work that way; deliver() drains the receive queue).
 * `packed`: the model offers VIRTIO_F_RING_PACKED (qemu packed=on) and the driver must take it
 * (modern transport only: a legacy device has no packed rings).
 */
function virtioVariant(legacy: boolean, { async = false, packed = false }: { async?: boolean; packed?: boolean } = {}): Variant {
  const kind = legacy ? "virtio legacy (transitional model, I/O BAR)" : packed ? "virtio modern, packed ring" : "virtio modern";
  return {
    name: async ? `${kind}, asynchronous out-of-order` : kind,
    driver: "virtio",
    open(options = {}) {
      const ringSize = options.ringSize ?? 64;
      const dma = options.dma ?? new SimDma(`contract virtio ${legacy ? "legacy" : "modern"} DMA`);
      // The device offers twice the ring size: the modern driver shrinks its queues to ringSize,
      // the legacy one keeps the device's size and posts only ringSize entries.
      const model = new VirtioNetModel({
        dma,
        legacy,
        queueSize: 2 * ringSize,
        link: options.link ?? true,
        packed,
        ...(async ? { completion: "async" as const, seed: 0x5eed + ringSize } : {}),
      });
      const sent: Uint8Array[] = [];
      model.onTransmit = (frame) => sent.push(frame);
      const dev = createVirtioDevice(model.pci, dma, {
        rxRingSize: ringSize,
        txRingSize: ringSize,
        mempoolSize: options.poolSize ?? 4 * ringSize,
        checked: options.checked ?? true,
        linkTimeoutMs: options.linkTimeoutMs ?? 1000,
        ring: packed ? "packed" : "split",
      });
      if (!(dev instanceof VirtioNetDevice)) throw new Error("createVirtioDevice did not return a VirtioNetDevice");
      if (dev.transport !== (legacy ? "legacy" : "modern")) throw new Error(`expected the ${legacy ? "legacy" : "modern"} transport`);
      if (dev.ring !== (packed ? "packed" : "split")) throw new Error(`expected a ${packed ? "packed" : "split"} ring, got ${dev.ring}`);
      const [rxCapacity, txCapacity] = dev.ringCapacity;
      return {
        dev,
        dma,
        // Async: the frame reaches the used ring before deliver() returns, as on the other
        // variants (the cases receive right after delivering); the receive buffer it went into
        // is still a random one of those the device took ahead.
        deliver: async
          ? (frame) => {
            const placed = model.inject(frame);
            model.poll(0);
            return placed;
          }
          : (frame) => model.inject(frame),
        transmitted: () => sent,
        step: () => model.poll(),
        holdTx: (on) => {
          model.faults.stall = on;
          if (!on) model.poll();
        },
        rxHolds: rxCapacity,
        txHolds: txCapacity,
        rxRingBuffers: rxCapacity,
        // virtio-net has no counters: what the device could not place, the driver never sees.
        modelOnlyDrops: () => model.counters.rxDropped,
        ringState: () => ({
          rx: model.ringIndices(0),
          tx: model.ringIndices(1),
          rxBuffersAvailable: model.rxBuffersAvailable,
          modelNotifications: [...model.notifications],
          driverNotifications: [...dev.notifications],
          txFree: dev.txFree,
          counters: { ...model.counters },
        }),
        violations: () => [
          ...model.violations,
          ...(model.counters.txBadHeader === 0 ? [] : [`${model.counters.txBadHeader} frames sent with a non-zero virtio_net_hdr`]),
        ],
      };
    },
  };
}

export const VARIANTS: readonly Variant[] = [
  ixgbeVariant(false),
  ixgbeVariant(true),
  virtioVariant(false),
  virtioVariant(true),
  virtioVariant(false, { async: true }),
  virtioVariant(true, { async: true }),
  virtioVariant(false, { packed: true }),
  virtioVariant(false, { async: true, packed: true }),
];
