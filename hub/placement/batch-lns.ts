// Large-neighbourhood move: empty one to three nodes and re-fill them, plus waiting replicas, exactly.
import { EPS, type Search } from "./batch-search.ts";

/** Most replicas one re-placement may juggle, by number of nodes (the search is exponential in it). */
const MAX_SLOTS = [0, 12, 10, 8];
/** Most unplaced replicas offered to one node set. */
const MAX_WAITING = 4;
/** How many of a replica's best candidates its neighbourhoods reach. */
const REACH = 5;
/** How far down a replica's candidates the exact search looks for a node outside the set. */
const OUT_SCAN = 64;
/** How many of those the search keeps to choose from. */
const OUT_KEEP = 4;

/**
 * Node sets worth re-optimising. For each unplaced replica: its best candidates c (alone and in
 * pairs), and each c with the candidates d of the replicas now on c (room on c may need them on d);
 * with `deep`, also c, d and the candidates e of the replicas on d (a chain of two moves), and c
 * with two such d (two replicas leave c for different nodes). For each
 * placed replica: every better-scoring candidate b, with its own node and with the candidates of
 * the replicas on b.
 */
function neighbourhoods(x: Search, limit: number, deep: boolean): number[][] {
  const out: number[][] = [];
  const seen = new Set<string>();
  const push = (...set: number[]) => {
    if (out.length >= limit) return;
    const nodes = [...new Set(set)].sort((a, b) => a - b);
    const key = nodes.join(",");
    if (seen.has(key)) return;
    seen.add(key);
    out.push(nodes);
  };
  /** Calls f with each best candidate of each movable replica on node c. */
  const next = (c: number, f: (d: number) => void) => {
    for (const t of x.slotsOn(c)) {
      if (!x.movable(t)) continue;
      const other = x.p.jobs[x.p.slotJob[t]!]!.cand;
      for (let k = 0; k < Math.min(REACH, other.length); k++) if (other[k] !== c) f(other[k]!);
    }
  };
  for (let s = 0; s < x.assign.length && out.length < limit; s++) {
    const job = x.p.jobs[x.p.slotJob[s]!]!;
    const reach = Math.min(REACH, job.cand.length);
    const a = x.assign[s]!;
    if (a < 0) {
      for (let i = 0; i < reach; i++) for (let j = i; j < reach; j++) push(job.cand[i]!, job.cand[j]!);
      for (let i = 0; i < reach; i++) {
        const c = job.cand[i]!;
        const dests: number[] = [];
        next(c, (d) => {
          dests.push(d);
          if (deep) next(d, (e) => push(c, d, e));
          else push(c, d);
        });
        if (deep)
          for (let j = 0; j < dests.length; j++)
            for (let k = j + 1; k < dests.length; k++) push(c, dests[j]!, dests[k]!);
      }
    } else if (x.movable(s)) {
      for (let k = 0; k < reach && job.candScore[k]! > x.slotScore[s]! + EPS; k++) {
        const b = job.cand[k]!;
        push(a, b);
        next(b, (d) => {
          if (deep) push(a, b, d);
          else push(b, d);
        });
      }
    }
  }
  return out;
}

/**
 * Request w's best few candidates outside `nodes` that have room now (among its first OUT_SCAN).
 * Nothing outside the set gains room during the search, so the search only re-checks these.
 */
function outside(x: Search, w: number, nodes: readonly number[]): number[] {
  const cand = x.p.jobs[w]!.cand;
  const out: number[] = [];
  for (let k = 0; k < Math.min(OUT_SCAN, cand.length) && out.length < OUT_KEEP; k++) {
    const i = cand[k]!;
    if (!nodes.includes(i) && x.room(w, i) && x.affinityOk(w, i)) out.push(i);
  }
  return out;
}

/** The unplaced replicas that could go on `nodes` (per request, one per node at most), best score there first. */
function waitingFor(x: Search, nodes: readonly number[]): number[] {
  const found: { s: number; best: number }[] = [];
  const perJob = new Map<number, number>();
  for (let s = 0; s < x.assign.length; s++) {
    const w = x.p.slotJob[s]!;
    if (x.assign[s]! >= 0 || (perJob.get(w) ?? 0) >= nodes.length || !x.movable(s)) continue;
    let best = Number.NEGATIVE_INFINITY;
    for (const i of nodes) {
      const v = x.scoreOf(w, i);
      if (v > best && x.capOk(w, i) && x.affinityOk(w, i)) best = v;
    }
    if (best === Number.NEGATIVE_INFINITY) continue;
    perJob.set(w, (perJob.get(w) ?? 0) + 1);
    found.push({ s, best });
  }
  found.sort((a, b) => b.best - a.best || a.s - b.s);
  return found.slice(0, MAX_WAITING).map((f) => f.s);
}

/**
 * Re-places every movable replica on `nodes` and a few waiting ones: each goes to one of `nodes`, to
 * its best node elsewhere with room, or waits; the best combination (count, then score) is exact.
 */
function reoptimize(x: Search, nodes: readonly number[]): boolean {
  const moving = nodes.flatMap((i) => x.slotsOn(i).filter((s) => x.movable(s)));
  const waiting = waitingFor(x, nodes);
  const max = MAX_SLOTS[nodes.length] ?? 8;
  const slots = [...moving, ...waiting].slice(0, max);
  if (slots.length === 0 || moving.length > max) return false;
  const before = slots.map((s) => x.assign[s]!);
  const version = x.version;
  let curPlaced = 0;
  let curTotal = 0;
  for (const s of moving) {
    curPlaced++;
    curTotal += x.slotScore[s]!;
  }
  for (const s of moving) x.remove(s);
  // Scores of each slot on each node (NaN = not allowed there), and the bound on what is left.
  const score = slots.map((s) => nodes.map((i) => x.scoreOf(x.p.slotJob[s]!, i)));
  const elsewhere = slots.map((s) => outside(x, x.p.slotJob[s]!, nodes));
  const BIG = 100 * (slots.length + 1);
  const rest = new Array<number>(slots.length + 1).fill(0);
  for (let k = slots.length - 1; k >= 0; k--) {
    const job = x.p.jobs[x.p.slotJob[slots[k]!]!]!;
    const inside = score[k]!.map((v) => (Number.isNaN(v) ? Number.NEGATIVE_INFINITY : v));
    const top = Math.max(...inside, job.candScore[0] ?? Number.NEGATIVE_INFINITY);
    rest[k] = rest[k + 1]! + (top === Number.NEGATIVE_INFINITY ? 0 : BIG + top);
  }
  let best = curPlaced * BIG + curTotal + EPS;
  let bestChoice: number[] | null = null;
  const choice = new Array<number>(slots.length).fill(-1);
  const search = (k: number, value: number) => {
    if (value + rest[k]! <= best) return;
    if (k === slots.length) {
      best = value;
      bestChoice = [...choice];
      return;
    }
    const s = slots[k]!;
    const w = x.p.slotJob[s]!;
    for (let j = 0; j < nodes.length; j++) {
      const i = nodes[j]!;
      const v = score[k]![j]!;
      if (Number.isNaN(v) || !x.room(w, i) || !x.capOk(w, i) || !x.affinityOk(w, i)) continue;
      x.add(s, i);
      choice[k] = i;
      search(k + 1, value + BIG + v);
      x.remove(s);
    }
    // Or out of the set, to its best node elsewhere that still has room (an ejection).
    for (const o of elsewhere[k]!) {
      if (!x.room(w, o) || !x.capOk(w, o)) continue;
      x.add(s, o);
      choice[k] = o;
      search(k + 1, value + BIG + x.slotScore[s]!);
      x.remove(s);
      break;
    }
    choice[k] = -1;
    search(k + 1, value);
  };
  search(0, 0);
  const apply: readonly number[] = bestChoice ?? before;
  slots.forEach((s, k) => {
    if (apply[k]! >= 0) x.add(s, apply[k]!);
  });
  if (bestChoice === null) x.version = version;
  return bestChoice !== null;
}

/** A deterministic work limit: how many more node sets may be re-optimised. */
export interface Budget {
  left: number;
}

/**
 * One pass of re-optimising single nodes and pairs of nodes, then (if that changed nothing) sets of
 * three along two-move chains; true when any improved. Each set re-optimised spends one unit.
 */
export function pairMoves(x: Search, budget: Budget): boolean {
  let changed = false;
  for (const deep of [false, true]) {
    if (changed || budget.left <= 0) break;
    for (const nodes of neighbourhoods(x, budget.left, deep)) {
      budget.left--;
      if (reoptimize(x, nodes)) changed = true;
    }
  }
  return changed;
}
