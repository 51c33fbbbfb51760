// Batch search state: a greedy construction, then local search (insert, eject, relocate, swap) on it.
import { expand, type Problem } from "./batch-problem.ts";
import { check } from "./filters.ts";
import { scoreNode } from "./score.ts";
import { domainOf } from "./spread.ts";

/** Scores closer than this are equal: moves must gain more, so the search always ends. */
const EPS = 1e-9;
/**
 * How far down a candidate list a move looks: a list can hold every feasible node of a big fleet,
 * and a replica that fits nowhere among its best 4,096 is not worth an exhaustive look.
 */
export const SCAN = 4096;

/** One assignment of every slot (-1 = unplaced) with the free resources and counts it implies. */
export class Search {
  readonly p: Problem;
  readonly free: Float64Array;
  readonly assign: Int32Array;
  readonly slotScore: Float64Array;
  placed = 0;
  total = 0;
  /**
   * A fresh number after every add and remove. A move that tries something and puts everything back
   * restores it, so what was computed at that version (see `memo`) stays valid; versions are never
   * reused, so nothing computed in the tried state can be mistaken for the restored one.
   */
  version = 0;
  #versions = 0;
  /** Per slot: the version a cached answer was computed at, and the answer (see batch-moves.ts). */
  readonly memoVersion: Float64Array;
  readonly memo: Int32Array;
  readonly #onNode = new Map<number, number[]>();
  readonly #domCount: Map<number, number>[];
  /** Replicas per node of each request whose spread is wider than a node (for its node cap). */
  readonly #nodeCount: Map<number, number>[];
  readonly #affinity: (Uint8Array | null)[];
  readonly #followers: number[][];
  readonly #scratch = new Float64Array(1);

  constructor(p: Problem, free: Float64Array) {
    this.p = p;
    this.free = free.slice();
    this.assign = new Int32Array(p.slotJob.length).fill(-1);
    this.slotScore = new Float64Array(p.slotJob.length);
    this.memoVersion = new Float64Array(p.slotJob.length).fill(-1);
    this.memo = new Int32Array(p.slotJob.length);
    this.#domCount = p.jobs.map((j) => new Map(j.existing));
    this.#nodeCount = p.jobs.map((j) => {
      const counts = new Map<number, number>();
      for (const i of j.existingNodes) counts.set(i, (counts.get(i) ?? 0) + 1);
      return counts;
    });
    this.#affinity = p.jobs.map((j) => (j.affinityBase ? j.affinityBase.slice() : null));
    this.#followers = p.jobs.map(() => []);
    p.jobs.forEach((j, w) => {
      if (j.anchor >= 0) this.#followers[j.anchor]!.push(w);
    });
  }

  /** Static score of request w on node i (against the fleet before the batch); NaN if i is not feasible. */
  scoreOf(w: number, i: number): number {
    const job = this.p.jobs[w]!;
    const s = job.score.get(i);
    if (s !== undefined) return s;
    if (job.full) return Number.NaN;
    const known = job.outside.get(i);
    if (known !== undefined) return known;
    const { fleet } = this.p;
    const v =
      check(fleet, job.c, fleet.used, i, this.#scratch) >= 0
        ? Number.NaN
        : scoreNode(fleet, job.c, job.ev.ctx, fleet.used, i);
    job.outside.set(i, v);
    return v;
  }

  /** Room for one replica of w on node i, if `give` (a slot leaving i) frees its resources first. */
  room(w: number, i: number, give = -1): boolean {
    const need = this.p.jobs[w]!.c.need;
    const back = give < 0 ? null : this.p.jobs[this.p.slotJob[give]!]!.c.need;
    const b = 3 * i;
    for (let k = 0; k < 3; k++) {
      if (this.free[b + k]! + (back ? back[k]! : 0) + EPS < need[k]!) return false;
    }
    return true;
  }

  /**
   * Spread caps: node i holds fewer of w's replicas than the node cap, and its domain fewer than
   * the spread cap (a move within one domain always passes that one).
   */
  capOk(w: number, i: number, from = -1, nodeCap = true): boolean {
    if (from === i) return true;
    const job = this.p.jobs[w]!;
    if (
      nodeCap &&
      job.nodeCap !== Number.POSITIVE_INFINITY &&
      (this.#nodeCount[w]!.get(i) ?? 0) >= job.nodeCap
    ) {
      return false;
    }
    const d = domainOf(job.spread, i);
    if (from >= 0 && domainOf(job.spread, from) === d) return true;
    return (this.#domCount[w]!.get(d) ?? 0) < job.cap;
  }

  affinityOk(w: number, i: number): boolean {
    const flags = this.#affinity[w]!;
    if (flags === null) return true;
    return flags[domainOf(this.p.jobs[w]!.c.affinity!.domains, i)] === 1;
  }

  /** Whether slot s may move (anchors stay put so that their followers keep their affinity). */
  movable(s: number): boolean {
    return !this.p.jobs[this.p.slotJob[s]!]!.isAnchor;
  }

  slotsOn(i: number): readonly number[] {
    return this.#onNode.get(i) ?? [];
  }

  /** Takes node i's resources for request w and counts it, without a slot (pinned replicas). */
  take(w: number, i: number): void {
    this.version = ++this.#versions;
    const need = this.p.jobs[w]!.c.need;
    for (let k = 0; k < 3; k++) this.free[3 * i + k]! -= need[k]!;
    const job = this.p.jobs[w]!;
    const d = domainOf(job.spread, i);
    this.#domCount[w]!.set(d, (this.#domCount[w]!.get(d) ?? 0) + 1);
    this.#nodeCount[w]!.set(i, (this.#nodeCount[w]!.get(i) ?? 0) + 1);
    for (const f of this.#followers[w]!) {
      const flags = this.#affinity[f]!;
      flags[domainOf(this.p.jobs[f]!.c.affinity!.domains, i)] = 1;
    }
  }

  add(s: number, i: number): void {
    const w = this.p.slotJob[s]!;
    this.take(w, i);
    this.assign[s] = i;
    const score = this.scoreOf(w, i);
    this.slotScore[s] = score;
    this.total += score;
    this.placed++;
    const list = this.#onNode.get(i);
    if (list) list.push(s);
    else this.#onNode.set(i, [s]);
  }

  remove(s: number): void {
    this.version = ++this.#versions;
    const i = this.assign[s]!;
    const w = this.p.slotJob[s]!;
    const job = this.p.jobs[w]!;
    for (let k = 0; k < 3; k++) this.free[3 * i + k]! += job.c.need[k]!;
    const d = domainOf(job.spread, i);
    this.#domCount[w]!.set(d, this.#domCount[w]!.get(d)! - 1);
    this.#nodeCount[w]!.set(i, this.#nodeCount[w]!.get(i)! - 1);
    const list = this.#onNode.get(i)!;
    list.splice(list.indexOf(s), 1);
    this.assign[s] = -1;
    this.total -= this.slotScore[s]!;
    this.placed--;
  }

  /**
   * The best candidate of w that can take a replica now, or -1 (expands w's candidates before giving
   * up). `relax`: 0 keeps every cap, 1 lets the soft node cap go, 2 lets every cap go.
   */
  bestInsert(w: number, relax: 0 | 1 | 2): number {
    for (;;) {
      const job = this.p.jobs[w]!;
      const cand = job.cand;
      for (let k = 0; k < cand.length; k++) {
        const i = cand[k]!;
        if (!this.room(w, i) || !this.affinityOk(w, i)) continue;
        if (relax === 2 || this.capOk(w, i, -1, relax === 0)) return i;
      }
      if (job.full) return -1;
      expand(this.p, w);
    }
  }

  /** The best node for slot s, letting soft caps go one after the other when nothing else fits. */
  #bestRelaxed(s: number): number {
    const w = this.p.slotJob[s]!;
    let i = this.bestInsert(w, 0);
    if (i < 0) i = this.bestInsert(w, 1);
    if (i < 0 && !this.p.jobs[w]!.hardCap) i = this.bestInsert(w, 2);
    return i;
  }

  /** Places every unplaced slot of the requests in `order` on its best node, one after another. */
  construct(order: readonly number[], relaxInline: boolean): void {
    for (const w of order) {
      for (const s of this.p.jobs[w]!.slots) {
        if (this.assign[s]! >= 0) continue;
        const i = relaxInline ? this.#bestRelaxed(s) : this.bestInsert(w, 0);
        if (i >= 0) this.add(s, i);
      }
    }
  }

  /** Places what only fits over a soft cap (node cap, derived spread cap): spreading never leaves a replica out. */
  relaxSoftCaps(): void {
    for (let s = 0; s < this.assign.length; s++) {
      if (this.assign[s]! >= 0) continue;
      const i = this.#bestRelaxed(s);
      if (i >= 0) this.add(s, i);
    }
  }

  /** True when this assignment is better: more replicas placed, then a higher total score. */
  betterThan(other: Search): boolean {
    return this.placed > other.placed || (this.placed === other.placed && this.total > other.total + EPS);
  }
}

export { EPS };
