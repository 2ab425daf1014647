// @module-tag needs-root
import { execFile, spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer, type Http2Server } from "node:http2";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { DoSimulator } from "../fixtures/do-simulator/simulator.js";
import { RUNTIMES, startDriver, type DriverProcess } from "../support/driver-process.js";
import { cleanHost, hostLeaks } from "../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

// csictl as users run it: the built dist/csictl.js, a process, against the local backend for real (the whole
// life of a volume through the client only), the DigitalOcean backend and its simulator, and a plugin of the
// test's own (a Probe that takes its time) for progress on a terminal and Ctrl-C.

const exec = promisify(execFile);
const CSICTL = resolve("dist/csictl.js");

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment of the describe block running (its plugin's CSI_ENDPOINT). */
let blockEnv: NodeJS.ProcessEnv = {};

async function csictl(args: readonly string[], env: NodeJS.ProcessEnv = blockEnv, node = process.execPath): Promise<Run> {
  return new Promise((done) => {
    execFile(node, [CSICTL, ...args], { env: { ...process.env, NO_COLOR: "1", ...env } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
      done({ code, stdout, stderr });
    });
  });
}

async function ok(args: readonly string[], env: NodeJS.ProcessEnv = blockEnv): Promise<string> {
  const run = await csictl(args, env);
  expect(run.code, `csictl ${args.join(" ")}: ${run.stderr}`).toBe(0);
  return run.stdout;
}

async function json<T>(args: readonly string[], env: NodeJS.ProcessEnv = blockEnv): Promise<T> {
  return JSON.parse(await ok([...args, "--output", "json"], env)) as T;
}

describe("csictl against the local backend: a volume's whole life through the client only", () => {
  let dir: string;
  let driver: DriverProcess;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    dir = await makeTestDir("csictl-local");
    driver = await startDriver(join(dir, "csi.sock"), [
      "--backend",
      "local",
      "--data-dir",
      join(dir, "data"),
      "--node-id",
      "ctl-node",
      "--alpha-features",
      "all",
      "--log-level",
      "warn",
    ]);
    env = { CSI_ENDPOINT: driver.endpoint };
    blockEnv = env;
  });
  afterAll(async () => {
    blockEnv = {};
    await driver?.stop();
    const left = await hostLeaks(dir);
    await cleanHost(dir);
    await removeTestDir(dir);
    expect(left).toEqual([]);
  });

  it.each(RUNTIMES)("answers identity info on $name", async ({ node }) => {
    const run = await csictl(["identity", "info"], env, node);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("name: local.csi.do-csi-plugin.io");
  });

  it("create, publish, stage, publish, write, stats, snapshot, restore, describe, unpublish, unstage, delete", async () => {
    const created = await json<{ volume: { volumeId: string; capacityBytes: string } }>([
      "volume",
      "create",
      "ctl-data",
      "--size",
      "64Mi",
      "--fs",
      "ext4",
    ]);
    const id = created.volume.volumeId;
    expect(created.volume.capacityBytes).toBe(String(64 * 1024 * 1024));
    const published = await json<{ publishContext: Record<string, string> }>([
      "volume",
      "publish",
      id,
      "--node",
      "ctl-node",
      "--fs",
      "ext4",
    ]);
    const contextFlags = Object.entries(published.publishContext).flatMap(([k, v]) => ["--publish-context", `${k}=${v}`]);
    const staging = join(dir, "staging");
    const target = join(dir, "pods", "ctl", "mount");
    await mkdir(join(dir, "pods", "ctl"), { recursive: true });
    expect(await ok(["node", "stage", id, "--staging-path", staging, "--fs", "ext4", ...contextFlags])).toBe("ok\n");
    await ok(["node", "publish", id, "--staging-path", staging, "--target-path", target, "--fs", "ext4", ...contextFlags]);
    await writeFile(join(target, "data.txt"), "written through the mount\n");
    const stats = await json<{ usage: { unit?: string; used?: string }[] }>(["node", "stats", id, "--path", target]);
    expect(Number(stats.usage.find((u) => u.unit === undefined || u.unit === "BYTES")?.used ?? 0)).toBeGreaterThan(0);
    expect(await ok(["node", "stats", id, "--path", target])).toMatch(/^UNIT\s+TOTAL\s+USED\s+AVAILABLE/);

    const snapshot = await json<{ snapshot: { snapshotId: string; readyToUse: boolean } }>([
      "snapshot",
      "create",
      "ctl-snap",
      "--volume",
      id,
    ]);
    expect(snapshot.snapshot.readyToUse).toBe(true);
    const restored = await json<{ volume: { volumeId: string; contentSource?: unknown } }>([
      "volume",
      "create",
      "ctl-restored",
      "--fs",
      "ext4",
      "--from-snapshot",
      snapshot.snapshot.snapshotId,
    ]);
    expect(restored.volume.contentSource).toBeDefined();

    const described = await json<{
      volume: { volume: { volumeId: string }; status: { publishedNodeIds: string[] } };
      snapshots: { entries: unknown[] };
      stats: unknown;
    }>(["describe", id, "--path", target]);
    expect(described.volume.volume.volumeId).toBe(id);
    expect(described.volume.status.publishedNodeIds).toEqual(["ctl-node"]);
    expect(described.snapshots.entries).toHaveLength(1);
    expect(described.stats).toBeDefined();
    const text = await ok(["describe", id]);
    expect(text).toMatch(/published\s+ctl-node/);

    await ok(["node", "unpublish", id, "--target-path", target]);
    await ok(["node", "unstage", id, "--staging-path", staging]);
    await ok(["volume", "unpublish", id, "--node", "ctl-node"]);
    await ok(["snapshot", "delete", snapshot.snapshot.snapshotId]);
    await ok(["volume", "delete", restored.volume.volumeId]);
    await ok(["volume", "delete", id]);
    expect((await json<{ entries: unknown[] }>(["volume", "list"])).entries).toEqual([]);
  });

  it("pages through every volume, or one page with --max-entries and --starting-token", async () => {
    const ids: string[] = [];
    for (const name of ["page-1", "page-2", "page-3"])
      ids.push((await json<{ volume: { volumeId: string } }>(["volume", "create", name, "--size", "1Mi"])).volume.volumeId);
    const all = await json<{ entries: { volume: { volumeId: string } }[] }>(["volume", "list"]);
    expect(all.entries.map((e) => e.volume.volumeId).sort()).toEqual([...ids].sort());
    const first = await json<{ entries: unknown[]; nextToken: string }>(["volume", "list", "--max-entries", "2"]);
    expect(first.entries).toHaveLength(2);
    const second = await json<{ entries: unknown[]; nextToken?: string }>([
      "volume",
      "list",
      "--max-entries",
      "2",
      "--starting-token",
      first.nextToken,
    ]);
    expect(second.entries).toHaveLength(1);
    expect(await ok(["volume", "list", "--output", "yaml"])).toMatch(/^entries:\n/);
    for (const id of ids) await ok(["volume", "delete", id]);
  });

  it("group snapshots and changed-block metadata through their commands", async () => {
    const a = (await json<{ volume: { volumeId: string } }>(["volume", "create", "grp-a", "--size", "8Mi"])).volume.volumeId;
    const b = (await json<{ volume: { volumeId: string } }>(["volume", "create", "grp-b", "--size", "8Mi"])).volume.volumeId;
    const group = await json<{ groupSnapshot: { groupSnapshotId: string; snapshots: { snapshotId: string }[] } }>([
      "group-snapshot",
      "create",
      "ctl-group",
      "--volume",
      a,
      "--volume",
      b,
    ]);
    const members = group.groupSnapshot.snapshots.map((s) => s.snapshotId);
    expect(members).toHaveLength(2);
    const memberFlags = members.flatMap((m) => ["--snapshot", m]);
    expect(await ok(["group-snapshot", "get", group.groupSnapshot.groupSnapshotId, ...memberFlags])).toMatch(/^group group-/);
    const allocated = await json<{ volumeCapacityBytes: string }[]>(["metadata", "allocated", members[0] ?? ""]);
    expect(allocated[0]?.volumeCapacityBytes).toBe(String(8 * 1024 * 1024));
    await ok(["group-snapshot", "delete", group.groupSnapshot.groupSnapshotId, ...memberFlags]);
    for (const id of [a, b]) await ok(["volume", "delete", id]);
  });

  it("--watch prints the changes it sees until interrupted", async () => {
    const child = spawn(process.execPath, [CSICTL, "volume", "list", "--watch", "--interval", "0.2"], {
      env: { ...process.env, NO_COLOR: "1", ...blockEnv },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    // The first listing (the baseline) is printed before anything changes.
    for (let i = 0; i < 100 && !out.includes("VOLUME"); i++) await new Promise((done) => setTimeout(done, 100));
    expect(out).toContain("VOLUME");
    const id = (await json<{ volume: { volumeId: string } }>(["volume", "create", "watched", "--size", "1Mi"])).volume.volumeId;
    for (let i = 0; i < 50 && !out.includes(`+ ${id}`); i++) await new Promise((done) => setTimeout(done, 100));
    await ok(["volume", "delete", id]);
    for (let i = 0; i < 50 && !out.includes(`- ${id}`); i++) await new Promise((done) => setTimeout(done, 100));
    child.kill("SIGINT");
    await new Promise((done) => child.on("exit", done));
    expect(out).toContain(`+ ${id}`);
    expect(out).toContain(`- ${id}`);
    // Nothing else came and went: one line each.
    expect(out.split("\n").filter((l) => /^[+~-] /.test(l))).toEqual([`+ ${id}`, `- ${id}`]);
  });

  it("exits with the gRPC code and prints it; usage errors exit 64; secrets never from argv", async () => {
    const missing = await csictl(["volume", "publish", "vol-00000000-0000-4000-8000-000000000000", "--node", "ctl-node"], env);
    expect(missing.code).toBe(Code.NotFound);
    expect(missing.stderr).toMatch(/^csictl: NOT_FOUND: /);
    const invalid = await csictl(["volume", "create", "", "--size", "1Mi"], env);
    expect(invalid.code).toBe(64);
    expect((await csictl(["volume", "create", "x", "--size", "ten"], env)).stderr).toMatch(/not a size/);
    const secret = await csictl(["volume", "create", "x", "--secret", "password=hunter2"], env);
    expect(secret.code).toBe(64);
    expect(secret.stderr).not.toContain("hunter2");
    expect((await csictl(["volume", "list"], { CSI_ENDPOINT: "" })).code).toBe(64);
    expect((await csictl(["frobnicate"], env)).code).toBe(64);
  });

  it("takes the request as JSON for anything exotic: call SERVICE METHOD --request-json", async () => {
    const file = join(dir, "request.json");
    await writeFile(file, JSON.stringify({ maxEntries: 1 }));
    expect(await json<{ entries?: unknown[] }>(["call", "Controller", "ListVolumes", "--request-json", file])).toEqual({});
    const caps = await json<{ capabilities: unknown[] }>(["call", "Identity", "GetPluginCapabilities"]);
    expect(caps.capabilities.length).toBeGreaterThan(1);
  });

  it("completion: the bash script loads, and completes commands, flags and volume ids from the plugin", async () => {
    const { stdout } = await exec("bash", ["-c", `source <(${process.execPath} ${CSICTL} completion bash) && complete -p csictl`]);
    expect(stdout).toMatch(/complete .*-F _csictl csictl/);
    expect((await ok(["__complete", "vol"], {})).split("\n")).toContain("volume");
    expect((await ok(["__complete", "volume", "de"], {})).trim()).toBe("delete");
    expect((await ok(["__complete", "node", "stage", "x", "--sta"], {})).trim()).toBe("--staging-path");
    const id = (await json<{ volume: { volumeId: string } }>(["volume", "create", "completed", "--size", "1Mi"])).volume.volumeId;
    expect((await ok(["__complete", "volume", "delete", ""], env)).split("\n")).toContain(id);
    await ok(["volume", "delete", id]);
    expect(await ok(["completion", "zsh"])).toContain("bashcompinit");
  });
});

describe("csictl against the DigitalOcean backend and its simulator", () => {
  let dir: string;
  let sim: DoSimulator;
  let driver: DriverProcess;
  beforeAll(async () => {
    dir = await makeTestDir("csictl-do");
    sim = await DoSimulator.start({ region: "nyc3" });
    driver = await startDriver(join(dir, "csi.sock"), ["--token", "t", "--region", "nyc3", "--url", sim.url, "--log-level", "warn"]);
  });
  afterAll(async () => {
    await driver?.stop();
    await sim?.stop();
    await removeTestDir(dir);
  });

  it("creates, lists, retags and deletes a volume", async () => {
    const env = { CSI_ENDPOINT: driver.endpoint };
    const created = await json<{ volume: { volumeId: string } }>(
      ["volume", "create", "pvc-ctl", "--size", "1Gi", "--mutable-param", "tags=team-a"],
      env,
    );
    const id = created.volume.volumeId;
    expect(sim.volume(id)?.tags).toEqual(["team-a"]);
    expect(await ok(["volume", "list"], env)).toContain(id);
    await ok(["volume", "modify", id, "--mutable-param", "tags=team-b,cost-1"], env);
    expect(sim.volume(id)?.tags.sort()).toEqual(["cost-1", "team-b"]);
    await ok(["volume", "delete", id], env);
    expect(sim.volumes()).toEqual([]);
  });
});

describe("csictl on a terminal, against a plugin that takes its time", () => {
  let dir: string;
  let server: Http2Server;
  let endpoint: string;
  const cancelled: string[] = [];
  const started: string[] = [];
  beforeAll(async () => {
    dir = await makeTestDir("csictl-slow");
    const handler = connectNodeAdapter({
      routes(router) {
        router.service(Identity, {
          getPluginInfo: () => ({ name: "slow.example.com", vendorVersion: "1" }),
          getPluginCapabilities: () => ({ capabilities: [] }),
          probe: async (_req, context) => {
            started.push("probe");
            await new Promise<void>((done, fail) => {
              const timer = setTimeout(done, 1500);
              context.signal.addEventListener("abort", () => {
                clearTimeout(timer);
                cancelled.push("probe");
                fail(new ConnectError("cancelled", Code.Canceled));
              });
            });
            return {};
          },
        });
      },
    });
    const socket = join(dir, "slow.sock");
    server = createServer(handler);
    await new Promise<void>((done) => server.listen(socket, done));
    endpoint = `unix://${socket}`;
  });
  afterAll(async () => {
    await new Promise<void>((done) => server.close(() => done()));
    await removeTestDir(dir);
  });

  it("shows what it waits for and for how long under a pseudo-terminal", async () => {
    const transcript = join(dir, "typescript");
    await exec("script", ["-qfec", `${process.execPath} ${CSICTL} --endpoint ${endpoint} identity probe`, transcript]);
    const seen = await readFile(transcript, "utf8");
    expect(seen).toMatch(/waiting for Probe: \d+\.\d s/);
    expect(seen).toContain("ready");
  });

  it("Ctrl-C cancels the call on the wire and exits 130", async () => {
    const child = spawn(process.execPath, [CSICTL, "--endpoint", endpoint, "identity", "probe"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // Interrupt once the call is on the wire (the plugin has it), whatever the machine's load.
    const before = started.length;
    for (let i = 0; i < 100 && started.length === before; i++) await new Promise((done) => setTimeout(done, 50));
    expect(started.length).toBeGreaterThan(before);
    child.kill("SIGINT");
    const code = await new Promise<number | null>((done) => child.on("exit", (c) => done(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted/);
    await new Promise((done) => setTimeout(done, 200));
    expect(cancelled).toContain("probe");
  });

  it("honours --timeout with DEADLINE_EXCEEDED", async () => {
    const run = await csictl(["--endpoint", endpoint, "--timeout", "0.3", "identity", "probe"]);
    expect(run.code).toBe(Code.DeadlineExceeded);
    expect(run.stderr).toMatch(/DEADLINE_EXCEEDED/);
  });
});
