import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { DescMessage, Message, MessageInitShape } from "@bufbuild/protobuf";
import type { CallOptions } from "@connectrpc/connect";
import {
  VolumeCapability_AccessMode_Mode as AccessMode,
  type CreateSnapshotRequestSchema,
  type CreateVolumeRequestSchema,
  type ListSnapshotsRequestSchema,
  type ListSnapshotsResponse_Entry,
  type ListVolumesResponse_Entry,
  type Snapshot,
  type TopologyRequirementSchema,
  type Volume,
  type VolumeCapabilitySchema,
} from "../gen/csi/v1/csi_pb.js";
import { fail, skip } from "./verdict.js";
import { CleanupRegistry } from "./cleanup.js";
import type { ConformanceClients } from "./clients.js";
import { Code } from "@connectrpc/connect";
import { describeOutcome, expectOk, outcome } from "./expect.js";
import { forceUnmount, mountsUnder } from "./host.js";
import type { ResolvedOptions, SecretRpc, StringMap } from "./options.js";
import { ControllerCap, hasControllerCap, hasNodeCap, NodeCap, PluginService, type DriverProfile } from "./profile.js";

export { AccessMode };

/** The plain-object form of a message's init shape (what requests are built from). */
type Init<Desc extends DescMessage> = Exclude<MessageInitShape<Desc>, Message>;

export type VolumeCapabilityInit = Init<typeof VolumeCapabilitySchema>;
export type CreateVolumeRequestInit = Init<typeof CreateVolumeRequestSchema>;
export type CreateSnapshotRequestInit = Init<typeof CreateSnapshotRequestSchema>;
export type TopologyRequirementInit = Init<typeof TopologyRequirementSchema>;
export type ListSnapshotsRequestInit = Init<typeof ListSnapshotsRequestSchema>;
export type AccessType = "mount" | "block";

/** Directories of one run: every check gets its own staging and target directories below them. */
export interface RunDirs {
  readonly staging: string;
  readonly target: string;
  readonly runId: string;
}

/** Paths of one check's node operations: a staging directory (created) and a target path (its parent created, itself not). */
export interface WorkPaths {
  readonly stagingPath: string;
  readonly targetPath: string;
}

/** A volume made usable on the node by `CheckRun.provision`. */
export interface ProvisionedVolume {
  readonly volume: Volume;
  readonly capability: VolumeCapabilityInit;
  readonly accessType: AccessType;
  readonly publishContext: StringMap;
  readonly stagingPath: string;
  readonly targetPath: string;
}

let nameSequence = 0;

/**
 * Everything one check works with: the clients, the driver's profile, request
 * builders, resource helpers that register their undo step, and the check's
 * own steps (shown next to a failure, like csi-sanity's "By(...)").
 */
export class CheckRun {
  readonly cleanup = new CleanupRegistry();
  readonly steps: string[] = [];
  readonly notes: string[] = [];
  #workDirs = 0;

  constructor(
    /** The check being run (its id names the run's volumes and directories). */
    readonly check: { readonly id: string },
    readonly options: ResolvedOptions,
    readonly profile: DriverProfile,
    readonly clients: ConformanceClients,
    readonly dirs: RunDirs,
    readonly signal: AbortSignal,
    readonly sequence: number,
  ) {}

  get identity() {
    return this.clients.identity;
  }

  get controller() {
    return this.clients.controller;
  }

  get node() {
    return this.clients.node;
  }

  step(text: string): void {
    this.steps.push(text);
  }

  note(text: string): void {
    this.notes.push(text);
  }

  /** Options for one RPC: the run's per-call deadline, cancelled with the check. */
  call(timeoutMs = this.options.rpcTimeoutMs): CallOptions {
    return { timeoutMs, signal: this.signal };
  }

  secrets(rpc: SecretRpc): StringMap {
    return { ...this.options.secrets[rpc] };
  }

  /** A fresh name for a volume or snapshot, valid for most backends (lower case, digits, dashes). */
  uniqueName(label: string): string {
    nameSequence++;
    return `csi-conformance-${this.dirs.runId}-${this.sequence}-${nameSequence}-${label}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  }

  get nodeId(): string {
    const info = this.profile.nodeInfo;
    if (info === undefined || info.nodeId === "") skip(this.profile.nodeInfoError ?? "NodeGetInfo returned no node id");
    return info.nodeId;
  }

  hasControllerCap(cap: ControllerCap): boolean {
    return hasControllerCap(this.profile, cap);
  }

  hasNodeCap(cap: NodeCap): boolean {
    return hasNodeCap(this.profile, cap);
  }

  mountCapability(mode: AccessMode = AccessMode.SINGLE_NODE_WRITER, mountFlags: string[] = []): VolumeCapabilityInit {
    return { accessType: { case: "mount", value: { fsType: this.options.fsType, mountFlags } }, accessMode: { mode } };
  }

  blockCapability(mode: AccessMode = AccessMode.SINGLE_NODE_WRITER): VolumeCapabilityInit {
    return { accessType: { case: "block", value: {} }, accessMode: { mode } };
  }

  capability(accessType: AccessType, mode: AccessMode = AccessMode.SINGLE_NODE_WRITER): VolumeCapabilityInit {
    return accessType === "mount" ? this.mountCapability(mode) : this.blockCapability(mode);
  }

  /** The node's topology as the only requisite and preferred one, when the plugin has topology constraints (as csi-sanity does). */
  topologyRequirement(): TopologyRequirementInit | undefined {
    if (!this.profile.pluginServices.has(PluginService.VOLUME_ACCESSIBILITY_CONSTRAINTS)) return undefined;
    const segments = this.profile.nodeInfo?.accessibleTopology?.segments;
    if (segments === undefined || Object.keys(segments).length === 0) return undefined;
    return { requisite: [{ segments }], preferred: [{ segments }] };
  }

  /** A CreateVolume request for a test volume: the configured size and parameters, SINGLE_NODE_WRITER. */
  volumeRequest(name: string, accessType: AccessType = "mount", overrides: Partial<CreateVolumeRequestInit> = {}): CreateVolumeRequestInit {
    const topology = this.topologyRequirement();
    return {
      name,
      capacityRange: { requiredBytes: this.options.testVolumeSize },
      volumeCapabilities: [this.capability(accessType)],
      parameters: { ...this.options.parameters },
      secrets: this.secrets("CreateVolume"),
      ...(topology !== undefined ? { accessibilityRequirements: topology } : {}),
      ...overrides,
    };
  }

  /** CreateVolume that must succeed; the volume is deleted when the check ends. */
  async createVolume(request: CreateVolumeRequestInit, what = "CreateVolume"): Promise<Volume> {
    const response = await expectOk(what, this.controller.createVolume(request, this.call()));
    const volume = response.volume;
    if (volume === undefined || volume.volumeId === "") fail(`${what}: the response has no volume or an empty volume_id`);
    this.registerVolume(volume.volumeId);
    return volume;
  }

  /** Make sure a volume the driver may have created is deleted at the end. */
  registerVolume(volumeId: string): void {
    this.cleanup.add(`volume:${volumeId}`, `DeleteVolume ${volumeId}`, async () => {
      await this.controller.deleteVolume({ volumeId, secrets: this.secrets("DeleteVolume") }, this.call());
    });
  }

  /** A test volume of the given access type, created with the default request. */
  async createTestVolume(
    label: string,
    accessType: AccessType = "mount",
    mode: AccessMode = AccessMode.SINGLE_NODE_WRITER,
  ): Promise<Volume> {
    if (!this.options.accessTypes.includes(accessType)) skip(`access type ${accessType} is not selected (--access-types)`);
    this.step(`create a ${accessType} volume`);
    const overrides = mode === AccessMode.SINGLE_NODE_WRITER ? {} : { volumeCapabilities: [this.capability(accessType, mode)] };
    if (accessType === "block") {
      // Block support is optional: a driver that refuses block capabilities outright skips block checks.
      const request = this.volumeRequest(this.uniqueName(label), accessType, overrides);
      const result = await outcome(this.controller.createVolume(request, this.call()));
      if (!result.ok && result.code === Code.InvalidArgument) skip(`the driver refuses block volumes: ${result.message}`);
      if (!result.ok) fail(`CreateVolume of a block volume: expected OK, got ${describeOutcome(result)}`);
      const volume = result.value.volume;
      if (volume === undefined || volume.volumeId === "") fail("CreateVolume: the response has no volume or an empty volume_id");
      this.registerVolume(volume.volumeId);
      return volume;
    }
    return this.createVolume(this.volumeRequest(this.uniqueName(label), accessType, overrides));
  }

  async deleteVolume(volumeId: string, what = "DeleteVolume"): Promise<void> {
    await expectOk(what, this.controller.deleteVolume({ volumeId, secrets: this.secrets("DeleteVolume") }, this.call()));
    this.cleanup.release(`volume:${volumeId}`);
  }

  async controllerPublish(volume: Volume, capability: VolumeCapabilityInit, readonly = false, nodeId = this.nodeId): Promise<StringMap> {
    const volumeId = volume.volumeId;
    const response = await expectOk(
      `ControllerPublishVolume of ${volumeId} to node ${nodeId}`,
      this.controller.controllerPublishVolume(
        {
          volumeId,
          nodeId,
          volumeCapability: capability,
          readonly,
          volumeContext: volume.volumeContext,
          secrets: this.secrets("ControllerPublishVolume"),
        },
        this.call(),
      ),
    );
    this.cleanup.add(`cpub:${volumeId}:${nodeId}`, `ControllerUnpublishVolume ${volumeId} from ${nodeId}`, async () => {
      await this.controller.controllerUnpublishVolume(
        { volumeId, nodeId, secrets: this.secrets("ControllerUnpublishVolume") },
        this.call(),
      );
    });
    return response.publishContext;
  }

  async controllerUnpublish(volumeId: string, nodeId = this.nodeId): Promise<void> {
    await expectOk(
      `ControllerUnpublishVolume of ${volumeId} from node ${nodeId}`,
      this.controller.controllerUnpublishVolume({ volumeId, nodeId, secrets: this.secrets("ControllerUnpublishVolume") }, this.call()),
    );
    this.cleanup.release(`cpub:${volumeId}:${nodeId}`);
  }

  /**
   * A staging directory (created, as the CO must) and a target path (its
   * parent created; the SP creates the target itself), both removed at the end
   * after unmounting anything a driver left there.
   */
  async workPaths(label = "volume"): Promise<WorkPaths> {
    this.#workDirs++;
    const name = `${this.sequence}-${this.check.id.replace(/[^a-z0-9]+/gi, "-")}-${this.#workDirs}-${label}`.slice(0, 100);
    const stagingRoot = join(this.dirs.staging, name);
    const targetRoot = join(this.dirs.target, name);
    const stagingPath = join(stagingRoot, "staging");
    await mkdir(stagingPath, { recursive: true });
    await mkdir(targetRoot, { recursive: true });
    for (const root of new Set([targetRoot, stagingRoot])) {
      this.cleanup.add(`dir:${root}`, `remove ${root}`, () => removeWorkDir(root));
    }
    return { stagingPath, targetPath: join(targetRoot, "target") };
  }

  async stage(volume: Volume, stagingPath: string, capability: VolumeCapabilityInit, publishContext: StringMap): Promise<void> {
    const volumeId = volume.volumeId;
    // Registered before the call: a stage that failed half-way still gets an unstage.
    this.registerStage(volumeId, stagingPath);
    await expectOk(
      `NodeStageVolume of ${volumeId} at ${stagingPath}`,
      this.node.nodeStageVolume(
        {
          volumeId,
          stagingTargetPath: stagingPath,
          volumeCapability: capability,
          publishContext,
          volumeContext: volume.volumeContext,
          secrets: this.secrets("NodeStageVolume"),
        },
        this.call(),
      ),
    );
  }

  registerStage(volumeId: string, stagingPath: string): void {
    this.cleanup.add(`stage:${volumeId}:${stagingPath}`, `NodeUnstageVolume ${volumeId} at ${stagingPath}`, async () => {
      await this.node.nodeUnstageVolume({ volumeId, stagingTargetPath: stagingPath }, this.call());
    });
  }

  async unstage(volumeId: string, stagingPath: string): Promise<void> {
    await expectOk(
      `NodeUnstageVolume of ${volumeId} at ${stagingPath}`,
      this.node.nodeUnstageVolume({ volumeId, stagingTargetPath: stagingPath }, this.call()),
    );
    this.cleanup.release(`stage:${volumeId}:${stagingPath}`);
  }

  async publish(
    volume: Volume,
    paths: { stagingPath: string; targetPath: string },
    capability: VolumeCapabilityInit,
    publishContext: StringMap,
    readonly = false,
  ): Promise<void> {
    const volumeId = volume.volumeId;
    this.registerPublish(volumeId, paths.targetPath);
    await expectOk(
      `NodePublishVolume of ${volumeId} at ${paths.targetPath}${readonly ? " (readonly)" : ""}`,
      this.node.nodePublishVolume(
        {
          volumeId,
          stagingTargetPath: this.hasNodeCap(NodeCap.STAGE_UNSTAGE_VOLUME) ? paths.stagingPath : "",
          targetPath: paths.targetPath,
          volumeCapability: capability,
          readonly,
          publishContext,
          volumeContext: volume.volumeContext,
          secrets: this.secrets("NodePublishVolume"),
        },
        this.call(),
      ),
    );
  }

  registerPublish(volumeId: string, targetPath: string): void {
    this.cleanup.add(`publish:${volumeId}:${targetPath}`, `NodeUnpublishVolume ${volumeId} at ${targetPath}`, async () => {
      await this.node.nodeUnpublishVolume({ volumeId, targetPath }, this.call());
    });
  }

  async unpublish(volumeId: string, targetPath: string): Promise<void> {
    await expectOk(
      `NodeUnpublishVolume of ${volumeId} at ${targetPath}`,
      this.node.nodeUnpublishVolume({ volumeId, targetPath }, this.call()),
    );
    this.cleanup.release(`publish:${volumeId}:${targetPath}`);
  }

  /**
   * Create a volume and take it through the CO's steps up to a node
   * publication: ControllerPublishVolume (when advertised), NodeStageVolume
   * (when advertised), NodePublishVolume.
   */
  async provision(
    label: string,
    accessType: AccessType,
    options: { readonly?: boolean; volume?: Volume; paths?: WorkPaths; publish?: boolean; mode?: AccessMode } = {},
  ): Promise<ProvisionedVolume> {
    const capability = this.capability(accessType, options.mode);
    const volume = options.volume ?? (await this.createTestVolume(label, accessType, options.mode));
    let publishContext: StringMap = {};
    if (this.hasControllerCap(ControllerCap.PUBLISH_UNPUBLISH_VOLUME)) {
      this.step("ControllerPublishVolume to this node");
      publishContext = await this.controllerPublish(volume, capability, false);
    }
    const paths = options.paths ?? (await this.workPaths(label));
    if (this.hasNodeCap(NodeCap.STAGE_UNSTAGE_VOLUME)) {
      this.step("NodeStageVolume");
      await this.stage(volume, paths.stagingPath, capability, publishContext);
    }
    if (options.publish !== false) {
      this.step(`NodePublishVolume${options.readonly === true ? " (readonly)" : ""}`);
      await this.publish(volume, paths, capability, publishContext, options.readonly ?? false);
    }
    return { volume, capability, accessType, publishContext, ...paths };
  }

  /** Undo `provision` in the CO's order, each step once; the volume itself is left for the cleanup. */
  async teardown(provisioned: ProvisionedVolume): Promise<void> {
    const volumeId = provisioned.volume.volumeId;
    if (this.cleanup.has(`publish:${volumeId}:${provisioned.targetPath}`)) {
      this.step("NodeUnpublishVolume");
      await this.unpublish(volumeId, provisioned.targetPath);
    }
    if (this.hasNodeCap(NodeCap.STAGE_UNSTAGE_VOLUME)) {
      this.step("NodeUnstageVolume");
      await this.unstage(volumeId, provisioned.stagingPath);
    }
    if (this.hasControllerCap(ControllerCap.PUBLISH_UNPUBLISH_VOLUME)) {
      this.step("ControllerUnpublishVolume");
      await this.controllerUnpublish(volumeId);
    }
  }

  snapshotRequest(name: string, sourceVolumeId: string): CreateSnapshotRequestInit {
    return { name, sourceVolumeId, parameters: { ...this.options.snapshotParameters }, secrets: this.secrets("CreateSnapshot") };
  }

  /**
   * CreateSnapshot that must succeed, repeated (as the CO does) until the
   * snapshot is ready to use; deleted when the check ends.
   */
  async createSnapshot(request: CreateSnapshotRequestInit, options: { waitReady?: boolean } = {}): Promise<Snapshot> {
    const what = `CreateSnapshot ${request.name ?? ""} of ${request.sourceVolumeId ?? ""}`;
    let snapshot = (await expectOk(what, this.controller.createSnapshot(request, this.call()))).snapshot;
    if (snapshot === undefined || snapshot.snapshotId === "") fail(`${what}: the response has no snapshot or an empty snapshot_id`);
    this.registerSnapshot(snapshot.snapshotId);
    if (options.waitReady === false) return snapshot;
    for (let delay = 250; !snapshot.readyToUse; delay = Math.min(delay * 2, 5_000)) {
      if (this.signal.aborted) fail(`${what}: the snapshot did not become ready_to_use before the check's deadline`);
      await sleep(delay, undefined, { signal: this.signal }).catch(() => undefined);
      const again = (await expectOk(`${what} (repeated until ready_to_use)`, this.controller.createSnapshot(request, this.call())))
        .snapshot;
      if (again === undefined) fail(`${what}: a repeated call returned no snapshot`);
      if (again.snapshotId !== snapshot.snapshotId)
        fail(`${what}: a repeated call returned snapshot ${again.snapshotId}, not ${snapshot.snapshotId}`);
      snapshot = again;
    }
    return snapshot;
  }

  registerSnapshot(snapshotId: string): void {
    this.cleanup.add(`snapshot:${snapshotId}`, `DeleteSnapshot ${snapshotId}`, async () => {
      await this.controller.deleteSnapshot({ snapshotId, secrets: this.secrets("DeleteSnapshot") }, this.call());
    });
  }

  async deleteSnapshot(snapshotId: string, what = "DeleteSnapshot"): Promise<void> {
    await expectOk(what, this.controller.deleteSnapshot({ snapshotId, secrets: this.secrets("DeleteSnapshot") }, this.call()));
    this.cleanup.release(`snapshot:${snapshotId}`);
  }

  /** Every ListVolumes entry, following next_token (bounded, so a token loop cannot hang the run). */
  async listAllVolumes(maxEntries = 0): Promise<{ entries: ListVolumesResponse_Entry[]; pages: ListVolumesResponse_Entry[][] }> {
    const entries: ListVolumesResponse_Entry[] = [];
    const pages: ListVolumesResponse_Entry[][] = [];
    let token = "";
    for (let page = 0; ; page++) {
      if (page > 10_000) fail("ListVolumes: more than 10000 pages; next_token never ends");
      const response = await expectOk(
        `ListVolumes (max_entries ${maxEntries}, page ${page + 1})`,
        this.controller.listVolumes({ maxEntries, startingToken: token }, this.call()),
      );
      if (maxEntries > 0 && response.entries.length > maxEntries) {
        fail(`ListVolumes with max_entries ${maxEntries} returned ${response.entries.length} entries (MUST NOT return more)`);
      }
      pages.push(response.entries);
      entries.push(...response.entries);
      if (response.nextToken === "") return { entries, pages };
      if (response.nextToken === token) fail(`ListVolumes returned the starting token ${JSON.stringify(token)} as next_token again`);
      token = response.nextToken;
    }
  }

  /** Every ListSnapshots entry for a request, following next_token. */
  async listAllSnapshots(
    request: Omit<ListSnapshotsRequestInit, "startingToken"> = {},
  ): Promise<{ entries: ListSnapshotsResponse_Entry[]; pages: ListSnapshotsResponse_Entry[][] }> {
    const entries: ListSnapshotsResponse_Entry[] = [];
    const pages: ListSnapshotsResponse_Entry[][] = [];
    const maxEntries = request.maxEntries ?? 0;
    let token = "";
    for (let page = 0; ; page++) {
      if (page > 10_000) fail("ListSnapshots: more than 10000 pages; next_token never ends");
      const response = await expectOk(
        `ListSnapshots (max_entries ${maxEntries}, page ${page + 1})`,
        this.controller.listSnapshots({ secrets: this.secrets("ListSnapshots"), ...request, startingToken: token }, this.call()),
      );
      if (maxEntries > 0 && response.entries.length > maxEntries) {
        fail(`ListSnapshots with max_entries ${maxEntries} returned ${response.entries.length} entries (MUST NOT return more)`);
      }
      pages.push(response.entries);
      entries.push(...response.entries);
      if (response.nextToken === "") return { entries, pages };
      if (response.nextToken === token) fail(`ListSnapshots returned the starting token ${JSON.stringify(token)} as next_token again`);
      token = response.nextToken;
    }
  }
}

/** Remove a check's directory, first unmounting whatever a driver left mounted below it. */
async function removeWorkDir(root: string): Promise<void> {
  const leftovers = await mountsUnder(root);
  for (const point of leftovers) await forceUnmount(point);
  if ((await mountsUnder(root)).length > 0) throw new Error(`still mounted below ${root}; not removing it`);
  await rm(root, { recursive: true, force: true });
  if (leftovers.length > 0)
    throw new Error(`the driver left ${leftovers.length} mount(s) behind (${leftovers.join(", ")}); the suite unmounted them`);
}
