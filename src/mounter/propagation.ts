import { dirname } from "node:path";
import { containingMount, isPathWithin, propagationOf, type MountEntry } from "./mountinfo.js";
import { echo } from "../util/echo.js";

/** The kubelet's root directory unless configured otherwise. */
export const DEFAULT_KUBELET_DIR = "/var/lib/kubelet";

/**
 * Why mounts made at `path` would stay invisible to the kubelet and to
 * containers, or undefined when they propagate. A node plugin in a container
 * must see the kubelet directory as a shared mount (mountPropagation:
 * Bidirectional); otherwise its mounts live only in its own mount namespace and
 * pods get an empty directory. Only paths under `kubeletDir` are checked: other
 * paths (a plugin run directly on a host, tests) have no such requirement.
 */
export function propagationProblem(entries: readonly MountEntry[], path: string, kubeletDir: string): string | undefined {
  if (!isPathWithin(path, kubeletDir)) return undefined;
  const parent = containingMount(entries, dirname(path));
  if (parent === undefined) return undefined;
  const propagation = propagationOf(parent);
  if (propagation === "shared") return undefined;
  return (
    `mount propagation is disabled: ${echo(path)} lies on the mount at ${echo(parent.mountPoint)}, which is ${propagation}, not shared, ` +
    `so volumes mounted there would not be visible to the kubelet or to pods. ` +
    `Fix: mount ${echo(kubeletDir)} into the node plugin container with mountPropagation: Bidirectional (privileged: true), ` +
    `and make sure it is a shared mount on the host (e.g. mount --make-rshared /)`
  );
}
