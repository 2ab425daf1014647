import { access, constants } from "node:fs/promises";
import { delimiter } from "node:path";

// Containers and minimal hosts often leave the sbin directories off PATH.
const EXTRA_DIRS = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/** Directories searched for host tools: PATH, then the usual sbin directories. */
export function searchPath(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = (env.PATH ?? "").split(delimiter).filter(Boolean);
  for (const dir of EXTRA_DIRS) if (!dirs.includes(dir)) dirs.push(dir);
  return dirs;
}

/**
 * Absolute path of an executable, or undefined when it is not installed.
 *
 * The candidate is joined by hand, not with node:path's join: the node
 * plugin's readiness check (every Probe past its cache) runs this for each
 * tool and PATH directory, and module loading at start-up has already spent
 * most of node:path's normalising function's budget for V8's optimizing
 * compiler. Those few calls then made V8 optimize it on the first Probe,
 * which maps about 5 MiB of the compiler's code into an otherwise idle plugin.
 */
export async function findExecutable(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of searchPath(env)) {
    const candidate = dir.endsWith("/") ? dir + name : `${dir}/${name}`;
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
