// Validation of a placement request (the resource and placement parts of a workload spec), naming the bad field.
import * as v from "valibot";
import { RequestError } from "../../shared/errors.ts";
import type { FleetIndex } from "./fleet-index.ts";
import { PART_NAMES, PRESET_NAMES, resolveWeights } from "./presets.ts";
import { parseSelector } from "./selector.ts";
import type { PlacementRequest } from "./types.ts";

const MAX_REPLICAS = 10_000;

const text = v.pipe(v.string(), v.minLength(1, "must not be empty"), v.maxLength(256, "is too long"));
const list = v.pipe(v.array(text), v.minLength(1, "must list at least one"), v.maxLength(256, "is too long"));
const amount = v.pipe(v.number(), v.finite("must be a finite number"), v.minValue(0, "must be 0 or more"));
const level = v.pipe(
  v.number(),
  v.integer("must be an integer"),
  v.minValue(1, "must be 1 to 5"),
  v.maxValue(5, "must be 1 to 5"),
);
const domain = v.picklist(["node", "site", "zone", "region"], 'must be "node", "site", "zone" or "region"');

const weights = v.strictObject(
  Object.fromEntries(PART_NAMES.map((p) => [p, v.optional(amount)])) as Record<
    (typeof PART_NAMES)[number],
    v.OptionalSchema<typeof amount, undefined>
  >,
);

const PlacementSchema = v.strictObject({
  levels: v.optional(v.tuple([level, level])),
  arch: v.optional(list),
  capabilities: v.optional(v.pipe(v.array(text), v.maxLength(256))),
  prefer_capabilities: v.optional(v.pipe(v.array(text), v.maxLength(256))),
  labels: v.optional(
    v.union(
      [v.string(), v.record(v.string(), v.union([v.string(), v.pipe(v.array(v.string()), v.minLength(1))]))],
      "must be an object of label values or a selector string",
    ),
  ),
  jurisdictions: v.optional(list),
  regions: v.optional(list),
  latency: v.optional(
    v.strictObject({
      target: text,
      max_ms: v.optional(
        v.pipe(
          amount,
          v.check((x) => x > 0, "must be above 0"),
        ),
      ),
    }),
  ),
  prefer_level: v.optional(level),
  preset: v.optional(v.picklist(PRESET_NAMES, `must be one of ${PRESET_NAMES.join(", ")}`)),
  weights: v.optional(weights),
  strategy: v.optional(v.picklist(["binpack", "spread"], 'must be "binpack" or "spread"')),
  spread: v.optional(
    v.strictObject({
      by: domain,
      max_per: v.optional(
        v.pipe(v.number(), v.integer("must be an integer"), v.minValue(1, "must be 1 or more")),
      ),
    }),
  ),
  affinity: v.optional(v.strictObject({ workload: text, by: v.optional(domain) })),
});

/** The placement-relevant part of a workload spec; other workload fields are left to the workload schema. */
export const PlacementRequestSchema = v.object({
  name: v.optional(text),
  resources: v.optional(
    v.strictObject({
      cpu_millis: v.optional(amount),
      mem_mb: v.optional(amount),
      disk_mb: v.optional(amount),
    }),
  ),
  replicas: v.optional(
    v.pipe(
      v.number(),
      v.integer("must be an integer"),
      v.minValue(0, `must be 0 to ${MAX_REPLICAS}`),
      v.maxValue(MAX_REPLICAS, `must be 0 to ${MAX_REPLICAS}`),
    ),
  ),
  nodes: v.optional(v.pipe(v.array(text), v.maxLength(MAX_REPLICAS))),
  placement: v.optional(PlacementSchema),
});

// The schema's output must be a PlacementRequest; this line fails to compile if they drift apart.
const _sameShape: (x: v.InferOutput<typeof PlacementRequestSchema>) => PlacementRequest = (x) => x;

/** What the fleet knows, for the checks a schema cannot make (unknown target, node or workload). */
export interface ValidationContext {
  /** Probe targets that can be named (`hub` is always allowed). */
  targets?: ReadonlySet<string>;
  nodes?: ReadonlySet<string>;
  workloads?: ReadonlySet<string>;
}

/** What a fleet index knows for validation: its probe targets and node ids, plus the named workloads. */
export function validationContext(fleet: FleetIndex, workloads?: Iterable<string>): ValidationContext {
  return {
    targets: fleet.targets(),
    nodes: new Set(fleet.ids),
    ...(workloads ? { workloads: new Set(workloads) } : {}),
  };
}

const fail = (field: string, message: string): never => {
  throw new RequestError(`${field}: ${message}`, field);
};

/** Parses an untrusted request body; throws RequestError whose `field` names the first bad field. */
export function validatePlacementRequest(input: unknown, ctx: ValidationContext = {}): PlacementRequest {
  const parsed = v.safeParse(PlacementRequestSchema, input);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const field = v.getDotPath(issue) ?? "request";
    let message = issue.message;
    if (issue.received === "undefined") message = "is required";
    else if (issue.type === "strict_object" && issue.expected === "never") message = "unknown field";
    else if (issue.kind === "schema" && issue.type !== "union" && issue.type !== "picklist") {
      message = `wrong type (expected ${issue.expected}, got ${issue.received})`;
    }
    return fail(field, message);
  }
  const request: PlacementRequest = _sameShape(parsed.output);
  const p = request.placement;
  if (p?.levels && p.levels[0] > p.levels[1]) {
    fail("placement.levels", `min level ${p.levels[0]} is above max level ${p.levels[1]}`);
  }
  if (
    p?.prefer_level !== undefined &&
    p.levels &&
    (p.prefer_level < p.levels[0] || p.prefer_level > p.levels[1])
  ) {
    fail("placement.prefer_level", `${p.prefer_level} is outside levels ${p.levels[0]}-${p.levels[1]}`);
  }
  if (p?.weights) {
    const raw = { ...resolveWeightsRaw(p) };
    if (PART_NAMES.every((k) => raw[k] === 0))
      fail("placement.weights", "at least one weight must be above 0");
  }
  if (p?.labels !== undefined) {
    try {
      parseSelector(p.labels);
    } catch (err) {
      fail("placement.labels", (err as Error).message);
    }
  }
  const target = p?.latency?.target;
  if (target !== undefined && target !== "hub" && ctx.targets && !ctx.targets.has(target)) {
    const known = [...ctx.targets].slice(0, 10).join(", ") || "none";
    fail("placement.latency.target", `unknown target "${target}" (known: ${known})`);
  }
  if (p?.affinity) {
    if (p.affinity.workload === request.name)
      fail("placement.affinity.workload", "a workload cannot follow itself");
    if (ctx.workloads && !ctx.workloads.has(p.affinity.workload)) {
      fail("placement.affinity.workload", `unknown workload "${p.affinity.workload}"`);
    }
  }
  request.nodes?.forEach((id, k) => {
    if (ctx.nodes && !ctx.nodes.has(id)) fail(`nodes.${k}`, `unknown node "${id}"`);
  });
  return request;
}

/** The preset's weights with the request's overrides, before normalisation. */
function resolveWeightsRaw(p: NonNullable<PlacementRequest["placement"]>) {
  const base = resolveWeights({ ...p, weights: undefined }).weights;
  const raw = { ...base };
  for (const k of PART_NAMES) if (p.weights?.[k] !== undefined) raw[k] = p.weights[k];
  return raw;
}
