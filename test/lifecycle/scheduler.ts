import type { CapacityPublisher, StorageCapacity } from "./capacity-publisher.js";
import type { PersistentVolumeClaim } from "./objects.js";

/** A node as the scheduler sees it: its name and the topology labels its CSINode registration gave it. */
export interface SchedulableNode {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** No node can take the pod now (kube-scheduler leaves it Pending and tries again later). */
export class Unschedulable extends Error {}

function matches(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** kube-scheduler's capacity test: the maximum volume size when published, the capacity otherwise. */
function sufficient(capacity: StorageCapacity, bytes: bigint): boolean {
  return (capacity.maximumVolumeSize ?? capacity.capacity) >= bytes;
}

/**
 * kube-scheduler's VolumeBinding plugin with storage capacity tracking
 * (CSIDriver storageCapacity: true): a pod's bound claims restrict it to the
 * nodes their PersistentVolumes' node affinity names; each unbound
 * WaitForFirstConsumer claim needs a CSIStorageCapacity object for its class
 * whose topology the node has and whose capacity holds the request. Among the
 * nodes that pass, the one with the most published capacity wins (ties by
 * name), so claims spread by capacity. The chosen node becomes the unbound
 * claims' selected-node annotation.
 */
export class Scheduler {
  constructor(
    private readonly nodes: readonly SchedulableNode[],
    private readonly capacity: CapacityPublisher,
  ) {}

  /** Published capacity for a claim's class on a node, or undefined when no object covers the node. */
  private capacityOn(node: SchedulableNode, claim: PersistentVolumeClaim): StorageCapacity | undefined {
    return this.capacity.all().find((c) => c.storageClassName === claim.storageClass.name && matches(c.nodeTopology, node.labels));
  }

  private fits(node: SchedulableNode, claims: readonly PersistentVolumeClaim[]): boolean {
    for (const claim of claims) {
      const pv = claim.volume;
      if (pv !== undefined) {
        if (pv.nodeAffinity.length > 0 && !pv.nodeAffinity.some((term) => matches(term, node.labels))) return false;
        continue;
      }
      if (claim.selectedNode !== undefined && claim.selectedNode !== node.name) return false;
      const published = this.capacityOn(node, claim);
      if (published === undefined || !sufficient(published, claim.requestBytes)) return false;
    }
    return true;
  }

  /** Choose a node for a pod using `claims`; annotate its unbound claims with it. */
  schedule(podName: string, claims: readonly PersistentVolumeClaim[]): SchedulableNode {
    const unbound = claims.filter((c) => c.volume === undefined);
    const score = (node: SchedulableNode) => unbound.reduce((sum, claim) => sum + (this.capacityOn(node, claim)?.capacity ?? 0n), 0n);
    const feasible = this.nodes
      .filter((node) => this.fits(node, claims))
      .map((node) => ({ node, score: score(node) }))
      .sort((a, b) => (a.score === b.score ? a.node.name.localeCompare(b.node.name) : a.score > b.score ? -1 : 1));
    const chosen = feasible[0]?.node;
    if (chosen === undefined)
      throw new Unschedulable(`pod ${podName}: 0/${this.nodes.length} nodes available (node affinity or not enough free storage)`);
    for (const claim of unbound) claim.selectedNode = chosen.name;
    return chosen;
  }

  /** What the provisioner does after a ResourceExhausted answer: remove the annotation so the pod is scheduled again. */
  static reschedule(claim: PersistentVolumeClaim): void {
    claim.selectedNode = undefined;
  }
}
