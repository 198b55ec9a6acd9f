/** The ixgbe driver: the entry point openDevice() uses, and the device ids it takes. */
export { createIxgbeDevice, IxgbeDevice, IXGBE_MAX_QUEUES, IXGBE_DEFAULT_RING_SIZE } from "./ixgbe-device.ts";
export { IXGBE_DEVICE_IDS, IXGBE_VENDOR_ID, findIxgbeDeviceId, type IxgbeDeviceId } from "./ixgbe_ids.ts";
