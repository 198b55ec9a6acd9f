// The testpmd stdout parser on output captured from dpdk-testpmd 22.11 (Debian 12): a vhost
// backend with two ports, io forwarding, --stats-period, stopped with SIGINT. Needs no DPDK.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { TestpmdOutputParser, TestpmdParseError, windowRates, type StatsSnapshot } from "./testpmd-output.ts";

const captured = readFileSync(new URL("./fixtures/testpmd-backend-io.stdout.txt", import.meta.url), "utf8");

function feed(text: string, chunk: number): { parser: TestpmdOutputParser; started: string[] } {
  let t = 0;
  const started: string[] = [];
  const parser = new TestpmdOutputParser(2, { onForwardingStarted: (mode, ports) => started.push(`${mode}/${ports}`) }, () => (t += 1000));
  for (let i = 0; i < text.length; i += chunk) parser.push(text.slice(i, i + chunk));
  parser.end();
  return { parser, started };
}

describe("TestpmdOutputParser", () => {
  it("finds the start of forwarding, every statistics block and the forward statistics", () => {
    const { parser, started } = feed(captured, 1 << 20);
    expect(started).toEqual(["io/2"]);
    expect(parser.forwardingMode).toBe("io");
    expect(parser.snapshots).toHaveLength(2);
    const [a, b] = parser.snapshots as [StatsSnapshot, StatsSnapshot];
    expect(a.ports[0]).toEqual({
      port: 0, rxPackets: 8567008, rxMissed: 0, rxBytes: 548288512, rxErrors: 0, rxNombuf: 0,
      txPackets: 8565440, txErrors: 0, txBytes: 548188160, rxPps: 2855251, txPps: 2854728, rxBps: 1461888584, txBps: 1461621016,
    });
    expect(a.ports[1]!.rxPackets).toBe(8565440);
    expect(b.ports[0]!.rxPackets).toBe(14677920);
    expect(b.ports[1]!.txPps).toBe(2036670);
    expect(parser.forwardStats).toEqual([
      { port: 0, rxPackets: 15118592, rxDropped: 0, txPackets: 15117024, txDropped: 0 },
      { port: 1, rxPackets: 15117024, rxDropped: 0, txPackets: 15118592, txDropped: 0 },
    ]);
  });

  it("gives the same result whatever the chunks the pipe delivers", () => {
    const whole = feed(captured, 1 << 20).parser;
    for (const size of [1, 7, 100, 4096]) {
      const p = feed(captured, size).parser;
      expect(p.snapshots.map((s) => s.ports)).toEqual(whole.snapshots.map((s) => s.ports));
      expect(p.forwardStats).toEqual(whole.forwardStats);
    }
  });

  it("stamps a block with the time its first port arrived", () => {
    const p = feed(captured, 1 << 20).parser;
    expect(p.snapshots[1]!.at).toBeGreaterThan(p.snapshots[0]!.at);
  });

  it("rejects a block without a counter it needs", () => {
    const broken = captured.replace("RX-missed: 0 ", "RX-mussed: 0 ");
    expect(() => feed(broken, 1 << 20)).toThrow(TestpmdParseError);
  });
});

describe("windowRates", () => {
  it("divides the counters' growth by the time between the blocks", () => {
    const p = feed(captured, 1 << 20).parser;
    const a = { ...p.snapshots[0]!, at: 0 };
    const b = { ...p.snapshots[1]!, at: 3000 };
    const w = windowRates(a, b);
    expect(w.seconds).toBe(3);
    expect(w.ports[0]!.rxPackets).toBe(14677920 - 8567008);
    expect(w.rxPackets).toBe(14677920 - 8567008 + (14676352 - 8565440));
    expect(w.rxMpps).toBeCloseTo(w.rxPackets / 3e6, 9);
    expect(w.drops).toBe(0);
    expect(() => windowRates(b, a)).toThrow(RangeError);
  });
});
