import { describe, expect, it } from "vitest";
import { FlagError, parseDuration } from "../../src/cli/flags.js";
import { describeConfig, FLAGS, parseCommandLine } from "../../src/cli/options.js";

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseCommandLine(argv, env, "9.9.9").config;

describe("command line", () => {
  it("has every flag of the Go csi-digitalocean v4 driver with its default", () => {
    const byName = new Map(FLAGS.map((f) => [f.name, f]));
    expect(parse([]).endpoint).toEqual({ kind: "unix", path: "/var/lib/kubelet/plugins/dobs.csi.digitalocean.com/csi.sock" });
    expect(byName.get("url")?.default).toBe("https://api.digitalocean.com/");
    expect(parse([]).driverName).toBe("dobs.csi.digitalocean.com");
    for (const name of [
      "token",
      "region",
      "debug-addr",
      "do-tag",
      "default-volumes-page-size",
      "do-api-rate-limit",
      "volume-limit",
      "validate-attachment",
      "version",
    ]) {
      expect(byName.has(name), name).toBe(true);
    }
    const defaults = parse([]);
    expect(defaults.volumeLimit).toBe(7);
    expect(defaults.digitalocean).toMatchObject({ defaultVolumesPageSize: 0, apiRateLimit: 0, validateAttachment: false });
  });

  it("parses Go flag syntax: -name value, --name=value, bare booleans, explicit false", () => {
    const c = parse(["-token", "t0k", "--region=nyc3", "-validate-attachment", "--do-api-rate-limit", "2.5", "-volume-limit=3"]);
    expect(c.digitalocean).toMatchObject({ token: "t0k", region: "nyc3", validateAttachment: true, apiRateLimit: 2.5 });
    expect(c.volumeLimit).toBe(3);
    expect(parse(["--validate-attachment=false"]).digitalocean.validateAttachment).toBe(false);
  });

  it("follows the Go driver's mode rules", () => {
    expect(parse([]).mode).toBe("node");
    expect(parse(["--token", "t"]).mode).toBe("all");
    expect(parse(["--token", "t", "--region", "fra1"]).mode).toBe("controller");
    expect(() => parse(["--region", "fra1"])).toThrow(
      "region flag must not be set when driver is running in node mode (i.e., token flag is unset)",
    );
    expect(() => parse(["--mode", "controller"])).toThrow(/needs --token/);
    expect(parse(["--backend", "local"]).mode).toBe("all");
    expect(parse(["--backend", "local", "--mode", "node"]).mode).toBe("node");
  });

  it("takes every flag from the environment, the command line winning", () => {
    const env = { DO_CSI_ENDPOINT: "unix:///run/x.sock", DO_CSI_LOG_LEVEL: "debug", DIGITALOCEAN_ACCESS_TOKEN: "from-env" };
    const c = parse([], env);
    expect(c.endpoint).toEqual({ kind: "unix", path: "/run/x.sock" });
    expect(c.logLevel).toBe("debug");
    expect(c.digitalocean.token).toBe("from-env");
    expect(parse(["--log-level", "warn"], env).logLevel).toBe("warn");
    expect(parse([], { ...env, DO_CSI_TOKEN: "preferred" }).digitalocean.token).toBe("preferred");
  });

  it.each([
    [["--volume-limit", "-1"], /invalid value "-1" for flag --volume-limit: must be a non-negative integer/],
    [["--do-api-rate-limit", "fast"], /--do-api-rate-limit: must be a non-negative number/],
    [["--endpoint", "http://x"], /invalid value for flag --endpoint: unsupported endpoint/],
    [["--endpoint", "tcp://host"], /has no port/],
    [["--driver-name", "-bad-"], /--driver-name: must be at most 63 characters/],
    [["--driver-name", `${"a".repeat(64)}`], /--driver-name/],
    [["--backend", "ceph"], /--backend: must be one of digitalocean, local/],
    [["--log-level", "loud"], /--log-level: must be one of/],
    [["--alpha-features", "teleport"], /--alpha-features: must be one of volume-condition/],
    [["--socket-mode", "999"], /--socket-mode: must be an octal file mode/],
    [["--shutdown-timeout", "soon"], /--shutdown-timeout: must be a duration/],
    [["--url", "ftp://x"], /--url: must be an http\(s\) URL/],
    [["--nonsense"], /flag provided but not defined: -nonsense/],
    [["--token"], /flag needs an argument: --token/],
    [["stray"], /unexpected argument "stray"/],
    [["--debug-addr", "nowhere"], /--debug-addr/],
  ])("rejects %j with one clear line", (argv, message) => {
    let error: unknown;
    try {
      parse(argv);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FlagError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain("\n");
  });

  it("reports a bad environment value with the variable's name", () => {
    expect(() => parse([], { DO_CSI_VOLUME_LIMIT: "many" })).toThrow(/from environment variable DO_CSI_VOLUME_LIMIT/);
  });

  it("parses endpoints in the forms Go drivers accept", () => {
    expect(parse(["--endpoint", "unix:///csi/csi.sock"]).endpoint).toEqual({ kind: "unix", path: "/csi/csi.sock" });
    expect(parse(["--endpoint", "unix:/csi/csi.sock"]).endpoint).toEqual({ kind: "unix", path: "/csi/csi.sock" });
    expect(parse(["--endpoint", "tcp://127.0.0.1:10000"]).endpoint).toEqual({ kind: "tcp", host: "127.0.0.1", port: 10000 });
    expect(parse(["--endpoint", "tcp://[::1]:10000"]).endpoint).toEqual({ kind: "tcp", host: "::1", port: 10000 });
  });

  it("defaults the local backend's node id to the host name and its volume limit to unlimited", () => {
    const c = parse(["--backend", "local"]);
    expect(c.nodeId).not.toBe("");
    expect(c.volumeLimit).toBe(0);
    expect(parse(["--backend", "local", "--node-id", "n1"]).nodeId).toBe("n1");
  });

  it("names the local backend local.csi.do-csi-plugin.io, its endpoint following the name, unless told otherwise", () => {
    const local = parse(["--backend", "local"]);
    expect(local.driverName).toBe("local.csi.do-csi-plugin.io");
    expect(local.endpoint).toEqual({ kind: "unix", path: "/var/lib/kubelet/plugins/local.csi.do-csi-plugin.io/csi.sock" });
    const renamed = parse(["--backend", "local", "--driver-name", "dobs.csi.digitalocean.com"]);
    expect(renamed.driverName).toBe("dobs.csi.digitalocean.com");
    expect(renamed.endpoint).toEqual({ kind: "unix", path: "/var/lib/kubelet/plugins/dobs.csi.digitalocean.com/csi.sock" });
    // The DigitalOcean endpoint is the Go driver's, whatever the name.
    expect(parse(["--driver-name", "x.example.com"]).endpoint).toEqual({
      kind: "unix",
      path: "/var/lib/kubelet/plugins/dobs.csi.digitalocean.com/csi.sock",
    });
    expect(() => parse(["--backend", "local", "--driver-name="])).toThrow(/--driver-name: must be at most 63 characters/);
  });

  it("takes --node-deployment for the local backend only, serving both services of the node", () => {
    expect(parse(["--backend", "local"]).nodeDeployment).toBe(false);
    const perNode = parse(["--backend", "local", "--node-deployment"]);
    expect(perNode).toMatchObject({ nodeDeployment: true, mode: "all" });
    expect(parse(["--backend", "local", "--node-deployment", "--mode", "all"]).nodeDeployment).toBe(true);
    expect(() => parse(["--node-deployment", "--token", "t"])).toThrow(/--node-deployment needs --backend local/);
    expect(() => parse(["--backend", "local", "--node-deployment", "--mode", "node"])).toThrow(/drop --mode node/);
  });

  it("knows the kubelet directory, for the mount propagation check", () => {
    expect(parse([]).kubeletDir).toBe("/var/lib/kubelet");
    expect(parse(["--kubelet-dir", "/var/lib/k0s/kubelet"]).kubeletDir).toBe("/var/lib/k0s/kubelet");
  });

  it("enables alpha capabilities only when asked", () => {
    expect([...parse([]).alpha]).toEqual([]);
    expect([...parse(["--alpha-features", "get-volume,volume-condition"]).alpha].sort()).toEqual(["get-volume", "volume-condition"]);
    expect([...parse(["--alpha-features", "all"]).alpha].sort()).toEqual([
      "get-snapshot",
      "get-volume",
      "single-node-multi-writer",
      "snapshot-metadata",
      "volume-condition",
    ]);
  });

  it("never shows the token when describing the configuration", () => {
    const text = JSON.stringify(describeConfig(parse(["--token", "dop_v1_supersecret"])));
    expect(text).not.toContain("supersecret");
    expect(text).toContain("<set>");
  });

  it("reads Go durations", () => {
    expect(parseDuration("x", "30s")).toBe(30_000);
    expect(parseDuration("x", "1m30s")).toBe(90_000);
    expect(parseDuration("x", "250ms")).toBe(250);
    expect(parseDuration("x", "2")).toBe(2000);
  });
});
