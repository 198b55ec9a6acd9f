import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

// `npm run test:hw -- <pci-a> <pci-b>` (test/hw/run.ts): the NicDevice contract on two real ports
// cabled to each other. The files end in .hw-test.ts so that `npm test` never picks them up.
// Vite's cache lives in the temporary directory: the qemu testbed runs this suite from a
// read-only share of the checkout (test/vm/hw-suite.vm.test.ts).
export default defineConfig({
  cacheDir: join(tmpdir(), "ixy-test-hw-vite"),
  test: {
    include: ["test/hw/**/*.hw-test.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
  },
});
