/**
 * `node dist/build-snapshot.js FILE` builds the plugin's start-up snapshot
 * (snapshot.ts) into FILE for the Node that runs it, then starts the plugin from
 * it once (`--version`) to prove that it loads; a warning from the build fails
 * it too. A snapshot is bound to the Node binary that built it: the image builds
 * its own with its Node (Dockerfile), and the tests and the bench build one for
 * each Node they run.
 *
 * Start the plugin from it with `node --snapshot-blob FILE -- ARGS...`.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const USAGE = "usage: node build-snapshot.js FILE";

function main(args: readonly string[]): number {
  const [target, ...rest] = args;
  if (target === undefined || target.startsWith("-") || rest.length > 0) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const out = resolve(target);
  // Node reads the builder's path from a configuration file, relative to its working directory.
  const dir = mkdtempSync(join(tmpdir(), "do-csi-plugin-snapshot-"));
  try {
    const config = join(dir, "snapshot-config.json");
    const builder = fileURLToPath(new URL("./snapshot-builder.cjs", import.meta.url));
    writeFileSync(config, JSON.stringify({ builder, withoutCodeCache: true }));
    const built = spawnSync(process.execPath, ["--snapshot-blob", out, "--build-snapshot-config", config], {
      encoding: "utf8",
      env: { ...process.env, NODE_OPTIONS: "" },
    });
    if (built.status !== 0) {
      process.stderr.write(`building the snapshot failed (${built.status ?? built.signal}):\n${built.stderr}${built.stdout}`);
      return 1;
    }
    // The builder prints nothing unless Node warns: about a built-in module it does not vouch for
    // inside a snapshot (state it set up as it loaded may not match the process started from it).
    if (built.stderr.trim() !== "") {
      process.stderr.write(
        `building the snapshot warned; load what it names when it is used, not with the modules the snapshot holds:\n${built.stderr}`,
      );
      return 1;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const check = spawnSync(process.execPath, ["--snapshot-blob", out, "--", "--version"], { encoding: "utf8" });
  if (check.status !== 0) {
    process.stderr.write(`the snapshot was built but does not start (${check.status ?? check.signal}):\n${check.stderr}${check.stdout}`);
    return 1;
  }
  const mb = (statSync(out).size / 1e6).toFixed(1);
  process.stdout.write(`${out}: ${mb} MB, Node ${process.version}; ${check.stdout.trim()}\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
