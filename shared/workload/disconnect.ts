// A workload's disconnect policy: how long a silent node's copy is trusted, whether it is replaced, which copy survives.
import * as v from "valibot";
import { parseDuration } from "../config/parsers.ts";

/** Which copy survives when a node that lost contact returns and both copies run. */
export const RECONCILE_CHOICES = [
  "keep_original",
  "keep_replacement",
  "best_score",
  "longest_running",
] as const;
export type ReconcileChoice = (typeof RECONCILE_CHOICES)[number];

const MAX_MS = 7 * 86_400_000;

// A duration as a number of ms or a string ("30s", "2m", "1m30s"); stored as given, read as ms.
const duration = (min: number) =>
  v.pipe(
    v.union([v.number(), v.string()], 'must be a number of ms or a duration such as "30s"'),
    v.check((x) => {
      const ms = typeof x === "number" ? x : parseDuration(x);
      return ms !== undefined && Number.isInteger(ms) && ms >= min && ms <= MAX_MS;
    }, `must be a duration from ${min} ms to 7 days, such as "30s" or 30000`),
  );

/** The `disconnect` block of a workload spec; every field is optional (defaults by level and kind). */
export const DisconnectPolicySpec = v.object({
  /** How long a copy on a node out of contact is still trusted before it counts as lost. */
  lost_after: v.optional(duration(0)),
  /** Start a replacement elsewhere once the copy is lost. */
  replace: v.optional(v.boolean()),
  /** Which copy survives when the node returns. */
  reconcile: v.optional(v.picklist(RECONCILE_CHOICES, `must be one of ${RECONCILE_CHOICES.join(", ")}`)),
  /** The agent stops its own copy after this long without its hub (edge-side fencing); absent: never. */
  stop_on_agent_after: v.optional(duration(1000)),
});
export type DisconnectPolicySpec = v.InferOutput<typeof DisconnectPolicySpec>;

/** A disconnect policy with every default filled in, durations in ms. */
export interface DisconnectPolicy {
  lost_after_ms: number;
  replace: boolean;
  reconcile: ReconcileChoice;
  /** undefined: the agent never stops its copy on its own. */
  stop_on_agent_after_ms: number | undefined;
  /** Where the defaults came from, for explanations ("level 2 service"). */
  basis: string;
  /**
   * Whether the workload itself said `replace: true`. A node behind a partition of its whole site is
   * frozen (its copies are not moved up a tier in a stampede) unless the workload asked for that.
   */
  replace_on_partition: boolean;
}

/** A duration field of the block, in ms (undefined when absent or invalid). */
export function durationMs(x: number | string | undefined): number | undefined {
  if (x === undefined) return undefined;
  return typeof x === "number" ? x : parseDuration(x);
}

/** What `resolveDisconnect` needs to know about a workload. */
export interface DisconnectSubject {
  driver: "exec" | "job";
  nodes?: readonly string[] | undefined;
  placement?: Record<string, unknown> | undefined;
  disconnect?: DisconnectPolicySpec | Record<string, unknown> | undefined;
}

// A placement that selects one site (a label selector naming `site`) keeps the workload there.
function pinnedToSite(placement: Record<string, unknown> | undefined): boolean {
  const labels = placement?.labels;
  if (typeof labels === "string") return /(^|[\s,!])site\s*(=|==|in\b)/.test(labels);
  return !!labels && typeof labels === "object" && "site" in labels;
}

/**
 * The policy in force for a copy of `w` on a node of `level`. Defaults (DESIGN section 6):
 * - a service (exec) on levels 1-3: trusted 5 s, then replaced; on return the better placement score wins;
 * - a service on level 4: trusted 30 s, then replaced; on return the original is kept;
 * - level 5, or a workload pinned to nodes or to its site: never moved (trusted 5 min, then marked lost);
 * - a job: trusted 30 s, then run again elsewhere; on return the original is kept.
 * No default stops a copy on the agent: a short hub outage must not stop the fleet (nomad#17974).
 */
export function resolveDisconnect(w: DisconnectSubject, level: number): DisconnectPolicy {
  const pinned = (w.nodes ?? []).length > 0 || pinnedToSite(w.placement);
  let d: Omit<DisconnectPolicy, "stop_on_agent_after_ms" | "replace_on_partition">;
  if (pinned) d = { lost_after_ms: 300_000, replace: false, reconcile: "keep_original", basis: "pinned" };
  else if (w.driver === "job")
    d = { lost_after_ms: 30_000, replace: true, reconcile: "keep_original", basis: "job" };
  else if (level >= 5)
    d = { lost_after_ms: 300_000, replace: false, reconcile: "keep_original", basis: "level 5 service" };
  else if (level === 4)
    d = { lost_after_ms: 30_000, replace: true, reconcile: "keep_original", basis: "level 4 service" };
  else d = { lost_after_ms: 5_000, replace: true, reconcile: "best_score", basis: `level ${level} service` };
  const given = (w.disconnect ?? {}) as DisconnectPolicySpec;
  return {
    lost_after_ms: durationMs(given.lost_after) ?? d.lost_after_ms,
    // A pinned workload has nowhere else to go, whatever the block says.
    replace: (w.nodes ?? []).length > 0 ? false : (given.replace ?? d.replace),
    reconcile: given.reconcile ?? d.reconcile,
    stop_on_agent_after_ms: durationMs(given.stop_on_agent_after),
    basis: Object.keys(given).length > 0 ? `${d.basis}, with the workload's disconnect block` : d.basis,
    replace_on_partition: (w.nodes ?? []).length === 0 && given.replace === true,
  };
}
