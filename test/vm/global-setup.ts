/**
 * Before the VM tests: build the testbed (kernel, initramfs; installs its apt packages as root)
 * and compile the examples to plain JavaScript for the guest (tsx needs ~5 s to start under TCG).
 */
import { compileForGuest } from "./compile.ts";
import { ensureTestbed } from "./vm.ts";

export const GUEST_PROGRAMS = [
  "examples/fwd.ts",
  "examples/pktgen.ts",
  "examples/pcap.ts",
  "test/vm/guest/reopen.ts",
  "test/vm/guest/bad-input.ts",
  "test/vm/guest/promisc.ts",
  "test/vm/guest/numa.ts",
];

export default async function setup(): Promise<void> {
  ensureTestbed();
  await compileForGuest(GUEST_PROGRAMS);
}
