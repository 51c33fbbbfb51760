// The bodies the alert routes accept, as schemas (what the routes validate with, and what a route list can describe).
import * as v from "valibot";
import { isUrl, parseDuration } from "../../shared/config/index.ts";
import { RequestError } from "../../shared/errors.ts";

export const RULE_KINDS = [
  "node_down",
  "node_offline",
  "series",
  "rollout_failed",
  "failover_done",
  "failover_failed",
  "buffer_dropping",
] as const;
export const SEVERITIES = ["info", "warning", "critical"] as const;
export const OPS = [">", ">=", "<", "<="] as const;
export const ALERT_EVENTS = ["opened", "acknowledged", "resolved"] as const;

const MAX_FOR_MS = 30 * 86_400_000;

export const RuleName = v.pipe(
  v.string(),
  v.regex(
    /^[a-z0-9][a-z0-9_.-]{0,63}$/,
    "must be 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit",
  ),
);

/** `for`: a duration ("90s", "5m") or ms, from 0 to 720h; becomes ms. */
const ForDuration = v.pipe(
  v.union([v.number(), v.string()], 'must be a duration ("90s", "5m") or ms'),
  v.transform((x) => (typeof x === "number" ? x : (parseDuration(x) ?? Number.NaN))),
  v.check(
    (ms) => Number.isSafeInteger(ms) && ms >= 0 && ms <= MAX_FOR_MS,
    'must be a duration from 0 to 720h ("90s", "5m") or ms',
  ),
);

const common = {
  name: RuleName,
  severity: v.optional(v.picklist(SEVERITIES, `must be one of ${SEVERITIES.join(", ")}`)),
  for: v.optional(ForDuration),
  enabled: v.optional(v.boolean("must be true or false")),
};

/** `POST /api/v1/alert-rules`: a `series` rule names its series and threshold; other kinds take neither. */
export const AlertRuleBody = v.variant(
  "kind",
  [
    v.strictObject({
      ...common,
      kind: v.literal("series"),
      series: v.pipe(
        v.string(),
        v.regex(/^[a-z0-9_.]{1,128}(\{[^{}]{1,256}\})?$/, 'must be a series name such as "disk.used_pct"'),
      ),
      op: v.optional(v.picklist(OPS, `must be one of ${OPS.join(" ")}`)),
      threshold: v.pipe(v.number("must be a finite number"), v.finite("must be a finite number")),
    }),
    v.strictObject({
      ...common,
      kind: v.picklist(
        RULE_KINDS.filter((k) => k !== "series"),
        `must be one of ${RULE_KINDS.join(", ")}`,
      ),
    }),
  ],
  `must be one of ${RULE_KINDS.join(", ")}`,
);

/** `POST /api/v1/webhooks`. */
export const WebhookBody = v.strictObject({
  url: v.pipe(
    v.string(),
    v.maxLength(2048),
    v.check((u) => isUrl(u, ["http:", "https:"]), "must be an http:// or https:// URL"),
  ),
  name: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(100))),
  /** The HMAC key; generated when absent. */
  secret: v.optional(v.pipe(v.string(), v.minLength(16, "must be 16 to 256 characters"), v.maxLength(256))),
  events: v.optional(
    v.pipe(
      v.array(v.picklist(ALERT_EVENTS, `must be a list of ${ALERT_EVENTS.join(", ")}`)),
      v.minLength(1, "must name at least one event"),
    ),
  ),
  min_severity: v.optional(v.picklist(SEVERITIES, `must be one of ${SEVERITIES.join(", ")}`)),
});

/** `POST /api/v1/alerts/{id}/ack` (the body may be empty). */
export const AckBody = v.strictObject({
  comment: v.optional(v.pipe(v.string(), v.maxLength(1000, "must be at most 1000 characters"))),
});

/** Parses a JSON object `input` by `schema`; the first problem is a RequestError naming its field. */
export function checkBody<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> {
  if (typeof input !== "object" || input === null || Array.isArray(input))
    throw new RequestError("body: must be a JSON object", "body");
  const r = v.safeParse(schema, input);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const field = issue.path?.map((p) => String(p.key)).join(".") || "body";
  const message =
    issue.kind === "schema" && issue.type === "strict_object" && issue.path
      ? "is not a field of this body"
      : issue.message;
  throw new RequestError(`${field}: ${message}`, field);
}
