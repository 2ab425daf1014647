/**
 * node:child_process's `spawn`, loaded at the first call rather than when the
 * module that spawns loads. The plugin's start-up snapshot (src/cli/snapshot.ts)
 * holds the modules a node plugin loads, and Node does not vouch for
 * node:child_process inside a snapshot (the process bindings it sets up as it
 * loads); loaded here, it is always set up in the running process.
 */
import type * as ChildProcesses from "node:child_process";

let childProcesses: typeof ChildProcesses | undefined;

/** node:child_process's `spawn`, with its overloads. */
export const spawn = ((...args: unknown[]): ChildProcesses.ChildProcess => {
  childProcesses ??= process.getBuiltinModule("node:child_process");
  return Reflect.apply(childProcesses.spawn, childProcesses, args) as ChildProcesses.ChildProcess;
}) as typeof ChildProcesses.spawn;
