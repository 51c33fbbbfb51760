// placeBatch(): many requests at once (a deployment, a failover), better than one-by-one greedy when tight.

import type { Budget } from "./batch-lns.ts";
import { improve } from "./batch-moves.ts";
import { buildProblem, type Problem } from "./batch-problem.ts";
import { Search } from "./batch-search.ts";
import { asIndex, type FleetIndex } from "./fleet-index.ts";
import {
  type Chosen,
  DEFAULT_CANDIDATES,
  DEFAULT_EXAMPLES,
  explainPlan,
  noneFeasible,
  pinReplicas,
} from "./place.ts";
import type { BatchPlan, FleetState, PlacementRequest, PlaceOptions } from "./types.ts";

export interface BatchOptions extends PlaceOptions {
  /** Local-search rounds per starting order (default 20). */
  rounds?: number;
  /**
   * Work budget of the large-neighbourhood moves: node sets re-optimised, over all starts
   * (default 5,000; 0 turns them off). A count, not a time, so the plan is the same on any machine.
   */
  effort?: number;
  /** Candidates each request keeps before it needs its full list, plus 4 per replica (default 48). */
  keep?: number;
}

/**
 * The batch objective: place as many replicas as possible, then maximise the sum of their scores,
 * every score taken against the fleet as it was before the batch (so one request's replicas do not
 * change another's score). Hard filters, spread caps, affinity and capacity always hold.
 *
 * Method: greedy construction from a few orders (as given, biggest demand first, fewest candidates
 * first, largest regret first), each followed by local search (insert, eject one or two replicas to
 * make room, relocate, swap); the best of these then gets large-neighbourhood moves (one to three
 * nodes emptied and re-filled exactly, see batch-lns.ts). Pinned requests are placed first and
 * never move. Deterministic: no randomness, no time limits, only fixed work limits.
 */
export function placeBatch(
  state: FleetState | FleetIndex,
  requests: readonly PlacementRequest[],
  options: BatchOptions = {},
): BatchPlan {
  const fleet = asIndex(state);
  const problem = buildProblem(fleet, requests, options.examples ?? DEFAULT_EXAMPLES, options.keep ?? 48);
  const free = freeColumns(fleet);
  const starts: Start[] = [];
  const seen = new Set<string>();
  const none: Budget = { left: 0 };
  for (const order of startOrders(problem)) {
    const key = order.join(",");
    if (seen.has(key)) continue;
    seen.add(key);
    const start = begin(problem, free);
    start.x.construct(order, false);
    improve(start.x, options.rounds ?? 20, none);
    starts.push(start);
  }
  // Re-optimising node sets is the expensive move: the best starts get it first, while the budget lasts.
  starts.sort((a, b) => (a.x.betterThan(b.x) ? -1 : b.x.betterThan(a.x) ? 1 : 0));
  const budget: Budget = { left: options.effort ?? 5_000 };
  let chosen = starts[0] ?? begin(problem, free);
  for (const start of starts) {
    if (budget.left <= 0) break;
    improve(start.x, options.rounds ?? 20, budget);
    if (start.x.betterThan(chosen.x)) chosen = start;
  }
  chosen.x.relaxSoftCaps();
  return result(problem, chosen, options);
}

/** The baseline: each request in the order given takes the best nodes left, as one-by-one `place` would. */
export function placeGreedy(
  state: FleetState | FleetIndex,
  requests: readonly PlacementRequest[],
  options: PlaceOptions = {},
): BatchPlan {
  const fleet = asIndex(state);
  const problem = buildProblem(fleet, requests, options.examples ?? DEFAULT_EXAMPLES, 48);
  const start = begin(problem, freeColumns(fleet));
  start.x.construct(
    requests.map((_, w) => w),
    true,
  );
  return result(problem, start, options);
}

function freeColumns(fleet: FleetIndex): Float64Array {
  const free = new Float64Array(fleet.cap.length);
  for (let k = 0; k < free.length; k++) free[k] = fleet.cap[k]! - fleet.used[k]!;
  return free;
}

interface Start {
  x: Search;
  /** Each pinned request's replicas, and why some are missing. */
  pinned: Map<number, Chosen>;
}

/** A fresh search with the pinned requests placed (see `pinReplicas`). */
function begin(problem: Problem, free: Float64Array): Start {
  const x = new Search(problem, free);
  const pinned = new Map<number, Chosen>();
  problem.jobs.forEach((job, w) => {
    if (!job.c.pinned) return;
    const chosen = pinReplicas(
      problem.fleet,
      job.c,
      job.ev,
      (i) => x.room(w, i),
      (i) => x.take(w, i),
    );
    pinned.set(w, chosen);
  });
  return { x, pinned };
}

/** Orders to construct from; requests that others follow (affinity) always come before their followers. */
function startOrders(problem: Problem): number[][] {
  const { jobs, fleet } = problem;
  const mean = [0, 1, 2].map((k) => {
    let sum = 0;
    for (let i = 0; i < fleet.size; i++) sum += fleet.cap[3 * i + k]!;
    return sum / Math.max(1, fleet.size) || 1;
  });
  const size = jobs.map(
    (j) => j.c.replicas * (j.c.need[0]! / mean[0]! + j.c.need[1]! / mean[1]! + j.c.need[2]! / mean[2]!),
  );
  const regret = jobs.map((j) => {
    const k = Math.min(j.cand.length - 1, j.c.replicas);
    return k > 0 ? j.candScore[0]! - j.candScore[k]! : Number.POSITIVE_INFINITY;
  });
  const ids = jobs.map((_, w) => w);
  const by = (key: (a: number, b: number) => number) =>
    [...ids].sort((a, b) => jobs[a]!.depth - jobs[b]!.depth || key(a, b) || a - b);
  return [
    by(() => 0),
    by((a, b) => size[b]! - size[a]!),
    by((a, b) => jobs[a]!.ev.count - jobs[b]!.ev.count || size[b]! - size[a]!),
    by((a, b) => (regret[b]! > regret[a]! ? 1 : regret[b]! < regret[a]! ? -1 : 0)),
  ];
}

/** Why request w has unplaced replicas: what blocks each of its candidates now. */
function shortfall(problem: Problem, x: Search, w: number, placed: number): string {
  const job = problem.jobs[w]!;
  if (job.ev.count === 0) return noneFeasible(problem.fleet, job.ev);
  let spread = 0;
  let affinity = 0;
  let room = 0;
  for (let k = 0; k < job.cand.length; k++) {
    const i = job.cand[k]!;
    if (!x.affinityOk(w, i)) affinity++;
    else if (!x.capOk(w, i)) spread++;
    else if (!x.room(w, i)) room++;
  }
  const parts = [`${job.ev.count} feasible before the batch`];
  if (room > 0) parts.push(`${room} of the best ${job.cand.length} full after the batch's other placements`);
  if (spread > 0) parts.push(`${spread} at the spread limit of ${job.cap} per ${job.spread.by}`);
  if (affinity > 0) parts.push(`${affinity} where ${job.c.affinity?.workload} was not placed`);
  // Only one-by-one placement gets here: the room or the anchor came after this request's turn.
  if (parts.length === 1) parts.push("none free when its turn came");
  return `placed ${placed} of ${job.c.replicas} replicas: ${parts.join(", ")}`;
}

function result(problem: Problem, start: Start, options: PlaceOptions): BatchPlan {
  const { fleet, jobs } = problem;
  const limit = options.candidates ?? DEFAULT_CANDIDATES;
  const { x } = start;
  const plans = jobs.map((job, w) => {
    let chosen: Chosen;
    if (job.c.pinned) chosen = start.pinned.get(w) ?? { nodes: [] };
    else {
      const nodes = job.slots.map((s) => x.assign[s]!).filter((i) => i >= 0);
      chosen = { nodes };
      if (nodes.length < job.c.replicas) chosen.why = shortfall(problem, x, w, nodes.length);
    }
    return explainPlan(fleet, job.c, job.ev, job.cand, chosen, limit);
  });
  let placed = 0;
  let requested = 0;
  let total = 0;
  for (const plan of plans) {
    placed += plan.placements.length;
    requested += plan.requested;
    for (const p of plan.placements) total += p.score;
  }
  return {
    plans,
    requested,
    placed,
    total_score: Math.round(total * 10_000) / 10_000,
    complete: placed === requested,
  };
}
