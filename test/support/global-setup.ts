import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { cleanHost, hostLeaks } from "./host-leaks.js";

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
    const leaks = await hostLeaks(root);
    await cleanHost(root);
    if (leaks.length === 0) {
      rmSync(root, { recursive: true, force: true });
      return;
    }
    throw new Error(`tests leaked host resources (now cleaned up):\n${leaks.map((leak) => `  ${leak} left behind`).join("\n")}`);
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    testRoot: string;
  }
}
