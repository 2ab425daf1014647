import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Files run in parallel; each keeps its devices, mounts and sockets under its own directory.
    fileParallelism: true,
    reporters: process.env.CI ? ["default"] : ["default"],
  },
});
