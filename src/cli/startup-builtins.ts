/**
 * The built-in modules the plugin loads while it starts, loaded together while
 * V8's flags are still at their defaults, so Node takes each from its code cache
 * rather than compiling it from source (v8-flags.ts). Start-up then holds back
 * V8's optimizing compiler, a flag change after which Node's cache no longer
 * applies.
 *
 * node:cluster is here because node:net loads it when a server listens. A
 * built-in missing here still works, only compiled from source (a few ms);
 * test/cli/startup-builtins.test.ts runs the bundle and fails on any built-in
 * a node plugin compiles without the cache.
 */
import * as childProcess from "node:child_process";
import * as cluster from "node:cluster";
import * as crypto from "node:crypto";
import * as fsPromises from "node:fs/promises";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as os from "node:os";
import * as perfHooks from "node:perf_hooks";
import * as timersPromises from "node:timers/promises";
import * as vm from "node:vm";

/** The modules themselves: exported so the bundler keeps the imports, which it drops when they only load. */
export const STARTUP_BUILTINS: readonly object[] = [
  childProcess,
  cluster,
  crypto,
  fsPromises,
  http2,
  net,
  os,
  perfHooks,
  timersPromises,
  vm,
];
