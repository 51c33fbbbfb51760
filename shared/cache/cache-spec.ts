// A named cache's declaration (agent config or the hub's PUT /api/v1/caches/{name}): strategy, consistency, scope.
import * as v from "valibot";
import { RequestError } from "../errors.ts";

export const STRATEGIES = ["cache-aside", "read-through", "write-through", "write-behind"] as const;
export const CONSISTENCIES = ["eventual", "monotonic-read", "read-your-writes", "causal", "strong"] as const;
/** Which other nodes get a node's writes through the hub: same site label, region label, level, or all. */
export const SCOPES = ["none", "site", "region", "level", "fleet"] as const;

export type Strategy = (typeof STRATEGIES)[number];
export type Consistency = (typeof CONSISTENCIES)[number];
export type Scope = (typeof SCOPES)[number];

/** A cache name: what may stand in a URL path segment and a SQLite value without escaping. */
export const CACHE_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

export const CacheSpec = v.object({
  strategy: v.optional(v.picklist(STRATEGIES), "cache-aside"),
  consistency: v.optional(v.picklist(CONSISTENCIES), "eventual"),
  /** Who else holds this cache's writes (default: nodes of the same site; "none" keeps them local). */
  replicate: v.optional(v.picklist(SCOPES), "site"),
  /** read-through: where a miss is fetched, as ORIGIN/KEY (the key percent-encoded). */
  origin: v.optional(v.pipe(v.string(), v.url(), v.regex(/^https?:/, "must be an http(s) URL"))),
  /** strong, when the hub is away: answer an error (default) or the local value flagged stale. */
  offline: v.optional(v.picklist(["error", "stale"]), "error"),
  /** How long an entry is fresh (read-through refetches after it; a stale copy stays for fallback). */
  ttl_ms: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(1))),
  /** Most entries kept; the least recently used go first. */
  max_entries: v.optional(
    v.pipe(v.number(), v.safeInteger(), v.minValue(1), v.maxValue(10_000_000)),
    100_000,
  ),
  /** Entries the hub sends a node of this cache when it joins or returns, hottest first (0: none). */
  prefetch: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(0), v.maxValue(100_000)), 1000),
  /** How often the node reports its hot keys to the hub. */
  hot_report_ms: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(100)), 30_000),
  /** write-through: how long a write waits for the hub's acknowledgement. */
  ack_timeout_ms: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(1), v.maxValue(600_000)), 10_000),
});
export type CacheSpec = v.InferOutput<typeof CacheSpec>;

/** Parses one declaration; the RequestError names the field as `{prefix}.{field}`. */
export function parseCacheSpec(input: unknown, prefix: string): CacheSpec {
  const r = v.safeParse(CacheSpec, input ?? {});
  if (!r.success) {
    const issue = r.issues[0];
    const path = issue.path?.map((p) => String(p.key)).join(".");
    const field = path ? `${prefix}.${path}` : prefix;
    throw new RequestError(`${field}: ${issue.message}`, field);
  }
  const spec = r.output;
  if (spec.strategy === "read-through" && !spec.origin)
    throw new RequestError(`${prefix}.origin: a read-through cache needs an origin URL`, `${prefix}.origin`);
  if (typeof input === "object" && input !== null) {
    const known = new Set(Object.keys(CacheSpec.entries));
    for (const k of Object.keys(input)) {
      if (!known.has(k)) throw new RequestError(`${prefix}.${k}: unknown setting`, `${prefix}.${k}`);
    }
  }
  return spec;
}

/** Parses the agent's `caches` map (name → declaration). */
export function parseCacheSpecs(input: unknown, prefix = "caches"): Record<string, CacheSpec> {
  if (input === undefined || input === null) return {};
  if (typeof input !== "object" || Array.isArray(input))
    throw new RequestError(`${prefix}: must be a map of cache name to settings`, prefix);
  const out: Record<string, CacheSpec> = {};
  for (const [name, spec] of Object.entries(input)) {
    if (!CACHE_NAME.test(name))
      throw new RequestError(
        `${prefix}.${name}: a cache name is 1-64 lowercase letters, digits, '_', '.' or '-'`,
        `${prefix}.${name}`,
      );
    out[name] = parseCacheSpec(spec, `${prefix}.${name}`);
  }
  return out;
}

/** The replication partition a node's writes to a cache belong to (its own when not replicated). */
export function partitionOf(
  scope: Scope,
  node: { id: string; level: number; labels: Record<string, string> },
): string {
  switch (scope) {
    case "none":
      return `node=${node.id}`;
    case "site":
      return `site=${node.labels.site ?? ""}`;
    case "region":
      return `region=${node.labels.region ?? ""}`;
    case "level":
      return `level=${node.level}`;
    case "fleet":
      return "fleet";
  }
}
