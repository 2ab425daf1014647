import type { Client } from "@connectrpc/connect";
import { connectCsi } from "../csi/client.js";
import type { Controller, GroupController, Identity, Node, SnapshotMetadata } from "../gen/csi/v1/csi_pb.js";

/**
 * The clients the suite talks through. Node and Identity RPCs go to the
 * (node) endpoint; Controller and GroupController RPCs to the controller
 * endpoint, which is the same one for an all-in-one plugin.
 */
export interface ConformanceClients {
  readonly endpoint: string;
  readonly controllerEndpoint: string;
  readonly identity: Client<typeof Identity>;
  readonly controllerIdentity: Client<typeof Identity>;
  readonly controller: Client<typeof Controller>;
  readonly groupController: Client<typeof GroupController>;
  readonly node: Client<typeof Node>;
  readonly snapshotMetadata: Client<typeof SnapshotMetadata>;
  close(): void;
}

export function connectConformanceClients(endpoint: string, controllerEndpoint: string = endpoint): ConformanceClients {
  const nodeSide = connectCsi(endpoint);
  const controllerSide = controllerEndpoint === endpoint ? nodeSide : connectCsi(controllerEndpoint);
  return {
    endpoint,
    controllerEndpoint,
    identity: nodeSide.identity,
    controllerIdentity: controllerSide.identity,
    controller: controllerSide.controller,
    groupController: controllerSide.groupController,
    node: nodeSide.node,
    snapshotMetadata: controllerSide.snapshotMetadata,
    close() {
      nodeSide.close();
      if (controllerSide !== nodeSide) controllerSide.close();
    },
  };
}
