import pkg from "../package.json" with { type: "json" };

/** The driver's version (vendor_version), from package.json. */
export const VERSION: string = pkg.version;
