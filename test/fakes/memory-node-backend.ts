/**
 * An in-memory NodeBackend: node identity, and a device per volume that it
 * "attaches" by remembering it. The node service does the host side itself
 * (src/mounter), so what a test can check over this fake is what the service
 * decides before and around the backend: request rules, NodeGetInfo, in-flight
 * ABORTED, and how a backend failure or an unusable device is answered.
 */
import type { NodeBackend, NodeInfo, StringMap } from "../../src/backend/backend.js";
import { NotFound } from "../../src/csi/errors.js";
import type { HealthCheck } from "../../src/driver/readiness.js";
import { CallGate } from "./call-gate.js";

export type NodeMethod = "nodeInfo" | "attachDevice" | "detachDevice" | "attachedDevices" | "close";

export interface MemoryNodeOptions {
  readonly info?: Partial<NodeInfo>;
  /** Volume id -> device path attachDevice returns; other volumes are NOT_FOUND. */
  readonly devices?: Readonly<Record<string, string>>;
  readonly health?: HealthCheck;
}

export class MemoryNodeBackend implements NodeBackend {
  readonly info: NodeInfo;
  readonly health?: HealthCheck;
  /** Every backend method called with its volume id (if any), in order. */
  readonly calls: { readonly method: NodeMethod; readonly volumeId?: string }[] = [];
  readonly #devices: Map<string, string>;
  readonly #attached = new Map<string, string>();
  readonly #gates = new Map<NodeMethod, CallGate>();

  constructor(options: MemoryNodeOptions = {}) {
    this.info = { nodeId: "node-1", maxVolumesPerNode: 0, accessibleTopology: {}, ...options.info };
    this.#devices = new Map(Object.entries(options.devices ?? {}));
    if (options.health) this.health = options.health;
  }

  /** Hold every call of `method` at a gate until the test releases it. */
  gate(method: NodeMethod): CallGate {
    const gate = new CallGate();
    this.#gates.set(method, gate);
    return gate;
  }

  /** From now on, attachDevice returns `devicePath` for the volume. */
  addDevice(volumeId: string, devicePath: string): void {
    this.#devices.set(volumeId, devicePath);
  }

  /** Volumes attached now, with their devices. */
  attached(): ReadonlyMap<string, string> {
    return this.#attached;
  }

  async nodeInfo(signal: AbortSignal): Promise<NodeInfo> {
    await this.#enter("nodeInfo", undefined, signal);
    return this.info;
  }

  async attachDevice(volumeId: string, _publishContext: StringMap, _volumeContext: StringMap, signal: AbortSignal): Promise<string> {
    await this.#enter("attachDevice", volumeId, signal);
    const device = this.#devices.get(volumeId);
    if (device === undefined) throw NotFound("volume %s has no device on this node", volumeId);
    this.#attached.set(volumeId, device);
    return device;
  }

  async detachDevice(volumeId: string, _devicePath: string | undefined, signal: AbortSignal): Promise<void> {
    await this.#enter("detachDevice", volumeId, signal);
    this.#attached.delete(volumeId);
  }

  async attachedDevices(volumeId: string, signal: AbortSignal): Promise<readonly string[]> {
    await this.#enter("attachedDevices", volumeId, signal);
    const device = this.#attached.get(volumeId);
    return device === undefined ? [] : [device];
  }

  async close(): Promise<void> {
    this.calls.push({ method: "close" });
  }

  async #enter(method: NodeMethod, volumeId: string | undefined, signal: AbortSignal): Promise<void> {
    this.calls.push(volumeId === undefined ? { method } : { method, volumeId });
    await this.#gates.get(method)?.pass(signal);
    signal.throwIfAborted();
  }
}
