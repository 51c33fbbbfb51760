// The software version both binaries report.
import pkg from "../package.json" with { type: "json" };

export const SOFTWARE_VERSION: string = pkg.version;
