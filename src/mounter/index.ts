/**
 * The Mounter: every host interaction of the node service, shared by all
 * backends. Commands run through util/exec (argv arrays, the caller's
 * deadline, stderr in errors); mount state comes from /proc/self/mountinfo;
 * sizes from sysfs; usage from statfs.
 */
export * from "./device.js";
export * from "./format.js";
export * from "../util/executables.js";
export * from "./loop.js";
export * from "./mount.js";
export * from "./mount-options.js";
export * from "./mount-point.js";
export * from "./mountinfo.js";
export * from "./paths.js";
export * from "./probe.js";
export * from "./propagation.js";
export * from "./resize.js";
export * from "./stats.js";
