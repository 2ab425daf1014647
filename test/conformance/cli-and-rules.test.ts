import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCli, UsageError } from "../../src/conformance/cli.js";
import { parseSecrets, parseSize } from "../../src/conformance/options.js";
import { selectChecks } from "../../src/conformance/runner.js";
import { pluginNameProblems, topologyAdmits, topologyPrefixProblem, topologyProblems } from "../../src/conformance/spec-rules.js";
import { allChecks } from "../../src/conformance/checks/index.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

describe("csi-conformance command line", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTestDir("conformance-cli");
  });
  afterAll(async () => {
    await removeTestDir(dir);
  });

  it("takes parameters repeated, several after one flag, or comma-separated", async () => {
    const cli = await parseCli(
      ["--endpoint", "unix:///x.sock", "--parameters", "a=1", "b=2", "--parameters=c=3,d=x=y", "--snapshot-parameters", "s=1"],
      {},
    );
    expect(cli.conformance.parameters).toEqual({ a: "1", b: "2", c: "3", d: "x=y" });
    expect(cli.conformance.snapshotParameters).toEqual({ s: "1" });
  });

  it("parses sizes, durations, access types and regular expressions", async () => {
    const cli = await parseCli(
      [
        "--endpoint",
        "unix:///x.sock",
        "--test-volume-size",
        "64Mi",
        "--rpc-timeout",
        "30s",
        "--check-timeout",
        "2m",
        "--access-types",
        "mount",
        "--filter",
        "^node-",
        "--idempotent-count",
        "5",
        "--lenient",
      ],
      {},
    );
    expect(cli.conformance.testVolumeSize).toBe(64n * 1024n * 1024n);
    expect(cli.conformance.rpcTimeoutMs).toBe(30_000);
    expect(cli.conformance.checkTimeoutMs).toBe(120_000);
    expect(cli.conformance.accessTypes).toEqual(["mount"]);
    expect(cli.conformance.filter?.test("node-stage.not-found")).toBe(true);
    expect(cli.conformance.idempotentCount).toBe(5);
    expect(cli.conformance.lenient).toBe(true);
    expect(parseSize("1G")).toBe(1_000_000_000n);
    expect(parseSize("10Gi")).toBe(10n * 1024n ** 3n);
    expect(() => parseSize("ten")).toThrow(/invalid size/);
  });

  it("takes the endpoint from CSI_ENDPOINT and refuses bad input with a usage error", async () => {
    expect((await parseCli([], { CSI_ENDPOINT: "unix:///e.sock" })).conformance.endpoint).toBe("unix:///e.sock");
    await expect(parseCli([], {})).rejects.toThrow(UsageError);
    await expect(parseCli(["--endpoint", "unix:///x.sock", "--no-such-flag"], {})).rejects.toThrow(/unknown flag/);
    await expect(parseCli(["--endpoint", "unix:///x.sock", "--parameters", "novalue"], {})).rejects.toThrow(/key=value/);
    await expect(parseCli(["--endpoint", "unix:///x.sock", "--access-types", "nfs"], {})).rejects.toThrow(/access type/);
    await expect(parseCli(["--endpoint", "unix:///x.sock", "--idempotent-count", "1"], {})).rejects.toThrow(/at least 2/);
  });

  it("parses flags as node:util parseArgs does: --name value, --name=value, -h, and nothing else", async () => {
    expect((await parseCli(["-h"], {})).help).toBe(true);
    expect((await parseCli(["--list"], {})).list).toBe(true);
    const cli = await parseCli(["--endpoint=unix:///x.sock", "--json", "-", "--verbose", "--", "--fs-type", "xfs"], {});
    expect(cli).toMatchObject({ jsonPath: "-", verbose: true, help: false, list: false });
    expect(cli.conformance).toMatchObject({ endpoint: "unix:///x.sock", fsType: "xfs", lenient: false, noDataChecks: false });
    const usage = (argv: string[]) => expect(parseCli(["--endpoint", "unix:///x.sock", ...argv], {})).rejects.toThrow(UsageError);
    await usage(["--lenient=yes"]);
    await usage(["--filter"]);
    await usage(["stray"]);
    await usage(["-endpoint", "unix:///y.sock"]);
    await usage(["--lenient", "a=1"]);
    await expect(parseCli(["--endpoint", "unix:///x.sock", "--rpc-timeout"], {})).rejects.toThrow(/--rpc-timeout/);
    // A bad word is echoed bounded.
    const long = `--${"x".repeat(5000)}`;
    const error = await parseCli([long], {}).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message.length).toBeLessThan(200);
  });

  it("reads secrets for every RPC or per RPC (csi-sanity's key names)", async () => {
    const flat = join(dir, "flat.json");
    await writeFile(flat, JSON.stringify({ username: "u", password: "p" }));
    const perRpc = join(dir, "per-rpc.json");
    await writeFile(perRpc, JSON.stringify({ CreateVolumeSecret: { token: "t" }, ControllerValidateVolumeCapabilitiesSecret: { v: "1" } }));
    const all = (await parseCli(["--endpoint", "unix:///x.sock", "--secrets-file", flat], {})).conformance.secrets;
    expect(all?.NodeStageVolume).toEqual({ username: "u", password: "p" });
    expect(all?.DeleteSnapshot).toEqual({ username: "u", password: "p" });
    const some = (await parseCli(["--endpoint", "unix:///x.sock", "--secrets-file", perRpc], {})).conformance.secrets;
    expect(some?.CreateVolume).toEqual({ token: "t" });
    expect(some?.ValidateVolumeCapabilities).toEqual({ v: "1" });
    expect(some?.DeleteVolume).toBeUndefined();
    expect(() => parseSecrets({ NoSuchRpcSecret: {} })).toThrow(/unknown key/);
  });

  it("has unique check ids, and selects by id or title", () => {
    const ids = allChecks.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(selectChecks({ filter: /^identity\./ }).every((c) => c.group === "Identity")).toBe(true);
    expect(selectChecks({ filter: /UNIMPLEMENTED/ }).length).toBeGreaterThan(10);
    expect(selectChecks({ skip: /./ })).toEqual([]);
  });
});

describe("spec field rules", () => {
  it("plugin names: domain notation, 63 characters, alphanumeric ends", () => {
    expect(pluginNameProblems("dobs.csi.digitalocean.com")).toEqual([]);
    expect(pluginNameProblems("hostpath.csi.k8s.io")).toEqual([]);
    expect(pluginNameProblems("a")).toEqual([]);
    expect(pluginNameProblems("")).not.toEqual([]);
    expect(pluginNameProblems("Broken_Plugin")).not.toEqual([]);
    expect(pluginNameProblems("-leading.dash")).not.toEqual([]);
    expect(pluginNameProblems("double..dot")).not.toEqual([]);
    expect(pluginNameProblems("label-.ends-with-dash")).not.toEqual([]);
    expect(pluginNameProblems(`${"a".repeat(60)}.com`)).not.toEqual([]);
  });

  it("topology keys, values and prefixes", () => {
    expect(topologyProblems({ region: "nyc1" })).toEqual([]);
    expect(topologyProblems({ "dobs.csi.digitalocean.com/node": "node-1" })).toEqual([]);
    expect(topologyProblems({ "Example.COM/zone": "a" })).not.toEqual([]);
    expect(topologyProblems({ zone: "" })).not.toEqual([]);
    expect(topologyProblems({ zone: "-a" })).not.toEqual([]);
    expect(topologyProblems({ Zone: "a", zone: "b" })).not.toEqual([]);
    expect(topologyPrefixProblem([{ "a.com/zone": "1" }, { "b.com/rack": "2" }])).toBeDefined();
    expect(topologyPrefixProblem([{ "a.com/zone": "1", region: "r" }])).toBeUndefined();
    expect(topologyAdmits({ region: "nyc1" }, { region: "nyc1", zone: "a" })).toBe(true);
    expect(topologyAdmits({ region: "nyc1", zone: "b" }, { region: "nyc1", zone: "a" })).toBe(false);
  });
});
