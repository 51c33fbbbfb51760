// The batch as an assignment problem: replica slots, each with ranked candidate nodes and static scores.
import { type Compiled, compileRequest } from "./compile.ts";
import type { FleetIndex } from "./fleet-index.ts";
import { type Evaluation, evaluate } from "./place.ts";
import { sortAll, topK } from "./rank.ts";
import { affinityDomains, countPerDomain, type Domains, nodeCap, spreadCap } from "./spread.ts";
import type { PlacementRequest } from "./types.ts";

/** One request of the batch, resolved: its candidates (best first) and the constraints on its replicas. */
export interface Job {
  c: Compiled;
  ev: Evaluation;
  /** Candidate node indices, best first: the top few, or every feasible node once `full`. */
  cand: Int32Array;
  candScore: Float64Array;
  full: boolean;
  /** Score of each node in `cand`. */
  score: Map<number, number>;
  /** Scores (NaN: not feasible) of nodes outside `cand` that were asked about, computed once. */
  outside: Map<number, number>;
  slots: number[];
  spread: Domains;
  cap: number;
  hardCap: boolean;
  /** Soft cap of replicas per node when the spread is over a wider domain (see spread.ts nodeCap). */
  nodeCap: number;
  existing: Map<number, number>;
  /** Nodes of the workload's existing replicas. */
  existingNodes: readonly number[];
  /** Index of the batch request this one has affinity to, or -1. */
  anchor: number;
  /** Some other request of the batch has affinity to this one: its replicas never move once placed. */
  isAnchor: boolean;
  /** Domains (of `c.affinity.domains`) where the affinity target already ran before the batch. */
  affinityBase: Uint8Array | null;
  /** Affinity depth: anchors are placed before the requests that follow them. */
  depth: number;
}

export interface Problem {
  fleet: FleetIndex;
  jobs: Job[];
  /** Request index of each slot. */
  slotJob: Int32Array;
}

/** How many candidates each request keeps before it needs the full list. */
function keep(replicas: number, base: number): number {
  return base + 4 * replicas;
}

function depthOf(requests: readonly PlacementRequest[], byName: Map<string, number>): number[] {
  const depth: number[] = requests.map(() => -1);
  const visit = (w: number, seen: Set<number>): number => {
    if (depth[w]! >= 0) return depth[w]!;
    const target = requests[w]!.placement?.affinity?.workload;
    const t = target === undefined ? undefined : byName.get(target);
    seen.add(w);
    // A cycle of affinities breaks at the request that closes it: that one follows only existing allocations.
    const d = t === undefined || seen.has(t) ? 0 : visit(t, seen) + 1;
    depth[w] = d;
    return d;
  };
  requests.forEach((_, w) => {
    visit(w, new Set());
  });
  return depth;
}

/** Filters and scores every request once, against the fleet as it is before the batch. */
export function buildProblem(
  fleet: FleetIndex,
  requests: readonly PlacementRequest[],
  examples: number,
  candidates: number,
): Problem {
  const byName = new Map<string, number>();
  requests.forEach((r, w) => {
    if (r.name !== undefined && !byName.has(r.name)) byName.set(r.name, w);
  });
  const depth = depthOf(requests, byName);
  const order = requests.map((_, w) => w).sort((a, b) => depth[a]! - depth[b]! || a - b);
  const jobs: Job[] = new Array(requests.length);
  let slotCount = 0;
  for (const w of order) {
    const r = requests[w]!;
    const target = r.placement?.affinity?.workload;
    const t = target === undefined ? undefined : byName.get(target);
    const anchor = t !== undefined && t !== w && depth[w]! > depth[t]! ? t : -1;
    // A follower may go wherever its anchor can: filter with the anchor's feasible nodes as a superset.
    const extra = anchor >= 0 ? jobs[anchor]!.ev.feasible.subarray(0, jobs[anchor]!.ev.count) : undefined;
    const c = compileRequest(fleet, r, extra);
    const ev = evaluate(fleet, c, fleet.used, examples);
    const top = topK(ev.feasible, ev.scores, ev.count, fleet.rank, keep(c.replicas, candidates));
    const cand = new Int32Array(top.length);
    const candScore = new Float64Array(top.length);
    top.forEach((p, k) => {
      cand[k] = ev.feasible[p]!;
      candScore[k] = ev.scores[p]!;
    });
    const existingNodes = c.name === undefined ? [] : (fleet.allocations.get(c.name) ?? []);
    const existing = countPerDomain(c.spread.domains, existingNodes);
    const { cap, hard } = spreadCap(
      c.spread.domains,
      c.spread.maxPer,
      ev.feasible,
      ev.count,
      existing,
      c.replicas,
    );
    const affinityBase =
      anchor >= 0 && c.affinity
        ? affinityDomains(c.affinity.domains, fleet.allocations.get(target!) ?? [])
        : null;
    jobs[w] = {
      c,
      ev,
      cand,
      candScore,
      full: top.length === ev.count,
      score: new Map(),
      outside: new Map(),
      slots: [],
      spread: c.spread.domains,
      cap,
      hardCap: hard,
      nodeCap: nodeCap(c.spread.domains, ev.count, existingNodes, c.replicas),
      existing,
      existingNodes,
      anchor,
      isAnchor: false,
      affinityBase,
      depth: depth[w]!,
    };
    slotCount += c.pinned ? 0 : c.replicas;
  }
  const slotJob = new Int32Array(slotCount);
  let s = 0;
  jobs.forEach((job, w) => {
    if (job.anchor >= 0) jobs[job.anchor]!.isAnchor = true;
    job.cand.forEach((i, k) => {
      job.score.set(i, job.candScore[k]!);
    });
    if (job.c.pinned) return;
    for (let r = 0; r < job.c.replicas; r++) {
      job.slots.push(s);
      slotJob[s++] = w;
    }
  });
  // Keeping every feasible list would cost O(requests × nodes) memory; `expand` recomputes one instead.
  for (const job of jobs) if (!job.c.pinned) dropColumns(job);
  return { fleet, jobs, slotJob };
}

function dropColumns(job: Job): void {
  job.ev = { ...job.ev, feasible: job.ev.feasible.subarray(0, 0), scores: job.ev.scores.subarray(0, 0) };
}

/** Replaces a request's top candidates with every feasible node (when the top ones are all taken). */
export function expand(problem: Problem, w: number): void {
  const job = problem.jobs[w]!;
  if (job.full) return;
  const ev = evaluate(problem.fleet, job.c, problem.fleet.used, 0);
  const order = sortAll(ev.feasible, ev.scores, ev.count, problem.fleet.rank);
  job.cand = new Int32Array(order.length);
  job.candScore = new Float64Array(order.length);
  order.forEach((p, k) => {
    job.cand[k] = ev.feasible[p]!;
    job.candScore[k] = ev.scores[p]!;
    job.score.set(ev.feasible[p]!, ev.scores[p]!);
  });
  job.full = true;
}
