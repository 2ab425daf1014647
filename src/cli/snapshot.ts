/**
 * The builder of the plugin's start-up snapshot: what the image starts.
 *
 * A node plugin's start is mostly work that comes out the same every time:
 * building the protobuf descriptors of csi.proto (and of descriptor.proto, which
 * it imports), loading and compiling the modules a node plugin runs. Node can
 * run a script once, save the heap it leaves (`node --snapshot-blob FILE
 * --build-snapshot-config CONFIG`, with this module bundled as the builder),
 * and start later processes from that heap (`node --snapshot-blob FILE --
 * ARGS...`), which then begin in `startFromSnapshot` below.
 *
 * What the snapshot holds is only what loading the modules computes, never the
 * host's state: no module here reads the environment, the pid, the clock or the
 * command line when it loads (crash-points.ts and line-sink.ts were changed for
 * that), and nothing runs before `startFromSnapshot`. The modules that bind
 * Node's sockets, timers, processes or other contexts as they load (node:http2,
 * node:child_process, node:perf_hooks, node:vm, ...) are not in it: the server,
 * the heap trimmer and the command runner load when the plugin starts, as they
 * do without a snapshot. A snapshot is bound to the Node binary that built it,
 * so the image builds it with its own Node (Dockerfile), and so do the tests and
 * the bench for each Node they run.
 *
 * It is built without Node's code cache for its built-in modules (3.6 MB on
 * Node 22, held in memory by every process started from it), so the built-ins
 * loaded at start (node:http2 among them) compile from source: a few ms of
 * start-up for 3-4 MiB less resident memory (bench/RESULTS.md).
 */
import { startupSnapshot } from "node:v8";
import { file_csi_v1_csi } from "../gen/csi/v1/csi_pb.js";
import { CsiServer } from "../csi/server.js";
import { createPlugin } from "../plugin.js";
import { nodeService } from "../driver/node.js";
import { openLocalNode } from "../backend/local/node.js";
import { openDigitalOceanNode } from "../backend/digitalocean/node.js";
import { createLogger } from "../log/logger.js";
import { parseCommandLine } from "./options.js";
import { holdBackWhileStarting, restoreHeapFlagDefaults } from "./v8-flags.js";

/**
 * What a node plugin's start would otherwise load and build, handed to Node with
 * the main function so that the bundler keeps the modules, whose loading is the
 * point (Node runs the builder with no `module` to export them from).
 */
const SNAPSHOT_CONTENTS: readonly unknown[] = [
  file_csi_v1_csi,
  CsiServer,
  createPlugin,
  nodeService,
  openLocalNode,
  openDigitalOceanNode,
  createLogger,
  parseCommandLine,
];

function startFromSnapshot(): void {
  // As bin.ts does (v8-flags.ts), less the built-ins it loads first: with no code
  // cache in the snapshot, Node compiles them from source whatever the flags.
  restoreHeapFlagDefaults();
  holdBackWhileStarting();
  // Node leaves out its own path and the `--` before the plugin's arguments.
  void import("./main.js").then(({ runMain }) => runMain(process.argv.slice(1)));
}

if (startupSnapshot.isBuildingSnapshot()) {
  startupSnapshot.setDeserializeMainFunction(startFromSnapshot, SNAPSHOT_CONTENTS);
} else {
  process.stderr.write(
    "this is the builder of the start-up snapshot: node --snapshot-blob FILE --build-snapshot-config CONFIG builds it (see the Dockerfile)\n",
  );
  process.exitCode = 2;
}
