/**
 * SimPciFunction's MSI-X, which stands in for VFIO's in every model test: a capability with the
 * table size, real eventfds, the enable bit as the kernel sets it, NORESIZE re-enabling, and
 * signal() that reaches only enabled vectors.
 */
import { describe, expect, it } from "vitest";
import { InterruptWait } from "../../src/irq/interrupt-wait.ts";
import { PCI_CAP_ID_MSIX, PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, PCI_MSIX_FLAGS_QSIZE, pciCapabilities } from "../../src/pci/pci-function.ts";
import { SimPciFunction } from "../../src/sim/sim-pci.ts";
import { eventfdRead } from "../../src/sys/eventfd.ts";
import { fcntl, F_GETFD } from "../../src/sys/libc.ts";

function newPci(vectors?: number): SimPciFunction {
  const pci = new SimPciFunction({ address: "sim:msix", vendorId: 0x1af4, deviceId: 0x1041, bars: [] });
  if (vectors !== undefined) pci.addMsixCapability(vectors);
  return pci;
}

function messageControl(pci: SimPciFunction): number {
  for (const [id, at] of pciCapabilities(pci.config)) if (id === PCI_CAP_ID_MSIX) return pci.config.read16(at + PCI_MSIX_FLAGS);
  throw new Error("no MSI-X capability");
}

function isOpen(fd: number): boolean {
  try {
    fcntl(fd, F_GETFD);
    return true;
  } catch {
    return false;
  }
}

describe("SimPciFunction MSI-X", () => {
  it("has none without the capability", () => {
    const pci = newPci();
    expect(pci.msix).toBeNull();
    expect(pci.signal(0)).toBe(false);
  });

  it("describes its vectors in the capability's Message Control (table size - 1)", () => {
    const pci = newPci(4);
    expect(pci.msix!.count).toBe(4);
    expect(messageControl(pci) & PCI_MSIX_FLAGS_QSIZE).toBe(3);
    expect(messageControl(pci) & PCI_MSIX_FLAGS_ENABLE).toBe(0);
  });

  it("enable() gives one eventfd per vector, sets MSI-X Enable; signal() writes the vector's eventfd", async () => {
    const pci = newPci(4);
    const fds = pci.msix!.enable(3);
    expect(fds).toHaveLength(3);
    expect(new Set(fds).size).toBe(3);
    expect(pci.msix!.enabled).toBe(3);
    expect(messageControl(pci) & PCI_MSIX_FLAGS_ENABLE).toBe(PCI_MSIX_FLAGS_ENABLE);
    expect(pci.signal(1)).toBe(true);
    expect(eventfdRead(fds[0]!)).toBe(0);
    expect(eventfdRead(fds[1]!)).toBe(1);
    // vector 3 exists but is not enabled: the message goes nowhere
    expect(pci.signal(3)).toBe(false);
    const p = new InterruptWait(fds[2]!, "vector 2").wait(5000);
    setTimeout(() => pci.signal(2), 10);
    expect(await p).toBe(true);
    expect(pci.interruptCounts).toEqual([0, 1, 1, 0]);
    pci.close();
  });

  it("changing the count re-enables (NORESIZE): the old eventfds are closed", () => {
    const pci = newPci(4);
    const first = pci.msix!.enable(2);
    const second = pci.msix!.enable(4);
    expect(second).toHaveLength(4);
    for (const fd of first) if (!second.includes(fd)) expect(isOpen(fd)).toBe(false);
    pci.msix!.disable();
    expect(pci.msix!.enabled).toBe(0);
    expect(messageControl(pci) & PCI_MSIX_FLAGS_ENABLE).toBe(0);
    for (const fd of second) expect(isOpen(fd)).toBe(false);
    expect(pci.signal(0)).toBe(false);
  });

  it("refuses 0 or more vectors than the device has", () => {
    const pci = newPci(4);
    expect(() => pci.msix!.enable(0)).toThrow(RangeError);
    expect(() => pci.msix!.enable(5)).toThrow(/1 to 4, got 5/);
  });

  it("close() disables MSI-X and closes the eventfds", () => {
    const pci = newPci(2);
    const fds = pci.msix!.enable(2);
    pci.close();
    expect(pci.msix!.enabled).toBe(0);
    for (const fd of fds) expect(isOpen(fd)).toBe(false);
  });
});
