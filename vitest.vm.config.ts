import { defineConfig } from "vitest/config";

// `npm run test:vm`: the qemu testbed tests. Each boots a guest (about 3 s under TCG) and runs the
// drivers for real; the guests share UDP ports, so files run one after another.
export default defineConfig({
  test: {
    include: ["test/vm/**/*.vm.test.ts"],
    globalSetup: ["test/vm/global-setup.ts"],
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 600_000,
  },
});
