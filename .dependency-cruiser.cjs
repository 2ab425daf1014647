/**
 * The layers' direction, checked in CI (`npm run check`). Imports point down only:
 *
 *   cli, plugin.ts          wiring: parse flags, assemble the layers
 *   csi                     the gRPC surface: server, transport, middleware, client
 *   driver                  CSI semantics: Identity, Controller, Node; validation, locking
 *   backend, mounter        the cloud / local pools, and everything that touches the host
 *   util, log, errors, gen, config, version   shared, depending on nothing above
 *
 * conformance is a separate tool: it speaks to a plugin through the client only.
 * The parser is swc: the TypeScript compiler this project uses has no JavaScript API.
 */
const below = (...layers) => `^src/(${layers.join("|")})(/|\\.ts$)`;
const SHARED = ["util", "log", "errors", "gen", "config", "version"];

module.exports = {
  forbidden: [
    {
      name: "shared-stays-below",
      comment: "util, log, errors, gen, config and version are used by every layer and use none of them",
      severity: "error",
      from: { path: below(...SHARED) },
      to: { path: "^src/", pathNot: below(...SHARED) },
    },
    {
      name: "host-below-driver",
      comment: "backends and the mounter know nothing of CSI semantics, the gRPC surface or the wiring",
      severity: "error",
      from: { path: below("backend", "mounter") },
      to: { path: below("driver", "csi", "cli", "plugin", "conformance") },
    },
    {
      name: "mounter-below-backend",
      comment: "the mounter serves every backend and depends on none",
      severity: "error",
      from: { path: below("mounter") },
      to: { path: below("backend") },
    },
    {
      name: "driver-below-csi",
      comment: "CSI semantics do not depend on how they are served",
      severity: "error",
      from: { path: below("driver") },
      to: { path: below("csi", "cli", "plugin", "conformance") },
    },
    {
      name: "csi-serves-only",
      comment: "the gRPC surface serves whatever handlers it is given: it reaches no backend, host or wiring",
      severity: "error",
      from: { path: below("csi") },
      to: { path: below("backend", "mounter", "cli", "plugin", "conformance") },
    },
    {
      name: "conformance-is-a-client",
      comment: "the conformance tool checks any plugin from outside: it uses the client and the generated types only",
      severity: "error",
      from: { path: below("conformance") },
      to: { path: below("driver", "backend", "mounter", "cli", "plugin") },
    },
    {
      name: "csictl-is-a-client",
      comment: "csictl speaks to any plugin from outside: it uses the client, the generated types and shared utilities only",
      severity: "error",
      from: { path: below("csictl") },
      to: { path: below("driver", "backend", "mounter", "cli", "plugin", "conformance") },
    },
    {
      name: "no-circular",
      comment:
        "modules that import each other at run time cannot be read, tested or loaded lazily on their own (types may refer both ways)",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
    },
  ],
  options: {
    parser: "swc",
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^src/gen/" },
  },
};
