import { defineConfig } from "vitest/config";

// `npm test`: everything that runs on the host. The qemu testbed tests (test/vm/*.vm.test.ts)
// boot guests and take minutes: they run with `npm run test:vm` (vitest.vm.config.ts).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/vm/**/*.vm.test.ts", "node_modules/**"],
    testTimeout: 30_000,
  },
});
