import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { FLAGS } from "../../src/cli/options.js";
import pkg from "../../package.json" with { type: "json" };
import { readmeFlags } from "./readme-flags.js";

describe("README", () => {
  it("opens with the two commands: run the driver on the local backend, and run every test", async () => {
    const readme = await readFile("README.md", "utf8");
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    const commands = firstBlock.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
    expect(commands).toEqual(["npm ci && npm start", "npm ci && npm test"]);
    expect(pkg.scripts.start).toContain("--backend local");
    expect(pkg.scripts.test).toBe("vitest run");
  });

  it("documents every command-line flag, and no flag that does not exist", async () => {
    const documented = await readmeFlags();
    expect(documented.sort()).toEqual(FLAGS.map((f) => f.name).sort());
  });
});
