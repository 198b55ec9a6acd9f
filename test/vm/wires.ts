/**
 * How the testbed's two NICs are wired to the host. Each NIC's "wire" is a pair of UDP ports on
 * 127.0.0.1 that carry one Ethernet frame per datagram (qemu's `-netdev dgram`). qemu binds
 * qemuPort and accepts datagrams only from hostPort, so a host program binds hostPort and sends to
 * qemuPort; what the NIC transmits arrives at hostPort.
 */

/** One NIC's wire. */
export interface Wire {
  readonly qemuPort: number;
  readonly hostPort: number;
}

export const DEFAULT_BASE_PORT = 40000;

/** Guest PCI addresses of the two NICs (fixed with addr= on qemu's -device). */
export const NIC_ADDRESSES = ['0000:00:01.0', '0000:00:02.0'] as const;

/**
 * With the VM option numa: NIC0 stays on the root bus (node 0 as far as the guest knows: sysfs
 * numa_node -1 or 0), NIC1 sits behind a PCIe expander bridge (pxb-pcie, bus_nr 0x20) that
 * qemu puts on NUMA node 1, on a root port whose secondary bus is 0x21.
 */
export const NUMA_NIC_ADDRESSES = ['0000:00:01.0', '0000:21:00.0'] as const;

/** MAC addresses qemu gives the two NICs. */
export const NIC_MACS = ['52:54:00:12:34:01', '52:54:00:12:34:02'] as const;

/** NIC i uses qemuPort = basePort + 2i and hostPort = basePort + 2i + 1. */
export function wiresFor(basePort: number = DEFAULT_BASE_PORT): readonly [Wire, Wire] {
  if (!Number.isInteger(basePort) || basePort < 1024 || basePort > 65532) {
    throw new RangeError(`base port ${basePort} is not an integer in 1024..65532`);
  }
  return [
    { qemuPort: basePort, hostPort: basePort + 1 },
    { qemuPort: basePort + 2, hostPort: basePort + 3 },
  ];
}

/**
 * The two NICs cabled to each other: each one's qemu socket sends to the other's, so NIC0's TX
 * is NIC1's RX and back, and no host program takes part. hostPort then names the peer NIC's
 * qemuPort (the one address each qemu socket accepts datagrams from).
 */
export function crossWires(basePort: number = DEFAULT_BASE_PORT): readonly [Wire, Wire] {
  const [a, b] = wiresFor(basePort);
  return [
    { qemuPort: a.qemuPort, hostPort: b.qemuPort },
    { qemuPort: b.qemuPort, hostPort: a.qemuPort },
  ];
}
