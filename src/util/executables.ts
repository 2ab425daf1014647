import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";

// Containers and minimal hosts often leave the sbin directories off PATH.
const EXTRA_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/** Directories searched for host tools: PATH, then the usual sbin directories. */
export function searchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = (env.PATH ?? "").split(delimiter).filter(Boolean);
  for (const dir of EXTRA_DIRS) if (!dirs.includes(dir)) dirs.push(dir);
  return dirs;
}

/** Absolute path of an executable, or undefined when it is not installed. */
export async function findExecutable(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of searchPath(env)) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** The tools of `names` that are not installed. */
export async function missingExecutables(names: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const found = await Promise.all(names.map((n) => findExecutable(n, env)));
  return names.filter((_, i) => found[i] === undefined);
}
