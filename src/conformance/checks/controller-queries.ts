import { Code } from "@connectrpc/connect";
import type { VolumeCapability } from "../../gen/csi/v1/csi_pb.js";
import { fail, skip, verify, type Check } from "../check.js";
import type { CheckRun, VolumeCapabilityInit } from "../context.js";
import { describeOutcome, expectCode, expectOk, outcome } from "../expect.js";
import { ControllerCap, needs, PluginService } from "../profile.js";
import { mapProblem } from "../spec-rules.js";
import { unknownVolumeId } from "./shared.js";

const needController = needs.controller();
const needCreate = needs.controller(ControllerCap.CREATE_DELETE_VOLUME);

function validate(run: CheckRun, volumeId: string, volumeCapabilities: VolumeCapabilityInit[], volumeContext: Record<string, string> = {}) {
  return run.controller.validateVolumeCapabilities(
    {
      volumeId,
      volumeCapabilities,
      volumeContext,
      parameters: { ...run.options.parameters },
      secrets: run.secrets("ValidateVolumeCapabilities"),
    },
    run.call(),
  );
}

/** A capability's access type and mode: what a confirmation must not change (fs_type defaults may be filled in). */
function capabilityKey(cap: VolumeCapabilityInit | VolumeCapability): string {
  return `${cap.accessType?.case ?? "none"}/${cap.accessMode?.mode ?? 0}`;
}

export const validateChecks: Check[] = [
  {
    id: "validate-volume-capabilities.missing-id",
    group: "ValidateVolumeCapabilities",
    title: "ValidateVolumeCapabilities without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "ValidateVolumeCapabilitiesRequest.volume_id is REQUIRED",
    skipUnless: needController,
    async run(run) {
      await expectCode("ValidateVolumeCapabilities without volume_id", validate(run, "", [run.mountCapability()]), Code.InvalidArgument);
    },
  },
  {
    id: "validate-volume-capabilities.missing-capabilities",
    group: "ValidateVolumeCapabilities",
    title: "ValidateVolumeCapabilities without capabilities fails with INVALID_ARGUMENT, before looking the volume up",
    level: "MUST",
    rule: "volume_capabilities is REQUIRED; a missing required field is INVALID_ARGUMENT (checked before the volume is looked up)",
    skipUnless: needController,
    async run(run) {
      await expectCode(
        "ValidateVolumeCapabilities of an unknown volume without capabilities",
        validate(run, unknownVolumeId(), []),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "validate-volume-capabilities.not-found",
    group: "ValidateVolumeCapabilities",
    title: "ValidateVolumeCapabilities of a volume that does not exist fails with NOT_FOUND",
    level: "MUST",
    rule: "Volume does not exist: 5 NOT_FOUND",
    skipUnless: needController,
    async run(run) {
      await expectCode(
        "ValidateVolumeCapabilities of an unknown volume",
        validate(run, unknownVolumeId(), [run.mountCapability()]),
        Code.NotFound,
      );
    },
  },
  {
    id: "validate-volume-capabilities.confirms",
    group: "ValidateVolumeCapabilities",
    title: "ValidateVolumeCapabilities confirms the capabilities a volume was created with, repeatedly",
    level: "MUST",
    rule: "The provisioned volume MUST satisfy ALL the requested capabilities, so validating them returns confirmed with the capabilities; ValidateVolumeCapabilities MUST be idempotent",
    skipUnless: needCreate,
    async run(run) {
      const volume = await run.createTestVolume("validate");
      const requested = [run.mountCapability()];
      for (let i = 1; i <= run.options.idempotentCount; i++) {
        run.step(`ValidateVolumeCapabilities (call ${i})`);
        const answer = await expectOk("ValidateVolumeCapabilities", validate(run, volume.volumeId, requested, volume.volumeContext));
        const confirmed = answer.confirmed;
        verify(
          confirmed !== undefined,
          `the capabilities the volume was created with are not confirmed (message: ${JSON.stringify(answer.message)})`,
        );
        verify(confirmed.volumeCapabilities.length > 0, "confirmed.volume_capabilities is empty (REQUIRED)");
        const wanted = new Set(requested.map(capabilityKey));
        const extra = confirmed.volumeCapabilities.filter((c) => !wanted.has(capabilityKey(c)));
        verify(extra.length === 0, `confirmed lists capabilities that were not requested: ${extra.map(capabilityKey).join(", ")}`);
        const context = mapProblem("confirmed.volume_context", confirmed.volumeContext);
        verify(context === undefined, context ?? "");
      }
    },
  },
  {
    id: "validate-volume-capabilities.unsupported",
    group: "ValidateVolumeCapabilities",
    title: "ValidateVolumeCapabilities does not confirm a capability no driver can support",
    level: "MUST",
    rule: "This RPC SHALL return confirmed only if all the volume capabilities specified in the request are supported",
    skipUnless: needCreate,
    async run(run) {
      const volume = await run.createTestVolume("unsupported");
      const bogus: VolumeCapabilityInit = {
        accessType: { case: "mount", value: { fsType: "csi-conformance-no-such-fs" } },
        accessMode: { mode: run.mountCapability().accessMode?.mode ?? 1 },
      };
      for (const [label, caps] of [
        ["an unknown fs_type", [bogus]],
        ["a supported and an unsupported capability", [run.mountCapability(), bogus]],
      ] as const) {
        run.step(`ValidateVolumeCapabilities with ${label}`);
        const result = await outcome(validate(run, volume.volumeId, [...caps], volume.volumeContext));
        if (!result.ok) {
          verify(
            result.code === Code.InvalidArgument,
            `ValidateVolumeCapabilities with ${label}: expected OK without confirmed (or INVALID_ARGUMENT), got ${describeOutcome(result)}`,
          );
          continue;
        }
        verify(result.value.confirmed === undefined, `ValidateVolumeCapabilities confirmed ${label}`);
      }
    },
  },
];

export const capacityChecks: Check[] = [
  {
    id: "get-capacity.plain",
    group: "GetCapacity",
    title: "GetCapacity without arguments returns non-negative sizes",
    level: "MUST",
    rule: "available_capacity is REQUIRED and MUST NOT be negative; maximum/minimum_volume_size MUST NOT be negative",
    skipUnless: needs.controller(ControllerCap.GET_CAPACITY),
    async run(run) {
      const answer = await expectOk("GetCapacity", run.controller.getCapacity({}, run.call()));
      verify(answer.availableCapacity >= 0n, `available_capacity ${answer.availableCapacity} is negative`);
      const max = answer.maximumVolumeSize;
      const min = answer.minimumVolumeSize;
      verify(max === undefined || max >= 0n, `maximum_volume_size ${max} is negative`);
      verify(min === undefined || min >= 0n, `minimum_volume_size ${min} is negative`);
      verify(max === undefined || min === undefined || min <= max, `minimum_volume_size ${min} is larger than maximum_volume_size ${max}`);
    },
  },
  {
    id: "get-capacity.filtered",
    group: "GetCapacity",
    title: "GetCapacity for the test capabilities, parameters and the node's topology succeeds",
    level: "MUST",
    rule: "GetCapacity takes the volume_capabilities, parameters and accessible_topology the CO will use in CreateVolume",
    skipUnless: needs.controller(ControllerCap.GET_CAPACITY),
    async run(run) {
      const capabilities = run.options.accessTypes.map((t) => run.capability(t));
      run.step("GetCapacity with capabilities and parameters");
      const answer = await expectOk(
        "GetCapacity with capabilities and parameters",
        run.controller.getCapacity({ volumeCapabilities: capabilities, parameters: { ...run.options.parameters } }, run.call()),
      );
      verify(answer.availableCapacity >= 0n, `available_capacity ${answer.availableCapacity} is negative`);
      const segments = run.profile.nodeInfo?.accessibleTopology?.segments;
      if (
        run.profile.pluginServices.has(PluginService.VOLUME_ACCESSIBILITY_CONSTRAINTS) &&
        segments !== undefined &&
        Object.keys(segments).length > 0
      ) {
        run.step("GetCapacity in the node's topology");
        const inTopology = await expectOk(
          "GetCapacity with accessible_topology",
          run.controller.getCapacity(
            { volumeCapabilities: capabilities, parameters: { ...run.options.parameters }, accessibleTopology: { segments } },
            run.call(),
          ),
        );
        verify(inTopology.availableCapacity >= 0n, `available_capacity ${inTopology.availableCapacity} is negative`);
      }
    },
  },
];

const needGetVolume = needs.controller(ControllerCap.GET_VOLUME);

export const getVolumeChecks: Check[] = [
  {
    id: "controller-get-volume.missing-id",
    group: "ControllerGetVolume",
    title: "ControllerGetVolume without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "ControllerGetVolumeRequest.volume_id is REQUIRED",
    skipUnless: needGetVolume,
    async run(run) {
      await expectCode("ControllerGetVolume without volume_id", run.controller.controllerGetVolume({}, run.call()), Code.InvalidArgument);
    },
  },
  {
    id: "controller-get-volume.not-found",
    group: "ControllerGetVolume",
    title: "ControllerGetVolume of a volume that does not exist fails with NOT_FOUND",
    level: "MUST",
    rule: "Volume does not exist: 5 NOT_FOUND",
    skipUnless: needGetVolume,
    async run(run) {
      await expectCode(
        "ControllerGetVolume of an unknown volume",
        run.controller.controllerGetVolume({ volumeId: unknownVolumeId() }, run.call()),
        Code.NotFound,
      );
    },
  },
  {
    id: "controller-get-volume.existing",
    group: "ControllerGetVolume",
    title: "ControllerGetVolume describes an existing volume with its status and publications",
    level: "MUST",
    rule: "volume and status are REQUIRED; published_node_ids MUST be specified with LIST_VOLUMES_PUBLISHED_NODES; volume_condition MUST be non-empty with VOLUME_CONDITION",
    skipUnless: needs.controller(ControllerCap.GET_VOLUME, ControllerCap.CREATE_DELETE_VOLUME),
    async run(run) {
      const volume = await run.createTestVolume("getvol");
      run.step("ControllerGetVolume");
      const answer = await expectOk("ControllerGetVolume", run.controller.controllerGetVolume({ volumeId: volume.volumeId }, run.call()));
      verify(answer.volume !== undefined, "the response has no volume (REQUIRED)");
      verify(answer.volume.volumeId === volume.volumeId, `the response describes volume ${answer.volume.volumeId}, not ${volume.volumeId}`);
      verify(answer.status !== undefined, "the response has no status (REQUIRED)");
      verify(
        answer.volume.capacityBytes === volume.capacityBytes,
        `capacity_bytes ${answer.volume.capacityBytes} differs from CreateVolume's ${volume.capacityBytes}`,
      );
      if (run.hasControllerCap(ControllerCap.VOLUME_CONDITION)) {
        const condition = answer.status.volumeCondition;
        verify(
          condition !== undefined && condition.message !== "",
          "volume_condition is missing or has no message although VOLUME_CONDITION is advertised",
        );
        verify(!condition.abnormal, `a new volume is reported abnormal: ${condition.message}`);
      }
      if (run.hasControllerCap(ControllerCap.LIST_VOLUMES_PUBLISHED_NODES) && run.profile.nodeInfo !== undefined) {
        run.step("ControllerPublishVolume, then ControllerGetVolume");
        await run.controllerPublish(volume, run.mountCapability());
        const published = await expectOk(
          "ControllerGetVolume of a published volume",
          run.controller.controllerGetVolume({ volumeId: volume.volumeId }, run.call()),
        );
        verify(
          published.status?.publishedNodeIds.includes(run.nodeId) === true,
          `published_node_ids ${JSON.stringify(published.status?.publishedNodeIds)} lacks node ${run.nodeId}`,
        );
        run.step("ControllerUnpublishVolume, then ControllerGetVolume");
        await run.controllerUnpublish(volume.volumeId);
        const unpublished = await expectOk(
          "ControllerGetVolume of an unpublished volume",
          run.controller.controllerGetVolume({ volumeId: volume.volumeId }, run.call()),
        );
        verify(
          unpublished.status?.publishedNodeIds.includes(run.nodeId) !== true,
          `published_node_ids still lists node ${run.nodeId} after ControllerUnpublishVolume`,
        );
      }
    },
  },
];

const needModify = needs.controller(ControllerCap.MODIFY_VOLUME);

export const modifyVolumeChecks: Check[] = [
  {
    id: "controller-modify-volume.missing-id",
    group: "ControllerModifyVolume",
    title: "ControllerModifyVolume without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "ControllerModifyVolumeRequest.volume_id is REQUIRED",
    skipUnless: needModify,
    async run(run) {
      await expectCode(
        "ControllerModifyVolume without volume_id",
        run.controller.controllerModifyVolume({ mutableParameters: { a: "b" } }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "controller-modify-volume.missing-parameters",
    group: "ControllerModifyVolume",
    title: "ControllerModifyVolume without mutable_parameters fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "mutable_parameters is REQUIRED (a REQUIRED map MUST contain at least 1 element)",
    skipUnless: needModify,
    async run(run) {
      await expectCode(
        "ControllerModifyVolume without mutable_parameters",
        run.controller.controllerModifyVolume({ volumeId: unknownVolumeId() }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "controller-modify-volume.not-found",
    group: "ControllerModifyVolume",
    title: "ControllerModifyVolume of a volume that does not exist fails with NOT_FOUND",
    level: "MUST",
    rule: "Volume does not exist: 5 NOT_FOUND",
    skipUnless: needModify,
    async run(run) {
      if (Object.keys(run.options.mutableParameters).length === 0)
        skip("no --mutable-parameters given (needed for a request the driver accepts)");
      await expectCode(
        "ControllerModifyVolume of an unknown volume",
        run.controller.controllerModifyVolume(
          {
            volumeId: unknownVolumeId(),
            mutableParameters: { ...run.options.mutableParameters },
            secrets: run.secrets("ControllerModifyVolume"),
          },
          run.call(),
        ),
        Code.NotFound,
      );
    },
  },
  {
    id: "controller-modify-volume.unsupported-key",
    group: "ControllerModifyVolume",
    title: "ControllerModifyVolume with an unknown key fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "Parameters not supported: 3 INVALID_ARGUMENT, and the SP MUST NOT have applied any modification",
    skipUnless: needs.controller(ControllerCap.MODIFY_VOLUME, ControllerCap.CREATE_DELETE_VOLUME),
    async run(run) {
      const volume = await run.createTestVolume("modify");
      await expectCode(
        "ControllerModifyVolume with an unknown key",
        run.controller.controllerModifyVolume(
          {
            volumeId: volume.volumeId,
            mutableParameters: { "csi-conformance.invalid/no-such-key": "x" },
            secrets: run.secrets("ControllerModifyVolume"),
          },
          run.call(),
        ),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "controller-modify-volume.at-creation",
    group: "ControllerModifyVolume",
    title: "CreateVolume accepts the mutable parameters ControllerModifyVolume takes, idempotently",
    level: "MUST",
    rule: "CreateVolumeRequest.mutable_parameters MAY be given when the SP has MODIFY_VOLUME; CreateVolume MUST be idempotent",
    skipUnless: needs.controller(ControllerCap.MODIFY_VOLUME, ControllerCap.CREATE_DELETE_VOLUME),
    async run(run) {
      if (Object.keys(run.options.mutableParameters).length === 0) skip("no --mutable-parameters given");
      const request = run.volumeRequest(run.uniqueName("modify-create"), "mount", {
        mutableParameters: { ...run.options.mutableParameters },
      });
      const first = await run.createVolume(request, "CreateVolume with mutable_parameters");
      run.step("CreateVolume with mutable_parameters, again");
      const again = await run.createVolume(request, "CreateVolume with mutable_parameters (repeated)");
      verify(again.volumeId === first.volumeId, `the repeated CreateVolume returned ${again.volumeId}, not ${first.volumeId}`);
      run.step("ControllerModifyVolume with the same parameters");
      await expectOk(
        "ControllerModifyVolume",
        run.controller.controllerModifyVolume(
          {
            volumeId: first.volumeId,
            mutableParameters: { ...run.options.mutableParameters },
            secrets: run.secrets("ControllerModifyVolume"),
          },
          run.call(),
        ),
      );
    },
  },
  {
    id: "controller-modify-volume.idempotent",
    group: "ControllerModifyVolume",
    title: "ControllerModifyVolume with supported parameters succeeds, repeatedly",
    level: "MUST",
    rule: "ControllerModifyVolume MUST be idempotent",
    skipUnless: needs.controller(ControllerCap.MODIFY_VOLUME, ControllerCap.CREATE_DELETE_VOLUME),
    async run(run) {
      if (Object.keys(run.options.mutableParameters).length === 0) skip("no --mutable-parameters given");
      const volume = await run.createTestVolume("modify");
      for (let i = 1; i <= run.options.idempotentCount; i++) {
        run.step(`ControllerModifyVolume (call ${i})`);
        await expectOk(
          "ControllerModifyVolume",
          run.controller.controllerModifyVolume(
            {
              volumeId: volume.volumeId,
              mutableParameters: { ...run.options.mutableParameters },
              secrets: run.secrets("ControllerModifyVolume"),
            },
            run.call(),
          ),
        );
      }
      if (run.hasControllerCap(ControllerCap.GET_VOLUME)) {
        const answer = await expectOk(
          "ControllerGetVolume after modification",
          run.controller.controllerGetVolume({ volumeId: volume.volumeId }, run.call()),
        );
        if (answer.volume === undefined) fail("ControllerGetVolume returned no volume");
      }
    },
  },
];
