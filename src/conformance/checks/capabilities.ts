import { Code } from "@connectrpc/connect";
import { GroupControllerServiceCapability_RPC_Type as GroupCap } from "../../gen/csi/v1/csi_pb.js";
import { fail, verify, type Check } from "../check.js";
import type { CheckRun } from "../context.js";
import { codeName, describeOutcome, expectCode, expectOk, outcome } from "../expect.js";
import { ControllerCap, controllerCapName, NodeCap, nodeCapName, PluginService, type DriverProfile } from "../profile.js";

const group = "Capabilities" as const;

function duplicates(values: readonly number[]): number[] {
  return [...new Set(values.filter((v, i) => values.indexOf(v) !== i))];
}

interface Probe {
  readonly rpc: string;
  /** The RPC called with an empty request: harmless, since every RPC that does something needs a field. */
  readonly call: (run: CheckRun) => Promise<unknown>;
}

interface CapabilityRpcs {
  readonly service: "controller" | "node";
  readonly cap: number;
  readonly probes: readonly Probe[];
  /** Codes besides UNIMPLEMENTED that an unadvertised RPC may answer. */
  readonly alsoAccepted?: readonly Code[];
}

const ctl = (rpc: string, call: (run: CheckRun) => Promise<unknown>): Probe => ({ rpc, call });

/** The RPCs each capability stands for (capabilities without an RPC of their own are not listed). */
const CAPABILITY_RPCS: readonly CapabilityRpcs[] = [
  {
    service: "controller",
    cap: ControllerCap.CREATE_DELETE_VOLUME,
    probes: [
      ctl("CreateVolume", async (r) => {
        // Harmless for a correct plugin; a plugin that creates something anyway gets it deleted.
        const response = await r.controller.createVolume({}, r.call());
        if (response.volume !== undefined && response.volume.volumeId !== "") r.registerVolume(response.volume.volumeId);
        return response;
      }),
      ctl("DeleteVolume", (r) => r.controller.deleteVolume({}, r.call())),
    ],
  },
  {
    service: "controller",
    cap: ControllerCap.PUBLISH_UNPUBLISH_VOLUME,
    probes: [
      ctl("ControllerPublishVolume", (r) => r.controller.controllerPublishVolume({}, r.call())),
      ctl("ControllerUnpublishVolume", (r) => r.controller.controllerUnpublishVolume({}, r.call())),
    ],
  },
  { service: "controller", cap: ControllerCap.LIST_VOLUMES, probes: [ctl("ListVolumes", (r) => r.controller.listVolumes({}, r.call()))] },
  { service: "controller", cap: ControllerCap.GET_CAPACITY, probes: [ctl("GetCapacity", (r) => r.controller.getCapacity({}, r.call()))] },
  {
    service: "controller",
    cap: ControllerCap.CREATE_DELETE_SNAPSHOT,
    probes: [
      ctl("CreateSnapshot", async (r) => {
        const response = await r.controller.createSnapshot({}, r.call());
        if (response.snapshot !== undefined && response.snapshot.snapshotId !== "") r.registerSnapshot(response.snapshot.snapshotId);
        return response;
      }),
      ctl("DeleteSnapshot", (r) => r.controller.deleteSnapshot({}, r.call())),
    ],
  },
  {
    service: "controller",
    cap: ControllerCap.LIST_SNAPSHOTS,
    probes: [ctl("ListSnapshots", (r) => r.controller.listSnapshots({}, r.call()))],
  },
  {
    service: "controller",
    cap: ControllerCap.EXPAND_VOLUME,
    probes: [ctl("ControllerExpandVolume", (r) => r.controller.controllerExpandVolume({}, r.call()))],
  },
  {
    service: "controller",
    cap: ControllerCap.GET_VOLUME,
    probes: [ctl("ControllerGetVolume", (r) => r.controller.controllerGetVolume({}, r.call()))],
  },
  {
    service: "controller",
    cap: ControllerCap.MODIFY_VOLUME,
    probes: [ctl("ControllerModifyVolume", (r) => r.controller.controllerModifyVolume({}, r.call()))],
    // A plugin may implement the RPC while supporting no mutable parameter at all; it then
    // refuses every request as its own errors table says (INVALID_ARGUMENT, nothing modified).
    alsoAccepted: [Code.InvalidArgument],
  },
  { service: "controller", cap: ControllerCap.GET_SNAPSHOT, probes: [ctl("GetSnapshot", (r) => r.controller.getSnapshot({}, r.call()))] },
  {
    service: "node",
    cap: NodeCap.STAGE_UNSTAGE_VOLUME,
    probes: [
      ctl("NodeStageVolume", (r) => r.node.nodeStageVolume({}, r.call())),
      ctl("NodeUnstageVolume", (r) => r.node.nodeUnstageVolume({}, r.call())),
    ],
  },
  { service: "node", cap: NodeCap.GET_VOLUME_STATS, probes: [ctl("NodeGetVolumeStats", (r) => r.node.nodeGetVolumeStats({}, r.call()))] },
  { service: "node", cap: NodeCap.EXPAND_VOLUME, probes: [ctl("NodeExpandVolume", (r) => r.node.nodeExpandVolume({}, r.call()))] },
];

function capName(entry: CapabilityRpcs): string {
  return entry.service === "controller" ? controllerCapName(entry.cap) : nodeCapName(entry.cap);
}

function advertised(profile: DriverProfile, entry: CapabilityRpcs): boolean | string {
  if (entry.service === "controller") {
    if (!profile.controller.available) return profile.controller.reason;
    return profile.controller.caps.has(entry.cap);
  }
  if (!profile.node.available) return profile.node.reason;
  // VOLUME_CONDITION also obliges the plugin to implement NodeGetVolumeStats.
  if (entry.cap === NodeCap.GET_VOLUME_STATS && profile.node.caps.has(NodeCap.VOLUME_CONDITION)) return true;
  return profile.node.caps.has(entry.cap);
}

function advertisedCheck(entry: CapabilityRpcs): Check {
  const name = capName(entry);
  const rpcs = entry.probes.map((p) => p.rpc).join(" and ");
  return {
    id: `capabilities.advertised.${entry.service}.${name.toLowerCase().replace(/_/g, "-")}`,
    group,
    title: `${rpcs} ${entry.probes.length > 1 ? "are" : "is"} implemented since ${name} is advertised`,
    level: "MUST",
    rule: `A plugin MUST implement ${rpcs} if it has the ${name} capability`,
    skipUnless(profile) {
      const state = advertised(profile, entry);
      if (typeof state === "string") return state;
      return state ? undefined : `${name} is not advertised`;
    },
    async run(run) {
      for (const probe of entry.probes) {
        run.step(`${probe.rpc} with an empty request`);
        const result = await outcome(probe.call(run));
        if (!result.ok && result.code === Code.Unimplemented) fail(`${probe.rpc} answered UNIMPLEMENTED although ${name} is advertised`);
      }
    },
  };
}

function unadvertisedCheck(entry: CapabilityRpcs): Check {
  const name = capName(entry);
  const rpcs = entry.probes.map((p) => p.rpc).join(" and ");
  return {
    id: `capabilities.unadvertised.${entry.service}.${name.toLowerCase().replace(/_/g, "-")}`,
    group,
    title: `${rpcs} answer${entry.probes.length > 1 ? "" : "s"} UNIMPLEMENTED${entry.alsoAccepted ? " (or refuses the request)" : ""} since ${name} is not advertised`,
    level: "SHOULD",
    rule: "Unsupported RPCs SHOULD return an appropriate error code that indicates such (12 UNIMPLEMENTED: the RPC is not implemented or disabled in the current mode)",
    skipUnless(profile) {
      const state = advertised(profile, entry);
      if (typeof state === "string") return state;
      return state ? `${name} is advertised` : undefined;
    },
    async run(run) {
      for (const probe of entry.probes) {
        run.step(`${probe.rpc} with an empty request`);
        await expectCode(`${probe.rpc} without ${name}`, probe.call(run), Code.Unimplemented, ...(entry.alsoAccepted ?? []));
      }
    },
  };
}

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const message of stream) void message;
}

export const capabilityChecks: Check[] = [
  {
    id: "capabilities.controller",
    group,
    title: "ControllerGetCapabilities lists only known capabilities, each once, consistently",
    level: "MUST",
    rule: "Capability types take the values the spec defines; LIST_VOLUMES_PUBLISHED_NODES: the SP MUST also support PUBLISH_UNPUBLISH_VOLUME",
    skipUnless: (p) => (p.controller.available ? undefined : p.controller.reason),
    async run(run) {
      const first = await expectOk("ControllerGetCapabilities", run.controller.controllerGetCapabilities({}, run.call()));
      const types = first.capabilities.map((c) => {
        if (c.type.case !== "rpc") fail("a controller capability has no rpc type set");
        return c.type.value.type;
      });
      const unknown = types.filter((t) => t === ControllerCap.UNKNOWN || ControllerCap[t] === undefined);
      verify(unknown.length === 0, `unknown controller capability value(s): ${unknown.join(", ")}`);
      const dup = duplicates(types);
      verify(dup.length === 0, `listed more than once: ${dup.map(controllerCapName).join(", ")}`);
      if (types.includes(ControllerCap.LIST_VOLUMES_PUBLISHED_NODES)) {
        verify(
          types.includes(ControllerCap.PUBLISH_UNPUBLISH_VOLUME),
          "LIST_VOLUMES_PUBLISHED_NODES is advertised without PUBLISH_UNPUBLISH_VOLUME",
        );
      }
      for (let i = 1; i < run.options.idempotentCount; i++) {
        const again = await expectOk("ControllerGetCapabilities (repeated)", run.controller.controllerGetCapabilities({}, run.call()));
        const list = again.capabilities.map((c) => (c.type.case === "rpc" ? c.type.value.type : 0));
        verify(
          [...list].sort().join(",") === [...types].sort().join(","),
          "ControllerGetCapabilities answers differently when called again",
        );
      }
    },
  },
  {
    id: "capabilities.node",
    group,
    title: "NodeGetCapabilities lists only known capabilities, each once, consistently",
    level: "MUST",
    rule: "A Node Plugin MUST implement NodeGetCapabilities; capability types take the values the spec defines",
    skipUnless: (p) => (p.node.available ? undefined : p.node.reason),
    async run(run) {
      const first = await expectOk("NodeGetCapabilities", run.node.nodeGetCapabilities({}, run.call()));
      const types = first.capabilities.map((c) => {
        if (c.type.case !== "rpc") fail("a node capability has no rpc type set");
        return c.type.value.type;
      });
      const unknown = types.filter((t) => t === NodeCap.UNKNOWN || NodeCap[t] === undefined);
      verify(unknown.length === 0, `unknown node capability value(s): ${unknown.join(", ")}`);
      const dup = duplicates(types);
      verify(dup.length === 0, `listed more than once: ${dup.map(nodeCapName).join(", ")}`);
      for (let i = 1; i < run.options.idempotentCount; i++) {
        const again = await expectOk("NodeGetCapabilities (repeated)", run.node.nodeGetCapabilities({}, run.call()));
        const list = again.capabilities.map((c) => (c.type.case === "rpc" ? c.type.value.type : 0));
        verify([...list].sort().join(",") === [...types].sort().join(","), "NodeGetCapabilities answers differently when called again");
      }
    },
  },
  {
    id: "capabilities.controller-served",
    group,
    title: "The controller endpoint serves the Controller service the plugin advertises",
    level: "MUST",
    rule: "CONTROLLER_SERVICE: the presence of this capability determines whether the CO will attempt to invoke the REQUIRED ControllerService RPCs",
    skipUnless(p) {
      if (!p.pluginServices.has(PluginService.CONTROLLER_SERVICE)) return "CONTROLLER_SERVICE is not advertised";
      return undefined;
    },
    async run(run) {
      const result = await outcome(run.controller.controllerGetCapabilities({}, run.call()));
      if (result.ok) return;
      if (result.code === Code.Unimplemented && run.clients.controllerEndpoint === run.clients.endpoint && run.profile.node.available) {
        run.note("this endpoint is a node-only instance; give the controller's endpoint with --controller-endpoint to check it");
        return;
      }
      fail(`ControllerGetCapabilities at ${run.clients.controllerEndpoint}: ${describeOutcome(result)}`);
    },
  },
  ...CAPABILITY_RPCS.map(advertisedCheck),
  ...CAPABILITY_RPCS.map(unadvertisedCheck),
  {
    id: "capabilities.group-controller",
    group,
    title: "GroupControllerGetCapabilities lists known capabilities, and their RPCs are implemented",
    level: "MUST",
    rule: "A Plugin that implements GroupController MUST implement GroupControllerGetCapabilities; CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT obliges the group snapshot RPCs",
    skipUnless: (p) =>
      p.pluginServices.has(PluginService.GROUP_CONTROLLER_SERVICE) ? undefined : "GROUP_CONTROLLER_SERVICE is not advertised",
    async run(run) {
      const caps = await expectOk(
        "GroupControllerGetCapabilities",
        run.clients.groupController.groupControllerGetCapabilities({}, run.call()),
      );
      const types = caps.capabilities.map((c) => (c.type.case === "rpc" ? c.type.value.type : 0));
      const unknown = types.filter((t) => t === GroupCap.UNKNOWN || GroupCap[t] === undefined);
      verify(unknown.length === 0, `unknown group controller capability value(s): ${unknown.join(", ")}`);
      if (types.includes(GroupCap.CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT)) {
        const gc = run.clients.groupController;
        for (const [rpc, call] of [
          ["CreateVolumeGroupSnapshot", () => gc.createVolumeGroupSnapshot({}, run.call())],
          ["DeleteVolumeGroupSnapshot", () => gc.deleteVolumeGroupSnapshot({}, run.call())],
          ["GetVolumeGroupSnapshot", () => gc.getVolumeGroupSnapshot({}, run.call())],
        ] as const) {
          run.step(`${rpc} without its required fields`);
          await expectCode(`${rpc} with an empty request`, call(), Code.InvalidArgument);
        }
      }
    },
  },
  {
    id: "capabilities.unadvertised.group-controller-service",
    group,
    title: "GroupControllerGetCapabilities answers UNIMPLEMENTED since GROUP_CONTROLLER_SERVICE is not advertised",
    level: "SHOULD",
    rule: "Unsupported RPCs SHOULD return an appropriate error code that indicates such (12 UNIMPLEMENTED)",
    skipUnless: (p) =>
      p.pluginServices.has(PluginService.GROUP_CONTROLLER_SERVICE) ? "GROUP_CONTROLLER_SERVICE is advertised" : undefined,
    async run(run) {
      await expectCode(
        "GroupControllerGetCapabilities",
        run.clients.groupController.groupControllerGetCapabilities({}, run.call()),
        Code.Unimplemented,
      );
    },
  },
  {
    id: "capabilities.unadvertised.snapshot-metadata-service",
    group,
    title: "SnapshotMetadata RPCs answer UNIMPLEMENTED since SNAPSHOT_METADATA_SERVICE is not advertised",
    level: "SHOULD",
    rule: "Unsupported RPCs SHOULD return an appropriate error code that indicates such (12 UNIMPLEMENTED)",
    skipUnless: (p) =>
      p.pluginServices.has(PluginService.SNAPSHOT_METADATA_SERVICE) ? "SNAPSHOT_METADATA_SERVICE is advertised" : undefined,
    async run(run) {
      const sm = run.clients.snapshotMetadata;
      run.step("GetMetadataAllocated with an empty request");
      await expectCode("GetMetadataAllocated", drain(sm.getMetadataAllocated({}, run.call())), Code.Unimplemented);
      run.step("GetMetadataDelta with an empty request");
      await expectCode("GetMetadataDelta", drain(sm.getMetadataDelta({}, run.call())), Code.Unimplemented);
    },
  },
  {
    id: "capabilities.snapshot-metadata-service",
    group,
    title: "SnapshotMetadata RPCs reject requests without their required fields",
    level: "MUST",
    rule: "Missing required field: 3 INVALID_ARGUMENT",
    skipUnless: (p) =>
      p.pluginServices.has(PluginService.SNAPSHOT_METADATA_SERVICE) ? undefined : "SNAPSHOT_METADATA_SERVICE is not advertised",
    async run(run) {
      const sm = run.clients.snapshotMetadata;
      run.step("GetMetadataAllocated with an empty request");
      const allocated = await outcome(drain(sm.getMetadataAllocated({}, run.call())));
      verify(
        !allocated.ok && allocated.code === Code.InvalidArgument,
        `GetMetadataAllocated with an empty request: expected INVALID_ARGUMENT, got ${allocated.ok ? "OK" : codeName(allocated.code)}`,
      );
      run.step("GetMetadataDelta with an empty request");
      const delta = await outcome(drain(sm.getMetadataDelta({}, run.call())));
      verify(
        !delta.ok && delta.code === Code.InvalidArgument,
        `GetMetadataDelta with an empty request: expected INVALID_ARGUMENT, got ${delta.ok ? "OK" : codeName(delta.code)}`,
      );
    },
  },
];
