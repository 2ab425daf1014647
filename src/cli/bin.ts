import { setFlagsFromString } from "node:v8";

// A node plugin runs on every node of a cluster, so its memory matters. Start-up
// runs a lot of code exactly once (building the protobuf descriptors, loading
// modules): letting V8's optimizing compiler work on it costs several MiB for no
// speed-up, and its garbage would double the young generation before the first
// call. So both are held back until main() starts serving. (The heap's limits
// are the image's NODE_OPTIONS: V8 takes them only before it starts.)
setFlagsFromString("--no-turbofan");
setFlagsFromString("--semi-space-growth-factor=1");

await import("./main.js");
