import { restoreHeapFlagDefaults } from "./v8-flags.js";

// Before anything else is loaded: V8's flags hashing as Node's code cache for
// its built-in modules expects (v8-flags.ts explains why this keeps the heap's limits).
restoreHeapFlagDefaults();

await import("./main.js");
