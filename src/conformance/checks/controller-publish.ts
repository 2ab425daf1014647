import { Code } from "@connectrpc/connect";
import { fail, skip, verify, type Check } from "../check.js";
import type { CheckRun } from "../context.js";
import { describeOutcome, expectCode, expectOk, outcome, expectFailed } from "../expect.js";
import { ControllerCap, needs } from "../profile.js";
import { mapProblem } from "../spec-rules.js";
import { unknownNodeId, unknownVolumeId } from "./shared.js";

const needPublish = needs.controller(ControllerCap.PUBLISH_UNPUBLISH_VOLUME);
const needPublishCreate = needs.controller(ControllerCap.PUBLISH_UNPUBLISH_VOLUME, ControllerCap.CREATE_DELETE_VOLUME);

function publish(
  run: CheckRun,
  request: { volumeId?: string; nodeId?: string; withCapability?: boolean; readonly?: boolean; volumeContext?: Record<string, string> },
) {
  return run.controller.controllerPublishVolume(
    {
      volumeId: request.volumeId ?? "",
      nodeId: request.nodeId ?? "",
      ...(request.withCapability === false ? {} : { volumeCapability: run.mountCapability() }),
      readonly: request.readonly ?? false,
      volumeContext: request.volumeContext ?? {},
      secrets: run.secrets("ControllerPublishVolume"),
    },
    run.call(),
  );
}

function unpublish(run: CheckRun, volumeId: string, nodeId: string) {
  return run.controller.controllerUnpublishVolume({ volumeId, nodeId, secrets: run.secrets("ControllerUnpublishVolume") }, run.call());
}

/** The node ids ListVolumes reports a volume published to, or undefined when it is not listed. */
async function listedNodes(run: CheckRun, volumeId: string): Promise<readonly string[] | undefined> {
  const { entries } = await run.listAllVolumes();
  const entry = entries.find((e) => e.volume?.volumeId === volumeId);
  if (entry === undefined) return undefined;
  if (entry.status === undefined)
    fail(`ListVolumes entry of ${volumeId} has no status although LIST_VOLUMES_PUBLISHED_NODES is advertised`);
  return entry.status.publishedNodeIds;
}

export const controllerPublishChecks: Check[] = [
  {
    id: "controller-publish.missing-volume-id",
    group: "ControllerPublishVolume",
    title: "ControllerPublishVolume without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "ControllerPublishVolumeRequest.volume_id is REQUIRED",
    skipUnless: needPublish,
    async run(run) {
      await expectCode(
        "ControllerPublishVolume without volume_id",
        publish(run, { nodeId: run.profile.nodeInfo?.nodeId ?? unknownNodeId() }),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "controller-publish.missing-node-id",
    group: "ControllerPublishVolume",
    title: "ControllerPublishVolume without a node_id fails with INVALID_ARGUMENT, before looking the volume up",
    level: "MUST",
    rule: "node_id is REQUIRED; a missing required field is INVALID_ARGUMENT",
    skipUnless: needPublish,
    async run(run) {
      await expectCode(
        "ControllerPublishVolume of an unknown volume without node_id",
        publish(run, { volumeId: unknownVolumeId() }),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "controller-publish.missing-capability",
    group: "ControllerPublishVolume",
    title: "ControllerPublishVolume without a volume_capability fails with INVALID_ARGUMENT, before looking the volume up",
    level: "MUST",
    rule: "volume_capability is REQUIRED; a missing required field is INVALID_ARGUMENT",
    skipUnless: needPublish,
    async run(run) {
      await expectCode(
        "ControllerPublishVolume of an unknown volume without volume_capability",
        publish(run, { volumeId: unknownVolumeId(), nodeId: run.profile.nodeInfo?.nodeId ?? unknownNodeId(), withCapability: false }),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "controller-publish.volume-not-found",
    group: "ControllerPublishVolume",
    title: "ControllerPublishVolume of a volume that does not exist fails with NOT_FOUND",
    level: "MUST",
    rule: "Volume does not exist: 5 NOT_FOUND",
    skipUnless: needPublish,
    async run(run) {
      await expectCode(
        "ControllerPublishVolume of an unknown volume",
        publish(run, { volumeId: unknownVolumeId(), nodeId: run.nodeId }),
        Code.NotFound,
      );
    },
  },
  {
    id: "controller-publish.node-not-found",
    group: "ControllerPublishVolume",
    title: "ControllerPublishVolume to a node that does not exist fails with NOT_FOUND",
    level: "MUST",
    rule: "Node does not exist: 5 NOT_FOUND",
    skipUnless: needPublishCreate,
    async run(run) {
      const volume = await run.createTestVolume("nonode");
      const nodeId = unknownNodeId();
      const result = await outcome(publish(run, { volumeId: volume.volumeId, nodeId, volumeContext: volume.volumeContext }));
      if (result.ok) {
        run.cleanup.add(`cpub:${volume.volumeId}:${nodeId}`, `ControllerUnpublishVolume ${volume.volumeId} from ${nodeId}`, async () => {
          await unpublish(run, volume.volumeId, nodeId);
        });
      }
      expectFailed(`ControllerPublishVolume to unknown node ${nodeId}`, result, Code.NotFound);
    },
  },
  {
    id: "controller-publish.idempotent",
    group: "ControllerPublishVolume",
    title: "ControllerPublishVolume repeated with the same arguments succeeds with the same publish_context",
    level: "MUST",
    rule: "ControllerPublishVolume MUST be idempotent: already published compatibly replies 0 OK; publish_context SHALL NOT be mutable and at most 4 KiB",
    skipUnless: needPublishCreate,
    async run(run) {
      const volume = await run.createTestVolume("cpub");
      let first: string | undefined;
      for (let i = 1; i <= run.options.idempotentCount; i++) {
        run.step(`ControllerPublishVolume (call ${i})`);
        const context = await run.controllerPublish(volume, run.mountCapability());
        const problem = mapProblem("publish_context", context);
        verify(problem === undefined, problem ?? "");
        const text = JSON.stringify(Object.entries(context).sort());
        if (first === undefined) first = text;
        else verify(text === first, `call ${i} returned publish_context ${text}, the first ${first}`);
      }
    },
  },
  {
    id: "controller-publish.readonly",
    group: "ControllerPublishVolume",
    title: "ControllerPublishVolume with readonly succeeds when PUBLISH_READONLY is advertised",
    level: "MUST",
    rule: "PUBLISH_READONLY: the SP supports ControllerPublishVolume.readonly",
    skipUnless: needs.controller(
      ControllerCap.PUBLISH_UNPUBLISH_VOLUME,
      ControllerCap.CREATE_DELETE_VOLUME,
      ControllerCap.PUBLISH_READONLY,
    ),
    async run(run) {
      const volume = await run.createTestVolume("ro");
      run.step("ControllerPublishVolume readonly");
      await run.controllerPublish(volume, run.mountCapability(), true);
      run.step("ControllerPublishVolume readonly again");
      await run.controllerPublish(volume, run.mountCapability(), true);
    },
  },
  {
    id: "controller-publish.incompatible",
    group: "ControllerPublishVolume",
    title: "ControllerPublishVolume of a published volume with another readonly flag fails with ALREADY_EXISTS",
    level: "MUST",
    rule: "Volume published but is incompatible with the specified volume_capability or readonly flag: 6 ALREADY_EXISTS",
    skipUnless: needs.controller(
      ControllerCap.PUBLISH_UNPUBLISH_VOLUME,
      ControllerCap.CREATE_DELETE_VOLUME,
      ControllerCap.PUBLISH_READONLY,
    ),
    async run(run) {
      const volume = await run.createTestVolume("incompat");
      run.step("ControllerPublishVolume read-write");
      await run.controllerPublish(volume, run.mountCapability(), false);
      run.step("ControllerPublishVolume readonly to the same node");
      await expectCode(
        "ControllerPublishVolume again with readonly",
        publish(run, { volumeId: volume.volumeId, nodeId: run.nodeId, readonly: true, volumeContext: volume.volumeContext }),
        Code.AlreadyExists,
      );
    },
  },
  {
    id: "controller-publish.other-node",
    group: "ControllerPublishVolume",
    title: "ControllerPublishVolume of a single-node volume published elsewhere fails with FAILED_PRECONDITION",
    level: "MUST",
    rule: "Volume published to another node (and no MULTI_NODE capability): 9 FAILED_PRECONDITION",
    skipUnless: needPublishCreate,
    async run(run) {
      const other = run.options.otherNodeId;
      if (other === undefined) skip("needs a second node the controller knows: pass --other-node-id");
      const volume = await run.createTestVolume("twonodes");
      run.step("ControllerPublishVolume to this node");
      await run.controllerPublish(volume, run.mountCapability());
      run.step(`ControllerPublishVolume to node ${other}`);
      const result = await outcome(publish(run, { volumeId: volume.volumeId, nodeId: other, volumeContext: volume.volumeContext }));
      if (result.ok) {
        run.cleanup.add(`cpub:${volume.volumeId}:${other}`, `ControllerUnpublishVolume ${volume.volumeId} from ${other}`, async () => {
          await unpublish(run, volume.volumeId, other);
        });
        fail(`publishing a SINGLE_NODE_WRITER volume to a second node succeeded`);
      }
      verify(result.code === Code.FailedPrecondition, `expected FAILED_PRECONDITION, got ${describeOutcome(result)}`);
    },
  },
  {
    id: "controller-unpublish.missing-volume-id",
    group: "ControllerUnpublishVolume",
    title: "ControllerUnpublishVolume without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "ControllerUnpublishVolumeRequest.volume_id is REQUIRED",
    skipUnless: needPublish,
    async run(run) {
      await expectCode(
        "ControllerUnpublishVolume without volume_id",
        unpublish(run, "", run.profile.nodeInfo?.nodeId ?? unknownNodeId()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "controller-unpublish.not-published",
    group: "ControllerUnpublishVolume",
    title: "ControllerUnpublishVolume of a volume that is not published succeeds",
    level: "MUST",
    rule: "If the volume is not attached to the node, the Plugin MUST reply 0 OK",
    skipUnless: needPublishCreate,
    async run(run) {
      const volume = await run.createTestVolume("notpub");
      await expectOk("ControllerUnpublishVolume of a volume never published", unpublish(run, volume.volumeId, run.nodeId));
    },
  },
  {
    id: "controller-unpublish.unknown-volume",
    group: "ControllerUnpublishVolume",
    title: "ControllerUnpublishVolume of a volume that does not exist succeeds (or answers NOT_FOUND)",
    level: "MUST",
    rule: "If the volume cannot be found and can be safely regarded as ControllerUnpublished, the plugin SHOULD return 0 OK; otherwise 5 NOT_FOUND",
    skipUnless: needPublish,
    async run(run) {
      const result = await outcome(unpublish(run, unknownVolumeId(), run.profile.nodeInfo?.nodeId ?? unknownNodeId()));
      if (!result.ok) {
        verify(result.code === Code.NotFound, `expected OK (or NOT_FOUND), got ${describeOutcome(result)}`);
        run.note("answered NOT_FOUND: allowed, though a volume that does not exist can safely be regarded as unpublished (OK)");
      }
    },
  },
  {
    id: "controller-unpublish.idempotent",
    group: "ControllerUnpublishVolume",
    title: "ControllerUnpublishVolume repeated after a publication succeeds every time",
    level: "MUST",
    rule: "ControllerUnpublishVolume MUST be idempotent",
    skipUnless: needPublishCreate,
    async run(run) {
      const volume = await run.createTestVolume("cunpub");
      run.step("ControllerPublishVolume");
      await run.controllerPublish(volume, run.mountCapability());
      for (let i = 1; i <= run.options.idempotentCount; i++) {
        run.step(`ControllerUnpublishVolume (call ${i})`);
        await run.controllerUnpublish(volume.volumeId);
      }
      if (run.hasControllerCap(ControllerCap.LIST_VOLUMES) && run.hasControllerCap(ControllerCap.LIST_VOLUMES_PUBLISHED_NODES)) {
        const nodes = await listedNodes(run, volume.volumeId);
        verify(nodes === undefined || !nodes.includes(run.nodeId), `ListVolumes still reports the volume published to ${run.nodeId}`);
      }
    },
  },
  {
    id: "controller-unpublish.all-nodes",
    group: "ControllerUnpublishVolume",
    title: "ControllerUnpublishVolume without a node_id unpublishes the volume from every node",
    level: "MUST",
    rule: "node_id is OPTIONAL: if the value is unset, the SP MUST unpublish the volume from all nodes it is published to",
    skipUnless: needPublishCreate,
    async run(run) {
      const volume = await run.createTestVolume("unpuball");
      run.step("ControllerPublishVolume");
      await run.controllerPublish(volume, run.mountCapability());
      run.step("ControllerUnpublishVolume with an empty node_id");
      await expectOk("ControllerUnpublishVolume without node_id", unpublish(run, volume.volumeId, ""));
      run.cleanup.release(`cpub:${volume.volumeId}:${run.nodeId}`);
      if (run.hasControllerCap(ControllerCap.LIST_VOLUMES) && run.hasControllerCap(ControllerCap.LIST_VOLUMES_PUBLISHED_NODES)) {
        run.step("ListVolumes");
        const nodes = await listedNodes(run, volume.volumeId);
        verify(nodes === undefined || nodes.length === 0, `ListVolumes still reports the volume published to ${JSON.stringify(nodes)}`);
      } else if (run.hasControllerCap(ControllerCap.GET_VOLUME) && run.hasControllerCap(ControllerCap.LIST_VOLUMES_PUBLISHED_NODES)) {
        const answer = await expectOk("ControllerGetVolume", run.controller.controllerGetVolume({ volumeId: volume.volumeId }, run.call()));
        verify(
          (answer.status?.publishedNodeIds.length ?? 0) === 0,
          `ControllerGetVolume still reports the volume published to ${JSON.stringify(answer.status?.publishedNodeIds)}`,
        );
      } else {
        run.note("the driver does not report published nodes; only the OK answer was checked");
      }
    },
  },
  {
    id: "controller-publish.published-nodes",
    group: "ListVolumes",
    title: "ListVolumes reports the nodes a volume is published to, and stops after unpublishing",
    level: "MUST",
    rule: "LIST_VOLUMES_PUBLISHED_NODES: ListVolumesResponse.Entry.status MUST be specified with published_node_ids",
    skipUnless: needs.controller(
      ControllerCap.PUBLISH_UNPUBLISH_VOLUME,
      ControllerCap.CREATE_DELETE_VOLUME,
      ControllerCap.LIST_VOLUMES,
      ControllerCap.LIST_VOLUMES_PUBLISHED_NODES,
    ),
    async run(run) {
      const volume = await run.createTestVolume("pubnodes");
      run.step("ListVolumes before publishing");
      const before = await listedNodes(run, volume.volumeId);
      verify(before !== undefined, `ListVolumes does not list new volume ${volume.volumeId}`);
      verify(!before.includes(run.nodeId), `a new volume is reported published to ${run.nodeId}`);
      run.step("ControllerPublishVolume");
      await run.controllerPublish(volume, run.mountCapability());
      const during = await listedNodes(run, volume.volumeId);
      verify(
        during?.includes(run.nodeId) === true,
        `after ControllerPublishVolume, published_node_ids is ${JSON.stringify(during)}, without ${run.nodeId}`,
      );
      run.step("ControllerUnpublishVolume");
      await run.controllerUnpublish(volume.volumeId);
      const after = await listedNodes(run, volume.volumeId);
      verify(after?.includes(run.nodeId) !== true, `after ControllerUnpublishVolume, published_node_ids still has ${run.nodeId}`);
    },
  },
];
