import { statfs } from "node:fs/promises";
import { Code } from "@connectrpc/connect";
import { VolumeUsage_Unit as Unit, type ControllerExpandVolumeResponse } from "../../gen/csi/v1/csi_pb.js";
import { fail, skip, verify, type Check } from "../check.js";
import type { AccessType, CheckRun, ProvisionedVolume } from "../context.js";
import { readBlock, readMarker, writeBlockPattern, writeMarker } from "../data.js";
import { describeOutcome, expectCode, expectOk, outcome } from "../expect.js";
import { blockDeviceSize } from "../host.js";
import { ControllerCap, ExpansionType, NodeCap, needs } from "../profile.js";
import { statsProblems } from "./node.js";
import { unknownVolumeId } from "./shared.js";

const group = "ControllerExpandVolume" as const;
const needExpand = needs.controller(ControllerCap.EXPAND_VOLUME);
const needExpandCreate = needs.controller(ControllerCap.EXPAND_VOLUME, ControllerCap.CREATE_DELETE_VOLUME);

function controllerExpand(run: CheckRun, volumeId: string, requiredBytes: bigint, accessType?: AccessType) {
  return run.controller.controllerExpandVolume(
    {
      volumeId,
      capacityRange: { requiredBytes },
      ...(accessType !== undefined ? { volumeCapability: run.capability(accessType) } : {}),
      secrets: run.secrets("ControllerExpandVolume"),
    },
    run.call(),
  );
}

/** The size a workload sees at a published path: the filesystem's size, or the block device's. */
async function visibleSize(path: string, accessType: AccessType): Promise<bigint> {
  if (accessType === "block") return blockDeviceSize(path);
  const s = await statfs(path, { bigint: true });
  return s.blocks * s.bsize;
}

/** Data written before an expansion, to be found intact afterwards. */
async function writeProbe(run: CheckRun, p: ProvisionedVolume): Promise<() => Promise<void>> {
  if (run.options.noDataChecks) return async () => undefined;
  if (p.accessType === "mount") {
    const marker = await writeMarker(p.targetPath);
    return async () => verify((await readMarker(p.targetPath)) === marker, "the data written before the expansion is gone");
  }
  const pattern = await writeBlockPattern(p.targetPath);
  return async () => verify((await readBlock(p.targetPath)).equals(pattern), "the data written before the expansion is gone");
}

/**
 * The CO's expansion of a published volume: ControllerExpandVolume (when
 * advertised), then NodeExpandVolume on the published path when the
 * controller asks for it (or there is no controller expansion).
 */
async function expandPublished(run: CheckRun, p: ProvisionedVolume, size: bigint): Promise<void> {
  let nodeExpansion = true;
  if (run.hasControllerCap(ControllerCap.EXPAND_VOLUME)) {
    run.step(`ControllerExpandVolume to ${size} bytes while published`);
    const answer: ControllerExpandVolumeResponse = await expectOk(
      "ControllerExpandVolume of a published volume",
      controllerExpand(run, p.volume.volumeId, size, p.accessType),
    );
    verify(
      answer.capacityBytes >= size,
      `ControllerExpandVolume reports capacity_bytes ${answer.capacityBytes}, below the requested ${size}`,
    );
    nodeExpansion = answer.nodeExpansionRequired;
  }
  if (nodeExpansion && run.hasNodeCap(NodeCap.EXPAND_VOLUME)) {
    for (let i = 1; i <= run.options.idempotentCount; i++) {
      run.step(`NodeExpandVolume on the published path (call ${i})`);
      const answer = await expectOk(
        `NodeExpandVolume (call ${i})`,
        run.node.nodeExpandVolume(
          {
            volumeId: p.volume.volumeId,
            volumePath: p.targetPath,
            stagingTargetPath: run.hasNodeCap(NodeCap.STAGE_UNSTAGE_VOLUME) ? p.stagingPath : "",
            capacityRange: { requiredBytes: size },
            volumeCapability: p.capability,
            secrets: run.secrets("NodeExpandVolume"),
          },
          run.call(),
        ),
      );
      verify(
        answer.capacityBytes === 0n || answer.capacityBytes >= size,
        `NodeExpandVolume reports capacity_bytes ${answer.capacityBytes}, below the requested ${size}`,
      );
    }
  } else if (nodeExpansion) {
    run.note("node_expansion_required is true but the node does not advertise EXPAND_VOLUME");
  }
}

async function verifyGrown(run: CheckRun, p: ProvisionedVolume, before: bigint, size: bigint): Promise<void> {
  const after = await visibleSize(p.targetPath, p.accessType);
  verify(after > before, `the ${p.accessType === "block" ? "device" : "filesystem"} at the target is still ${after} bytes (was ${before})`);
  const floor = p.accessType === "block" ? size : (size * 7n) / 10n;
  verify(
    after >= floor,
    `the ${p.accessType === "block" ? "device" : "filesystem"} at the target has ${after} bytes after expanding to ${size}`,
  );
  if (run.hasNodeCap(NodeCap.GET_VOLUME_STATS)) {
    const stats = await expectOk(
      "NodeGetVolumeStats after expansion",
      run.node.nodeGetVolumeStats({ volumeId: p.volume.volumeId, volumePath: p.targetPath, stagingTargetPath: p.stagingPath }, run.call()),
    );
    // The capacity is compared below with the right margin; 0 leaves it out here.
    const problems = statsProblems(run, stats, p.accessType, 0n);
    verify(problems.length === 0, `NodeGetVolumeStats after expansion: ${problems.join("; ")}`);
    const bytes = stats.usage.find((u) => u.unit === Unit.BYTES)?.total ?? 0n;
    verify(bytes >= floor, `NodeGetVolumeStats reports ${bytes} bytes after expanding to ${size}`);
  }
}

function onlineCheck(accessType: AccessType): Check {
  return {
    id: `expand.online-${accessType}`,
    group,
    title: `A published ${accessType} volume expands online, keeping its data`,
    level: "MUST",
    rule: "ONLINE with controller EXPAND_VOLUME: the plugin MUST support expansion of volumes currently published; NodeExpandVolume MUST be called when node_expansion_required",
    skipUnless(profile) {
      const base = needs.all(needs.node(), needs.controller(ControllerCap.CREATE_DELETE_VOLUME))(profile);
      if (base !== undefined) return base;
      if (!profile.volumeExpansion.has(ExpansionType.ONLINE)) return "VolumeExpansion ONLINE is not advertised";
      if (
        !profile.controller.available ||
        (!profile.controller.caps.has(ControllerCap.EXPAND_VOLUME) &&
          !(profile.node.available && profile.node.caps.has(NodeCap.EXPAND_VOLUME)))
      )
        return "no EXPAND_VOLUME capability";
      return undefined;
    },
    async run(run) {
      if (!run.options.accessTypes.includes(accessType)) skip(`access type ${accessType} is not selected`);
      const size = run.options.testVolumeExpandSize;
      const p = await run.provision(`online${accessType}`, accessType);
      const before = await visibleSize(p.targetPath, p.accessType);
      const intact = await writeProbe(run, p);
      await expandPublished(run, p, size);
      await verifyGrown(run, p, before, size);
      await intact();
    },
  };
}

export const expansionChecks: Check[] = [
  {
    id: "controller-expand.missing-volume-id",
    group,
    title: "ControllerExpandVolume without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "ControllerExpandVolumeRequest.volume_id is REQUIRED",
    skipUnless: needExpand,
    async run(run) {
      await expectCode(
        "ControllerExpandVolume without volume_id",
        controllerExpand(run, "", run.options.testVolumeExpandSize),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "controller-expand.missing-capacity",
    group,
    title: "ControllerExpandVolume without a capacity_range fails with INVALID_ARGUMENT, before looking the volume up",
    level: "MUST",
    rule: "ControllerExpandVolumeRequest.capacity_range is REQUIRED",
    skipUnless: needExpand,
    async run(run) {
      await expectCode(
        "ControllerExpandVolume of an unknown volume without capacity_range",
        run.controller.controllerExpandVolume({ volumeId: unknownVolumeId(), secrets: run.secrets("ControllerExpandVolume") }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "controller-expand.not-found",
    group,
    title: "ControllerExpandVolume of a volume that does not exist fails with NOT_FOUND",
    level: "MUST",
    rule: "Volume does not exist: 5 NOT_FOUND",
    skipUnless: needExpand,
    async run(run) {
      await expectCode(
        "ControllerExpandVolume of an unknown volume",
        controllerExpand(run, unknownVolumeId(), run.options.testVolumeExpandSize),
        Code.NotFound,
      );
    },
  },
  {
    id: "controller-expand.grows",
    group,
    title: "ControllerExpandVolume grows a volume to at least the requested size, idempotently",
    level: "MUST",
    rule: "ControllerExpandVolume MUST be idempotent; capacity_bytes (REQUIRED) is the capacity after expansion",
    skipUnless: needExpandCreate,
    async run(run) {
      const volume = await run.createTestVolume("expand");
      const size = run.options.testVolumeExpandSize;
      let first: bigint | undefined;
      for (let i = 1; i <= run.options.idempotentCount; i++) {
        run.step(`ControllerExpandVolume to ${size} bytes (call ${i})`);
        const answer = await expectOk(`ControllerExpandVolume (call ${i})`, controllerExpand(run, volume.volumeId, size, "mount"));
        verify(answer.capacityBytes >= size, `capacity_bytes ${answer.capacityBytes} is below the requested ${size}`);
        if (first === undefined) first = answer.capacityBytes;
        else verify(answer.capacityBytes === first, `call ${i} reports capacity_bytes ${answer.capacityBytes}, the first ${first}`);
      }
      if (run.hasControllerCap(ControllerCap.LIST_VOLUMES)) {
        const { entries } = await run.listAllVolumes();
        const listed = entries.find((e) => e.volume?.volumeId === volume.volumeId)?.volume?.capacityBytes;
        verify(listed === undefined || listed === 0n || listed >= size, `ListVolumes still reports ${listed} bytes after the expansion`);
      }
    },
  },
  {
    id: "controller-expand.already-large-enough",
    group,
    title: "ControllerExpandVolume to a size the volume already has (or exceeds) succeeds",
    level: "SHOULD",
    rule: "If a volume is already larger than or equal to the target capacity of the expansion request, the plugin SHOULD reply 0 OK",
    skipUnless: needExpandCreate,
    async run(run) {
      const volume = await run.createTestVolume("noexpand");
      const current = volume.capacityBytes > 0n ? volume.capacityBytes : run.options.testVolumeSize;
      run.step(`ControllerExpandVolume to the current size ${current}`);
      const same = await expectOk("ControllerExpandVolume to the current size", controllerExpand(run, volume.volumeId, current, "mount"));
      verify(same.capacityBytes >= current, `capacity_bytes ${same.capacityBytes} is below the volume's ${current}`);
      const smaller = current / 2n;
      run.step(`ControllerExpandVolume to a smaller size ${smaller}`);
      const result = await outcome(controllerExpand(run, volume.volumeId, smaller, "mount"));
      if (!result.ok)
        fail(`ControllerExpandVolume to ${smaller} bytes of a ${current}-byte volume: expected OK, got ${describeOutcome(result)}`);
      verify(result.value.capacityBytes >= current, `a smaller request shrank the reported capacity to ${result.value.capacityBytes}`);
    },
  },
  onlineCheck("mount"),
  onlineCheck("block"),
  {
    id: "expand.offline",
    group,
    title: "An unpublished volume expands, and the node grows its filesystem after staging",
    level: "MUST",
    rule: "After ControllerExpandVolume with node_expansion_required, NodeExpandVolume MUST be called after NodeStageVolume (it MAY come before NodePublishVolume)",
    skipUnless: needs.all(needs.node(), needs.controller(ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.EXPAND_VOLUME)),
    async run(run) {
      const volume = await run.createTestVolume("offline");
      const size = run.options.testVolumeExpandSize;
      run.step("ControllerExpandVolume of the unpublished volume");
      const answer = await expectOk("ControllerExpandVolume", controllerExpand(run, volume.volumeId, size, "mount"));
      const p = await run.provision("offline", "mount", { volume, publish: false });
      if (answer.nodeExpansionRequired && run.hasNodeCap(NodeCap.EXPAND_VOLUME)) {
        const staged = run.hasNodeCap(NodeCap.STAGE_UNSTAGE_VOLUME);
        if (staged) {
          run.step("NodeExpandVolume on the staging path");
          await expectOk(
            "NodeExpandVolume of a staged volume",
            run.node.nodeExpandVolume(
              {
                volumeId: volume.volumeId,
                volumePath: p.stagingPath,
                stagingTargetPath: p.stagingPath,
                capacityRange: { requiredBytes: size },
                volumeCapability: p.capability,
                secrets: run.secrets("NodeExpandVolume"),
              },
              run.call(),
            ),
          );
        }
        run.step("NodePublishVolume");
        await run.publish(volume, p, p.capability, p.publishContext);
        if (!staged) {
          run.step("NodeExpandVolume on the published path");
          await expectOk(
            "NodeExpandVolume of a published volume",
            run.node.nodeExpandVolume(
              {
                volumeId: volume.volumeId,
                volumePath: p.targetPath,
                capacityRange: { requiredBytes: size },
                volumeCapability: p.capability,
                secrets: run.secrets("NodeExpandVolume"),
              },
              run.call(),
            ),
          );
        }
      } else {
        run.step("NodePublishVolume");
        await run.publish(volume, p, p.capability, p.publishContext);
      }
      const visible = await visibleSize(p.targetPath, "mount");
      verify(visible >= (size * 7n) / 10n, `the published filesystem has ${visible} bytes after expanding the volume to ${size}`);
    },
  },
  {
    id: "expand.offline-only-refuses-published",
    group,
    title: "A plugin with only OFFLINE expansion refuses to expand a published volume with FAILED_PRECONDITION",
    level: "MUST",
    rule: "Volume in use (published, no ONLINE expansion capability): 9 FAILED_PRECONDITION",
    skipUnless(profile) {
      const base = needs.all(
        needs.node(),
        needs.controller(ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.EXPAND_VOLUME, ControllerCap.PUBLISH_UNPUBLISH_VOLUME),
      )(profile);
      if (base !== undefined) return base;
      if (profile.volumeExpansion.has(ExpansionType.ONLINE)) return "VolumeExpansion ONLINE is advertised";
      if (!profile.volumeExpansion.has(ExpansionType.OFFLINE)) return "VolumeExpansion OFFLINE is not advertised";
      return undefined;
    },
    async run(run) {
      const p = await run.provision("offlineonly", "mount");
      await expectCode(
        "ControllerExpandVolume of a published volume",
        controllerExpand(run, p.volume.volumeId, run.options.testVolumeExpandSize, "mount"),
        Code.FailedPrecondition,
      );
    },
  },
];
