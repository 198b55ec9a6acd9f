import { defineConfig } from "vitest/config";

// `npm run test:hw -- <pci-a> <pci-b>` (test/hw/run.ts): the NicDevice contract on two real ports
// cabled to each other. The files end in .hw-test.ts so that `npm test` never picks them up.
export default defineConfig({
  test: {
    include: ["test/hw/**/*.hw-test.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
  },
});
