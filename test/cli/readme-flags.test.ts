// @module-tag needs-root
import { execFile } from "node:child_process";
import { lstat, mkdir, statfs, symlink } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from "vitest";
import { volumeImagePath } from "../../src/backend/local/layout.js";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { ControllerServiceCapability_RPC_Type } from "../../src/gen/csi/v1/csi_pb.js";
import pkg from "../../package.json" with { type: "json" };
import { DoSimulator } from "../fixtures/do-simulator/simulator.js";
import { blockCapability, mountCapability } from "../driver/controller-harness.js";
import {
  DRIVER_ENTRY,
  logLines,
  RUNTIMES,
  runDriver,
  startDriver,
  startDriverUntilLogged,
  type DriverProcess,
  type StartOptions,
} from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { readmeFlags } from "./readme-flags.js";

const execFileAsync = promisify(execFile);
const MiB = 1024n * 1024n;
const GiB = 1024n * MiB;
/** The only token the simulator accepts: a call that succeeds proves --token reached the API. */
const TOKEN = "flags-test-token";
/** Not the simulator's default region, so the volume's region comes from --region. */
const REGION = "ams3";

/** What one check gets: the Node binary to run the bundle with, a fresh directory, the DigitalOcean API simulator. */
interface FlagRun {
  readonly node: string;
  readonly dir: string;
  readonly sim: DoSimulator;
}

/** A check that runs the bundle with `flags` set to valid values and observes their effect. */
interface FlagCheck {
  readonly flags: readonly string[];
  readonly effect: string;
  readonly run: (r: FlagRun) => Promise<void>;
}

/** Start the bundle on a unix socket in the run's directory, use it, stop it with SIGTERM. */
async function withDriver(
  r: FlagRun,
  args: readonly string[],
  use: (clients: CsiClients, driver: DriverProcess) => Promise<void>,
  options: StartOptions = {},
): Promise<DriverProcess> {
  const driver = await startDriver(join(r.dir, "csi.sock"), args, { node: r.node, ...options });
  const clients = connectCsi(driver.endpoint);
  try {
    await use(clients, driver);
  } finally {
    clients.close();
    await driver.stop("SIGTERM");
  }
  return driver;
}

const local = (r: FlagRun, extra: readonly string[] = []) => ["--backend", "local", "--data-dir", join(r.dir, "data"), ...extra];
const doController = (r: FlagRun, extra: readonly string[] = []) => ["--token", TOKEN, "--region", REGION, "--url", r.sim.url, ...extra];
const doNode = (r: FlagRun, extra: readonly string[] = []) => [
  "--metadata-url",
  r.sim.metadataUrl,
  "--by-id-dir",
  join(r.dir, "by-id"),
  ...extra,
];

async function failure(call: Promise<unknown>): Promise<ConnectError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ConnectError)) throw new Error(`expected the call to fail with a gRPC status, got ${String(err)}`);
  return err;
}

/** API requests the simulator received since `from` (an index into its request log). */
const requestsSince = (sim: DoSimulator, from: number) => sim.requests.slice(from).filter((q) => q.path.startsWith("/v2/"));

/**
 * Every flag of README.md's flag table, run on the bundle. A flag added to the
 * README without a check here fails the first test.
 */
const CHECKS: readonly FlagCheck[] = [
  {
    flags: ["endpoint"],
    effect: "serves a TCP endpoint of port 0 on the port its ready line names",
    async run(r) {
      const { driver } = await startDriverUntilLogged(
        ["--endpoint", "tcp://127.0.0.1:0", ...local(r)],
        (l) => String(l.msg).startsWith("ready:"),
        { node: r.node },
      );
      try {
        expect(driver.endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
        const clients = connectCsi(driver.endpoint);
        try {
          expect((await clients.identity.probe({})).ready).toBe(true);
        } finally {
          clients.close();
        }
      } finally {
        expect(await driver.stop("SIGTERM")).toBe(0);
      }
    },
  },
  {
    flags: ["token", "url", "region", "do-tag"],
    effect: "creates the volume through the API at --url with the token, in the region, tagged",
    async run(r) {
      const from = r.sim.requests.length;
      await withDriver(r, doController(r, ["--do-tag", "flags-tag"]), async (clients) => {
        const { volume } = await clients.controller.createVolume({
          name: `flags-${r.dir.slice(-6).toLowerCase()}`,
          capacityRange: { requiredBytes: GiB },
          volumeCapabilities: [mountCapability("ext4")],
        });
        const created = r.sim.volume(volume?.volumeId ?? "");
        expect(created?.region).toBe(REGION);
        expect(created?.tags).toContain("flags-tag");
        expect(volume?.accessibleTopology[0]?.segments.region).toBe(REGION);
        await clients.controller.deleteVolume({ volumeId: volume?.volumeId ?? "" });
      });
      const sent = requestsSince(r.sim, from);
      expect(sent.length).toBeGreaterThan(0);
      expect(sent.every((q) => q.authorized && q.status < 400)).toBe(true);
    },
  },
  {
    flags: ["default-volumes-page-size"],
    effect: "asks the API for pages of that size when ListVolumes gives no max_entries",
    async run(r) {
      const from = r.sim.requests.length;
      await withDriver(r, doController(r, ["--default-volumes-page-size", "3"]), async (clients) => {
        await clients.controller.listVolumes({});
      });
      const lists = requestsSince(r.sim, from).filter((q) => q.route === "GET /v2/volumes");
      expect(lists.length).toBeGreaterThan(0);
      expect(lists.every((q) => /[?&]per_page=3(&|$)/.test(q.path))).toBe(true);
    },
  },
  {
    flags: ["do-api-rate-limit"],
    effect: "makes ListVolumes calls, one API request each, take at least 1/QPS apart",
    async run(r) {
      const qps = 4;
      const calls = 7;
      let elapsedMs = 0;
      let from = 0;
      await withDriver(r, doController(r, ["--do-api-rate-limit", String(qps)]), async (clients) => {
        from = r.sim.requests.length;
        const started = Date.now();
        for (let i = 0; i < calls; i++) await clients.controller.listVolumes({});
        elapsedMs = Date.now() - started;
      });
      expect(requestsSince(r.sim, from)).toHaveLength(calls);
      // A lower bound only (a limited client cannot be faster); unlimited, these calls take a few ms each.
      expect(elapsedMs).toBeGreaterThanOrEqual(((calls - 1) * 1000) / qps - 10);
    },
  },
  {
    flags: ["metadata-url", "volume-limit"],
    effect: "reports the droplet id and region from the metadata service, and the volume limit, in NodeGetInfo",
    async run(r) {
      await mkdir(join(r.dir, "by-id"));
      await withDriver(r, doNode(r, ["--volume-limit", "5"]), async (clients) => {
        const info = await clients.node.nodeGetInfo({});
        expect(info.nodeId).toBe(String(r.sim.localDropletId));
        expect(info.maxVolumesPerNode).toBe(5n);
        expect(info.accessibleTopology?.segments.region).toBe(r.sim.region);
      });
    },
  },
  {
    flags: ["by-id-dir", "validate-attachment"],
    effect: "looks for the volume's device link in --by-id-dir and refuses a device the kernel does not report attached",
    async run(r) {
      const byId = join(r.dir, "by-id");
      await mkdir(byId);
      // A block device node of a major number reserved for local use: no driver, so no attachment state.
      const device = join(r.dir, "unattached");
      await execFileAsync("mknod", [device, "b", "240", "0"]);
      await symlink(device, join(byId, "scsi-0DO_Volume_flags-vol"));
      await withDriver(r, doNode(r, ["--validate-attachment"]), async (clients) => {
        const err = await failure(
          clients.node.nodeStageVolume({
            volumeId: "6f2c3c1a-0000-4000-8000-000000000001",
            publishContext: { "dobs.csi.digitalocean.com/volume-name": "flags-vol" },
            stagingTargetPath: join(r.dir, "staging"),
            volumeCapability: blockCapability(),
          }),
        );
        expect(err.code, err.rawMessage).toBe(Code.FailedPrecondition);
        expect(err.rawMessage).toContain(join(byId, "scsi-0DO_Volume_flags-vol"));
        expect(err.rawMessage).toMatch(/attachment state of unattached/);
      });
    },
  },
  {
    flags: ["shutdown-timeout"],
    effect: "cancels a call still in flight that long after SIGTERM",
    async run(r) {
      const faults = { latencyMs: r.sim.faults.latencyMs, routes: r.sim.faults.routes };
      const driver = await startDriver(join(r.dir, "csi.sock"), doController(r, ["--shutdown-timeout", "1s"]), { node: r.node });
      const clients = connectCsi(driver.endpoint);
      try {
        r.sim.faults.latencyMs = 10_000;
        r.sim.faults.routes = /^GET \/v2\/volumes$/;
        const from = r.sim.requests.length;
        const slow = clients.controller.listVolumes({}).catch((e: unknown) => e);
        while (!requestsSince(r.sim, from).some((q) => q.route === "GET /v2/volumes")) await new Promise((res) => setTimeout(res, 20));
        const stopping = Date.now();
        expect(await driver.stop("SIGTERM")).toBe(0);
        expect(Date.now() - stopping).toBeLessThan(8_000); // before the 10 s the API takes, and the 30 s default
        expect(await slow).toBeInstanceOf(ConnectError);
        const cancelled = logLines(driver.stderr()).find((l) => l.msg === "in-flight calls did not finish in time; cancelling them");
        expect(cancelled?.timeoutMs, driver.stderr()).toBe(1000);
      } finally {
        Object.assign(r.sim.faults, faults);
        clients.close();
        await driver.stop("SIGKILL");
      }
    },
  },
  {
    flags: ["driver-name"],
    effect: "names the plugin in GetPluginInfo",
    async run(r) {
      await withDriver(r, local(r, ["--driver-name", "flags.csi.example.com"]), async (clients) => {
        expect((await clients.identity.getPluginInfo({})).name).toBe("flags.csi.example.com");
      });
    },
  },
  {
    flags: ["debug-addr"],
    effect: "serves /health on the address",
    async run(r) {
      await withDriver(r, local(r, ["--debug-addr", "127.0.0.1:0"]), async (_clients, driver) => {
        const address = logLines(driver.stderr()).find((l) => String(l.msg).startsWith("debug server listening"))?.address;
        const health = await fetch(`http://${String(address)}/health`);
        expect(health.status).toBe(200);
      });
    },
  },
  {
    flags: ["version"],
    effect: "prints the version and exits 0",
    async run(r) {
      const res = await runDriver(["--version"], {}, { node: r.node });
      expect(res).toMatchObject({ code: 0, stdout: `do-csi-plugin ${pkg.version}\n` });
    },
  },
  {
    flags: ["backend", "data-dir"],
    effect: "keeps a local volume's image in --data-dir",
    async run(r) {
      const dataDir = join(r.dir, "custom-data");
      await withDriver(r, ["--backend", "local", "--data-dir", dataDir], async (clients) => {
        const { volume } = await clients.controller.createVolume({
          name: "flags-data-dir",
          capacityRange: { requiredBytes: 16n * MiB },
          volumeCapabilities: [mountCapability("ext4")],
        });
        const id = volume?.volumeId ?? "";
        expect((await lstat(volumeImagePath(dataDir, id))).isFile()).toBe(true);
        await clients.controller.deleteVolume({ volumeId: id });
      });
    },
  },
  {
    flags: ["mode"],
    effect: "serves only the node service in node mode",
    async run(r) {
      await withDriver(r, local(r, ["--mode", "node", "--node-id", "n1"]), async (clients) => {
        expect((await clients.node.nodeGetInfo({})).nodeId).toBe("n1");
        expect((await failure(clients.controller.controllerGetCapabilities({}))).code).toBe(Code.Unimplemented);
      });
    },
  },
  {
    flags: ["node-id"],
    effect: "reports the node id in NodeGetInfo",
    async run(r) {
      await withDriver(r, local(r, ["--node-id", "flags-node"]), async (clients) => {
        expect((await clients.node.nodeGetInfo({})).nodeId).toBe("flags-node");
      });
    },
  },
  {
    flags: ["overcommit-ratio"],
    effect: "multiplies the capacity GetCapacity reports for an empty data directory",
    async run(r) {
      await withDriver(r, local(r, ["--overcommit-ratio", "4"]), async (clients) => {
        const before = await statfs(join(r.dir, "data"));
        const { availableCapacity } = await clients.controller.getCapacity({});
        const after = await statfs(join(r.dir, "data"));
        const free = (Number(before.bavail) * before.bsize + Number(after.bavail) * after.bsize) / 2;
        // 4 × the free space, give or take what other processes write meanwhile (ratio 1 would be 1).
        expect(Number(availableCapacity) / free).toBeGreaterThan(3.5);
        expect(Number(availableCapacity) / free).toBeLessThan(4.5);
      });
    },
  },
  {
    flags: ["kubelet-dir"],
    effect: "requires shared mount propagation for staging paths under it",
    async run(r) {
      const kubeletDir = join(r.dir, "kubelet");
      const staging = join(kubeletDir, "plugins", "staging");
      await mkdir(staging, { recursive: true });
      // In a mount namespace of its own, private: the driver's mounts there would not propagate.
      const command = ["unshare", "--mount", "--propagation", "private", r.node, DRIVER_ENTRY];
      await withDriver(
        r,
        local(r, ["--kubelet-dir", kubeletDir]),
        async (clients) => {
          const { volume } = await clients.controller.createVolume({
            name: "flags-kubelet-dir",
            capacityRange: { requiredBytes: 16n * MiB },
            volumeCapabilities: [mountCapability("ext4")],
          });
          const volumeId = volume?.volumeId ?? "";
          try {
            const err = await failure(
              clients.node.nodeStageVolume({ volumeId, stagingTargetPath: staging, volumeCapability: mountCapability("ext4") }),
            );
            expect(err.code, err.rawMessage).toBe(Code.FailedPrecondition);
            expect(err.rawMessage).toMatch(/propagation/);
            expect(err.rawMessage).toContain(kubeletDir);
          } finally {
            await clients.node.nodeUnstageVolume({ volumeId, stagingTargetPath: staging }).catch(() => undefined);
            await clients.controller.deleteVolume({ volumeId });
          }
        },
        { command },
      );
    },
  },
  {
    flags: ["socket-mode"],
    effect: "gives the unix socket that mode",
    async run(r) {
      await withDriver(r, local(r, ["--socket-mode", "0600"]), async () => {
        expect((await lstat(join(r.dir, "csi.sock"))).mode & 0o777).toBe(0o600);
      });
    },
  },
  {
    flags: ["log-level"],
    effect: "logs Probe calls at debug, and nothing below warn at warn",
    async run(r) {
      const debug = await withDriver(r, local(r, ["--log-level", "debug"]), async (clients) => {
        await clients.identity.probe({});
      });
      expect(logLines(debug.stderr()).some((l) => l.level === 20 && l.method === "/csi.v1.Identity/Probe")).toBe(true);
      const warn = await withDriver(r, local(r, ["--log-level", "warn"]), async (clients) => {
        await clients.identity.probe({});
      });
      expect(logLines(warn.stderr()).filter((l) => typeof l.level === "number" && l.level < 40)).toEqual([]);
    },
  },
  {
    flags: ["log-format"],
    effect: "writes human-readable lines instead of JSON with pretty",
    async run(r) {
      const driver = await withDriver(r, local(r, ["--log-format", "pretty"]), async () => undefined);
      expect(driver.stderr()).toMatch(/INFO.*ready: CSI all plugin on unix:/);
      expect(logLines(driver.stderr())).toEqual([]);
    },
  },
  {
    flags: ["node-deployment"],
    effect: "drops controller publish and expansion from the capabilities, and is refused with the digitalocean backend",
    async run(r) {
      const rpcs = async (extra: readonly string[]) => {
        let found: ControllerServiceCapability_RPC_Type[] = [];
        await withDriver(r, local(r, extra), async (clients) => {
          const { capabilities } = await clients.controller.controllerGetCapabilities({});
          found = capabilities.flatMap((c) => (c.type.case === "rpc" ? [c.type.value.type] : []));
        });
        return found;
      };
      const controllerOnly = [
        ControllerServiceCapability_RPC_Type.PUBLISH_UNPUBLISH_VOLUME,
        ControllerServiceCapability_RPC_Type.EXPAND_VOLUME,
      ];
      expect(await rpcs([])).toEqual(expect.arrayContaining(controllerOnly));
      const perNode = await rpcs(["--node-deployment", "--node-id", "flags-node"]);
      for (const rpc of controllerOnly) expect(perNode).not.toContain(rpc);
      expect(perNode).toContain(ControllerServiceCapability_RPC_Type.CREATE_DELETE_VOLUME);
      const refused = await runDriver(["--node-deployment", "--token", TOKEN], {}, { node: r.node });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/--node-deployment needs --backend local/);
    },
  },
  {
    flags: ["alpha-features"],
    effect: "lists the alpha capability it switches on",
    async run(r) {
      const getVolume = ControllerServiceCapability_RPC_Type.GET_VOLUME;
      const offered = async (extra: readonly string[]) => {
        let rpcs: ControllerServiceCapability_RPC_Type[] = [];
        await withDriver(r, local(r, extra), async (clients) => {
          const { capabilities } = await clients.controller.controllerGetCapabilities({});
          rpcs = capabilities.flatMap((c) => (c.type.case === "rpc" ? [c.type.value.type] : []));
        });
        return rpcs;
      };
      expect(await offered(["--alpha-features", "get-volume"])).toContain(getVolume);
      expect(await offered([])).not.toContain(getVolume);
    },
  },
];

describe("README flags on the bundle", () => {
  it("has a check for every flag of the README's table, and for no other", async () => {
    const documented = await readmeFlags();
    const checked = CHECKS.flatMap((c) => c.flags);
    expect([...new Set(checked)].sort()).toEqual([...documented].sort());
    expect(checked.length).toBe(new Set(checked).size); // each flag is checked once
  });
});

let sim: DoSimulator;
beforeAll(async () => {
  await lstat(DRIVER_ENTRY); // built by `npm test`'s pretest (npm run build)
  sim = await DoSimulator.start({ token: TOKEN });
});
afterAll(async () => {
  await sim?.stop();
});

describe.each(RUNTIMES)("README flags on the bundle on $name", ({ node }) => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTestDir("flags");
  });
  afterEach(async () => {
    await removeTestDir(dir);
  });

  it.each(CHECKS.map((c) => [c.flags.map((f) => `--${f}`).join(" "), c.effect, c] as const))("%s: %s", async (_flags, _effect, check) => {
    await check.run({ node, dir, sim });
  });
});
