import { describe, expect, it } from "vitest";
import { FailedPrecondition } from "../../src/csi/errors.js";
import { PluginCapability_Service_Type as Service } from "../../src/gen/csi/v1/csi_pb.js";
import { FAKE_DRIVER_NAME, useFakeDrivers } from "../fakes/fake-driver.js";
import { Code, expectCode } from "../driver/controller-harness.js";

// The Identity service: plugin info, capabilities, and Probe following the backends' health checks.

const fakeDriver = useFakeDrivers("fast-identity");

describe("Identity", () => {
  it("names the plugin and its version, and lists the services it offers", async () => {
    const d = await fakeDriver();
    expect(await d.clients.identity.getPluginInfo({})).toMatchObject({ name: FAKE_DRIVER_NAME, vendorVersion: "test" });
    const { capabilities } = await d.clients.identity.getPluginCapabilities({});
    const services = capabilities.flatMap((c) => (c.type.case === "service" ? [Service[c.type.value.type]] : []));
    expect(services).toEqual(["CONTROLLER_SERVICE", "VOLUME_ACCESSIBILITY_CONSTRAINTS"]);
    expect(capabilities.some((c) => c.type.case === "volumeExpansion")).toBe(true);
  });

  it("is ready when every health check passes, not ready while one initialises", async () => {
    let state: "ready" | "initializing" = "initializing";
    const d = await fakeDriver({ controller: { health: { name: "storage API", check: async () => state } } });
    expect((await d.clients.identity.probe({})).ready).toBe(false);
    state = "ready";
    expect((await d.clients.identity.probe({})).ready).toBe(true);
  });

  it("answers FAILED_PRECONDITION naming the failed check and what to fix", async () => {
    const broken = (name: string, error: Error) => ({
      name,
      check: async (): Promise<"ready"> => {
        throw error;
      },
    });
    const node = await fakeDriver({ node: { health: broken("node host tools", new Error("missing mkfs.ext4; install e2fsprogs")) } });
    await expectCode(node.clients.identity.probe({}), Code.FailedPrecondition, /^node host tools: missing mkfs.ext4; install e2fsprogs$/);
    // A check's own status error is passed on as it is.
    const api = await fakeDriver({
      controller: { health: broken("storage API", FailedPrecondition("the API token is not valid: set a new one")) },
    });
    await expectCode(api.clients.identity.probe({}), Code.FailedPrecondition, /^the API token is not valid: set a new one$/);
  });
});
