/**
 * Interrupts for real: the driver in the guest on qemu's virtio-net (modern, behind the emulated
 * IOMMU) through VFIO with MSI-X. The guest program (guest/irq.ts) first waits for frames that do
 * not come (its CPU time then must be near 0), then echoes frames while sleeping in waitForRx
 * between them, then echoes them busy-polling. The host sends one frame at a time and times the
 * round trip: the interrupt phase's extra time over the polling phase is the wake-up latency.
 */
import * as dgram from "node:dgram";
import { describe, expect, it } from "vitest";
import { runVm, type VmHandle } from "./vm.ts";
import { NIC_MACS } from "./wires.ts";

const PINGS = Number(process.env.IRQ_VM_PINGS ?? 200);
const GAP_MS = 30;

function macBytes(mac: string): number[] {
  return mac.split(":").map((h) => parseInt(h, 16));
}

function ping(seq: number): Buffer {
  const f = Buffer.alloc(64);
  f.set(macBytes(NIC_MACS[0]), 0);
  f.set([0x02, 0, 0, 0, 0, 0x77], 6);
  f.writeUInt16BE(0x88b5, 12); // IEEE local experimental EtherType
  f.writeUInt32BE(seq, 14);
  return f;
}

async function until(h: VmHandle, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(h.output())) {
    if (Date.now() > deadline || h.signal.aborted) throw new Error(`guest never printed ${pattern}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** One frame at a time: send, wait for the echo (or 2 s), pause; returns the round trips in ms. */
async function pingPong(h: VmHandle, sock: dgram.Socket, first: number, count: number): Promise<number[]> {
  const rtts: number[] = [];
  let waiting: ((seq: number) => void) | null = null;
  sock.on("message", (msg) => {
    if (msg.length >= 18 && msg.readUInt16BE(12) === 0x88b5) waiting?.(msg.readUInt32BE(14));
  });
  for (let seq = first; seq < first + count && !h.signal.aborted; seq++) {
    const t0 = performance.now();
    const echoed = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 2000);
      waiting = (got) => {
        if (got !== seq) return;
        clearTimeout(timer);
        resolve(true);
      };
      sock.send(ping(seq), h.wires[0].qemuPort, "127.0.0.1");
    });
    if (echoed) rtts.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, GAP_MS));
  }
  sock.removeAllListeners("message");
  return rtts;
}

function summary(rtts: number[]): { n: number; p50: number; p99: number } {
  const s = [...rtts].sort((a, b) => a - b);
  return { n: s.length, p50: +percentile(s, 50).toFixed(3), p99: +percentile(s, 99).toFixed(3) };
}

describe("interrupts on qemu's virtio-net through VFIO (MSI-X)", () => {
  it("waitForRx sleeps at ~0 CPU, wakes on frames from the host; wake-up latency against busy polling", async () => {
    const vm = await runVm({
      mode: "modern",
      command: `node --import tsx test/vm/guest/irq.ts $IXY_NIC0 ${PINGS} 3; s=$?; grep -i -E "vfio|virtio" /proc/interrupts; exit $s`,
      timeoutMs: 200_000,
      stopAfterReady: false,
      onGuestReady: async (h) => {
        const sock = dgram.createSocket("udp4");
        await new Promise<void>((r) => sock.bind(h.wires[0].hostPort, "127.0.0.1", () => r()));
        try {
          await until(h, /IRQ:IDLE /, 120_000);
          const irq = await pingPong(h, sock, 0, PINGS);
          await until(h, /IRQ:IRQ-DONE /, 30_000);
          const poll = await pingPong(h, sock, PINGS, PINGS);
          return { irq, poll };
        } finally {
          sock.close();
        }
      },
    });
    const out = vm.commandOutput;
    expect(vm.exitCode, vm.output.slice(-3000)).toBe(0);
    const line = (tag: string): Record<string, number | boolean> => JSON.parse(new RegExp(`IRQ:${tag} (\\{.*\\})`).exec(out)![1]!);
    expect(line("OPEN").interrupts).toBe(true);
    const idle = line("IDLE") as { wallMs: number; cpuMs: number; wakes: number };
    const irqDone = line("IRQ-DONE") as { got: number; sleeps: number };
    const { irq, poll } = vm.ready!;
    const result = { idle, irqDone, pollDone: line("POLL-DONE"), irqRtt: summary(irq), pollRtt: summary(poll) };
    console.log(`irq.vm: ${JSON.stringify(result)}`);
    console.log(out.split("\n").filter((l) => /vfio/i.test(l)).join("\n"));
    // An idle wait costs next to nothing: far below a busy loop's 100% of a vCPU.
    expect(idle.cpuMs).toBeLessThan(0.1 * idle.wallMs);
    // Every echo in the interrupt phase followed a wake-up from waitForRx.
    expect(irq.length).toBeGreaterThanOrEqual(0.9 * PINGS);
    expect(irqDone.sleeps).toBeGreaterThanOrEqual(0.9 * PINGS);
    expect(poll.length).toBeGreaterThanOrEqual(0.9 * PINGS);
  });
});
