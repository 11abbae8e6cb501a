import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Integration tests each start a real server: run their files one at a time.
    fileParallelism: false,
    testTimeout: 20_000,
  },
});
