import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    testTimeout: 300_000,
    pool: "forks",
    maxWorkers: 1,
  },
});
