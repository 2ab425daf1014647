import { Code } from "@connectrpc/connect";
import {
  ControllerServiceCapability_RPC_Type as ControllerCap,
  NodeServiceCapability_RPC_Type as NodeCap,
  PluginCapability_Service_Type as PluginService,
  PluginCapability_VolumeExpansion_Type as ExpansionType,
  type NodeGetInfoResponse,
} from "../gen/csi/v1/csi_pb.js";
import { codeName, describeOutcome, outcome } from "./expect.js";
import type { ConformanceClients } from "./clients.js";

export { ControllerCap, NodeCap, PluginService, ExpansionType };

/** What the driver says about itself, gathered once before the checks run. */
export interface DriverProfile {
  readonly pluginName: string;
  readonly vendorVersion: string;
  /** Raw capability values as returned (checks look for unknown and duplicate entries). */
  readonly pluginServiceList: readonly number[];
  readonly expansionList: readonly number[];
  readonly pluginServices: ReadonlySet<PluginService>;
  readonly volumeExpansion: ReadonlySet<ExpansionType>;
  readonly controller: ServiceState<ControllerCap>;
  readonly node: ServiceState<NodeCap>;
  /** NodeGetInfo's answer when the node service is available and answered it. */
  readonly nodeInfo: NodeGetInfoResponse | undefined;
  readonly nodeInfoError: string | undefined;
}

export type ServiceState<Cap> =
  | { readonly available: true; readonly caps: ReadonlySet<Cap>; readonly list: readonly number[] }
  | { readonly available: false; readonly reason: string };

export function hasControllerCap(profile: DriverProfile, cap: ControllerCap): boolean {
  return profile.controller.available && profile.controller.caps.has(cap);
}

export function hasNodeCap(profile: DriverProfile, cap: NodeCap): boolean {
  return profile.node.available && profile.node.caps.has(cap);
}

export function controllerCapName(cap: number): string {
  return ControllerCap[cap] ?? `unknown(${cap})`;
}

export function nodeCapName(cap: number): string {
  return NodeCap[cap] ?? `unknown(${cap})`;
}

export function pluginServiceName(cap: number): string {
  return PluginService[cap] ?? `unknown(${cap})`;
}

export function expansionName(cap: number): string {
  return ExpansionType[cap] ?? `unknown(${cap})`;
}

/** Skip reasons for the common requirements of checks. */
export const needs = {
  controller(...caps: ControllerCap[]) {
    return (profile: DriverProfile): string | undefined => {
      if (!profile.controller.available) return profile.controller.reason;
      const missing = caps.filter((cap) => !profile.controller.available || !profile.controller.caps.has(cap));
      return missing.length > 0 ? `controller capability ${missing.map(controllerCapName).join(", ")} not advertised` : undefined;
    };
  },
  node(...caps: NodeCap[]) {
    return (profile: DriverProfile): string | undefined => {
      if (!profile.node.available) return profile.node.reason;
      const missing = caps.filter((cap) => !profile.node.available || !profile.node.caps.has(cap));
      return missing.length > 0 ? `node capability ${missing.map(nodeCapName).join(", ")} not advertised` : undefined;
    };
  },
  all(...requirements: ((profile: DriverProfile) => string | undefined)[]) {
    return (profile: DriverProfile): string | undefined => {
      for (const requirement of requirements) {
        const reason = requirement(profile);
        if (reason !== undefined) return reason;
      }
      return undefined;
    };
  },
};

/** A discovery step failed in a way that makes every check meaningless (no connection, no Identity service). */
export class DiscoveryError extends Error {}

/** Ask the endpoints what the plugin is and what it supports. */
export async function discoverProfile(clients: ConformanceClients, callOptions: () => { timeoutMs: number }): Promise<DriverProfile> {
  const info = await outcome(clients.identity.getPluginInfo({}, callOptions()));
  if (!info.ok) throw new DiscoveryError(`GetPluginInfo failed: ${describeOutcome(info)}; is ${clients.endpoint} a CSI endpoint?`);
  const caps = await outcome(clients.identity.getPluginCapabilities({}, callOptions()));
  if (!caps.ok) throw new DiscoveryError(`GetPluginCapabilities failed: ${describeOutcome(caps)}`);

  const pluginServiceList: number[] = [];
  const expansionList: number[] = [];
  for (const cap of caps.value.capabilities) {
    if (cap.type.case === "service") pluginServiceList.push(cap.type.value.type);
    else if (cap.type.case === "volumeExpansion") expansionList.push(cap.type.value.type);
  }
  const pluginServices = new Set(pluginServiceList as PluginService[]);
  // A CO asks the controller's own endpoint whether it serves the Controller
  // service; any difference between the endpoints is reported by a check.
  let controllerServices = pluginServices;
  if (clients.controllerEndpoint !== clients.endpoint) {
    const controllerCaps = await outcome(clients.controllerIdentity.getPluginCapabilities({}, callOptions()));
    if (!controllerCaps.ok)
      throw new DiscoveryError(`GetPluginCapabilities at ${clients.controllerEndpoint} failed: ${describeOutcome(controllerCaps)}`);
    controllerServices = new Set(controllerCaps.value.capabilities.flatMap((c) => (c.type.case === "service" ? [c.type.value.type] : [])));
    for (const service of controllerServices) pluginServices.add(service);
  }

  let controller: ServiceState<ControllerCap>;
  if (!controllerServices.has(PluginService.CONTROLLER_SERVICE)) {
    controller = { available: false, reason: "the plugin does not advertise CONTROLLER_SERVICE" };
  } else {
    const answer = await outcome(clients.controller.controllerGetCapabilities({}, callOptions()));
    if (answer.ok) {
      const list = answer.value.capabilities.map((c) => (c.type.case === "rpc" ? c.type.value.type : 0));
      controller = { available: true, caps: new Set(list as ControllerCap[]), list };
    } else if (answer.code === Code.Unimplemented) {
      controller = {
        available: false,
        reason: `${clients.controllerEndpoint} does not serve the Controller service (ControllerGetCapabilities: UNIMPLEMENTED); pass --controller-endpoint`,
      };
    } else {
      throw new DiscoveryError(`ControllerGetCapabilities failed: ${describeOutcome(answer)}`);
    }
  }

  let node: ServiceState<NodeCap>;
  let nodeInfo: NodeGetInfoResponse | undefined;
  let nodeInfoError: string | undefined;
  const nodeCaps = await outcome(clients.node.nodeGetCapabilities({}, callOptions()));
  if (nodeCaps.ok) {
    const list = nodeCaps.value.capabilities.map((c) => (c.type.case === "rpc" ? c.type.value.type : 0));
    node = { available: true, caps: new Set(list as NodeCap[]), list };
    const infoAnswer = await outcome(clients.node.nodeGetInfo({}, callOptions()));
    if (infoAnswer.ok) nodeInfo = infoAnswer.value;
    else nodeInfoError = `NodeGetInfo failed: ${describeOutcome(infoAnswer)}`;
  } else if (nodeCaps.code === Code.Unimplemented) {
    node = { available: false, reason: `${clients.endpoint} does not serve the Node service (NodeGetCapabilities: UNIMPLEMENTED)` };
  } else {
    node = { available: false, reason: `NodeGetCapabilities failed with ${codeName(nodeCaps.code)}: ${nodeCaps.message}` };
  }

  return {
    pluginName: info.value.name,
    vendorVersion: info.value.vendorVersion,
    pluginServiceList,
    expansionList,
    pluginServices,
    volumeExpansion: new Set(expansionList as ExpansionType[]),
    controller,
    node,
    nodeInfo,
    nodeInfoError,
  };
}
