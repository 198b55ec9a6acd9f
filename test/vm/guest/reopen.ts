/**
 * Guest program for the kill test: opens both NICs, checks they come up (MAC, link), closes them.
 * Exit code 0 when both open and close cleanly.
 *   node reopen.js <pci-a> <pci-b>
 */
import { openDevice } from "../../../src/open-device.ts";

const addresses = process.argv.slice(2);
for (const address of addresses) {
  const dev = openDevice(address, { linkTimeoutMs: 5000 });
  const mac = Array.from(dev.macAddress(), (b) => b.toString(16).padStart(2, "0")).join(":");
  console.log(`reopen: ${address} ${dev.driver} mac ${mac} link ${dev.linkSpeed()} Mbit/s`);
  dev.close();
}
console.log("reopen: ok");
