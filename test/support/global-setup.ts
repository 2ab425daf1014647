import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { loopDevicesUnder, mountsUnder } from "./host-leaks.js";

/**
 * Every test keeps its files, sockets, loop devices and mounts under one root
 * directory. After the run, anything still mounted or attached below it is a
 * leak: it is reported, cleaned up, and fails the run.
 */
export default function setup(project: TestProject): () => Promise<void> {
  const root = join(tmpdir(), `do-csi-tests-${process.pid}`);
  mkdirSync(root, { recursive: true });
  process.env.CSI_TEST_ROOT = root;
  project.provide("testRoot", root);

  return async () => {
    const mounts = await mountsUnder(root);
    const loops = await loopDevicesUnder(root);
    for (const point of mounts) {
      try {
        execFileSync("umount", ["-l", point], { stdio: "ignore" });
      } catch {
        // reported below
      }
    }
    for (const { device } of loops) {
      try {
        execFileSync("losetup", ["-d", device], { stdio: "ignore" });
      } catch {
        // reported below
      }
    }
    if (mounts.length === 0 && loops.length === 0) {
      rmSync(root, { recursive: true, force: true });
      return;
    }
    const lines = [
      ...mounts.map((m) => `  mount left behind: ${m}`),
      ...loops.map((l) => `  loop device left behind: ${l.device} -> ${l.file}`),
    ];
    throw new Error(`tests leaked host resources (now cleaned up):\n${lines.join("\n")}`);
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    testRoot: string;
  }
}
