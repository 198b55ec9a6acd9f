/**
 * Trace mode on virtio (docs/trace.md): the §3.1.1 handshake with the device status and the
 * features by name, on the modern and the legacy interface of the model; the hot path's
 * notifications summarised; vhost-user messages by name, against the scripted backend.
 */
import { afterEach, describe, expect, it } from "vitest";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { MessageBuffer } from "../../src/drivers/virtio/vhost-user/message.ts";
import { describeRequest } from "../../src/drivers/virtio/vhost-user/message-trace.ts";
import { VhostUserFlag, VhostUserRequest as R } from "../../src/drivers/virtio/vhost-user/protocol.ts";
import { Mempool } from "../../src/mem/mempool.ts";
import { writeFrame } from "../../src/mem/packet.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { hugepagesMissing, SMALL } from "../vhost-user/helpers.ts";
import { ScriptedBackend } from "../vhost-user/scripted-backend.ts";

/** Each expectation found on a line after the one before it. */
function expectInOrder(lines: readonly string[], expected: readonly (readonly string[])[]): void {
  let at = 0;
  for (const parts of expected) {
    let i = at;
    while (i < lines.length && !parts.every((p) => lines[i]!.includes(p))) i++;
    expect(i, `a line with ${JSON.stringify(parts)} after line ${at}:\n${lines.slice(Math.max(0, at - 3), at + 3).join("\n")}`).toBeLessThan(lines.length);
    at = i + 1;
  }
}

function openTraced(legacy: boolean, hotPath: "summary" | "each" = "summary") {
  const dma = new SimDma("sim DMA");
  const model = new VirtioNetModel({ dma, legacy, address: "sim:virtio0" });
  const lines: string[] = [];
  const dev = createVirtioDevice(model.pci, dma, {
    linkTimeoutMs: 0, rxRingSize: 64, txRingSize: 64, trace: { sink: (l) => lines.push(l), hotPath },
    ...(legacy ? { transport: "legacy" as const, unsafeNoIommu: true } : {}),
  });
  return { dma, dev, lines };
}

describe("virtio trace", () => {
  it("modern: the §3.1.1 handshake, status and features by name, common-config fields by name, in order", () => {
    const { dev, lines } = openTraced(false);
    expectInOrder(lines, [
      ["write device_status = 0x00", "3.1.1 1. reset"],
      ["write device_status = 0x01 [ACKNOWLEDGE]", "3.1.1 2. ACKNOWLEDGE"],
      ["write device_status = 0x03 [ACKNOWLEDGE DRIVER]", "3.1.1 3. DRIVER"],
      ["write device_feature_select = 0x00000000", "3.1.1 4. feature negotiation"],
      ["read  device_feature"],
      ["features: device offers ", " VERSION_1 ACCESS_PLATFORM", "; driver accepts ", "MAC", "VERSION_1 ACCESS_PLATFORM"],
      ["write driver_feature_select"],
      ["write driver_feature "],
      ["write device_status = 0x0b [ACKNOWLEDGE DRIVER FEATURES_OK]", "3.1.1 5.-6. FEATURES_OK"],
      ["read  device_status = 0x0b [ACKNOWLEDGE DRIVER FEATURES_OK]"],
      ["write queue_select = 0x0000", "4.1.5.1.3 7. virtqueue setup"],
      ["write queue_size   = 0x0040"],
      ["write queue_desc_lo"],
      ["write queue_driver_lo"],
      ["write queue_device_lo"],
      ["read  queue_notify_off"],
      ["write queue_enable = 0x0001"],
      ["read  mac[0]", "5.1.5 7. MAC address"],
      ["write device_status = 0x0f [ACKNOWLEDGE DRIVER FEATURES_OK DRIVER_OK]", "3.1.1 8. DRIVER_OK"],
      ["write queue_notify"],
      ["5.1.6.5.1 promiscuous mode on"],
    ]);
    const features = lines.find((l) => l.includes("features: "))!;
    // Accepted features are a subset of the offered ones (names, not numbers).
    const [offered, accepted] = features.split("; driver accepts ").map((s) => s.replace(/.*device offers /, "").split(" "));
    for (const name of accepted!) expect(offered).toContain(name);
    expect(accepted).not.toContain("EVENT_IDX");
    dev.linkSpeed();
    expect(lines.at(-1)).toBe("sim:virtio0 read  status       = 0x0001 [LINK_UP]  5.1.4 link status (linkSpeed)");
    dev.close();
    expect(lines.slice(-2).map((l) => l.replace(/^\S+ /, ""))).toEqual([
      "write device_status = 0x00  3.1.1 close: reset",
      "read  device_status = 0x00  3.1.1 close: reset",
    ]);
  });

  it("legacy: the I/O BAR registers by name, no FEATURES_OK, feature bits named", () => {
    const { dev, lines } = openTraced(true);
    expectInOrder(lines, [
      ["write STATUS       = 0x00", "3.1.1 1. reset"],
      ["write STATUS       = 0x01 [ACKNOWLEDGE]"],
      ["write STATUS       = 0x03 [ACKNOWLEDGE DRIVER]"],
      ["read  HOST_FEATURES", "ANY_LAYOUT", "3.1.1 4. feature negotiation"],
      ["features: device offers ", "; driver accepts ", "ANY_LAYOUT"],
      ["write GUEST_FEATURES", "ANY_LAYOUT"],
      ["write QUEUE_SEL    = 0x0000", "4.1.4.8 7. virtqueue setup"],
      ["write QUEUE_PFN"],
      ["read  mac[0]"],
      ["write STATUS       = 0x07 [ACKNOWLEDGE DRIVER DRIVER_OK]", "3.1.1 8. DRIVER_OK"],
      ["write QUEUE_NOTIFY"],
    ]);
    expect(lines.some((l) => l.includes("FEATURES_OK"))).toBe(false);
    dev.close();
  });

  it("summarises the notifications of the hot path; prints them one by one with hotPath 'each'", () => {
    for (const mode of ["summary", "each"] as const) {
      const { dev, dma, lines } = openTraced(false, mode);
      const pool = new Mempool(dma, { count: 64 });
      const bufs = new Int32Array(4);
      const start = lines.length;
      for (let round = 0; round < 3; round++) {
        expect(pool.allocBatch(bufs, 4)).toBe(4);
        for (const b of bufs) writeFrame(b, new Uint8Array(60));
        expect(dev.txBatch(0, bufs, 4)).toBe(4);
      }
      const notifies = lines.slice(start).filter((l) => l.includes("queue_notify"));
      if (mode === "summary") {
        expect(notifies).toEqual([]);
        dev.close();
        expect(lines.some((l) => /hot path, last 1 s: write queue_notify x[1-9]/.test(l))).toBe(true);
      } else {
        expect(notifies.length).toBeGreaterThan(0);
        expect(notifies.every((l) => l.endsWith("  hot path"))).toBe(true);
        dev.close();
      }
    }
  });
});

describe("vhost-user trace", () => {
  it("decodes each request by name with its main payload", () => {
    const m = new MessageBuffer();
    const v = VhostUserFlag.VERSION;
    expect(describeRequest(m.empty(R.SET_OWNER, v))).toBe("vhost-user SET_OWNER");
    expect(describeRequest(m.u64(R.SET_FEATURES, (1n << 32n) | (1n << 30n) | (1n << 5n), v | VhostUserFlag.NEED_REPLY)))
      .toBe("vhost-user SET_FEATURES MAC PROTOCOL_FEATURES VERSION_1 (NEED_REPLY)");
    expect(describeRequest(m.u64(R.SET_PROTOCOL_FEATURES, (1n << 3n) | 1n, v))).toBe("vhost-user SET_PROTOCOL_FEATURES MQ REPLY_ACK");
    expect(describeRequest(m.state(R.SET_VRING_NUM, 1, 256, v))).toBe("vhost-user SET_VRING_NUM queue 1 num 256");
    expect(describeRequest(m.state(R.SET_VRING_ENABLE, 0, 1, v))).toBe("vhost-user SET_VRING_ENABLE queue 0 enable");
    expect(describeRequest(m.u64(R.SET_VRING_CALL, 0x101n, v))).toBe("vhost-user SET_VRING_CALL queue 1 no fd");
    expect(describeRequest(m.addr(R.SET_VRING_ADDR, 0, 0, { desc: 0x1000, used: 0x3000, avail: 0x2000, log: 0 }, v)))
      .toBe("vhost-user SET_VRING_ADDR queue 0 desc 0x1000 used 0x3000 avail 0x2000");
    expect(describeRequest(m.memTable(R.SET_MEM_TABLE, [{ guestAddress: 0x100000, size: 0x200000, userAddress: 0x7f0000000000, mmapOffset: 0 }], v)))
      .toBe("vhost-user SET_MEM_TABLE 1 region, guest 0x100000 size 0x200000");
  });

  const noHugepages = hugepagesMissing();
  const backends: ScriptedBackend[] = [];
  afterEach(async () => {
    for (const b of backends.splice(0)) await b.stop();
  });

  it.skipIf(noHugepages !== null)("prints the session's messages in order, and the status the front-end keeps", async () => {
    const b = await ScriptedBackend.start({});
    backends.push(b);
    const lines: string[] = [];
    const dev = createVhostUserDevice(b.path, { ...SMALL, mac: Uint8Array.of(2, 0, 0, 0, 0, 1), trace: { sink: (l) => lines.push(l) } });
    dev.close();
    const messages = lines.filter((l) => l.includes(" vhost-user ")).map((l) => l.split(" vhost-user ")[1]!.split(" ")[0]);
    expect(messages).toEqual([
      "SET_OWNER", "GET_FEATURES", "GET_PROTOCOL_FEATURES", "SET_PROTOCOL_FEATURES", "GET_QUEUE_NUM", "SET_FEATURES", "SET_MEM_TABLE",
      ...[0, 1].flatMap(() => ["SET_VRING_NUM", "SET_VRING_BASE", "SET_VRING_ADDR", "SET_VRING_KICK", "SET_VRING_CALL", "SET_VRING_ENABLE"]),
      "GET_VRING_BASE", "GET_VRING_BASE",
    ]);
    expectInOrder(lines, [
      ["device status = ACKNOWLEDGE (kept by the front-end)"],
      ["device status = ACKNOWLEDGE DRIVER "],
      ["features: device offers ", "VERSION_1", "; driver accepts "],
      ["vhost-user SET_FEATURES", "VERSION_1"],
      ["device status = ACKNOWLEDGE DRIVER FEATURES_OK "],
      ["vhost-user SET_VRING_NUM queue 0 num 64"],
      ["device status = ACKNOWLEDGE DRIVER FEATURES_OK DRIVER_OK "],
    ]);
  });
});
