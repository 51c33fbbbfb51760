// Properties of placement on generated fleets: filters match a plain reference, no node is oversubscribed,
// hard constraints hold, and the same input always gives the same plan.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { failoverBatch, generateFleet, generateRequest, rng } from "../../bench/placement-fleet.ts";
import {
  type BatchPlan,
  type FleetNode,
  type FleetState,
  indexFleet,
  type PlacementRequest,
  type Plan,
  place,
  placeBatch,
  placeGreedy,
} from "../../hub/placement/index.ts";

const DIMS = ["cpu_millis", "mem_mb", "disk_mb"] as const;
const used = (n: FleetNode, d: (typeof DIMS)[number]) => Math.max(n.allocated[d], n.usage?.[d] ?? 0);

/** The first filter a node fails, written plainly from the spec; null when it passes them all. */
function referenceFilter(n: FleetNode, r: PlacementRequest): string | null {
  const p = r.placement ?? {};
  if (n.status !== "ready") return "health";
  const [lo, hi] = p.levels ?? [1, 5];
  if (n.level < lo || n.level > hi) return "level";
  if (p.arch && !p.arch.includes(n.arch)) return "arch";
  if (p.capabilities?.some((c) => !n.capabilities.includes(c))) return "capabilities";
  if (p.labels !== undefined) {
    const tier = n.labels.tier;
    const ok = {
      "tier in (gold,silver)": tier === "gold" || tier === "silver",
      "!tier": tier === undefined,
      "tier=gold": tier === "gold",
    }[p.labels as string];
    if (ok === undefined) throw new Error(`reference does not know selector ${String(p.labels)}`);
    if (!ok) return "labels";
  }
  const jurisdiction = n.jurisdiction ?? n.labels.jurisdiction;
  if (p.jurisdictions && (jurisdiction === undefined || !p.jurisdictions.includes(jurisdiction)))
    return "jurisdiction";
  if (p.regions && (n.labels.region === undefined || !p.regions.includes(n.labels.region))) return "region";
  if (p.latency?.max_ms !== undefined) {
    const ms = p.latency.target === "hub" ? n.hub_rtt_ms : n.rtt_ms?.[p.latency.target];
    if (ms === undefined || ms > p.latency.max_ms) return "latency";
  }
  for (const d of DIMS) if (used(n, d) + (r.resources?.[d] ?? 0) > n.capacity[d]) return "resources";
  return null;
}

/** Every node's use after the placements, against its capacity. */
function assertNoOversubscription(
  state: FleetState,
  requests: readonly PlacementRequest[],
  plans: readonly Plan[],
) {
  const extra = new Map<string, number[]>();
  plans.forEach((plan, k) => {
    for (const p of plan.placements) {
      const e = extra.get(p.node) ?? [0, 0, 0];
      DIMS.forEach((d, j) => {
        e[j]! += requests[k]!.resources?.[d] ?? 0;
      });
      extra.set(p.node, e);
    }
  });
  for (const n of state.nodes) {
    const e = extra.get(n.id);
    if (!e) continue;
    DIMS.forEach((d, j) => {
      expect(used(n, d) + e[j]!).toBeLessThanOrEqual(n.capacity[d]);
    });
  }
}

/** Placed nodes pass every filter for their request, and spread caps (max_per) hold. */
function assertConstraints(state: FleetState, requests: readonly PlacementRequest[], plans: readonly Plan[]) {
  const byId = new Map(state.nodes.map((n) => [n.id, n]));
  plans.forEach((plan, k) => {
    const r = requests[k]!;
    const perDomain = new Map<string, number>();
    for (const p of plan.placements) {
      const n = byId.get(p.node)!;
      expect(referenceFilter(n, r)).toBeNull();
      const by = r.placement?.spread?.by ?? "node";
      const d = by === "node" ? n.id : (n.labels[by] ?? "");
      perDomain.set(d, (perDomain.get(d) ?? 0) + 1);
    }
    const maxPer = r.placement?.spread?.max_per;
    if (maxPer !== undefined) for (const c of perDomain.values()) expect(c).toBeLessThanOrEqual(maxPer);
  });
}

const strip = (plan: Plan) => ({ ...plan, filtered: plan.filtered.map(({ examples: _, ...f }) => f) });

describe("placement properties on generated fleets", () => {
  const state = generateFleet({ nodes: 3000, seed: 7 });
  const fleet = indexFleet(state);
  const r = rng(11);
  const requests = Array.from({ length: 300 }, (_, k) => generateRequest(r, `w${k}`));

  test("the feasible nodes and each filter's count match a plain reference of the filters", () => {
    for (const request of requests) {
      const plan = place(fleet, request, { candidates: 5 });
      const counts = new Map<string, number>();
      let feasible = 0;
      for (const n of state.nodes) {
        const f = referenceFilter(n, request);
        if (f === null) feasible++;
        else counts.set(f, (counts.get(f) ?? 0) + 1);
      }
      expect(plan.feasible).toBe(feasible);
      const got = new Map<string, number>();
      for (const f of plan.filtered) got.set(f.filter, (got.get(f.filter) ?? 0) + f.count);
      expect(Object.fromEntries(got)).toEqual(Object.fromEntries(counts));
    }
  });

  test("candidates are feasible, scored 0..100, best first; placements honour filters, caps and capacity", () => {
    for (const request of requests) {
      const plan = place(fleet, request);
      const byId = new Map(state.nodes.map((n) => [n.id, n]));
      for (const c of plan.candidates) {
        expect(referenceFilter(byId.get(c.node)!, request)).toBeNull();
        expect(c.score).toBeGreaterThanOrEqual(0);
        expect(c.score).toBeLessThanOrEqual(100);
      }
      for (let k = 1; k < plan.candidates.length; k++) {
        expect(plan.candidates[k - 1]!.score).toBeGreaterThanOrEqual(plan.candidates[k]!.score);
      }
      assertConstraints(state, [request], [plan]);
      assertNoOversubscription(state, [request], [plan]);
      expect(plan.complete).toBe(plan.placements.length === (request.replicas ?? 1));
      if (!plan.complete) expect(plan.reason).toBeString();
    }
  });

  test("the same input gives the same plan, and the order of the nodes does not change it", () => {
    const shuffled: FleetState = { nodes: [...state.nodes].reverse() };
    for (const request of requests.slice(0, 100)) {
      const a = place(fleet, request);
      expect(place(fleet, request)).toEqual(a);
      expect(strip(place(shuffled, request))).toEqual(strip(a));
    }
  });

  test("batch and greedy plans never oversubscribe a node and keep every hard constraint", () => {
    const tight = generateFleet({ nodes: 2000, seed: 3, load: 0.6 });
    for (const batch of [requests.slice(0, 150), failoverBatch(tight, 150, 5, 1.1)]) {
      for (const plan of [placeBatch(tight, batch), placeGreedy(tight, batch)] as BatchPlan[]) {
        assertNoOversubscription(tight, batch, plan.plans);
        assertConstraints(tight, batch, plan.plans);
        expect(plan.placed).toBe(plan.plans.reduce((n, p) => n + p.placements.length, 0));
      }
    }
  }, 60_000);

  test("batch placement is deterministic and does at least as well as one-by-one greedy when capacity is tight", () => {
    for (const seed of [1, 2, 3]) {
      const tight = generateFleet({ nodes: 1500, seed, load: 0.5 });
      const batch = failoverBatch(tight, 120, seed, 1);
      const best = placeBatch(tight, batch);
      expect(placeBatch(indexFleet(tight), batch)).toEqual(best);
      const greedy = placeGreedy(tight, batch);
      expect(best.placed).toBeGreaterThanOrEqual(greedy.placed);
      if (best.placed === greedy.placed)
        expect(best.total_score).toBeGreaterThanOrEqual(greedy.total_score - 1e-6);
    }
  }, 60_000);

  test("the engine draws no random numbers and reads no clock", () => {
    const dir = join(import.meta.dir, "../../hub/placement");
    for (const file of readdirSync(dir)) {
      const source = readFileSync(join(dir, file), "utf8");
      expect(source).not.toMatch(/Math\.random|Date\.now|performance\.now|new Date\(/);
    }
  });
});
