// Exact batch optimum by branch and bound, for instances small enough to enumerate (the quality yardstick).
import { type FleetState, type PlacementRequest, place } from "../hub/placement/index.ts";

export interface Optimum {
  /** Replicas placed by the optimum (the first objective). */
  placed: number;
  /** Sum of their scores (the second objective). */
  total: number;
  /** Leaves and nodes visited, to show the search was exhaustive. */
  visited: number;
}

interface Slot {
  w: number;
  /** Candidate node positions and static scores, best first. */
  nodes: number[];
  scores: number[];
}

/**
 * Maximises (replicas placed, total score) over every assignment of replicas to feasible nodes, with
 * the same model as placeBatch: scores from `place` against the fleet before the batch, capacity in
 * three dimensions, and each request's hard spread cap (`max_per` per domain). Requests must not be
 * pinned, nor follow another request of the batch.
 */
export function solveExact(state: FleetState, requests: readonly PlacementRequest[]): Optimum {
  const index = new Map(state.nodes.map((n, i) => [n.id, i]));
  const free = state.nodes.map((n) => [
    n.capacity.cpu_millis - Math.max(n.allocated.cpu_millis, n.usage?.cpu_millis ?? 0),
    n.capacity.mem_mb - Math.max(n.allocated.mem_mb, n.usage?.mem_mb ?? 0),
    n.capacity.disk_mb - Math.max(n.allocated.disk_mb, n.usage?.disk_mb ?? 0),
  ]);
  const slots: Slot[] = [];
  const caps: number[] = [];
  const domain: ((i: number) => string)[] = [];
  const need: number[][] = [];
  const used: Map<string, number>[] = [];
  requests.forEach((req, w) => {
    if (req.nodes?.length) throw new Error("solveExact: pinned requests are not supported");
    const plan = place(state, { ...req, replicas: 1 }, { candidates: state.nodes.length });
    const nodes = plan.candidates.map((c) => index.get(c.node)!);
    const scores = plan.candidates.map((c) => c.score);
    const replicas = req.replicas ?? 1;
    for (let r = 0; r < replicas; r++) slots.push({ w, nodes, scores });
    const spread = req.placement?.spread;
    if (replicas > 1 && spread?.max_per === undefined)
      throw new Error("solveExact: needs max_per for replicas");
    caps.push(spread?.max_per ?? Number.POSITIVE_INFINITY);
    const by = spread?.by ?? "node";
    domain.push((i) => (by === "node" ? state.nodes[i]!.id : (state.nodes[i]!.labels[by] ?? "")));
    need.push([req.resources?.cpu_millis ?? 0, req.resources?.mem_mb ?? 0, req.resources?.disk_mb ?? 0]);
    used.push(new Map());
  });
  // Lexicographic objective as one number: a placement is worth more than any score total.
  const BIG = 100 * (slots.length + 1);
  const maxRest: number[] = new Array(slots.length + 1).fill(0);
  for (let s = slots.length - 1; s >= 0; s--) {
    const first = slots[s]!.scores[0];
    maxRest[s] = maxRest[s + 1]! + (first === undefined ? 0 : BIG + first);
  }
  let best = -1;
  let bestPlaced = 0;
  let bestTotal = 0;
  let visited = 0;
  const go = (s: number, value: number, placed: number, total: number, from: number) => {
    visited++;
    if (value + maxRest[s]! <= best) return;
    if (s === slots.length) {
      best = value;
      bestPlaced = placed;
      bestTotal = total;
      return;
    }
    const slot = slots[s]!;
    const next = slots[s + 1];
    const d = need[slot.w]!;
    // Replicas of one request are interchangeable: they take candidate positions in order.
    for (let k = from; k < slot.nodes.length; k++) {
      const i = slot.nodes[k]!;
      const f = free[i]!;
      if (f[0]! < d[0]! || f[1]! < d[1]! || f[2]! < d[2]!) continue;
      const dom = domain[slot.w]!(i);
      const count = used[slot.w]!.get(dom) ?? 0;
      if (count >= caps[slot.w]!) continue;
      for (let c = 0; c < 3; c++) f[c]! -= d[c]!;
      used[slot.w]!.set(dom, count + 1);
      const score = slot.scores[k]!;
      go(s + 1, value + BIG + score, placed + 1, total + score, next?.w === slot.w ? k : 0);
      used[slot.w]!.set(dom, count);
      for (let c = 0; c < 3; c++) f[c]! += d[c]!;
    }
    go(s + 1, value, placed, total, next?.w === slot.w ? slot.nodes.length : 0);
  };
  go(0, 0, 0, 0, 0);
  return { placed: bestPlaced, total: bestTotal, visited };
}
