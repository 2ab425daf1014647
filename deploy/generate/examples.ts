/**
 * The examples in examples/kubernetes/, one directory per use case, generated
 * from the same configuration as the driver's manifests so they name the
 * same driver and classes. Each directory has a hand-written README.md.
 */
import { Deployment } from "kubernetes-models/apps/v1";
import { PersistentVolume, PersistentVolumeClaim, Pod } from "kubernetes-models/v1";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPersistentVolumeClaimSpec } from "kubernetes-models/v1/PersistentVolumeClaimSpec";
import type { IVolume } from "kubernetes-models/v1/Volume";
import { StorageClass, VolumeAttributesClass } from "kubernetes-models/storage.k8s.io/v1";
import { localVariant, type DeployConfig } from "./config.js";
import type { ManifestFile } from "./render.js";
import { SNAPSHOT_API_VERSION, type VolumeSnapshot, type VolumeSnapshotContent } from "./snapshot-api.js";

/** The image the example pods run (pinned). */
export const EXAMPLE_IMAGE = "busybox:1.37.0";
/** The no-format volume attribute of the Go driver's static-volume example: never mkfs, the volume holds data. */
export const NO_FORMAT_ATTRIBUTE = "com.digitalocean.csi.dobs/noformat";
export const EXAMPLE_NAMESPACE = "default";

function claim(
  name: string,
  storageClassName: string,
  size: string,
  extra: Partial<IPersistentVolumeClaimSpec> = {},
): PersistentVolumeClaim {
  return new PersistentVolumeClaim({
    metadata: { name },
    spec: { accessModes: ["ReadWriteOnce"], storageClassName, resources: { requests: { storage: size } }, ...extra },
  });
}

function claimVolume(name: string, claimName: string): IVolume {
  return { name, persistentVolumeClaim: { claimName } };
}

function shell(name: string, script: string, extra: Partial<IContainer> = {}): IContainer {
  return { name, image: EXAMPLE_IMAGE, command: ["sh", "-c", script], ...extra };
}

function pod(name: string, containers: IContainer[], volumes: IVolume[]): Pod {
  return new Pod({ metadata: { name }, spec: { containers, volumes } });
}

const KEEP_RUNNING = "sleep 1000000";

export function exampleFiles(config: DeployConfig, root: string): ManifestFile[] {
  const cls = config.classPrefix;
  const dir = (name: string) => `${root}/${name}`;

  const snapshotSource = claim("source-pvc", cls, "5Gi");
  const snapshot: VolumeSnapshot = {
    apiVersion: SNAPSHOT_API_VERSION,
    kind: "VolumeSnapshot",
    metadata: { name: "source-snapshot" },
    spec: { volumeSnapshotClassName: cls, source: { persistentVolumeClaimName: "source-pvc" } },
  };

  const importedContent: VolumeSnapshotContent = {
    apiVersion: SNAPSHOT_API_VERSION,
    kind: "VolumeSnapshotContent",
    metadata: { name: "imported-snapshot-content" },
    spec: {
      // Retain: deleting the Kubernetes objects leaves the snapshot on DigitalOcean.
      deletionPolicy: "Retain",
      driver: config.driverName,
      source: { snapshotHandle: "REPLACE-WITH-SNAPSHOT-ID" },
      volumeSnapshotClassName: cls,
      volumeSnapshotRef: { name: "imported-snapshot", namespace: EXAMPLE_NAMESPACE },
    },
  };
  const importedSnapshot: VolumeSnapshot = {
    apiVersion: SNAPSHOT_API_VERSION,
    kind: "VolumeSnapshot",
    metadata: { name: "imported-snapshot", namespace: EXAMPLE_NAMESPACE },
    spec: { volumeSnapshotClassName: cls, source: { volumeSnapshotContentName: "imported-snapshot-content" } },
  };

  const expansionPvc = (size: string) => claim("expanding-pvc", cls, size);

  const local = localVariant(config);
  const tagClass = (name: string, tags: string) =>
    new VolumeAttributesClass({ metadata: { name: `tags-${name}` }, driverName: config.driverName, parameters: { tags } });
  const attributedPvc = (attributes: string) => claim("attributed-pvc", cls, "5Gi", { volumeAttributesClassName: attributes });

  return [
    {
      path: `${dir("pod-single-volume")}/manifests.yaml`,
      header: "A pod with one 5 GiB volume mounted at /data.",
      sections: [
        {
          objects: [
            claim("csi-pvc", cls, "5Gi"),
            pod(
              "my-csi-app",
              [shell("my-frontend", KEEP_RUNNING, { volumeMounts: [{ name: "my-do-volume", mountPath: "/data" }] })],
              [claimVolume("my-do-volume", "csi-pvc")],
            ),
          ],
        },
      ],
    },
    {
      path: `${dir("pod-multiple-volumes")}/manifests.yaml`,
      header: "A pod with two volumes: ext4 at /data and xfs at /logs.",
      sections: [
        {
          objects: [
            claim("data-pvc", cls, "5Gi"),
            claim("logs-pvc", `${cls}-xfs`, "5Gi"),
            pod(
              "multi-volume-app",
              [
                shell("app", KEEP_RUNNING, {
                  volumeMounts: [
                    { name: "data", mountPath: "/data" },
                    { name: "logs", mountPath: "/logs" },
                  ],
                }),
              ],
              [claimVolume("data", "data-pvc"), claimVolume("logs", "logs-pvc")],
            ),
          ],
        },
      ],
    },
    {
      path: `${dir("static-volume")}/manifests.yaml`,
      header: `An existing DigitalOcean volume (with data) used through a static PersistentVolume.
Replace REPLACE-WITH-VOLUME-ID with the volume's id (doctl compute volume list) and the capacity with its size.
${NO_FORMAT_ATTRIBUTE}: "true" makes the node plugin mount it as it is and never format it.`,
      sections: [
        {
          objects: [
            new PersistentVolume({
              metadata: { name: "existing-volume" },
              spec: {
                capacity: { storage: "5Gi" },
                accessModes: ["ReadWriteOnce"],
                // Retain: deleting the PV object never deletes the volume.
                persistentVolumeReclaimPolicy: "Retain",
                storageClassName: cls,
                csi: {
                  driver: config.driverName,
                  fsType: "ext4",
                  volumeHandle: "REPLACE-WITH-VOLUME-ID",
                  volumeAttributes: { [NO_FORMAT_ATTRIBUTE]: "true" },
                },
              },
            }),
            claim("existing-volume-pvc", cls, "5Gi", { volumeName: "existing-volume" }),
            pod(
              "existing-volume-app",
              [shell("app", KEEP_RUNNING, { volumeMounts: [{ name: "data", mountPath: "/data" }] })],
              [claimVolume("data", "existing-volume-pvc")],
            ),
          ],
        },
      ],
    },
    {
      path: `${dir("raw-block-volume")}/manifests.yaml`,
      header: "A raw block volume: no filesystem, the pod sees the device at /dev/xvda.",
      sections: [
        {
          objects: [
            claim("block-pvc", cls, "5Gi", { volumeMode: "Block" }),
            pod(
              "block-app",
              [shell("app", KEEP_RUNNING, { volumeDevices: [{ name: "data", devicePath: "/dev/xvda" }] })],
              [claimVolume("data", "block-pvc")],
            ),
          ],
        },
      ],
    },
    {
      path: `${dir("snapshot-and-restore")}/1-source.yaml`,
      header: "Step 1: a volume with a file on it.",
      sections: [
        {
          objects: [
            snapshotSource,
            pod(
              "source-app",
              [
                shell("writer", `echo "written before the snapshot" > /data/hello.txt && sync && ${KEEP_RUNNING}`, {
                  volumeMounts: [{ name: "data", mountPath: "/data" }],
                }),
              ],
              [claimVolume("data", "source-pvc")],
            ),
          ],
        },
      ],
    },
    {
      path: `${dir("snapshot-and-restore")}/2-snapshot.yaml`,
      header: "Step 2: a snapshot of the volume.",
      sections: [{ objects: [snapshot] }],
    },
    {
      path: `${dir("snapshot-and-restore")}/3-restore.yaml`,
      header: "Step 3: a new volume restored from the snapshot (at least as big as the source), and a pod that reads the file.",
      sections: [
        {
          objects: [
            claim("restored-pvc", cls, "5Gi", {
              dataSource: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: "source-snapshot" },
            }),
            pod(
              "restored-app",
              [shell("reader", `cat /data/hello.txt && ${KEEP_RUNNING}`, { volumeMounts: [{ name: "data", mountPath: "/data" }] })],
              [claimVolume("data", "restored-pvc")],
            ),
          ],
        },
      ],
    },
    {
      path: `${dir("import-snapshot")}/manifests.yaml`,
      header: `An existing DigitalOcean snapshot brought into Kubernetes, and a volume restored from it.
Replace REPLACE-WITH-SNAPSHOT-ID with the snapshot's id (doctl compute snapshot list --resource volume).
The VolumeSnapshotContent names its VolumeSnapshot by name and namespace; both must match.`,
      sections: [
        {
          objects: [
            importedContent,
            importedSnapshot,
            claim("imported-pvc", cls, "5Gi", {
              dataSource: { apiGroup: "snapshot.storage.k8s.io", kind: "VolumeSnapshot", name: "imported-snapshot" },
            }),
            pod(
              "imported-app",
              [shell("app", KEEP_RUNNING, { volumeMounts: [{ name: "data", mountPath: "/data" }] })],
              [claimVolume("data", "imported-pvc")],
            ),
          ],
        },
      ],
    },
    {
      path: `${dir("online-expansion")}/1-pvc-and-pod.yaml`,
      header: "Step 1: a 5 GiB volume in use by a pod.",
      sections: [
        {
          objects: [
            expansionPvc("5Gi"),
            pod(
              "expanding-app",
              [shell("app", `df -h /data && ${KEEP_RUNNING}`, { volumeMounts: [{ name: "data", mountPath: "/data" }] })],
              [claimVolume("data", "expanding-pvc")],
            ),
          ],
        },
      ],
    },
    {
      path: `${dir("online-expansion")}/2-expand.yaml`,
      header: "Step 2: the same claim asking for 10 GiB; the volume and its filesystem grow while the pod keeps running.",
      sections: [{ objects: [expansionPvc("10Gi")] }],
    },
    {
      path: `${dir("volume-attributes")}/1-classes.yaml`,
      header:
        "Two VolumeAttributesClasses of the DigitalOcean driver: the volume's DigitalOcean tags (cost attribution), changed on a bound claim without touching its data.",
      sections: [{ objects: [tagClass("team-a", "team-a,cost-center-7"), tagClass("team-b", "team-b,cost-center-9")] }],
    },
    {
      path: `${dir("volume-attributes")}/2-pvc-and-pod.yaml`,
      header: "Step 1: a claim created with the first class: the volume is created with its tags.",
      sections: [
        {
          objects: [
            attributedPvc("tags-team-a"),
            pod(
              "attributed-app",
              [shell("app", KEEP_RUNNING, { volumeMounts: [{ name: "data", mountPath: "/data" }] })],
              [claimVolume("data", "attributed-pvc")],
            ),
          ],
        },
      ],
    },
    {
      path: `${dir("volume-attributes")}/3-modify.yaml`,
      header: "Step 2: the same claim with the other class: ControllerModifyVolume retags the volume while the pod runs.",
      sections: [{ objects: [attributedPvc("tags-team-b")] }],
    },
    {
      path: `${dir("volume-attributes")}/local-thick.yaml`,
      header:
        "Local backend: fully allocated (thick) volumes. With one instance per node the StorageClass parameter is the way (no resizer reaches a node's instance); on a single machine a VolumeAttributesClass switches thin and thick online.",
      sections: [
        {
          objects: [
            new StorageClass({
              metadata: { name: `${local.classPrefix}-thick` },
              provisioner: local.driverName,
              parameters: { provisioning: "thick" },
              volumeBindingMode: "WaitForFirstConsumer",
              allowVolumeExpansion: true,
            }),
            new VolumeAttributesClass({
              metadata: { name: `${local.classPrefix}-thick` },
              driverName: local.driverName,
              parameters: { provisioning: "thick" },
            }),
            new VolumeAttributesClass({
              metadata: { name: `${local.classPrefix}-thin` },
              driverName: local.driverName,
              parameters: { provisioning: "thin" },
            }),
          ],
        },
      ],
    },
    {
      path: `${dir("deployment")}/manifests.yaml`,
      header:
        "A Deployment with one volume. ReadWriteOnce: one replica, replaced with the Recreate strategy so the old pod lets go of the volume first.",
      sections: [
        {
          objects: [
            claim("deployment-pvc", cls, "5Gi"),
            new Deployment({
              metadata: { name: "web" },
              spec: {
                replicas: 1,
                strategy: { type: "Recreate" },
                selector: { matchLabels: { app: "web" } },
                template: {
                  metadata: { labels: { app: "web" } },
                  spec: {
                    containers: [
                      shell("web", `mkdir -p /srv/www && echo ok > /srv/www/index.html && httpd -f -p 8080 -h /srv/www`, {
                        ports: [{ containerPort: 8080 }],
                        volumeMounts: [{ name: "content", mountPath: "/srv" }],
                      }),
                    ],
                    volumes: [claimVolume("content", "deployment-pvc")],
                  },
                },
              },
            }),
          ],
        },
      ],
    },
  ];
}
