// place(): one request against the fleet, filter then score, with its replicas and the full explanation.
import { type Compiled, compileRequest } from "./compile.ts";
import { summarize } from "./explain.ts";
import { type Filtered, filterFleet, filterPinned } from "./filters.ts";
import { asIndex, type FleetIndex } from "./fleet-index.ts";
import { sortAll, topK } from "./rank.ts";
import { candidate, round, type ScoreContext, scoreAll, scoreContext, scoreNode } from "./score.ts";
import { countPerDomain, domainOf, nodeCap, spreadCap } from "./spread.ts";
import type { FleetState, Placement, PlacementRequest, PlaceOptions, Plan } from "./types.ts";

export const DEFAULT_CANDIDATES = 10;
export const DEFAULT_EXAMPLES = 3;

/** Filter and score results for one request: what every later step reads. */
export interface Evaluation extends Filtered {
  ctx: ScoreContext;
  /** Score of feasible[k] at position k. */
  scores: Float64Array;
}

/** Runs the filters and scores the nodes that pass, against the `used` column given. */
export function evaluate(fleet: FleetIndex, c: Compiled, used: Float64Array, examples: number): Evaluation {
  const filtered = c.pinned ? filterPinned(fleet, c, used, examples) : filterFleet(fleet, c, used, examples);
  const ctx = scoreContext(fleet, c, filtered.feasible, filtered.count);
  const scores = scoreAll(fleet, c, ctx, used, filtered.feasible, filtered.count);
  return { ...filtered, ctx, scores };
}

/** Places `request` on the fleet: pure, deterministic, no I/O. Scores are against the state given. */
export function place(
  state: FleetState | FleetIndex,
  request: PlacementRequest,
  options: PlaceOptions = {},
): Plan {
  const fleet = asIndex(state);
  const c = compileRequest(fleet, request);
  const ev = evaluate(fleet, c, fleet.used, options.examples ?? DEFAULT_EXAMPLES);
  const limit = options.candidates ?? DEFAULT_CANDIDATES;
  const order = topK(ev.feasible, ev.scores, ev.count, fleet.rank, Math.max(limit, 4 * c.replicas + 16));
  let chosen: Chosen;
  if (c.pinned) {
    const extra = new Extra();
    chosen = pinReplicas(
      fleet,
      c,
      ev,
      (i) => extra.fits(fleet, c, i),
      (i) => extra.add(i),
    );
  } else chosen = chooseReplicas(fleet, c, ev, order);
  const top = Array.from(order.subarray(0, limit), (p) => ev.feasible[p]!);
  return explainPlan(fleet, c, ev, top, chosen, limit);
}

export interface Chosen {
  nodes: number[];
  /** Why the replicas after the last placed one could not be placed. */
  why?: string;
}

/** Extra use per node from the replicas this plan already placed. */
class Extra {
  readonly #map = new Map<number, number>();
  add(i: number): void {
    this.#map.set(i, (this.#map.get(i) ?? 0) + 1);
  }
  /** Whether one more replica fits on node i. */
  fits(fleet: FleetIndex, c: Compiled, i: number): boolean {
    const times = (this.#map.get(i) ?? 0) + 1;
    const b = 3 * i;
    for (let k = 0; k < 3; k++) {
      if (fleet.used[b + k]! + times * c.need[k]! > fleet.cap[b + k]!) return false;
    }
    return true;
  }
}

/**
 * Each replica takes the best node whose domain is under the spread cap, that does not hold more of
 * its replicas than it must (the node cap), and that still has room. Soft caps give way in turn.
 */
function chooseReplicas(fleet: FleetIndex, c: Compiled, ev: Evaluation, top: Int32Array): Chosen {
  const d = c.spread.domains;
  const existing = c.name === undefined ? [] : (fleet.allocations.get(c.name) ?? []);
  const perDomain = countPerDomain(d, existing);
  const perNode = new Map<number, number>();
  for (const i of existing) perNode.set(i, (perNode.get(i) ?? 0) + 1);
  const { cap, hard } = spreadCap(d, c.spread.maxPer, ev.feasible, ev.count, perDomain, c.replicas);
  const byNode = nodeCap(d, ev.count, existing, c.replicas);
  const extra = new Extra();
  const nodes: number[] = [];
  let order = top;
  let spreadBlocked = 0;
  let roomBlocked = 0;
  const pick = (limit: number, nodeLimit: number): number => {
    spreadBlocked = 0;
    roomBlocked = 0;
    for (let p = 0; p < order.length; p++) {
      const i = ev.feasible[order[p]!]!;
      if ((perDomain.get(domainOf(d, i)) ?? 0) >= limit || (perNode.get(i) ?? 0) >= nodeLimit)
        spreadBlocked++;
      else if (!extra.fits(fleet, c, i)) roomBlocked++;
      else return i;
    }
    return -1;
  };
  const soft = hard ? cap : Number.POSITIVE_INFINITY;
  const stages: [number, number][] = [
    [cap, byNode],
    [cap, Number.POSITIVE_INFINITY],
    [soft, Number.POSITIVE_INFINITY],
  ];
  for (let r = 0; r < c.replicas; r++) {
    let i = -1;
    for (const [limit, nodeLimit] of stages) {
      i = pick(limit, nodeLimit);
      if (i < 0 && order.length < ev.count) {
        order = sortAll(ev.feasible, ev.scores, ev.count, fleet.rank);
        i = pick(limit, nodeLimit);
      }
      if (i >= 0) break;
    }
    if (i < 0) {
      if (ev.count === 0) return { nodes, why: noneFeasible(fleet, ev) };
      const parts = [`${ev.count} feasible ${ev.count === 1 ? "node" : "nodes"}`];
      if (spreadBlocked > 0) parts.push(`${spreadBlocked} at the spread limit of ${cap} per ${d.by}`);
      if (roomBlocked > 0) parts.push(`${roomBlocked} without room for another replica`);
      return { nodes, why: `placed ${r} of ${c.replicas} replicas: ${parts.join(", ")}` };
    }
    nodes.push(i);
    extra.add(i);
    perNode.set(i, (perNode.get(i) ?? 0) + 1);
    const k = domainOf(d, i);
    perDomain.set(k, (perDomain.get(k) ?? 0) + 1);
  }
  return { nodes };
}

/**
 * Pinned replicas: round-robin over the pinned nodes that passed, in the order given, each taking at
 * most ceil(replicas / pinned nodes) (so one each when they match, as the workload spec pins them),
 * while they fit. `fits` and `take` see and update the caller's view of free resources.
 */
export function pinReplicas(
  fleet: FleetIndex,
  c: Compiled,
  ev: Evaluation,
  fits: (i: number) => boolean,
  take: (i: number) => void,
): Chosen {
  const each = Math.ceil(c.replicas / Math.max(1, c.pinned?.length ?? 1));
  const count = new Map<number, number>();
  const nodes: number[] = [];
  for (let r = 0; r < c.replicas; r++) {
    let best = -1;
    for (let p = 0; p < ev.count; p++) {
      const i = ev.feasible[p]!;
      const n = count.get(i) ?? 0;
      if (n >= each || !fits(i)) continue;
      if (best < 0 || n < (count.get(best) ?? 0)) best = i;
    }
    if (best < 0) {
      const summary = summarize(ev.tally.report(fleet.ids));
      if (ev.count === 0) return { nodes, why: `no pinned node can take it: ${summary}` };
      const why = summary === "" ? `the pinned nodes have no room for more` : summary;
      return { nodes, why: `placed ${r} of ${c.replicas} replicas on pinned nodes: ${why}` };
    }
    nodes.push(best);
    count.set(best, (count.get(best) ?? 0) + 1);
    take(best);
  }
  return { nodes };
}

export function noneFeasible(fleet: FleetIndex, ev: Evaluation): string {
  if (fleet.size === 0) return "the fleet has no nodes";
  return `no node passes the filters: ${summarize(ev.tally.report(fleet.ids))}`;
}

/** Builds the plan: placements, the ranked candidates (`top`: node indices, best first) and the filter counts. */
export function explainPlan(
  fleet: FleetIndex,
  c: Compiled,
  ev: Evaluation,
  top: ArrayLike<number>,
  chosen: Chosen,
  limit: number,
): Plan {
  const placements: Placement[] = chosen.nodes.map((i, replica) => ({
    node: fleet.ids[i]!,
    replica,
    score: round(scoreNode(fleet, c, ev.ctx, fleet.used, i)),
    pinned: c.pinned !== undefined,
  }));
  const candidates = [];
  for (let p = 0; p < Math.min(limit, top.length); p++)
    candidates.push(candidate(fleet, c, ev.ctx, fleet.used, top[p]!));
  const filtered = ev.tally.report(fleet.ids);
  const complete = placements.length === c.replicas;
  return {
    workload: c.name,
    requested: c.replicas,
    placements,
    complete,
    ...(complete ? {} : { reason: chosen.why ?? noneFeasible(fleet, ev) }),
    candidates,
    considered: c.pinned ? c.pinned.length : fleet.size,
    feasible: ev.count,
    filtered,
    summary: summarize(filtered),
    weights: { ...c.weights },
    strategy: c.strategy,
  };
}
