import { mkdir, statfs } from "node:fs/promises";
import { Code } from "@connectrpc/connect";
import { dirname, join } from "node:path";
import type { Volume } from "../../gen/csi/v1/csi_pb.js";
import { fail, skip, verify, type Check } from "../check.js";
import type { AccessType, CheckRun, CreateVolumeRequestInit, ProvisionedVolume } from "../context.js";
import { BLOCK_PATTERN_BYTES, readBlock, readMarker, writeBlockPattern, writeErrorCode, writeMarker } from "../data.js";
import { describeOutcome, expectOk, outcome } from "../expect.js";
import { blockDeviceSize, mountsAt, mountsUnder, pathKind } from "../host.js";
import { ControllerCap, NodeCap, needs } from "../profile.js";
import { statsProblems } from "./node.js";
import { settle, sweepDeadlines } from "./shared.js";

const group = "Lifecycle" as const;
const needNodeAndCreate = needs.all(needs.node(), needs.controller(ControllerCap.CREATE_DELETE_VOLUME));

function requireData(run: CheckRun): void {
  if (run.options.noDataChecks) skip("data checks are disabled (--no-data-checks)");
}

/** What the CO's workload sees at the target: a mounted directory, or a block device of at least the volume's size. */
async function verifyTarget(run: CheckRun, p: ProvisionedVolume): Promise<void> {
  const kind = await pathKind(p.targetPath);
  if (p.accessType === "mount") {
    verify(kind === "directory", `the target path is ${kind}, not a directory`);
    verify(
      (await mountsAt(p.targetPath)).length > 0,
      "nothing is mounted at the target path (the SP SHALL place the mounted directory there)",
    );
  } else {
    verify(kind === "block-device", `the target path is ${kind}, not a block device`);
    const size = await blockDeviceSize(p.targetPath);
    const wanted = p.volume.capacityBytes > 0n ? p.volume.capacityBytes : run.options.testVolumeSize;
    verify(size >= wanted, `the block device at the target has ${size} bytes, the volume ${wanted}`);
  }
}

interface Written {
  readonly accessType: AccessType;
  readonly marker?: string;
  readonly head?: Buffer;
  readonly tail?: Buffer;
  readonly tailOffset?: number;
}

async function writeData(p: ProvisionedVolume): Promise<Written> {
  if (p.accessType === "mount") return { accessType: "mount", marker: await writeMarker(p.targetPath) };
  const size = Number(await blockDeviceSize(p.targetPath));
  const tailOffset = size - BLOCK_PATTERN_BYTES;
  return {
    accessType: "block",
    head: await writeBlockPattern(p.targetPath, 0),
    tail: await writeBlockPattern(p.targetPath, tailOffset),
    tailOffset,
  };
}

async function dataPresent(p: ProvisionedVolume, written: Written): Promise<boolean> {
  if (written.accessType === "mount") return (await readMarker(p.targetPath)) === written.marker;
  const head = await readBlock(p.targetPath, 0);
  if (written.head === undefined || !head.equals(written.head)) return false;
  if (written.tail === undefined || written.tailOffset === undefined) return true;
  return (await readBlock(p.targetPath, written.tailOffset)).equals(written.tail);
}

function roundTrip(accessType: AccessType): Check {
  return {
    id: `lifecycle.${accessType}-round-trip`,
    group,
    title: `A ${accessType} volume goes through publish, stage and back, every step repeated, with its data and stats`,
    level: "MUST",
    rule: "Each step MUST be idempotent; the SP SHALL place the volume at target_path; NodeUnpublishVolume MUST delete what it created there; NodeUnstageVolume MUST undo NodeStageVolume",
    skipUnless: needNodeAndCreate,
    async run(run) {
      const n = run.options.idempotentCount;
      const capability = run.capability(accessType);
      const volume = await run.createTestVolume(`trip${accessType}`, accessType);
      let publishContext: Record<string, string> = {};
      const cpub = run.hasControllerCap(ControllerCap.PUBLISH_UNPUBLISH_VOLUME);
      const staged = run.hasNodeCap(NodeCap.STAGE_UNSTAGE_VOLUME);
      for (let i = 1; cpub && i <= n; i++) {
        run.step(`ControllerPublishVolume (call ${i})`);
        publishContext = await run.controllerPublish(volume, capability);
      }
      const paths = await run.workPaths(accessType);
      for (let i = 1; staged && i <= n; i++) {
        run.step(`NodeStageVolume (call ${i})`);
        await run.stage(volume, paths.stagingPath, capability, publishContext);
      }
      for (let i = 1; i <= n; i++) {
        run.step(`NodePublishVolume (call ${i})`);
        await run.publish(volume, paths, capability, publishContext);
      }
      const p: ProvisionedVolume = { volume, capability, accessType, publishContext, ...paths };
      run.step("inspect the target path");
      await verifyTarget(run, p);
      if (!run.options.noDataChecks) {
        run.step("write and read data through the target");
        const written = await writeData(p);
        verify(await dataPresent(p, written), "data written through the target does not read back");
      }
      if (run.hasNodeCap(NodeCap.GET_VOLUME_STATS)) {
        run.step("NodeGetVolumeStats on the target path");
        const stats = await expectOk(
          "NodeGetVolumeStats",
          run.node.nodeGetVolumeStats(
            { volumeId: volume.volumeId, volumePath: paths.targetPath, stagingTargetPath: staged ? paths.stagingPath : "" },
            run.call(),
          ),
        );
        const problems = statsProblems(run, stats, accessType, volume.capacityBytes);
        verify(problems.length === 0, `NodeGetVolumeStats: ${problems.join("; ")}`);
        if (staged && accessType === "mount") {
          run.step("NodeGetVolumeStats on the staging path");
          const staging = await outcome(
            run.node.nodeGetVolumeStats(
              { volumeId: volume.volumeId, volumePath: paths.stagingPath, stagingTargetPath: paths.stagingPath },
              run.call(),
            ),
          );
          if (!staging.ok) run.note(`NodeGetVolumeStats on the staging path: ${describeOutcome(staging)}`);
        }
      }
      for (let i = 1; i <= n; i++) {
        run.step(`NodeUnpublishVolume (call ${i})`);
        await run.unpublish(volume.volumeId, paths.targetPath);
        const kind = await pathKind(paths.targetPath);
        verify(
          kind === "missing",
          `after NodeUnpublishVolume the target path is still there (${kind}); the SP MUST delete the file or directory it created`,
        );
      }
      for (let i = 1; staged && i <= n; i++) {
        run.step(`NodeUnstageVolume (call ${i})`);
        await run.unstage(volume.volumeId, paths.stagingPath);
        const left = await mountsUnder(paths.stagingPath);
        verify(left.length === 0, `after NodeUnstageVolume something is still mounted at ${left.join(", ")}`);
      }
      for (let i = 1; cpub && i <= n; i++) {
        run.step(`ControllerUnpublishVolume (call ${i})`);
        await run.controllerUnpublish(volume.volumeId);
      }
      for (let i = 1; i <= n; i++) {
        run.step(`DeleteVolume (call ${i})`);
        await run.deleteVolume(volume.volumeId, `DeleteVolume (call ${i})`);
      }
    },
  };
}

function persistence(accessType: AccessType): Check {
  return {
    id: `lifecycle.${accessType}-data-persists`,
    group,
    title: `Data on a ${accessType} volume survives unpublish, unstage, detach and a new publication`,
    level: "MUST",
    rule: "A volume is persistent storage: staging it again MUST present the same contents (a formatted device is never formatted again)",
    skipUnless: needNodeAndCreate,
    async run(run) {
      requireData(run);
      const first = await run.provision(`persist${accessType}`, accessType);
      run.step("write data");
      const written = await writeData(first);
      await run.teardown(first);
      const second = await run.provision(`persist${accessType}again`, accessType, { volume: first.volume });
      run.step("read the data back through the new publication");
      verify(await dataPresent(second, written), "the data written before is gone after staging the volume again");
    },
  };
}

function snapshotData(accessType: AccessType): Check {
  return {
    id: `lifecycle.${accessType}-snapshot-restore-data`,
    group,
    title: `A volume restored from a snapshot of a ${accessType} volume holds the data of the moment it was cut`,
    level: "MUST",
    rule: "A snapshot is a point-in-time copy; a volume created from it MUST contain the data from the snapshot",
    skipUnless: needs.all(needs.node(), needs.controller(ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.CREATE_DELETE_SNAPSHOT)),
    async run(run) {
      requireData(run);
      const source = await run.provision(`snapsrc${accessType}`, accessType);
      run.step("write data to the source");
      const written = await writeData(source);
      run.step("CreateSnapshot of the published source");
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("datasnap"), source.volume.volumeId));
      run.step("overwrite the source after the snapshot");
      await writeData(source);
      const request: CreateVolumeRequestInit = run.volumeRequest(run.uniqueName(`restored${accessType}`), accessType, {
        volumeContentSource: { type: { case: "snapshot", value: { snapshotId: snapshot.snapshotId } } },
      });
      run.step("CreateVolume from the snapshot");
      const restored = await run.createVolume(request);
      const p = await run.provision(`restored${accessType}`, accessType, { volume: restored });
      run.step("read the restored volume");
      verify(await dataPresent(p, written), "the restored volume does not hold the data written before the snapshot");
    },
  };
}

export const lifecycleChecks: Check[] = [
  roundTrip("mount"),
  roundTrip("block"),
  persistence("mount"),
  persistence("block"),
  {
    id: "lifecycle.stage-retry-after-deadline",
    group,
    title: "NodeStageVolume cut short by deadlines (while it formats) and retried converges to one usable staging",
    level: "MUST",
    rule: "Any RPC MAY timeout and MAY be retried; idempotency ensures that a retried call with the same fields continues where it left off (a half-formatted device must not wedge the volume)",
    skipUnless: needs.all(needs.node(NodeCap.STAGE_UNSTAGE_VOLUME), needs.controller(ControllerCap.CREATE_DELETE_VOLUME)),
    async run(run) {
      // Two volumes: where an attempt is cut depends on timing, and a second sweep catches what the first may miss.
      for (const round of [1, 2]) {
        const capability = run.mountCapability();
        const fresh = await run.createTestVolume(`stagedeadline${round}`);
        let publishContext: Record<string, string> = {};
        if (run.hasControllerCap(ControllerCap.PUBLISH_UNPUBLISH_VOLUME)) publishContext = await run.controllerPublish(fresh, capability);
        const paths = await run.workPaths(`stagedeadline${round}`);
        const request = {
          volumeId: fresh.volumeId,
          stagingTargetPath: paths.stagingPath,
          volumeCapability: capability,
          publishContext,
          volumeContext: fresh.volumeContext,
        };
        run.registerStage(fresh.volumeId, paths.stagingPath);
        run.step(`volume ${round}: NodeStageVolume with deadlines of 2 ms and up until one completes`);
        const { cut } = await sweepDeadlines((timeoutMs) => run.node.nodeStageVolume(request, run.call(timeoutMs)));
        run.note(`volume ${round}: ${cut} attempt(s) were cut by their deadline`);
        run.step(`volume ${round}: NodeStageVolume without a short deadline`);
        await settle("NodeStageVolume after attempts cut by deadlines", () => run.node.nodeStageVolume(request, run.call()));
        const staged = await mountsAt(paths.stagingPath);
        verify(staged.length <= 1, `${staged.length} mounts are stacked on the staging path`);
        const published: ProvisionedVolume = { volume: fresh, capability, accessType: "mount", publishContext, ...paths };
        run.step(`volume ${round}: NodePublishVolume and use the volume`);
        await run.publish(fresh, paths, capability, publishContext);
        await verifyTarget(run, published);
        if (!run.options.noDataChecks) {
          const written = await writeData(published);
          verify(await dataPresent(published, written), "data written through the target does not read back");
        }
      }
    },
  },
  {
    id: "lifecycle.readonly-publish",
    group,
    title: "A volume published readonly refuses writes",
    level: "MUST",
    rule: "NodePublishVolumeRequest.readonly: the SP MUST publish the volume in readonly mode",
    skipUnless: needNodeAndCreate,
    async run(run) {
      requireData(run);
      const p = await run.provision("readonly", "mount", { readonly: true });
      run.step("write a file through the readonly target");
      const code = await writeErrorCode(join(p.targetPath, "csi-conformance-readonly"));
      verify(code !== undefined, "a file could be written through a readonly publication");
      verify(code === "EROFS" || code === "EACCES" || code === "EPERM", `writing failed with ${code}, not with a read-only error`);
      const mounts = await mountsAt(p.targetPath);
      const top = mounts[mounts.length - 1];
      verify(top?.options.includes("ro"), `the target's mount options are ${top?.options.join(",") ?? "(not mounted)"}, without ro`);
    },
  },
  {
    id: "lifecycle.long-paths",
    group,
    title: "Staging and target paths longer than 128 bytes work",
    level: "MUST",
    rule: "SP SHOULD support the maximum path length allowed by the OS, but, at a minimum, SP MUST accept a max path length of at least 128 bytes",
    skipUnless: needNodeAndCreate,
    async run(run) {
      const base = await run.workPaths("long");
      const stagingPath = join(base.stagingPath, "s".repeat(60), "t".repeat(60), "globalmount");
      const targetPath = join(dirname(base.targetPath), "p".repeat(60), "q".repeat(60), "mount");
      await mkdir(stagingPath, { recursive: true });
      await mkdir(dirname(targetPath), { recursive: true });
      verify(Buffer.byteLength(stagingPath) > 128 && Buffer.byteLength(targetPath) > 128, "could not build paths longer than 128 bytes");
      const p = await run.provision("long", "mount", { paths: { stagingPath, targetPath } });
      await verifyTarget(run, p);
      await run.teardown(p);
    },
  },
  snapshotData("mount"),
  snapshotData("block"),
  {
    id: "lifecycle.restore-larger-filesystem",
    group,
    title: "A mount volume restored into a larger size presents the larger filesystem with the snapshot's data",
    level: "MUST",
    rule: "A volume created from a smaller snapshot MUST, when presented by NodePublish, have both the requested (larger) size and the data; the Plugin resizes the filesystem at (or before) NodePublish",
    skipUnless: needs.all(needs.node(), needs.controller(ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.CREATE_DELETE_SNAPSHOT)),
    async run(run) {
      requireData(run);
      const source = await run.provision("growsrc", "mount");
      const written = await writeData(source);
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("growsnap"), source.volume.volumeId));
      const size = run.options.testVolumeExpandSize;
      run.step(`CreateVolume from the snapshot with required_bytes ${size}`);
      const result = await outcome(
        run.controller.createVolume(
          run.volumeRequest(run.uniqueName("grown"), "mount", {
            capacityRange: { requiredBytes: size },
            volumeContentSource: { type: { case: "snapshot", value: { snapshotId: snapshot.snapshotId } } },
          }),
          run.call(),
        ),
      );
      if (!result.ok) {
        if (result.code === Code.OutOfRange) skip("the driver does not restore into larger volumes (OUT_OF_RANGE)");
        fail(`CreateVolume from the snapshot with a larger size: ${describeOutcome(result)}`);
      }
      const restored: Volume | undefined = result.value.volume;
      if (restored === undefined) fail("CreateVolume returned no volume");
      run.registerVolume(restored.volumeId);
      const p = await run.provision("grown", "mount", { volume: restored });
      const fs = await statfs(p.targetPath, { bigint: true });
      const total = fs.blocks * fs.bsize;
      verify(total >= (size * 7n) / 10n, `the restored filesystem has ${total} bytes; the volume was requested with ${size}`);
      verify(await dataPresent(p, written), "the restored volume does not hold the snapshot's data");
    },
  },
  {
    id: "lifecycle.clone-data",
    group,
    title: "A clone holds its source's data and is independent of it",
    level: "MUST",
    rule: "CLONE_VOLUME: a volume created from another volume is pre-populated with the source's data",
    skipUnless: needs.all(needs.node(), needs.controller(ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.CLONE_VOLUME)),
    async run(run) {
      requireData(run);
      const source = await run.provision("clonesrc", "mount");
      const written = await writeData(source);
      run.step("CreateVolume from the published source");
      const clone = await run.createVolume(
        run.volumeRequest(run.uniqueName("clone"), "mount", {
          volumeContentSource: { type: { case: "volume", value: { volumeId: source.volume.volumeId } } },
        }),
      );
      const p = await run.provision("clone", "mount", { volume: clone });
      verify(await dataPresent(p, written), "the clone does not hold its source's data");
      run.step("write to the clone; the source must not change");
      await writeData(p);
      verify(await dataPresent(source, written), "writing to the clone changed its source");
    },
  },
  {
    id: "lifecycle.two-volumes",
    group,
    title: "Two volumes published at once keep their data apart",
    level: "MUST",
    rule: "volume_id MUST uniquely identify a volume: each publication presents its own volume",
    skipUnless: needNodeAndCreate,
    async run(run) {
      requireData(run);
      const a = await run.provision("twoa", "mount");
      const b = await run.provision("twob", "mount");
      const inA = await writeData(a);
      const inB = await writeData(b);
      verify(await dataPresent(a, inA), "the first volume lost its data");
      verify(await dataPresent(b, inB), "the second volume lost its data");
      verify(!(await dataPresent(b, inA)), "the second volume shows the first volume's data");
    },
  },
];
