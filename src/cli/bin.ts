import { setFlagsFromString } from "node:v8";

// A node plugin runs on every node of a cluster, so its memory matters:
// - start-up runs a lot of code exactly once (building the protobuf descriptors,
//   loading modules); letting V8's optimizing compiler work on it costs several
//   MiB for no speed-up, so it is off until main() starts serving;
// - the young generation is kept at its initial size instead of doubling under
//   bursts of calls (it otherwise stays doubled long after the burst).
setFlagsFromString("--no-turbofan");
setFlagsFromString("--semi-space-growth-factor=1");

await import("./main.js");
