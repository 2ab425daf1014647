import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { changesOutside, snapshotHost } from "../support/fuzz/host-watch.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

// The fuzz test's "nothing changed outside the sandbox" check must see what it is meant to see.

describe("changes outside a fuzz sandbox", () => {
  let dir: string;
  let sandbox: string;
  const marker = `fzwatch${process.pid}`;
  const strays: string[] = [];

  beforeEach(async () => {
    dir = await makeTestDir("host-watch");
    sandbox = join(dir, "sandbox");
    await mkdir(sandbox);
    await writeFile(join(dir, "canary"), "x");
  });
  afterEach(async () => {
    for (const stray of strays.splice(0)) await rm(stray, { recursive: true, force: true });
    await removeTestDir(dir);
  });

  it("reports nothing when only the sandbox changed", async () => {
    const before = await snapshotHost(sandbox);
    await mkdir(join(sandbox, `${marker}-inside`));
    expect(await changesOutside(sandbox, before, marker)).toEqual([]);
  });

  it("reports any entry created or removed beside the sandbox", async () => {
    const before = await snapshotHost(sandbox);
    await mkdir(join(dir, "new-sibling"));
    await rm(join(dir, "canary"));
    expect((await changesOutside(sandbox, before, marker)).sort()).toEqual([
      `created: ${join(dir, "new-sibling")}`,
      `removed: ${join(dir, "canary")}`,
    ]);
  });

  it("reports a marked name created in the shared directories above, and no one else's", async () => {
    const before = await snapshotHost(sandbox);
    const marked = join(dirname(dir), `${marker}-escaped`);
    const unmarked = join(dirname(dir), `other-run-${process.pid}`);
    strays.push(marked, unmarked);
    await mkdir(marked);
    await mkdir(unmarked);
    expect(await changesOutside(sandbox, before, marker)).toEqual([`created: ${marked}`]);
  });
});
