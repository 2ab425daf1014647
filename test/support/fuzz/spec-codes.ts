import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";

/**
 * The gRPC codes the CSI spec allows each RPC to answer with: the codes of the
 * RPC's own error table, plus the general ones that apply to every call — a
 * missing or invalid field (INVALID_ARGUMENT), an operation pending for the
 * same volume (ABORTED), a call not implemented in this mode (UNIMPLEMENTED),
 * the caller's deadline (DEADLINE_EXCEEDED), a request over the transport's
 * limits (RESOURCE_EXHAUSTED) and the secrets codes (PERMISSION_DENIED,
 * UNAUTHENTICATED) — and, where the request's fields make them applicable,
 * NOT_FOUND and FAILED_PRECONDITION for a request that names an object (an
 * `*_id` field) or a path, ALREADY_EXISTS for one that names what it creates
 * (`name`) or a path, and OUT_OF_RANGE for one with a `capacity_range`.
 * INTERNAL and UNKNOWN are never allowed: they mean the plugin failed, not
 * the request.
 */
const GENERAL: readonly Code[] = [
  Code.InvalidArgument,
  Code.Aborted,
  Code.Unimplemented,
  Code.DeadlineExceeded,
  Code.ResourceExhausted,
  Code.PermissionDenied,
  Code.Unauthenticated,
];

/** Each RPC's error table in the spec (csi.proto's method names). */
const TABLES: Readonly<Record<string, readonly Code[]>> = {
  // Identity
  GetPluginInfo: [],
  GetPluginCapabilities: [],
  Probe: [Code.FailedPrecondition],
  // Controller
  CreateVolume: [Code.InvalidArgument, Code.NotFound, Code.AlreadyExists, Code.ResourceExhausted, Code.OutOfRange],
  DeleteVolume: [Code.FailedPrecondition],
  ControllerPublishVolume: [Code.NotFound, Code.AlreadyExists, Code.FailedPrecondition, Code.ResourceExhausted],
  ControllerUnpublishVolume: [Code.NotFound],
  ValidateVolumeCapabilities: [Code.NotFound],
  ListVolumes: [Code.Aborted],
  GetCapacity: [],
  ControllerGetCapabilities: [],
  // The spec's table says "13 RESOURCE_EXHAUSTED" for "not enough space"; the name is meant (13 is INTERNAL).
  CreateSnapshot: [Code.AlreadyExists, Code.Aborted, Code.ResourceExhausted],
  DeleteSnapshot: [Code.InvalidArgument, Code.FailedPrecondition, Code.Aborted],
  ListSnapshots: [Code.Aborted],
  GetSnapshot: [Code.NotFound],
  ControllerExpandVolume: [Code.InvalidArgument, Code.NotFound, Code.FailedPrecondition, Code.OutOfRange],
  ControllerGetVolume: [Code.NotFound],
  ControllerModifyVolume: [Code.InvalidArgument, Code.NotFound],
  // GroupController
  GroupControllerGetCapabilities: [],
  CreateVolumeGroupSnapshot: [Code.AlreadyExists, Code.FailedPrecondition, Code.ResourceExhausted],
  DeleteVolumeGroupSnapshot: [Code.InvalidArgument, Code.FailedPrecondition],
  GetVolumeGroupSnapshot: [Code.InvalidArgument, Code.NotFound],
  // Node
  NodeStageVolume: [Code.NotFound, Code.AlreadyExists, Code.FailedPrecondition],
  NodeUnstageVolume: [Code.NotFound],
  NodePublishVolume: [Code.NotFound, Code.AlreadyExists, Code.FailedPrecondition],
  NodeUnpublishVolume: [Code.NotFound],
  NodeGetVolumeStats: [Code.NotFound],
  NodeExpandVolume: [Code.InvalidArgument, Code.NotFound, Code.FailedPrecondition, Code.OutOfRange],
  NodeGetCapabilities: [],
  NodeGetInfo: [],
};

/** The general codes that apply to a request with these fields. */
function applicable(method: DescMethod): Code[] {
  const names = method.input.fields.map((f) => f.name);
  const codes: Code[] = [];
  const namesObject = names.some((n) => n.endsWith("_id") || n.endsWith("_ids"));
  const namesPath = names.some((n) => n.endsWith("path"));
  if (namesObject || namesPath) codes.push(Code.NotFound, Code.FailedPrecondition);
  if (names.includes("name") || namesPath) codes.push(Code.AlreadyExists);
  if (names.includes("capacity_range")) codes.push(Code.OutOfRange);
  return codes;
}

/** The codes (other than OK) the spec allows `method` to fail with; throws for a method the table lacks. */
export function allowedCodes(method: DescMethod): ReadonlySet<Code> {
  const table = TABLES[method.name];
  if (table === undefined) throw new Error(`no spec error table for ${method.name}`);
  return new Set([...GENERAL, ...applicable(method), ...table]);
}

/** Every method the table covers (a test checks it against the services' descriptors). */
export const TABLED_METHODS: readonly string[] = Object.keys(TABLES);
