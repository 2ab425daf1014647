import { setFlagsFromString } from "node:v8";

// A node plugin runs on every node of a cluster, so its memory matters: start-up
// runs a lot of code exactly once (building the protobuf descriptors, loading
// modules), and letting V8's optimizing compiler work on it costs several MiB
// for no speed-up, so it is off until main() starts serving. (The heap's sizes
// are the image's NODE_OPTIONS: V8 takes them only before it starts.)
setFlagsFromString("--no-turbofan");

await import("./main.js");
