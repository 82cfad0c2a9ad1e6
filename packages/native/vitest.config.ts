import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One worker: the native CPU backend already uses every core.
    pool: "forks",
    maxWorkers: 1,
  },
});
