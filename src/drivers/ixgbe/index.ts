/** The ixgbe driver: the entry point openDevice() uses, and the device ids it takes. */
export { createIxgbeDevice, IxgbeDevice, IXGBE_MAX_QUEUES, IXGBE_DEFAULT_RING_SIZE, STATS_POLL_CALLS } from "./ixgbe-device.ts";
export type { IxgbeHwCounters } from "./ixgbe-stats.ts";
export { IXGBE_MIN_TX_LENGTH } from "./ixgbe-tx-queue.ts";
export { IXGBE_BACKPLANE_DEVICE_IDS, IXGBE_DEVICE_IDS, IXGBE_VENDOR_ID, findIxgbeDeviceId, type IxgbeDeviceId } from "./ixgbe-ids.ts";
