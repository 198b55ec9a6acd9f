/**
 * What a device model needs of the memory it does DMA into: the bytes behind a device address
 * range, or a DmaFaultError when nothing is mapped there. SimDma is one (made-up IOVAs over
 * ordinary ArrayBuffers, for the PCI models); a vhost-user backend has another (the guest memory
 * regions the driver shared with it).
 */
export interface DeviceAddressSpace {
  /**
   * The device's view of [address, address + length) as a Uint8Array aliasing the memory.
   * `what` names the access in a fault ("RX descriptor write", ...), `device` the device.
   */
  resolve(address: number, length: number, what?: string, device?: string): Uint8Array;
}
