// Settings both processes have, defined once: frame limit and log level.
import { DEFAULT_MAX_FRAME_BYTES } from "../protocol/index.ts";
import { defineFields } from "./fields.ts";

/** Fields every NovaCron process takes, appended to its own table. */
export const commonFields = defineFields([
  {
    key: "max_frame_bytes",
    flag: "--max-frame-bytes",
    env: "NOVACRON_MAX_FRAME_BYTES",
    kind: "bytes",
    min: "64KiB",
    max: "64MiB",
    default: DEFAULT_MAX_FRAME_BYTES,
    help: "largest frame sent or accepted on a link",
  },
  {
    key: "log_level",
    flag: "--log-level",
    env: "NOVACRON_LOG_LEVEL",
    kind: "string",
    oneOf: ["debug", "info", "warn", "error"],
    default: "info",
    hot: true,
    help: "least severe log level written",
  },
]);
