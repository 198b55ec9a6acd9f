/**
 * The examples' offload flags (examples/lib/offload-options.ts): what they turn into, the rule
 * syntax of --flow, the report of NicDevice.offloads, and fwd run as a user runs it with a flow
 * rule that moves every frame to one queue pair.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { addFlowRules, describeOffloads, offloadDeviceOptions, offloadLines, parseFlowRule } from "../../examples/lib/offload-options.ts";
import { UsageError } from "../../examples/lib/cli.ts";
import { createIxgbeDevice } from "../../src/drivers/ixgbe/ixgbe-device.ts";
import { NotSupportedError } from "../../src/errors.ts";
import { Ixgbe82599Model } from "../../src/sim/ixgbe/ixgbe-model.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { openRig } from "../virtio/helpers.ts";

const root = new URL("../..", import.meta.url).pathname;

describe("examples' offload options", () => {
  it("turn the flags into DeviceOptions, leaving out what was not given", () => {
    expect(offloadDeviceOptions({})).toEqual({});
    expect(offloadDeviceOptions({ "no-rx-csum": true, "no-tso": true })).toEqual({ offloads: { rxChecksum: false, tso: false } });
    expect(offloadDeviceOptions({ "no-tx-csum": true, "max-frame": "9014" })).toEqual({ offloads: { txChecksum: false }, maxFrameSize: 9014 });
    expect(offloadDeviceOptions({ "flow-director": true })).toEqual({ flowDirector: true });
    expect(offloadDeviceOptions({ flow: ["udp,queue=1"] })).toEqual({ flowDirector: true });
    for (const bad of ["59", "9015", "1.5", "big"]) expect(() => offloadDeviceOptions({ "max-frame": bad })).toThrow(UsageError);
  });

  it("parse --flow rules, and refuse what is not one with a UsageError", () => {
    expect(parseFlowRule("udp,dst=10.0.0.2,dport=5000,queue=1")).toEqual({
      text: "udp,dst=10.0.0.2,dport=5000,queue=1", match: { proto: "udp", dst: "10.0.0.2", dstPort: 5000 }, action: 1,
    });
    expect(parseFlowRule("tcp,src=10.0.0.1,sport=80,drop")).toMatchObject({ match: { proto: "tcp", src: "10.0.0.1", srcPort: 80 }, action: "drop" });
    expect(parseFlowRule("ip,dst=10.1.1.1,queue=0").match).toEqual({ proto: "ip", dst: "10.1.1.1" });
    for (const bad of ["icmp,queue=1", "udp,dst=10.0.0.2", "udp,port=5,queue=1", "udp,dport=x,queue=1", "udp,queue=one", ""]) {
      expect(() => parseFlowRule(bad), bad).toThrow(UsageError);
    }
  });

  it("report what each device has on, and add rules to every device", () => {
    const dma = new SimDma();
    const model = new Ixgbe82599Model({ dma, address: "sim:offload-test" });
    const dev = createIxgbeDevice(model.pci, dma, { rxQueues: 2, flowDirector: true, linkTimeoutMs: 1000 });
    try {
      expect(describeOffloads(dev)).toBe(
        `rx-csum ${dev.offloads.rxChecksum ? "on" : "off"}, tx-csum ${dev.offloads.txChecksum ? "on" : "off"}, ` +
          `tso ${dev.offloads.tso ? "on" : "off"}, max-frame ${dev.offloads.maxFrameSize}, flow-director on, interrupts off`,
      );
      expect(offloadLines("fwd", [dev])).toBe(`fwd: sim:offload-test offloads: ${describeOffloads(dev)}\n`);
      const lines = addFlowRules("fwd", [dev], [parseFlowRule("udp,dst=10.0.0.2,dport=5000,queue=1"), parseFlowRule("udp,dst=10.0.0.3,dport=53,drop")]);
      expect(lines).toBe("fwd: sim:offload-test flow rule 1: udp,dst=10.0.0.2,dport=5000,queue=1\nfwd: sim:offload-test flow rule 2: udp,dst=10.0.0.3,dport=53,drop\n");
      expect(model.fdirFilters).toBe(2);
    } finally {
      dev.close();
    }
    const { dev: virtio } = openRig({}, {});
    expect(describeOffloads(virtio)).toMatch(/mergeable-rx (on|off), flow-director off, interrupts off$/);
    expect(() => addFlowRules("fwd", [virtio], [parseFlowRule("udp,queue=0")])).toThrow(NotSupportedError);
    virtio.close();
  });

  function run(args: string[]) {
    return spawnSync(process.execPath, ["--import", "tsx", ...args], { cwd: root, encoding: "utf8", timeout: 60_000 });
  }

  it("fwd --sim prints the offloads of both ports at start, and --no-* flags turn them off", () => {
    const r = run(["examples/fwd.ts", "--sim", "--seconds", "1", "--no-rx-csum", "--no-tx-csum", "--no-tso"]);
    expect(r.status, r.stderr).toBe(0);
    for (const port of ["sim:ixgbe0", "sim:ixgbe1"]) {
      expect(r.stderr).toContain(`fwd: ${port} offloads: rx-csum off, tx-csum off, tso off, max-frame 1514, flow-director off, interrupts off`);
    }
  }, 60_000);

  it("fwd --sim --flow ...,drop: the NICs drop every frame of the simulated source, other rules let them through", () => {
    // The simulated source sends UDP to 10.0.0.2:1337 (from 16 source ports).
    const dropAll = run(["examples/fwd.ts", "--sim", "--seconds", "1", "--flow", "udp,dst=10.0.0.2,dport=1337,drop"]);
    expect(dropAll.status, dropAll.stderr).toBe(0);
    expect(dropAll.stderr).toContain("fwd: sim:ixgbe0 flow rule 1: udp,dst=10.0.0.2,dport=1337,drop");
    expect(dropAll.stderr).toMatch(/sim:ixgbe0 offloads: .*flow-director on/);
    const offered = Number(/simulated wire of sim:ixgbe0: offered (\d+), taken by the NIC 0,/.exec(dropAll.stderr)?.[1]);
    expect(offered, dropAll.stderr).toBeGreaterThan(1000);
    expect(dropAll.stdout + dropAll.stderr).toMatch(/sim:ixgbe0 total rx 0 packets .* missed 0 /);
    // A rule for another port: everything is taken and forwarded.
    const other = run(["examples/fwd.ts", "--sim", "--seconds", "1", "--flow", "udp,dst=10.0.0.2,dport=1338,drop"]);
    expect(other.status, other.stderr).toBe(0);
    const taken = Number(/simulated wire of sim:ixgbe0: offered \d+, taken by the NIC (\d+)/.exec(other.stderr)?.[1]);
    expect(taken, other.stderr).toBeGreaterThan(1000);
  }, 60_000);

  it("fwd --flow on virtio ports fails with the driver's NotSupportedError", () => {
    const r = run(["examples/fwd.ts", "--sim", "--sim-nic", "virtio", "--seconds", "1", "--flow", "udp,queue=0"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/virtio-net has no flow steering/);
  }, 60_000);
});
