/**
 * The image, checked without a Docker engine: the Dockerfile is parsed, its
 * entrypoint compared with the package's bin, its apt packages with the
 * commands the source spawns, its build context with .dockerignore; the
 * bundle it ships is run from a copy with no node_modules in reach.
 */
import { execFileSync } from "node:child_process";
import { cp, mkdir, readdir, readFile, symlink } from "node:fs/promises";
import { builtinModules } from "node:module";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pkg from "../../package.json" with { type: "json" };
import { FORMATTABLE_FILESYSTEMS, mkfsCommand } from "../../src/mounter/format.js";
import { findExecutable } from "../../src/util/executables.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { IMAGE_NODE, imageEntrypointNodeFlags, imageEnvironment } from "../support/driver-process.js";
import { PLUGIN_CONTAINER } from "../../deploy/generate/config.js";
import { REPO_ROOT, containers, listFiles, loadManifests, stringList, workloads } from "./manifests.js";

/** Debian package of each host command the driver runs (checked against dpkg below when it is there). */
const PACKAGE_OF: Readonly<Record<string, string>> = {
  "mkfs.ext4": "e2fsprogs",
  "mkfs.ext3": "e2fsprogs",
  resize2fs: "e2fsprogs",
  e2fsck: "e2fsprogs",
  dumpe2fs: "e2fsprogs",
  "mkfs.xfs": "xfsprogs",
  xfs_growfs: "xfsprogs",
  xfs_info: "xfsprogs",
  blkid: "util-linux",
  flock: "util-linux",
  fsfreeze: "util-linux",
  blockdev: "util-linux",
  fallocate: "util-linux",
  fstrim: "util-linux",
  mount: "mount",
  umount: "mount",
  losetup: "mount",
  cryptsetup: "cryptsetup-bin",
  cp: "coreutils",
  rm: "coreutils",
};
const HAVE_DPKG = (() => {
  try {
    execFileSync("dpkg-query", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

/** Essential packages every Debian image has. */
const IN_EVERY_DEBIAN_IMAGE = new Set(["coreutils"]);

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}
interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Instructions of a Dockerfile: comments dropped, continuation lines joined, ARG defaults substituted. */
function parseDockerfile(text: string): Stage[] {
  const lines = text.split("\n").filter((l) => !/^\s*#/.test(l));
  const joined: string[] = [];
  let current = "";
  for (const line of lines) {
    if (line.trimEnd().endsWith("\\")) current += `${line.trimEnd().slice(0, -1)} `;
    else {
      current += line;
      if (current.trim() !== "") joined.push(current.trim());
      current = "";
    }
  }
  const args = new Map<string, string>();
  const substitute = (s: string) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, a?: string, b?: string) => args.get(a ?? b ?? "") ?? whole);
  const stages: Stage[] = [];
  for (const line of joined) {
    const [, keyword = "", rest = ""] = /^(\w+)\s+([\s\S]*)$/.exec(line) ?? [];
    const upper = keyword.toUpperCase();
    if (upper === "ARG") {
      const [name = "", value] = rest.split("=", 2);
      if (value !== undefined) args.set(name.trim(), value.trim());
    } else if (upper === "FROM") {
      const [image = "", , name] = substitute(rest).split(/\s+/);
      stages.push({ from: image, name, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: upper, args: substitute(rest) });
    }
  }
  return stages;
}

function aptPackages(stage: Stage): string[] {
  return stage.instructions
    .filter((i) => i.keyword === "RUN")
    .flatMap((i) =>
      [...i.args.matchAll(/apt-get install ([^&;|]+)/g)].flatMap((m) =>
        (m[1] ?? "").split(/\s+/).filter((w) => w !== "" && !w.startsWith("-")),
      ),
    );
}

/** Commands the driver spawns, found in its source: run("cmd", ...), findExecutable("cmd"), *_TOOLS lists, mkfs per filesystem. */
async function spawnedCommands(): Promise<Set<string>> {
  const commands = new Set<string>(FORMATTABLE_FILESYSTEMS.map((fs) => mkfsCommand(fs, "/dev/null").command));
  for (const file of (await listFiles("src")).filter((f) => f.endsWith(".ts") && !f.startsWith("src/gen/"))) {
    const text = await readFile(join(REPO_ROOT, file), "utf8");
    for (const m of text.matchAll(/\b(?:run|findExecutable)\(\s*"([^"]+)"/g)) if (m[1]) commands.add(m[1]);
    for (const m of text.matchAll(/_TOOLS\s*=\s*\[([^\]]*)\]/g))
      for (const s of (m[1] ?? "").matchAll(/"([^"]+)"/g)) if (s[1]) commands.add(s[1]);
  }
  return commands;
}

let stages: Stage[];
let runtime: Stage;
const BIN = Object.keys(pkg.bin)[0] ?? "";
const BIN_PATH = (pkg.bin as Record<string, string>)[BIN] ?? "";

beforeAll(async () => {
  stages = parseDockerfile(await readFile(join(REPO_ROOT, "Dockerfile"), "utf8"));
  const last = stages.at(-1);
  if (!last) throw new Error("Dockerfile has no stage");
  runtime = last;
});

describe("Dockerfile", () => {
  it("is multi-stage on pinned slim Node LTS images (exact version tags)", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) {
      expect(stage.from).toMatch(/^node:(\d+)\.\d+\.\d+-[a-z]+-slim$/);
      const major = Number(/^node:(\d+)/.exec(stage.from)?.[1]);
      expect(major % 2, `${stage.from}: an even (LTS) Node major`).toBe(0);
      expect(major).toBeGreaterThanOrEqual(20);
    }
    expect(new Set(stages.map((s) => s.from)).size, "build and run on the same base").toBe(1);
  });

  it("builds with the dev toolchain from the lock file", () => {
    const build = stages[0] as Stage;
    const runs = build.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r))).toBe(true);
    expect(runs.some((r) => /\bnpm run build\b/.test(r))).toBe(true);
  });

  it("the entrypoint starts the bundle the runtime stage copies (and nothing else from the build) from the snapshot its Node built; the package's bin is linked to it", () => {
    expect(BIN).toBe("do-csi-plugin");
    const entrypoints = runtime.instructions.filter((i) => i.keyword === "ENTRYPOINT");
    expect(entrypoints.length).toBe(1);
    const entrypoint: unknown = JSON.parse(entrypoints[0]?.args ?? "null");
    const flags = imageEntrypointNodeFlags();
    for (const flag of flags) expect(flag).toMatch(/^--[a-z-]+(=\S+)?$/);
    expect(entrypoint).toEqual(["node", ...flags, "--snapshot-blob", expect.stringMatching(/^\/opt\/do-csi-plugin\/[\w.-]+\.blob$/), "--"]);
    const blob = (entrypoint as string[])[flags.length + 2] ?? "";
    // Built in the runtime stage, with the image's own Node, from the copied bundle.
    const builds = runtime.instructions.filter((i) => i.keyword === "RUN" && i.args.includes(`node dist/build-snapshot.js ${blob}`));
    expect(builds.length, `RUN node dist/build-snapshot.js ${blob}`).toBe(1);
    const workdir = runtime.instructions.filter((i) => i.keyword === "WORKDIR").at(-1)?.args ?? "";
    const copies = runtime.instructions.filter((i) => i.keyword === "COPY").map((i) => i.args);
    expect(copies).toEqual([`--from=build /src/dist ./dist`]);
    const link = runtime.instructions.some(
      (i) => i.keyword === "RUN" && i.args.includes(`ln -s ${workdir}/${BIN_PATH} /usr/local/bin/${BIN}`),
    );
    expect(link, `ln -s ${workdir}/${BIN_PATH} /usr/local/bin/${BIN}`).toBe(true);
  });

  it("sets only glibc tunables this glibc knows, within their bounds (glibc ignores any other without a word)", () => {
    const tunables = imageEnvironment().GLIBC_TUNABLES ?? "";
    expect(tunables).not.toBe("");
    const known = new Map<string, { min: bigint; max: bigint }>();
    const listing = execFileSync("/lib64/ld-linux-x86-64.so.2", ["--list-tunables"], { encoding: "utf8" });
    for (const [, name = "", min = "0", max = "0"] of listing.matchAll(/^(\S+): \S+ \(min: (0x[0-9a-f]+), max: (0x[0-9a-f]+)\)$/gm))
      known.set(name, { min: BigInt(min), max: BigInt(max) });
    expect(known.size).toBeGreaterThan(10);
    for (const setting of tunables.split(":")) {
      const [name = "", value = ""] = setting.split("=");
      const bounds = known.get(name);
      expect(bounds, `${name} is a tunable of this glibc`).toBeDefined();
      expect(BigInt(value) >= (bounds?.min ?? 0n) && BigInt(value) <= (bounds?.max ?? 0n), `${setting} within bounds`).toBe(true);
    }
  });

  it("installs every host tool the node service runs (and cryptsetup), and the command → package table is right", async () => {
    const packages = new Set(aptPackages(runtime));
    for (const required of ["e2fsprogs", "xfsprogs", "util-linux", "mount", "cryptsetup-bin"])
      expect(packages, required).toContain(required);
    const commands = await spawnedCommands();
    for (const expected of ["mount", "umount", "blkid", "losetup", "mkfs.ext4", "mkfs.xfs", "resize2fs", "xfs_growfs", "flock", "fsfreeze"])
      expect(commands, expected).toContain(expected);
    // Commands the manifests run in the driver's image (the udev-rule init container).
    for (const w of workloads(await loadManifests("deploy/kubernetes"))) {
      for (const c of containers(w.pod, "initContainers")) {
        if (String(c.image).startsWith("do-csi-plugin")) {
          const command = stringList(c.command)[0];
          if (command) commands.add(command);
        }
      }
    }
    const unmapped = [...commands].filter((c) => PACKAGE_OF[c] === undefined);
    expect(unmapped, "new host commands: add them to PACKAGE_OF and their package to the Dockerfile").toEqual([]);
    const missing = [...commands].map((c) => PACKAGE_OF[c] ?? "").filter((p) => !packages.has(p) && !IN_EVERY_DEBIAN_IMAGE.has(p));
    expect(missing).toEqual([]);
  });

  it.skipIf(!HAVE_DPKG)("the command → package table matches dpkg on this Debian machine", async () => {
    const wrong: string[] = [];
    for (const [command, expected] of Object.entries(PACKAGE_OF)) {
      if (!(await findExecutable(command))) continue;
      let owner: string | undefined;
      for (const dir of ["/bin", "/sbin", "/usr/bin", "/usr/sbin"]) {
        try {
          owner = execFileSync("dpkg-query", ["-S", `${dir}/${command}`], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).split(
            ":",
          )[0];
          break;
        } catch {
          // not from this directory
        }
      }
      if (owner !== undefined && owner !== expected) wrong.push(`${command}: ${owner}, not ${expected}`);
    }
    expect(wrong).toEqual([]);
  });

  it("the plugin containers of the manifests run the entrypoint (no command override)", async () => {
    for (const w of workloads(await loadManifests("deploy/kubernetes"))) {
      for (const c of containers(w.pod).filter((x) => x.name === PLUGIN_CONTAINER)) expect(c.command, w.name).toBeUndefined();
    }
  });
});

describe(".dockerignore", () => {
  /** Docker's rules, enough for this file: last match wins, `!` re-includes, `*` within a segment, a directory rule covers its contents. */
  function included(rules: readonly string[], path: string): boolean {
    let keep = true;
    for (const raw of rules) {
      const negate = raw.startsWith("!");
      const pattern = (negate ? raw.slice(1) : raw).replace(/\/+$/, "");
      const re = new RegExp(
        `^${pattern
          .split("/")
          .map((seg) =>
            seg === "**"
              ? ".*"
              : seg
                  .replace(/[.+^${}()|[\]\\]/g, "\\$&")
                  .replace(/\*/g, "[^/]*")
                  .replace(/\?/g, "[^/]"),
          )
          .join("/")}(/.*)?$`,
      );
      if (re.test(path)) keep = negate;
    }
    return keep;
  }

  it("lets in what the build stage copies and keeps out dependencies, builds, tests and git", async () => {
    const rules = (await readFile(join(REPO_ROOT, ".dockerignore"), "utf8"))
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    const build = stages[0] as Stage;
    const sources = build.instructions
      .filter((i) => i.keyword === "COPY" && !i.args.startsWith("--from"))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect(included(rules, source.replace(/\/$/, "")), source).toBe(true);
    for (const file of (await listFiles("src")).slice(0, 50)) expect(included(rules, file), file).toBe(true);
    for (const excluded of [
      "node_modules/pino/package.json",
      "dist/do-csi-plugin.js",
      ".git/HEAD",
      "test/deploy/dockerfile.test.ts",
      "deploy/kubernetes/local/driver.yaml",
    ]) {
      expect(included(rules, excluded), excluded).toBe(false);
    }
  });
});

describe("the bundle the image ships", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTestDir("deploy-bundle");
  });
  afterAll(async () => {
    await removeTestDir(dir);
  });

  it("imports only Node built-ins (the image has no node_modules)", async () => {
    const files = (await listFiles("dist")).filter((f) => f.endsWith(".js"));
    expect(files.length).toBeGreaterThan(0);
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    const external: string[] = [];
    for (const file of files) {
      const text = await readFile(join(REPO_ROOT, file), "utf8");
      for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']([^"']+)["']/g)) {
        const spec = m[1] ?? "";
        // Only what looks like a module specifier (the bundle's strings contain "from" too).
        if (!/^(?:node:)?[@a-z0-9][\w@./-]*$/i.test(spec)) continue;
        if (!spec.startsWith(".") && !builtins.has(spec)) external.push(`${file}: ${spec}`);
      }
    }
    expect(external).toEqual([]);
  });

  it("runs from a copy of dist/ alone, through a link named like the bin", async () => {
    await cp(join(REPO_ROOT, "dist"), join(dir, "opt", "dist"), { recursive: true });
    expect((await readdir(join(dir, "opt", "dist"))).length).toBeGreaterThan(0);
    // As in the image: /usr/local/bin/<bin> -> <workdir>/dist/<entry>, run by its shebang.
    await mkdir(join(dir, "bin"));
    await symlink(join(dir, "opt", BIN_PATH), join(dir, "bin", BIN));
    const output = execFileSync(BIN, ["--version"], {
      cwd: dir,
      encoding: "utf8",
      env: { PATH: `${join(dir, "bin")}:${process.env.PATH ?? ""}` },
    });
    expect(output.trim()).toBe(`${BIN} ${pkg.version}`);
  });

  it("builds the image's start-up snapshot from a copy of dist/ alone, with the image's Node, and starts from it as the entrypoint does", async () => {
    const opt = join(dir, "snapshot-opt");
    await cp(join(REPO_ROOT, "dist"), join(opt, "dist"), { recursive: true });
    const blob = join(opt, "do-csi-plugin.blob");
    const built = execFileSync(IMAGE_NODE.node, ["dist/build-snapshot.js", blob], { cwd: opt, encoding: "utf8" });
    expect(built).toContain(`Node v${IMAGE_NODE.version}`);
    const output = execFileSync(IMAGE_NODE.node, [...imageEntrypointNodeFlags(), "--snapshot-blob", blob, "--", "--version"], {
      cwd: dir,
      encoding: "utf8",
    });
    expect(output.trim()).toBe(`${BIN} ${pkg.version}`);
  });
});
