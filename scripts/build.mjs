// Bundles the driver into dist/: one entry file plus lazily loaded chunks, so a
// node plugin loads only what node mode needs (smaller and faster to start);
// and the builder of the start-up snapshot the image starts from
// (src/cli/snapshot.ts): one CommonJS file, as Node's snapshot builder runs;
// and, where a C compiler and glibc are present, dist/malloc-trim.node
// (src/native/malloc-trim.c), which the plugin runs without elsewhere.
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";

await rm("dist", { recursive: true, force: true });
await build({
  entryPoints: {
    "do-csi-plugin": "src/cli/bin.ts",
    "csi-conformance": "src/conformance/main.ts",
    csictl: "src/csictl/bin.ts",
    "build-snapshot": "src/cli/build-snapshot.ts",
  },
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  chunkNames: "chunks/[name]-[hash]",
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
  banner: {
    // CommonJS dependencies (pino-pretty) call require(); give the ESM bundle one.
    js: "#!/usr/bin/env node\nimport { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
  },
});
await build({
  entryPoints: { "snapshot-builder": "src/cli/snapshot.ts" },
  outdir: "dist",
  outExtension: { ".js": ".cjs" },
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  // Without comments: the source is kept in every snapshot, and V8 keeps a
  // source with any character beyond ASCII at two bytes per character.
  minifyWhitespace: true,
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
  // The bundle's modules were written as ES modules; the few that locate files beside themselves ask import.meta.url.
  define: { "import.meta.url": "__importMetaUrl" },
  banner: { js: "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
});
if ([...(await readFile("dist/snapshot-builder.cjs"))].some((byte) => byte > 0x7f)) {
  throw new Error("dist/snapshot-builder.cjs holds characters beyond ASCII: V8 would keep its whole source at two bytes per character");
}
await chmod("dist/do-csi-plugin.js", 0o755);
await chmod("dist/csi-conformance.js", 0o755);
await chmod("dist/csictl.js", 0o755);

buildMallocTrimAddon();

/**
 * Compiles src/native/malloc-trim.c against the Node-API headers of the Node
 * running the build (Node's own include/node, as its releases and images ship
 * it). Skipped, with a note, where there is no glibc or no C compiler; a
 * compiler that is there and fails fails the build.
 */
function buildMallocTrimAddon() {
  const out = "dist/malloc-trim.node";
  const skip = (why) => process.stderr.write(`build: ${out} not built (${why}); the plugin then trims only V8's heap\n`);
  if (process.platform !== "linux" || !process.report.getReport().header.glibcVersionRuntime) return skip("it needs glibc");
  const include = [join(dirname(dirname(process.execPath)), "include", "node"), "node_modules/node-image/include/node"].find((dir) =>
    existsSync(join(dir, "node_api.h")),
  );
  if (include === undefined) return skip("no node_api.h beside this Node");
  const cc = process.env.CC || "cc";
  const args = ["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-I", include, "-o", out, "src/native/malloc-trim.c"];
  const result = spawnSync(cc, args, { stdio: ["ignore", "inherit", "inherit"] });
  if (result.error?.code === "ENOENT") return skip(`no C compiler: ${cc}`);
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(`build: ${cc} ${args.join(" ")} failed (${result.error?.message ?? `exit ${result.status}`})`);
  }
}
