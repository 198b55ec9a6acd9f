/**
 * The offload flags of the examples, and the report of what is on.
 *
 *   --no-rx-csum --no-tx-csum --no-tso   turn the offload off (DeviceOptions.offloads.* = false;
 *                                        left out: on where the device offers it)
 *   --max-frame N                        DeviceOptions.maxFrameSize (60 .. 9014; default 1514)
 *   --flow-director                      DeviceOptions.flowDirector (ixgbe: Flow Director perfect filters)
 *   --flow RULE (fwd, repeatable)        a flow rule on every port, e.g. udp,dst=10.0.0.2,dport=5000,queue=1
 *                                        or tcp,src=10.0.0.1,drop; implies --flow-director
 *
 * A RULE is the protocol (tcp, udp, sctp, ip) and comma-separated fields: src=A.B.C.D,
 * dst=A.B.C.D, sport=N, dport=N, and the action: queue=N or drop.
 */
import type { DeviceOptions, FlowAction, FlowMatch, NicDevice } from "../../src/device.ts";
import { UsageError, type OptionSpecs } from "./cli.ts";

/** The flags, for parse(): spread them into an example's own options. */
export const OFFLOAD_FLAGS = {
  "no-rx-csum": { type: "boolean", help: "do not let the NIC verify received IP/TCP/UDP checksums (on where it can)" },
  "no-tx-csum": { type: "boolean", help: "do not let the NIC fill in transmitted checksums (on where it can)" },
  "no-tso": { type: "boolean", help: "do not let the NIC segment large TCP frames (on where it can)" },
  "max-frame": { type: "string", arg: "N", help: "the largest frame received or sent, 60 to 9014 (jumbo frames above 1514)", default: "1514", unit: "bytes" },
  "flow-director": { type: "boolean", help: "enable ixgbe Flow Director perfect filters (for --flow)" },
} as const satisfies OptionSpecs;

/** fwd's --flow RULE, repeatable. */
export const FLOW_FLAG = {
  flow: {
    type: "string",
    multiple: true,
    arg: "RULE",
    help: "a flow rule on every port, implies --flow-director: protocol (tcp, udp, sctp, ip), then src=A.B.C.D, dst=A.B.C.D, sport=N, dport=N and queue=N or drop, e.g. udp,dst=10.0.0.2,dport=5000,queue=1",
  },
} as const satisfies OptionSpecs;


/** The parsed flag values this file knows (the rest of an example's values are ignored). */
export interface OffloadFlagValues {
  readonly "no-rx-csum"?: boolean;
  readonly "no-tx-csum"?: boolean;
  readonly "no-tso"?: boolean;
  readonly "max-frame"?: string;
  readonly "flow-director"?: boolean;
  readonly flow?: readonly string[];
}

export interface FlowRuleSpec {
  readonly text: string;
  readonly match: FlowMatch;
  readonly action: FlowAction;
}

/** The device options the flags ask for (only the ones given: the rest keeps the driver's default). */
export function offloadDeviceOptions(values: OffloadFlagValues): Pick<DeviceOptions, "offloads" | "maxFrameSize" | "flowDirector"> {
  const offloads: { rxChecksum?: boolean; txChecksum?: boolean; tso?: boolean } = {};
  if (values["no-rx-csum"]) offloads.rxChecksum = false;
  if (values["no-tx-csum"]) offloads.txChecksum = false;
  if (values["no-tso"]) offloads.tso = false;
  const out: { offloads?: typeof offloads; maxFrameSize?: number; flowDirector?: boolean } = {};
  if (Object.keys(offloads).length > 0) out.offloads = offloads;
  const maxFrame = values["max-frame"];
  if (maxFrame !== undefined) {
    const n = Number(maxFrame);
    if (!Number.isInteger(n) || n < 60 || n > 9014) throw new UsageError(`--max-frame must be an integer from 60 to 9014, got ${maxFrame}`);
    out.maxFrameSize = n;
  }
  if (values["flow-director"] || (values.flow?.length ?? 0) > 0) out.flowDirector = true;
  return out;
}

/** --flow RULE: "udp,dst=10.0.0.2,dport=5000,queue=1". UsageError for what is not a rule. */
export function parseFlowRule(text: string): FlowRuleSpec {
  const [proto, ...fields] = text.split(",").map((s) => s.trim());
  if (proto !== "tcp" && proto !== "udp" && proto !== "sctp" && proto !== "ip") {
    throw new UsageError(`--flow ${text}: a rule starts with tcp, udp, sctp or ip`);
  }
  const match: { proto: FlowMatch["proto"]; src?: string; dst?: string; srcPort?: number; dstPort?: number } = { proto };
  let action: FlowAction | undefined;
  const port = (key: string, value: string): number => {
    if (!/^\d{1,5}$/.test(value)) throw new UsageError(`--flow ${text}: ${key} takes a port number, got '${value}'`);
    return Number(value);
  };
  for (const field of fields) {
    if (field === "drop") {
      action = "drop";
      continue;
    }
    const eq = field.indexOf("=");
    const key = eq < 0 ? field : field.slice(0, eq);
    const value = eq < 0 ? "" : field.slice(eq + 1);
    switch (key) {
      case "src": match.src = value; break;
      case "dst": match.dst = value; break;
      case "sport": match.srcPort = port(key, value); break;
      case "dport": match.dstPort = port(key, value); break;
      case "queue":
        if (!/^\d+$/.test(value)) throw new UsageError(`--flow ${text}: queue takes a queue number, got '${value}'`);
        action = Number(value);
        break;
      default:
        throw new UsageError(`--flow ${text}: unknown field '${field}' (fields: src=, dst=, sport=, dport=, queue= or drop)`);
    }
  }
  if (action === undefined) throw new UsageError(`--flow ${text}: say where the frames go: queue=N or drop`);
  return { text, match, action };
}

/** One line per device: what the driver turned on (NicDevice.offloads). */
export function offloadLines(app: string, devices: readonly NicDevice[]): string {
  return devices.map((d) => `${app}: ${d.address} offloads: ${describeOffloads(d)}\n`).join("");
}

export function describeOffloads(dev: NicDevice): string {
  const o = dev.offloads;
  const on = (b: boolean): string => (b ? "on" : "off");
  return `rx-csum ${on(o.rxChecksum)}, tx-csum ${on(o.txChecksum)}, tso ${on(o.tso)}, max-frame ${o.maxFrameSize}` +
    `${dev.driver === "virtio" ? `, mergeable-rx ${on(o.mergeableRx)}` : ""}, flow-director ${on(o.flowDirector)}, interrupts ${on(o.interrupts)}`;
}

/**
 * Adds every rule to every device (the library's errors, typed, go up to runMain); returns the
 * lines to print: the rule, the device and its id.
 */
export function addFlowRules(app: string, devices: readonly NicDevice[], rules: readonly FlowRuleSpec[]): string {
  let out = "";
  for (const dev of devices) {
    for (const rule of rules) {
      const id = dev.addFlowRule(rule.match, rule.action);
      out += `${app}: ${dev.address} flow rule ${id}: ${rule.text}\n`;
    }
  }
  return out;
}
