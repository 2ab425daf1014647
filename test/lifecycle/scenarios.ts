import { lstat, readdir, readlink, statfs } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readBlock, readMarker, writeBlockPattern, writeErrorCode, writeMarker } from "../../src/conformance/data.js";
import { blockDeviceSize, mountsAt } from "../../src/conformance/host.js";
import { VolumeUsage_Unit as Unit } from "../../src/gen/csi/v1/csi_pb.js";
import { mountsUnder } from "../support/host-leaks.js";
import { Cluster, type ClusterOptions } from "./cluster.js";
import type { LifecycleEnvironment } from "./environments.js";
import type { PersistentVolumeClaim } from "./objects.js";
import { runPool, throwIfFailed } from "./pool.js";
import { PV_NAME_KEY, PVC_NAME_KEY } from "./provisioner.js";

const MiB = 1024n ** 2n;
/** mkfs.xfs refuses filesystems under 300 MiB. */
const XFS_MIN_BYTES = 320n * MiB;

function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`missing ${what}`);
  return value;
}

/** Run `body` against a fresh cluster; whatever it leaves behind on failure is torn down in the cluster's order. */
async function withCluster(
  env: LifecycleEnvironment,
  options: ClusterOptions,
  body: (cluster: Cluster) => Promise<void>,
): Promise<Cluster> {
  const cluster = await Cluster.start(env, options);
  try {
    await body(cluster);
  } catch (err) {
    env.resetSpeed();
    const errors = await cluster.teardownAll();
    if (errors.length > 0) (err as Error).message += `\nteardown after the failure: ${errors.join("; ")}`;
    throw err;
  }
  await expectNothingLeft(env, cluster);
  return cluster;
}

/** After a scenario: no mounts under the kubelet root, no CSI directories left, no volume of this cluster left in the backend. */
async function expectNothingLeft(env: LifecycleEnvironment, cluster: Cluster): Promise<void> {
  const root = cluster.kubelet.options.root;
  expect(await mountsUnder(env.kubeletRoot)).toEqual([]);
  expect(cluster.pods.size).toBe(0);
  expect(cluster.attachments.size).toBe(0);
  const csiDir = join(root, "plugins", "kubernetes.io", "csi");
  const driverDir = join(csiDir, env.driverName);
  expect(await readdir(driverDir).catch(() => [])).toEqual([]);
  for (const sub of ["staging", "publish"]) expect(await readdir(join(csiDir, "volumeDevices", sub)).catch(() => [])).toEqual([]);
  expect(await readdir(join(root, "pods")).catch(() => [])).toEqual([]);
}

function fsBytes(env: LifecycleEnvironment): bigint {
  return env.smallBytes < XFS_MIN_BYTES ? XFS_MIN_BYTES : env.smallBytes;
}

async function filesystemSize(path: string): Promise<bigint> {
  const s = await statfs(path, { bigint: true });
  return s.blocks * s.bsize;
}

/** Volumes of the backend that belong to the given claims' PVs (by handle), as the backend reports them. */
async function backendVolumesOf(env: LifecycleEnvironment, handles: ReadonlySet<string>) {
  return (await env.backendVolumes()).filter((v) => handles.has(v.id));
}

/** The backend's volumes created for these claims: by name where the backend keeps names (DigitalOcean), by handle otherwise. */
async function volumesForClaims(env: LifecycleEnvironment, claims: readonly PersistentVolumeClaim[]) {
  const names = new Set(claims.map((c) => `pvc-${c.metadata.uid}`));
  const handles = new Set(claims.flatMap((c) => (c.volume !== undefined ? [c.volume.csi.volumeHandle] : [])));
  const all = await env.backendVolumes();
  return all.filter((v) => (v.name !== undefined ? names.has(v.name) : handles.has(v.id)));
}

/**
 * The lifecycle scenarios, for one backend: what a Kubernetes cluster does
 * with the driver, replayed with the sidecars' and the kubelet's arguments.
 */
export function lifecycleSuite(title: string, start: () => Promise<LifecycleEnvironment>): void {
  describe(title, () => {
    let env: LifecycleEnvironment;

    beforeAll(async () => {
      env = await start();
    }, 60_000);

    afterAll(async () => {
      await env?.close();
    }, 60_000);

    it("filesystem volume: provision with the provisioner's arguments, two pods, snapshot, restore into a larger volume, teardown in order", async () => {
      await withCluster(env, { extraCreateMetadata: true }, async (cluster) => {
        const sc = cluster.storageClass(
          "standard",
          { "csi.storage.k8s.io/fstype": "ext4", "csi.storage.k8s.io/node-stage-secret-namespace": "kube-system" },
          ["noatime"],
        );
        const claim = cluster.claim("data", sc);
        const request = cluster.provisioner.createVolumeRequest(claim, cluster.kubelet.registration.topology);
        // What the provisioner hands the driver: no sidecar keys but its own metadata.
        expect(request.name).toBe(`pvc-${claim.metadata.uid}`);
        expect(request.parameters[PVC_NAME_KEY]).toBe("data");
        expect(request.parameters[PV_NAME_KEY]).toBe(request.name);
        expect(Object.keys(request.parameters).some((k) => k.endsWith("fstype") || k.includes("secret"))).toBe(false);

        const pv = await cluster.provision(claim);
        expect(pv.name).toBe(`pvc-${claim.metadata.uid}`);
        expect(pv.capacityBytes).toBeGreaterThanOrEqual(claim.requestBytes);
        // Both backends' volumes are reachable from part of the cluster only: the PV is pinned to topology this node has.
        const topology = cluster.kubelet.registration.topology;
        expect(Object.keys(topology)).not.toEqual([]);
        expect(pv.nodeAffinity).not.toEqual([]);
        expect(pv.nodeAffinity.some((t) => Object.entries(t).every(([k, v]) => topology[k] === v))).toBe(true);

        const writer = await cluster.runPod("writer", [{ claim, readOnly: false }]);
        const writerMount = writer.mounts[0];
        if (writerMount === undefined) throw new Error("no mount");
        expect(writerMount.path).toBe(
          join(cluster.kubelet.options.root, "pods", writer.pod.metadata.uid, "volumes", "kubernetes.io~csi", pv.name, "mount"),
        );
        const staged = await mountsAt(writerMount.stagingPath);
        expect(staged).toHaveLength(1);
        const published = await mountsAt(writerMount.path);
        expect(published).toHaveLength(1);
        expect(published[0]?.options).toContain("noatime");
        const marker = await writeMarker(writerMount.path);

        // A second pod on the same node: NodePublishVolume to its own target, no second NodeStageVolume.
        const reader = await cluster.runPod("reader", [{ claim, readOnly: true }]);
        const readerMount = reader.mounts[0];
        if (readerMount === undefined) throw new Error("no mount");
        expect(await readMarker(readerMount.path)).toBe(marker);
        expect(await writeErrorCode(join(readerMount.path, "denied"))).toBe("EROFS");
        expect(await mountsAt(writerMount.stagingPath)).toHaveLength(1);
        expect(cluster.attachments.size).toBe(1);

        const stats = await cluster.kubelet.volumeStats(writer.pod, pv);
        const bytes = stats.usage.find((u) => u.unit === Unit.BYTES);
        expect(bytes?.total).toBeGreaterThan((pv.capacityBytes * 7n) / 10n);
        expect(bytes?.total).toBeLessThanOrEqual(pv.capacityBytes);

        const snapshot = await cluster.snapshot("nightly", claim, cluster.snapshotClass("default"));
        expect(snapshot.content?.readyToUse).toBe(true);
        const restored = cluster.claim("restored", sc, { bytes: env.largeBytes, dataSource: { kind: "VolumeSnapshot", snapshot } });
        await cluster.provision(restored);
        const restoredPod = await cluster.runPod("restore-check", [{ claim: restored, readOnly: false }]);
        const restoredMount = restoredPod.mounts[0];
        if (restoredMount === undefined) throw new Error("no mount");
        expect(await readMarker(restoredMount.path)).toBe(marker);
        expect(await filesystemSize(restoredMount.path)).toBeGreaterThan((env.largeBytes * 7n) / 10n);

        // Teardown as the cluster does it: pods go, volumes detach after the last pod, then PVCs and the snapshot.
        await cluster.deletePod(reader.pod);
        expect(cluster.attachments.size).toBe(2);
        expect(await mountsAt(writerMount.stagingPath)).toHaveLength(1);
        await cluster.deletePod(writer.pod);
        await cluster.deletePod(restoredPod.pod);
        expect(cluster.attachments.size).toBe(0);
        const handles = new Set([pv.csi.volumeHandle, restored.volume?.csi.volumeHandle ?? ""]);
        for (const volume of await backendVolumesOf(env, handles)) expect(volume.attachedTo).toEqual([]);
        await cluster.deleteClaim(restored);
        await cluster.deleteSnapshot(snapshot);
        await cluster.deleteClaim(claim);
        expect(await backendVolumesOf(env, handles)).toEqual([]);
      });
    }, 120_000);

    it("online expansion: the resizer's ControllerExpandVolume, then the kubelet's NodeExpandVolume grows a mounted xfs filesystem", async () => {
      await withCluster(env, {}, async (cluster) => {
        const sc = cluster.storageClass("xfs", { "csi.storage.k8s.io/fstype": "xfs" });
        const claim = cluster.claim("growing", sc, { bytes: fsBytes(env) });
        const pv = await cluster.provision(claim);
        const { pod, mounts } = await cluster.runPod("app", [{ claim, readOnly: false }]);
        const mounted = mounts[0];
        if (mounted === undefined) throw new Error("no mount");
        expect((await mountsAt(mounted.path))[0]?.fsType).toBe("xfs");
        const marker = await writeMarker(mounted.path);
        const before = await filesystemSize(mounted.path);
        const grown = fsBytes(env) * 2n;
        const result = await cluster.resize(claim, grown);
        expect(result.controller).toBeGreaterThanOrEqual(grown);
        const after = await filesystemSize(mounted.path);
        expect(after).toBeGreaterThan(before);
        expect(after).toBeGreaterThan((grown * 8n) / 10n);
        expect(await readMarker(mounted.path)).toBe(marker);
        const stats = await cluster.kubelet.volumeStats(pod, pv);
        expect(stats.usage.find((u) => u.unit === Unit.BYTES)?.total).toBeGreaterThan((grown * 8n) / 10n);
        await cluster.deletePod(pod);
        await cluster.deleteClaim(claim);
      });
    }, 120_000);

    it("raw block volume: kubelet's volumeDevices staging and publish paths, the pod's device link, data, online expansion", async () => {
      await withCluster(env, {}, async (cluster) => {
        const sc = cluster.storageClass("block");
        const claim = cluster.claim("raw", sc, { volumeMode: "Block" });
        const pv = await cluster.provision(claim);
        const { pod, mounts } = await cluster.runPod("db", [{ claim, readOnly: false }]);
        const mounted = mounts[0];
        if (mounted === undefined) throw new Error("no mount");
        expect(mounted.publishPath).toBe(
          join(cluster.kubelet.options.root, "plugins", "kubernetes.io", "csi", "volumeDevices", "publish", pv.name, pod.metadata.uid),
        );
        expect(mounted.stagingPath).toBe(
          join(cluster.kubelet.options.root, "plugins", "kubernetes.io", "csi", "volumeDevices", "staging", pv.name),
        );
        expect((await lstat(mounted.path)).isSymbolicLink()).toBe(true);
        expect(await readlink(mounted.path)).toBe(mounted.publishPath);
        const size = await blockDeviceSize(mounted.path);
        expect(size).toBeGreaterThanOrEqual(claim.requestBytes);
        const head = await writeBlockPattern(mounted.path, 0);
        expect((await readBlock(mounted.publishPath, 0)).equals(head)).toBe(true);
        const grown = env.largeBytes;
        const result = await cluster.resize(claim, grown);
        expect(result.controller).toBeGreaterThanOrEqual(grown);
        expect(await blockDeviceSize(mounted.path)).toBeGreaterThanOrEqual(grown);
        expect((await readBlock(mounted.path, 0)).equals(head)).toBe(true);
        await cluster.deletePod(pod);
        await cluster.deleteClaim(claim);
      });
    }, 120_000);

    it("concurrency: 50 PVCs provisioned, attached, mounted, written and torn down by 50 workers at once", async () => {
      const count = 50;
      const workers = 50;
      await withCluster(env, { extraCreateMetadata: false }, async (cluster) => {
        const sc = cluster.storageClass("standard");
        const claims = Array.from({ length: count }, (_, i) => cluster.claim(`data-${i}`, sc));
        const baseline = (await env.backendVolumes()).length;
        const started = Date.now();
        throwIfFailed("provision", (await runPool(claims, workers, (claim) => cluster.provision(claim))).errors);
        const handles = claims.map((c) => c.volume?.csi.volumeHandle ?? "");
        expect(new Set(handles).size).toBe(count);
        expect(await volumesForClaims(env, claims)).toHaveLength(count);
        expect(await env.backendVolumes()).toHaveLength(baseline + count);

        const pods = await runPool(claims, workers, async (claim, i) => {
          const { pod, mounts } = await cluster.runPod(`app-${i}`, [{ claim, readOnly: false }]);
          const mounted = mounts[0];
          if (mounted === undefined) throw new Error("no mount");
          const marker = await writeMarker(mounted.path);
          return { pod, path: mounted.path, marker, stagingPath: mounted.stagingPath };
        });
        throwIfFailed("start pods", pods.errors);
        for (const entry of pods.results) {
          if (entry === undefined) throw new Error("missing pod");
          expect(await readMarker(entry.path)).toBe(entry.marker);
          expect(await mountsAt(entry.stagingPath)).toHaveLength(1);
          expect(await mountsAt(entry.path)).toHaveLength(1);
        }
        const nodeId = cluster.kubelet.registration.nodeId;
        for (const volume of await volumesForClaims(env, claims)) expect(volume.attachedTo).toEqual([nodeId]);

        throwIfFailed(
          "delete pods",
          (await runPool(pods.results, workers, async (entry) => cluster.deletePod(present(entry, "pod").pod))).errors,
        );
        throwIfFailed("delete PVCs", (await runPool(claims, workers, (claim) => cluster.deleteClaim(claim))).errors);
        expect(await volumesForClaims(env, claims)).toEqual([]);
        expect(await env.backendVolumes()).toHaveLength(baseline);
        console.info(`[${env.name}] ${count} volumes through their whole life with ${workers} workers in ${Date.now() - started} ms`);
      });
    }, 180_000);

    it("retries: deadlines shorter than the operations, then the same requests again, converge to one volume, one attachment and one mount each", async () => {
      const slowed = env.slowDown(400);
      // DigitalOcean: every API call and action takes 400 ms, so 150 ms deadlines cut calls in flight.
      // Local: operations take milliseconds, so the first attempts get 1-3 ms.
      const firstAttempts = slowed ? 150 : 2;
      // The kubelet's deadlines start at 10 ms and grow by 5 ms per attempt: every slow node operation is cut
      // at each stage of its work (NodeStageVolume while it formats, too) before an attempt is long enough.
      await withCluster(
        env,
        {
          retry: {
            attemptTimeoutMs: (n) => (n <= 2 ? firstAttempts * n : 60_000),
            initialBackoffMs: 10,
            maxBackoffMs: 200,
            maxElapsedMs: 120_000,
          },
          kubeletRetry: {
            attemptTimeoutMs: (n) => (n <= 80 ? 5 + n * 5 : 60_000),
            initialBackoffMs: 50,
            maxBackoffMs: 100,
            maxElapsedMs: 120_000,
          },
        },
        async (cluster) => {
          const sc = cluster.storageClass("standard");
          const claims = Array.from({ length: 10 }, (_, i) => cluster.claim(`retry-${i}`, sc));
          const baseline = (await env.backendVolumes()).length;
          throwIfFailed("provision", (await runPool(claims, 10, (claim) => cluster.provision(claim))).errors);
          throwIfFailed("attach", (await runPool(claims, 10, (claim) => cluster.attach(present(claim.volume, "bound volume")))).errors);
          env.resetSpeed();
          expect(cluster.stats.count(Code.DeadlineExceeded)).toBeGreaterThan(0);
          const volumes = await volumesForClaims(env, claims);
          expect(volumes).toHaveLength(claims.length);
          // No volume was created twice under another name or id by a retried call.
          expect(await env.backendVolumes()).toHaveLength(baseline + claims.length);
          const nodeId = cluster.kubelet.registration.nodeId;
          for (const volume of volumes) expect(volume.attachedTo).toEqual([nodeId]);

          // The kubelet's NodeStageVolume cut short (while it formats, for some), then retried: one staging mount, not two.
          const pods = await runPool(claims, 10, (claim, i) => cluster.runPod(`retry-app-${i}`, [{ claim, readOnly: false }]));
          throwIfFailed("start pods", pods.errors);
          for (const entry of pods.results) {
            const mounted = entry?.mounts[0];
            if (mounted === undefined) throw new Error("no mount");
            expect(await mountsAt(mounted.stagingPath)).toHaveLength(1);
            expect(await mountsAt(mounted.path)).toHaveLength(1);
          }
          throwIfFailed("delete pods", (await runPool(pods.results, 10, (entry) => cluster.deletePod(present(entry, "pod").pod))).errors);
          throwIfFailed("delete PVCs", (await runPool(claims, 10, (claim) => cluster.deleteClaim(claim))).errors);
          expect(await volumesForClaims(env, claims)).toEqual([]);
          expect(await env.backendVolumes()).toHaveLength(baseline);
        },
      );
      env.resetSpeed();
    }, 180_000);

    it("a driver restart in the middle of a batch: every PVC still ends with exactly one volume and one attachment", async () => {
      const count = 20;
      await withCluster(
        env,
        { retry: { attemptTimeoutMs: 30_000, initialBackoffMs: 20, maxBackoffMs: 500, maxElapsedMs: 120_000 } },
        async (cluster) => {
          const sc = cluster.storageClass("standard");
          const claims = Array.from({ length: count }, (_, i) => cluster.claim(`restart-${i}`, sc));
          const baseline = (await env.backendVolumes()).length;
          const batch = runPool(claims, count, async (claim, i) => {
            await cluster.provision(claim);
            const { pod, mounts } = await cluster.runPod(`restart-app-${i}`, [{ claim, readOnly: false }]);
            const mounted = mounts[0];
            if (mounted === undefined) throw new Error("no mount");
            return { pod, path: mounted.path, marker: await writeMarker(mounted.path) };
          });
          // Crash the controller once a few volumes exist, i.e. with the batch in full swing.
          const deadline = Date.now() + 20_000;
          while ((await env.backendVolumes()).length < baseline + 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
          await env.controller.crashAndRestart(100);
          const { results, errors } = await batch;
          throwIfFailed("batch across a controller restart", errors);
          expect(env.controller.restarts).toBe(1);

          const volumes = await volumesForClaims(env, claims);
          expect(volumes).toHaveLength(count);
          expect(await env.backendVolumes()).toHaveLength(baseline + count);
          const nodeId = cluster.kubelet.registration.nodeId;
          for (const volume of volumes) expect(volume.attachedTo).toEqual([nodeId]);
          for (const entry of results) {
            if (entry === undefined) throw new Error("missing pod");
            expect(await readMarker(entry.path)).toBe(entry.marker);
          }

          // The node plugin restarts during the teardown: unpublish, unstage and detach must converge too.
          const teardown = runPool(results, count, async (entry) => {
            if (entry === undefined) throw new Error("missing pod");
            await cluster.deletePod(entry.pod);
          });
          await env.node.crashAndRestart(100);
          throwIfFailed("teardown across a node plugin restart", (await teardown).errors);
          throwIfFailed("delete PVCs", (await runPool(claims, count, (claim) => cluster.deleteClaim(claim))).errors);
          expect(await volumesForClaims(env, claims)).toEqual([]);
          expect(await env.backendVolumes()).toHaveLength(baseline);
        },
      );
    }, 180_000);
  });
}
