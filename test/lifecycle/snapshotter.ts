import { setTimeout as sleep } from "node:timers/promises";
import type { Client } from "@connectrpc/connect";
import type { Controller } from "../../src/gen/csi/v1/csi_pb.js";
import type { VolumeSnapshot, VolumeSnapshotContent } from "./objects.js";
import { SIDECAR_PREFIX } from "./provisioner.js";
import { DEFAULT_RETRY, withRetries, type RetryPolicy, type RetryStats } from "./retry.js";

export const SNAPSHOT_NAME_KEY = `${SIDECAR_PREFIX}volumesnapshot/name`;
export const SNAPSHOT_NAMESPACE_KEY = `${SIDECAR_PREFIX}volumesnapshot/namespace`;
export const SNAPSHOT_CONTENT_NAME_KEY = `${SIDECAR_PREFIX}volumesnapshotcontent/name`;

export interface SnapshotterOptions {
  readonly extraCreateMetadata: boolean;
  readonly secrets?: Readonly<Record<string, string>>;
  readonly retry?: RetryPolicy;
  readonly stats?: RetryStats;
}

/**
 * The csi-snapshotter: a VolumeSnapshotContent becomes CreateSnapshot named
 * snapshot-<VolumeSnapshot uid>, with the class parameters minus the
 * `csi.storage.k8s.io/` keys (plus the snapshot names with
 * --extra-create-metadata), repeated until the snapshot is ready to use.
 */
export class ExternalSnapshotter {
  constructor(
    private readonly controller: () => Client<typeof Controller>,
    private readonly options: SnapshotterOptions,
  ) {}

  async snapshot(snapshot: VolumeSnapshot): Promise<VolumeSnapshotContent> {
    const volume = snapshot.source.volume;
    if (volume === undefined) throw new Error(`source PVC ${snapshot.source.metadata.name} is not bound`);
    const contentName = `snapcontent-${snapshot.metadata.uid}`;
    const parameters: Record<string, string> = {};
    for (const [key, value] of Object.entries(snapshot.snapshotClass.parameters))
      if (!key.startsWith(SIDECAR_PREFIX)) parameters[key] = value;
    if (this.options.extraCreateMetadata) {
      parameters[SNAPSHOT_NAME_KEY] = snapshot.metadata.name;
      parameters[SNAPSHOT_NAMESPACE_KEY] = snapshot.metadata.namespace;
      parameters[SNAPSHOT_CONTENT_NAME_KEY] = contentName;
    }
    const request = {
      name: `snapshot-${snapshot.metadata.uid}`,
      sourceVolumeId: volume.csi.volumeHandle,
      parameters,
      secrets: { ...this.options.secrets },
    };
    const retry = this.options.retry ?? DEFAULT_RETRY;
    for (let delay = 50; ; delay = Math.min(delay * 2, 2_000)) {
      const response = await withRetries(
        `CreateSnapshot ${request.name}`,
        (o) => this.controller().createSnapshot(request, o),
        retry,
        this.options.stats,
      );
      const created = response.snapshot;
      if (created === undefined || created.snapshotId === "") throw new Error(`CreateSnapshot ${request.name} returned no snapshot`);
      if (created.readyToUse) {
        const content: VolumeSnapshotContent = {
          name: contentName,
          snapshotHandle: created.snapshotId,
          restoreSize: created.sizeBytes,
          readyToUse: true,
        };
        snapshot.content = content;
        return content;
      }
      await sleep(delay);
    }
  }

  async delete(content: VolumeSnapshotContent): Promise<void> {
    await withRetries(
      `DeleteSnapshot ${content.snapshotHandle}`,
      (o) => this.controller().deleteSnapshot({ snapshotId: content.snapshotHandle, secrets: { ...this.options.secrets } }, o),
      this.options.retry ?? DEFAULT_RETRY,
      this.options.stats,
    );
  }
}
