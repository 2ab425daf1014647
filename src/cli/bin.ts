import { holdBackWhileStarting, restoreHeapFlagDefaults } from "./v8-flags.js";

// Before anything else is loaded: V8's flags hashing as Node's code cache for
// its built-in modules expects (v8-flags.ts explains why this keeps the heap's
// limits). Then the built-ins start-up needs, while that cache applies; only
// then is V8 held back for start-up, before the program's own modules load:
// loading them runs node:path's and node:url's functions often enough (more so
// from a long directory) that V8 would otherwise optimize those with TurboFan.
restoreHeapFlagDefaults();
await import("./startup-builtins.js");
holdBackWhileStarting();

const { runMain } = await import("./main.js");
runMain(process.argv.slice(2));
