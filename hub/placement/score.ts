// The 0-100 score of a feasible node: six parts, each 0..1 times its normalised weight.
import type { Compiled } from "./compile.ts";
import type { FleetIndex } from "./fleet-index.ts";
import { PART_NAMES } from "./presets.ts";
import type { Candidate, PartName, PartScore } from "./types.ts";

/** Smallest RTT the latency part divides by, so a 0 ms probe does not divide by zero. */
const MIN_RTT_MS = 0.001;

/** What the relative parts compare against: the best values among the feasible nodes. */
export interface ScoreContext {
  /** Lowest RTT among feasible nodes that measured it (for the latency part without a ceiling). */
  bestRtt: number;
  minCost: number;
  maxCost: number;
  /** Normalised weights in PART_NAMES order. */
  weights: Float64Array;
}

/** Scans the feasible nodes once for the references of the relative parts. */
export function scoreContext(fleet: FleetIndex, c: Compiled, feasible: ArrayLike<number>, count: number) {
  let bestRtt = Number.POSITIVE_INFINITY;
  let minCost = Number.POSITIVE_INFINITY;
  let maxCost = Number.NEGATIVE_INFINITY;
  const rtt = c.rtt;
  for (let k = 0; k < count; k++) {
    const i = feasible[k]!;
    if (rtt !== null) {
      const ms = rtt[i]!;
      if (ms < bestRtt) bestRtt = ms;
    }
    const cost = fleet.cost[i]!;
    if (cost < minCost) minCost = cost;
    if (cost > maxCost) maxCost = cost;
  }
  const weights = new Float64Array(PART_NAMES.map((p) => c.weights[p]));
  return { bestRtt, minCost, maxCost, weights } satisfies ScoreContext;
}

/**
 * Score of node i, 0..100, against the `used` column. With `parts`, also writes each part's value
 * (0..1) in PART_NAMES order. The parts:
 *
 * - resources: u_d = (used_d + need_d) / capacity_d over the dimensions the request needs (cpu and
 *   memory when it needs none); binpack = mean(u_d), spread = 1 - mean(u_d).
 * - latency: RTT to the request's target (the hub when it names none). With a ceiling:
 *   1 - rtt / max_ms. Without: best_rtt / rtt, the best among feasible nodes scoring 1. Unmeasured: 0.
 * - capabilities: share of the preferred capabilities the node has; 1 when none are preferred.
 * - level: 1 - |level - prefer_level| / 4; 1 when no level is preferred.
 * - availability: measured share of time connected, 0..1.
 * - cost (the `cost` label): (max - cost) / (max - min) over feasible nodes, 1 when all cost the
 *   same; 0 when the node has no numeric cost label.
 */
export function scoreNode(
  fleet: FleetIndex,
  c: Compiled,
  ctx: ScoreContext,
  used: Float64Array,
  i: number,
  parts?: Float64Array,
): number {
  const w = ctx.weights;
  const b = 3 * i;
  let u = 0;
  for (const k of c.fitDims) {
    const cap = fleet.cap[b + k]!;
    u += cap > 0 ? Math.min(1, (used[b + k]! + c.need[k]!) / cap) : 1;
  }
  u /= c.fitDims.length;
  const resources = c.strategy === "binpack" ? u : 1 - u;

  let latency = 0;
  const ms = c.rtt === null ? Number.NaN : c.rtt[i]!;
  if (!Number.isNaN(ms)) {
    latency = Number.isFinite(c.maxMs)
      ? Math.max(0, 1 - ms / c.maxMs)
      : Math.max(ctx.bestRtt, MIN_RTT_MS) / Math.max(ms, MIN_RTT_MS);
  }

  let capabilities = 1;
  if (c.preferred.length > 0) {
    let have = 0;
    for (const column of c.preferred) if (column !== null && column[i] === 1) have++;
    capabilities = have / c.preferred.length;
  }

  const level = c.preferLevel === undefined ? 1 : 1 - Math.abs(fleet.level[i]! - c.preferLevel) / 4;
  const availability = fleet.availability[i]!;

  const cost = fleet.cost[i]!;
  let costPart = 0;
  if (!Number.isNaN(cost)) {
    costPart = ctx.maxCost > ctx.minCost ? (ctx.maxCost - cost) / (ctx.maxCost - ctx.minCost) : 1;
  }

  if (parts) {
    parts[0] = resources;
    parts[1] = latency;
    parts[2] = capabilities;
    parts[3] = level;
    parts[4] = availability;
    parts[5] = costPart;
  }
  return (
    w[0]! * resources +
    w[1]! * latency +
    w[2]! * capabilities +
    w[3]! * level +
    w[4]! * availability +
    w[5]! * costPart
  );
}

/** Scores of every feasible node, in feasible order. */
export function scoreAll(
  fleet: FleetIndex,
  c: Compiled,
  ctx: ScoreContext,
  used: Float64Array,
  feasible: ArrayLike<number>,
  count: number,
): Float64Array {
  const scores = new Float64Array(count);
  for (let k = 0; k < count; k++) scores[k] = scoreNode(fleet, c, ctx, used, feasible[k]!, undefined);
  return scores;
}

/** The explained form of one node's score: every part's value and points. */
export function candidate(fleet: FleetIndex, c: Compiled, ctx: ScoreContext, used: Float64Array, i: number) {
  const values = new Float64Array(PART_NAMES.length);
  const score = scoreNode(fleet, c, ctx, used, i, values);
  const parts = {} as Record<PartName, PartScore>;
  PART_NAMES.forEach((p, k) => {
    parts[p] = { value: round(values[k]!), points: round(values[k]! * ctx.weights[k]!) };
  });
  return { node: fleet.ids[i]!, score: round(score), parts } satisfies Candidate;
}

/** Rounds for display (4 decimals); ranking always uses the unrounded score. */
export function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
