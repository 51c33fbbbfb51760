// Local-search moves over a batch assignment; each one places more replicas or raises the total score.
import { type Budget, pairMoves } from "./batch-lns.ts";
import { EPS, SCAN, type Search } from "./batch-search.ts";

/**
 * Where slot t could go instead of node `from` (its best such node among the first SCAN), or -1.
 * Memoised per slot while nothing changes: failed repairs ask the same question many times.
 */
function destination(x: Search, t: number, from: number): number {
  const cached = from === x.assign[t] && x.memoVersion[t] === x.version;
  if (cached) return x.memo[t]!;
  const wt = x.p.slotJob[t]!;
  const cand = x.p.jobs[wt]!.cand;
  let found = -1;
  for (let k = 0; k < Math.min(SCAN, cand.length); k++) {
    const n2 = cand[k]!;
    if (n2 !== from && x.room(wt, n2) && x.capOk(wt, n2, from) && x.affinityOk(wt, n2)) {
      found = n2;
      break;
    }
  }
  if (from === x.assign[t]) {
    x.memoVersion[t] = x.version;
    x.memo[t] = found;
  }
  return found;
}

/** Whether slot s fits on node n once the slots in `out` have left it. */
function fitsAfter(x: Search, s: number, n: number, out: readonly number[]): boolean {
  const need = x.p.jobs[x.p.slotJob[s]!]!.c.need;
  for (let k = 0; k < 3; k++) {
    let free = x.free[3 * n + k]!;
    for (const t of out) free += x.p.jobs[x.p.slotJob[t]!]!.c.need[k]!;
    if (free + EPS < need[k]!) return false;
  }
  return true;
}

/**
 * Places unplaced slot s: on its best node with room; else on a node made free by moving one of its
 * replicas elsewhere (ejection); else by moving two. Picks the move with the best total score.
 */
export function repair(x: Search, s: number): boolean {
  const w = x.p.slotJob[s]!;
  const direct = x.bestInsert(w, 0);
  if (direct >= 0) {
    x.add(s, direct);
    return true;
  }
  type Move = { n: number; moves: [number, number][]; gain: number };
  let best: Move | null = null;
  const job = x.p.jobs[w]!;
  for (let k = 0; k < Math.min(SCAN, job.cand.length); k++) {
    const n = job.cand[k]!;
    if (!x.capOk(w, n) || !x.affinityOk(w, n)) continue;
    const on = x.slotsOn(n).filter((t) => x.movable(t) && x.p.slotJob[t] !== w);
    let single = false;
    for (const t of on) {
      if (!fitsAfter(x, s, n, [t])) continue;
      const n2 = destination(x, t, n);
      if (n2 < 0) continue;
      single = true;
      const gain = job.candScore[k]! + x.scoreOf(x.p.slotJob[t]!, n2) - x.slotScore[t]!;
      if (best === null || gain > best.gain + EPS) best = { n, moves: [[t, n2]], gain };
    }
    if (single) continue;
    for (let a = 0; a < on.length; a++) {
      for (let b = a + 1; b < on.length; b++) {
        if (!fitsAfter(x, s, n, [on[a]!, on[b]!])) continue;
        const pair = tryPair(x, on[a]!, on[b]!, n);
        if (pair === null) continue;
        const gain = job.candScore[k]! + pair.gain;
        if (best === null || gain > best.gain + EPS) best = { n, moves: pair.moves, gain };
      }
    }
  }
  if (best === null) return false;
  for (const [t] of best.moves) x.remove(t);
  for (const [t, n2] of best.moves) x.add(t, n2);
  x.add(s, best.n);
  return true;
}

/** Moves t1 then t2 off node n (tentatively, then back), returning their destinations and the score change. */
function tryPair(x: Search, t1: number, t2: number, n: number) {
  const n1 = destination(x, t1, n);
  if (n1 < 0) return null;
  const version = x.version;
  const before = x.slotScore[t1]!;
  x.remove(t1);
  x.add(t1, n1);
  const after = x.slotScore[t1]!;
  const n2 = destination(x, t2, n);
  const gain2 = n2 < 0 ? 0 : x.scoreOf(x.p.slotJob[t2]!, n2) - x.slotScore[t2]!;
  x.remove(t1);
  x.add(t1, n);
  x.version = version;
  if (n2 < 0) return null;
  const moves: [number, number][] = [
    [t1, n1],
    [t2, n2],
  ];
  return { moves, gain: after - before + gain2 };
}

/** Moves placed slot s to a better-scoring node with room, if there is one. */
export function relocate(x: Search, s: number): boolean {
  const a = x.assign[s]!;
  if (a < 0 || !x.movable(s)) return false;
  const w = x.p.slotJob[s]!;
  const job = x.p.jobs[w]!;
  const current = x.slotScore[s]!;
  for (let k = 0; k < job.cand.length; k++) {
    if (job.candScore[k]! <= current + EPS) break;
    const b = job.cand[k]!;
    if (b !== a && x.room(w, b) && x.capOk(w, b, a) && x.affinityOk(w, b)) {
      x.remove(s);
      x.add(s, b);
      return true;
    }
  }
  return false;
}

/** Swaps placed slot s with a slot of another request on a node s prefers, when the pair gains. */
export function swap(x: Search, s: number): boolean {
  const a = x.assign[s]!;
  if (a < 0 || !x.movable(s)) return false;
  const w = x.p.slotJob[s]!;
  const job = x.p.jobs[w]!;
  const current = x.slotScore[s]!;
  for (let k = 0; k < job.cand.length; k++) {
    const sb = job.candScore[k]!;
    if (sb <= current + EPS) break;
    const b = job.cand[k]!;
    if (b === a || !x.capOk(w, b, a) || !x.affinityOk(w, b)) continue;
    for (const t of x.slotsOn(b)) {
      const wt = x.p.slotJob[t]!;
      if (wt === w || !x.movable(t)) continue;
      const ta = x.scoreOf(wt, a);
      if (Number.isNaN(ta) || sb - current + ta - x.slotScore[t]! <= EPS) continue;
      if (!x.room(w, b, t) || !x.room(wt, a, s) || !x.capOk(wt, a, b) || !x.affinityOk(wt, a)) continue;
      x.remove(s);
      x.remove(t);
      x.add(s, b);
      x.add(t, a);
      return true;
    }
  }
  return false;
}

/**
 * Rounds of repair, relocate and swap; when none of those helps, node-set re-optimisation while the
 * budget lasts. Stops when nothing improves or after `rounds` rounds.
 */
export function improve(x: Search, rounds: number, budget: Budget): void {
  const slots = x.assign.length;
  for (let r = 0; r < rounds; r++) {
    let changed = false;
    for (let s = 0; s < slots; s++) if (x.assign[s]! < 0 && repair(x, s)) changed = true;
    for (let s = 0; s < slots; s++) if (relocate(x, s)) changed = true;
    for (let s = 0; s < slots; s++) if (swap(x, s)) changed = true;
    if (!changed && budget.left > 0) changed = pairMoves(x, budget);
    if (!changed) return;
  }
}
