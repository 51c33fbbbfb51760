// The workload spec shared by hub and agent: what to run, how to restart it, how to check it, where it may go.
import * as v from "valibot";
import { ID_PATTERN } from "../ids.ts";
import { DisconnectPolicySpec } from "./disconnect.ts";

const name = v.pipe(
  v.string(),
  v.regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    "must be 1-63 lower-case letters, digits or '-', not starting or ending with '-'",
  ),
);
const nonNegInt = v.pipe(v.number(), v.integer(), v.minValue(0));
const durationMs = (min: number, max: number) =>
  v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));

export const Resources = v.object({
  cpu_millis: v.optional(v.pipe(nonNegInt, v.maxValue(1_024_000)), 0),
  mem_mb: v.optional(v.pipe(nonNegInt, v.maxValue(16_777_216)), 0),
  disk_mb: v.optional(v.pipe(nonNegInt, v.maxValue(1_073_741_824)), 0),
});

export const HealthCheck = v.variant("type", [
  v.object({
    type: v.literal("http"),
    /** URL the check GETs; a 2xx or 3xx answer is healthy. */
    url: v.pipe(v.string(), v.url("must be an http:// or https:// URL")),
    interval_ms: v.optional(durationMs(100, 3_600_000), 5000),
    timeout_ms: v.optional(durationMs(10, 60_000), 2000),
    /** Consecutive failures before the task counts as unhealthy. */
    threshold: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), 3),
  }),
  v.object({
    type: v.literal("tcp"),
    host: v.optional(v.string(), "127.0.0.1"),
    port: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)),
    interval_ms: v.optional(durationMs(100, 3_600_000), 5000),
    timeout_ms: v.optional(durationMs(10, 60_000), 2000),
    threshold: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), 3),
  }),
  v.object({
    type: v.literal("command"),
    /** Exit status 0 is healthy. */
    command: v.pipe(v.string(), v.minLength(1)),
    args: v.optional(v.array(v.string()), []),
    interval_ms: v.optional(durationMs(100, 3_600_000), 5000),
    timeout_ms: v.optional(durationMs(10, 60_000), 2000),
    threshold: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), 3),
  }),
]);

export const RestartPolicy = v.picklist(["always", "on-failure", "never"]);

export const Backoff = v.object({
  initial_ms: v.optional(durationMs(10, 3_600_000), 1000),
  max_ms: v.optional(durationMs(10, 86_400_000), 60_000),
});

export const Rollout = v.object({
  strategy: v.optional(v.picklist(["rolling", "canary", "blue-green"]), "rolling"),
  /** Rolling: replicas that may be down at once. */
  max_unavailable: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 1),
  /** Canary: replicas that get the new version first. */
  canary: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1)), 1),
  /** How long a new replica must stay healthy before the next step. */
  min_healthy_ms: v.optional(durationMs(0, 3_600_000), 2000),
  /** Give up on a step after this long. */
  deadline_ms: v.optional(durationMs(1000, 86_400_000), 120_000),
  auto_rollback: v.optional(v.boolean(), true),
});

/** The body of POST/PUT /api/v1/workloads, validated. */
export const WorkloadSpec = v.object({
  name,
  driver: v.picklist(["exec", "job"], 'must be "exec" or "job"'),
  command: v.pipe(v.string(), v.minLength(1, "must not be empty")),
  args: v.optional(v.array(v.string()), []),
  env: v.optional(
    v.record(
      v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "invalid environment variable name")),
      v.string(),
    ),
    {},
  ),
  cwd: v.optional(v.string()),
  replicas: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(10_000)), 1),
  restart: v.optional(RestartPolicy, "on-failure"),
  backoff: v.optional(Backoff, {}),
  priority: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(10)), 5),
  resources: v.optional(Resources, {}),
  health: v.optional(HealthCheck),
  /** Grace between SIGTERM and SIGKILL when stopping. */
  stop_timeout_ms: v.optional(durationMs(0, 600_000), 10_000),
  /** Pinned placement: exactly these nodes (one replica each). */
  nodes: v.optional(v.array(v.pipe(v.string(), v.regex(ID_PATTERN, "invalid node id")))),
  placement: v.optional(v.record(v.string(), v.unknown()), {}),
  /** What happens when the node of a copy loses contact (disconnect.ts: fields and defaults by level and kind). */
  disconnect: v.optional(DisconnectPolicySpec, {}),
  rollout: v.optional(Rollout, {}),
});

export type WorkloadSpecInput = v.InferInput<typeof WorkloadSpec>;
export type WorkloadSpec = v.InferOutput<typeof WorkloadSpec>;
export type HealthCheckSpec = v.InferOutput<typeof HealthCheck>;

/** What an agent is told to run: one allocation of one workload version. */
export const AllocSpec = v.object({
  id: v.string(),
  workload: v.string(),
  /** Version of the workload spec this allocation runs (rises on every PUT). */
  version: nonNegInt,
  spec: WorkloadSpec,
});
export type AllocSpec = v.InferOutput<typeof AllocSpec>;

/** Allocation states shared by hub records and agent reports. */
export const ALLOC_STATUSES = ["pending", "running", "failed", "complete", "lost"] as const;
export type AllocStatusName = (typeof ALLOC_STATUSES)[number];

/** Validates a workload body; the error names the first bad field, e.g. `resources.mem_mb: ...`. */
export function parseWorkloadSpec(
  input: unknown,
): { ok: true; spec: WorkloadSpec } | { ok: false; field: string; message: string } {
  const r = v.safeParse(WorkloadSpec, input);
  if (r.success) {
    const spec = r.output;
    if (
      spec.nodes &&
      spec.nodes.length > 0 &&
      spec.replicas !== spec.nodes.length &&
      input &&
      typeof input === "object" &&
      "replicas" in input
    ) {
      return {
        ok: false,
        field: "replicas",
        message: `is ${spec.replicas} but ${spec.nodes.length} nodes are pinned`,
      };
    }
    if (spec.nodes && spec.nodes.length > 0) spec.replicas = spec.nodes.length;
    if (spec.backoff.initial_ms > spec.backoff.max_ms) {
      return { ok: false, field: "backoff.initial_ms", message: "must not exceed backoff.max_ms" };
    }
    return { ok: true, spec };
  }
  const issue = r.issues[0];
  const field = issue.path?.map((p) => String(p.key)).join(".") ?? "";
  return { ok: false, field: field || "body", message: issue.message };
}
