import type { Client } from "@connectrpc/connect";
import type { Controller } from "../../src/gen/csi/v1/csi_pb.js";
import type { StorageClass } from "./objects.js";
import { SIDECAR_PREFIX } from "./provisioner.js";
import { DEFAULT_RETRY, withRetries, type RetryPolicy } from "./retry.js";

/** A CSIStorageCapacity object: what one topology segment can still hold for one StorageClass. */
export interface StorageCapacity {
  readonly storageClassName: string;
  readonly nodeTopology: Readonly<Record<string, string>>;
  readonly capacity: bigint;
  /** Set when the driver reports maximum_volume_size. */
  readonly maximumVolumeSize: bigint | undefined;
}

/** One instance of the driver whose capacity is published: its controller and the topology it answers for. */
export interface CapacitySource {
  readonly topology: Readonly<Record<string, string>>;
  readonly controller: () => Client<typeof Controller>;
}

/**
 * The external-provisioner's --enable-capacity, in its per-node mode: for
 * each node's topology and each StorageClass, GetCapacity with the class's
 * parameters (without the sidecar keys) becomes a CSIStorageCapacity object.
 * The sidecar polls; here a refresh is asked for after each change.
 */
export class CapacityPublisher {
  readonly #objects = new Map<string, StorageCapacity>();

  constructor(
    private readonly storageClasses: readonly StorageClass[],
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {}

  static key(storageClassName: string, topology: Readonly<Record<string, string>>): string {
    const segments = Object.entries(topology).sort(([a], [b]) => a.localeCompare(b));
    return `${storageClassName} ${JSON.stringify(segments)}`;
  }

  /** Ask the instance for its capacity and replace its objects. */
  async refresh(source: CapacitySource): Promise<void> {
    for (const sc of this.storageClasses) {
      const parameters: Record<string, string> = {};
      for (const [key, value] of Object.entries(sc.parameters)) if (!key.startsWith(SIDECAR_PREFIX)) parameters[key] = value;
      const answer = await withRetries(
        `GetCapacity ${sc.name} ${JSON.stringify(source.topology)}`,
        (o) => source.controller().getCapacity({ parameters, accessibleTopology: { segments: { ...source.topology } } }, o),
        this.retry,
      );
      this.#objects.set(CapacityPublisher.key(sc.name, source.topology), {
        storageClassName: sc.name,
        nodeTopology: { ...source.topology },
        capacity: answer.availableCapacity,
        maximumVolumeSize: answer.maximumVolumeSize,
      });
    }
  }

  /** The published object for a StorageClass and a topology, if any. */
  get(storageClassName: string, topology: Readonly<Record<string, string>>): StorageCapacity | undefined {
    return this.#objects.get(CapacityPublisher.key(storageClassName, topology));
  }

  all(): StorageCapacity[] {
    return [...this.#objects.values()];
  }
}
