// Bundles the driver into dist/: one entry file plus lazily loaded chunks, so a
// node plugin loads only what node mode needs (smaller and faster to start).
import { build } from "esbuild";
import { chmod, rm } from "node:fs/promises";

await rm("dist", { recursive: true, force: true });
await build({
  entryPoints: { "do-csi-plugin": "src/cli/bin.ts", "csi-conformance": "src/conformance/main.ts", csictl: "src/csictl/bin.ts" },
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
await chmod("dist/do-csi-plugin.js", 0o755);
await chmod("dist/csi-conformance.js", 0o755);
await chmod("dist/csictl.js", 0o755);
