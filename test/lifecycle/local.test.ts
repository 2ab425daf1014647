// @module-tag needs-root
import { startLocalEnvironment } from "./environments.js";
import { lifecycleSuite } from "./scenarios.js";

// The local backend, all-in-one (one process serves controller and node), as `npm start` runs it.
lifecycleSuite("Kubernetes lifecycle against the local backend", () => startLocalEnvironment());
