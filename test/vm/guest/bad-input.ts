/**
 * Guest program for the bad-input test: tries openDevice() on what a user gets wrong, on a real
 * VFIO system, and prints one JSON line per case: the error's class and message, and whether
 * any file descriptor or hugepage was left behind.
 *   node bad-input.js <nic0> <nic1>
 */
import * as fs from "node:fs";
import { openDevice } from "../../../src/open-device.ts";

const [nic0, nic1] = process.argv.slice(2) as [string, string];
const fds = () => fs.readdirSync("/proc/self/fd").length;
const freeHugepages = () => Number(/HugePages_Free:\s+(\d+)/.exec(fs.readFileSync("/proc/meminfo", "utf8"))![1]);
const setHugepages = (n: number) => fs.writeFileSync("/proc/sys/vm/nr_hugepages", String(n));

function attempt(name: string, address: string): void {
  const fdsBefore = fds();
  const hugeBefore = freeHugepages();
  let result: Record<string, unknown>;
  try {
    const dev = openDevice(address, { linkTimeoutMs: 2000 });
    result = { opened: dev.driver };
    dev.close();
  } catch (e) {
    result = { error: (e as Error).name, message: (e as Error).message };
  }
  console.log(JSON.stringify({ case: name, ...result, leakedFds: fds() - fdsBefore, leakedHugepages: hugeBefore - freeHugepages() }));
}

// A PCI device that is not a NIC: the 9p transport the testbed shares the project with.
const other = fs
  .readdirSync("/sys/bus/pci/devices")
  .find((d) => fs.readFileSync(`/sys/bus/pci/devices/${d}/device`, "utf8").trim() === "0x1009");

attempt("malformed address", "00:01");
attempt("no such device", "0000:00:1f.6");
attempt("wrong device", other!);

const pages = freeHugepages();
setHugepages(0);
attempt("no hugepages", nic0);
setHugepages(pages);
attempt("hugepages back", nic0);

const first = openDevice(nic0, { linkTimeoutMs: 2000 });
attempt("already open", nic0);
first.close();
attempt("open again after close", nic0);

fs.writeFileSync(`/sys/bus/pci/devices/${nic1}/driver/unbind`, nic1);
attempt("not bound to vfio-pci", nic1);
