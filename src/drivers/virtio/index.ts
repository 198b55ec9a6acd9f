/** The virtio-net driver: createVirtioDevice() and the PCI ids it handles. */
export { createVirtioDevice, VirtioNetDevice, type VirtioDeviceOptions } from "./virtio-device.ts";
export {
  findVirtioDeviceId,
  mayUseLegacyTransport,
  virtioTransportFor,
  VIRTIO_DEVICE_IDS,
  VIRTIO_VENDOR_ID,
  type VirtioDeviceId,
  type VirtioPciTransport,
} from "./virtio-ids.ts";
export type { TransportKind } from "./transport.ts";
export { createVhostUserDevice, VHOST_USER_PREFIX, type VhostUserOptions } from "./vhost-user-device.ts";
