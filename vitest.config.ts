import { defineConfig } from "vitest/config";

/**
 * Test files that need root (real loop devices, mounts and filesystems, or a
 * driver that makes them) say so with a `// @module-tag needs-root` line.
 * Without root they are skipped, with this message, instead of failing; the
 * rest (test/fast among them) still runs. CI runs as root, so it runs all.
 */
const NEEDS_ROOT = "needs-root";
const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  process.stderr.write(
    `Not running as root: test files tagged ${NEEDS_ROOT} (real loop devices, mounts and filesystems) are skipped. ` +
      "Run `npm test` as root for the whole suite; `npm run test:fast` runs the tier that needs no root.\n",
  );
}

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
    tags: [{ name: NEEDS_ROOT, description: "needs root: real loop devices, mounts and filesystems" }],
    ...(isRoot ? {} : { tagsFilter: [`!${NEEDS_ROOT}`] }),
  },
});
