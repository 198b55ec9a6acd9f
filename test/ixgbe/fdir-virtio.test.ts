/**
 * Flow rules on the virtio drivers: virtio-net has no flow steering, so addFlowRule and
 * removeFlowRule throw NotSupportedError saying so, and flowDirector: true fails the open (PCI
 * and vhost-user alike). Next to the ixgbe Flow Director tests (fdir.test.ts) on purpose.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { createVhostUserDevice } from "../../src/drivers/virtio/vhost-user-device.ts";
import { DeviceClosedError, NotSupportedError } from "../../src/errors.ts";
import { startModelBackend } from "../../src/sim/vhost-user/backend-process.ts";
import { SimDma } from "../../src/sim/sim-dma.ts";
import { VirtioNetModel } from "../../src/sim/virtio/virtio-model.ts";
import { createVirtioDevice } from "../../src/drivers/virtio/virtio-device.ts";
import { openRig } from "../virtio/helpers.ts";
import { hugepagesMissing, SMALL } from "../vhost-user/helpers.ts";
import { socketPath } from "../vhost-user/scripted-backend.ts";

describe("flow rules on virtio-net", () => {
  it("addFlowRule and removeFlowRule throw NotSupportedError naming the missing flow steering", () => {
    const { dev } = openRig({}, {});
    expect(() => dev.addFlowRule({ proto: "udp", dst: "10.0.0.2" }, 0)).toThrow(NotSupportedError);
    expect(() => dev.addFlowRule({ proto: "udp", dst: "10.0.0.2" }, 0)).toThrow(/virtio-net has no flow steering/);
    expect(() => dev.removeFlowRule(1)).toThrow(NotSupportedError);
    dev.close();
    expect(() => dev.addFlowRule({ proto: "udp" }, 0)).toThrow(DeviceClosedError);
  });

  it("flowDirector: true fails the open with NotSupportedError (PCI and vhost-user)", () => {
    const dma = new SimDma("sim DMA");
    const model = new VirtioNetModel({ dma });
    expect(() => createVirtioDevice(model.pci, dma, { linkTimeoutMs: 0, flowDirector: true })).toThrow(NotSupportedError);
    // Refused before the socket is even looked at.
    expect(() => createVhostUserDevice("/nonexistent/vhost.sock", { ...SMALL, flowDirector: true })).toThrow(/no flow steering/);
  });

  const noHugepages = hugepagesMissing(4);
  it.skipIf(noHugepages !== null)("a vhost-user device refuses flow rules too", async () => {
    const backend = startModelBackend({ socket: socketPath(), mode: "loopback", queueSize: 256, packed: false });
    try {
      await backend.ready;
      const dev = createVhostUserDevice(backend.socket, SMALL);
      try {
        expect(() => dev.addFlowRule({ proto: "tcp", dstPort: 80 }, 0)).toThrow(/virtio-net has no flow steering/);
        expect(() => dev.removeFlowRule(1)).toThrow(NotSupportedError);
      } finally {
        dev.close();
      }
    } finally {
      await backend.stop();
      fs.rmSync(path.dirname(backend.socket), { recursive: true, force: true });
    }
  });
});
