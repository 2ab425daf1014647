// @module-tag needs-root
import { startDigitalOceanEnvironment } from "./environments.js";
import { lifecycleSuite } from "./scenarios.js";

// The DigitalOcean backend against the API simulator, deployed as in a cluster: a controller process and a node plugin process.
lifecycleSuite("Kubernetes lifecycle against the DigitalOcean backend (API simulator)", () => startDigitalOceanEnvironment());
