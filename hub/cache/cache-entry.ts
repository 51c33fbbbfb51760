// A hub-pushed cache entry: its schema (keys and values checked by the shared byte definition) and targeting.
import * as v from "valibot";
import { keyProblem, valueProblem } from "../../shared/cache/index.ts";
import { RequestError } from "../../shared/errors.ts";
import type { NodeRecord } from "../registry/index.ts";

export const CacheTarget = v.object({
  nodes: v.optional(v.array(v.string())),
  levels: v.optional(
    v.pipe(
      v.tuple([v.number(), v.number()]),
      v.check(([a, b]) => a >= 1 && b <= 5 && a <= b, "must be [min, max] within 1-5"),
    ),
  ),
  labels: v.optional(v.record(v.string(), v.string())),
});
export type CacheTarget = v.InferOutput<typeof CacheTarget>;

/** A key as the agent accepts it: 1-256 bytes of UTF-8 (bytes, not characters). */
export const CacheKey = v.pipe(
  v.string(),
  v.check(
    (k) => keyProblem(k) === undefined,
    (issue) => keyProblem(issue.input) ?? "is not a valid key",
  ),
);

export const CachePut = v.object({
  key: CacheKey,
  value: v.pipe(
    v.string(),
    v.check(
      (x) => valueProblem(x) === undefined,
      (issue) => valueProblem(issue.input) ?? "is not a valid value",
    ),
  ),
  version: v.pipe(v.number(), v.safeInteger(), v.minValue(1)),
  ttl_ms: v.optional(v.pipe(v.number(), v.safeInteger(), v.minValue(1))),
  target: v.optional(CacheTarget, {}),
});
export type CachePut = v.InferOutput<typeof CachePut>;

/** Parses a value against a schema; the RequestError names the first bad field ("body" for the whole). */
export function parseOrRefuse<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> {
  const r = v.safeParse(schema, input);
  if (r.success) return r.output;
  const issue = r.issues[0];
  const field = issue.path?.map((p) => String(p.key)).join(".") || "body";
  throw new RequestError(`${field}: ${issue.message}`, field);
}

/** Parses a PUT /api/v1/cache body; the error names the field. */
export function parseCachePut(input: unknown): CachePut {
  return parseOrRefuse(CachePut, input);
}

/** Whether a target selects a node. An empty target selects every node. */
export function targets(t: CacheTarget, n: Pick<NodeRecord, "id" | "level" | "labels">): boolean {
  if (t.nodes && !t.nodes.includes(n.id)) return false;
  if (t.levels && (n.level < t.levels[0] || n.level > t.levels[1])) return false;
  if (t.labels) for (const [k, want] of Object.entries(t.labels)) if (n.labels[k] !== want) return false;
  return true;
}
