/**
 * glibc's malloc_trim, through the addon scripts/build.mjs builds beside the
 * bundle (src/native/malloc-trim.c says why it exists).
 *
 * The addon is loaded when first asked for, by the heap trimmer's first trim,
 * so it is in no start-up snapshot and costs a start nothing. The bundle keeps
 * it at dist/malloc-trim.node, and this module is bundled into dist/ (the
 * snapshot's builder) or into dist/chunks/, so both are looked in. Where it was
 * not built (no C compiler, no glibc) or cannot be loaded, `mallocTrimmer`
 * answers why, and the plugin trims V8's heap only.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const MALLOC_TRIM_ADDON = "malloc-trim.node";

/** Hands glibc's free pages back to the system; true when some were. */
export type MallocTrim = () => boolean;

export type MallocTrimmer = { readonly trim: MallocTrim } | { readonly unavailable: string };

let loaded: MallocTrimmer | undefined;

/** The addon's trim, or why there is none (looked up once). */
export function mallocTrimmer(): MallocTrimmer {
  loaded ??= load();
  return loaded;
}

function load(): MallocTrimmer {
  const candidates = [new URL(`./${MALLOC_TRIM_ADDON}`, import.meta.url), new URL(`../${MALLOC_TRIM_ADDON}`, import.meta.url)];
  const path = candidates.map((url) => fileURLToPath(url)).find((p) => existsSync(p));
  if (path === undefined) return { unavailable: `${MALLOC_TRIM_ADDON} was not built (it needs a C compiler and glibc)` };
  const module: { exports: { trim?: unknown } } = { exports: {} };
  try {
    process.dlopen(module, path);
  } catch (err) {
    return { unavailable: `${path} could not be loaded: ${err instanceof Error ? err.message : String(err)}` };
  }
  const trim = module.exports.trim;
  if (typeof trim !== "function") return { unavailable: `${path} has no trim function` };
  return { trim: () => trim() === true };
}
