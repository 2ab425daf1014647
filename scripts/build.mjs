// Bundles the driver into dist/: one entry file plus lazily loaded chunks, so a
// node plugin loads only what node mode needs (smaller and faster to start);
// and the builder of the start-up snapshot the image starts from
// (src/cli/snapshot.ts): one CommonJS file, as Node's snapshot builder runs.
import { build } from "esbuild";
import { chmod, readFile, rm } from "node:fs/promises";

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
