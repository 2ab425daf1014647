import { readFile } from "node:fs/promises";

/** The flags documented in README.md's "## Flags" table, by name without the dashes, in table order. */
export async function readmeFlags(): Promise<string[]> {
  const readme = await readFile("README.md", "utf8");
  const table = readme.slice(readme.indexOf("## Flags"), readme.indexOf("## Logs"));
  return [...table.matchAll(/^\| `--([a-z-]+)` \|/gm)].map((m) => m[1] ?? "");
}
