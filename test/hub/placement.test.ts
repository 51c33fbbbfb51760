// Specification of placement: every hard filter with its explanation, every score part, weights and presets.
import { describe, expect, test } from "bun:test";
import { fleetNode as node } from "../../bench/placement-fleet.ts";
import {
  type FleetNode,
  type FleetState,
  indexFleet,
  PART_NAMES,
  type PlacementRequest,
  type Plan,
  PRESETS,
  place,
} from "../../hub/placement/index.ts";

const need = { cpu_millis: 500, mem_mb: 512 };
const fleet = (...nodes: FleetNode[]): FleetState => ({ nodes });
const texts = (plan: Plan) => plan.filtered.map((f) => f.text);
const ids = (plan: Plan) => plan.candidates.map((c) => c.node);
const placed = (plan: Plan) => plan.placements.map((p) => p.node);
const req = (
  placement: PlacementRequest["placement"],
  more: Partial<PlacementRequest> = {},
): PlacementRequest => ({
  resources: need,
  placement,
  ...more,
});

describe("placement: hard filters", () => {
  test("health: only ready nodes take work; the others are counted per status", () => {
    const plan = place(
      fleet(
        node("a"),
        node("b", { status: "down" }),
        node("c", { status: "down" }),
        node("d", { status: "suspect" }),
        node("e", { status: "draining" }),
      ),
      req({}),
    );
    expect(ids(plan)).toEqual(["a"]);
    expect(texts(plan)).toEqual([
      "2 nodes: status down",
      "1 node: status suspect",
      "1 node: status draining",
    ]);
    expect(plan.filtered[0]!.examples).toEqual(["b", "c"]);
  });

  test("level range: nodes outside [min, max] are removed as 'level outside 2-3'", () => {
    const nodes = [1, 2, 3, 4, 5].map((level) => node(`l${level}`, { level }));
    const plan = place(fleet(...nodes), req({ levels: [2, 3] }));
    expect(ids(plan).sort()).toEqual(["l2", "l3"]);
    expect(texts(plan)).toEqual(["3 nodes: level outside 2-3"]);
    expect(texts(place(fleet(...nodes), req({ levels: [4, 4] })))).toEqual(["4 nodes: level not 4"]);
  });

  test("arch: only the listed architectures", () => {
    const plan = place(
      fleet(node("x"), node("y", { arch: "arm64" }), node("z", { arch: "riscv" })),
      req({ arch: ["x64", "arm64"] }),
    );
    expect(ids(plan).sort()).toEqual(["x", "y"]);
    expect(texts(plan)).toEqual(["1 node: arch not x64, arm64"]);
  });

  test("required capabilities: every one must be present; each missing one is its own reason", () => {
    const plan = place(
      fleet(
        node("both", { capabilities: ["gpu", "camera"] }),
        node("gpu", { capabilities: ["gpu"] }),
        node("none"),
        node("none2"),
      ),
      req({ capabilities: ["gpu", "camera"] }),
    );
    expect(ids(plan)).toEqual(["both"]);
    expect(texts(plan)).toEqual(["2 nodes: missing capability gpu", "1 node: missing capability camera"]);
  });

  test("label selector: equals, one of, not, exists and absent, as an object or a selector string", () => {
    const nodes = fleet(
      node("gold", { labels: { tier: "gold", site: "p7" } }),
      node("silver", { labels: { tier: "silver", site: "p8" } }),
      node("bronze", { labels: { tier: "bronze", gpu: "yes" } }),
      node("plain"),
    );
    const run = (labels: NonNullable<PlacementRequest["placement"]>["labels"]) =>
      ids(place(nodes, req({ labels }))).sort();
    expect(run({ tier: "gold" })).toEqual(["gold"]);
    expect(run({ tier: ["gold", "silver"] })).toEqual(["gold", "silver"]);
    expect(run("tier in (gold, silver)")).toEqual(["gold", "silver"]);
    expect(run("tier notin (gold,silver)")).toEqual(["bronze", "plain"]);
    expect(run("tier!=gold")).toEqual(["bronze", "plain", "silver"]);
    expect(run("site")).toEqual(["gold", "silver"]);
    expect(run("!gpu")).toEqual(["gold", "plain", "silver"]);
    expect(run("tier in (gold,silver,bronze), !gpu, site=p8")).toEqual(["silver"]);
    expect(texts(place(nodes, req({ labels: "site, tier=gold" })))).toEqual([
      "2 nodes: labels do not match site",
      "1 node: labels do not match tier=gold",
    ]);
  });

  test("data residency: allowed jurisdictions and regions; nodes without one are counted apart", () => {
    const nodes = fleet(
      node("eu", { jurisdiction: "EU", labels: { region: "eu-west" } }),
      node("eu-label", { labels: { jurisdiction: "EU", region: "eu-central" } }),
      node("us", { jurisdiction: "US", labels: { region: "us-east" } }),
      node("unknown", { labels: { region: "eu-west" } }),
    );
    const byJurisdiction = place(nodes, req({ jurisdictions: ["EU", "CH"] }));
    expect(ids(byJurisdiction).sort()).toEqual(["eu", "eu-label"]);
    expect(texts(byJurisdiction)).toEqual([
      "1 node: jurisdiction unknown",
      "1 node: jurisdiction not EU, CH",
    ]);
    const byRegion = place(nodes, req({ regions: ["eu-west"] }));
    expect(ids(byRegion).sort()).toEqual(["eu", "unknown"]);
    expect(texts(byRegion)).toEqual(["2 nodes: region not eu-west"]);
    expect(texts(place(fleet(node("bare")), req({ regions: ["eu-west"] })))).toEqual([
      "1 node: no region label",
    ]);
  });

  test("latency ceiling to a named target: slower and unmeasured nodes are removed, with the measured range", () => {
    const nodes = fleet(
      node("fast", { rtt_ms: { "market:NYSE": 0.4 } }),
      node("slow1", { rtt_ms: { "market:NYSE": 1.8 } }),
      node("slow2", { rtt_ms: { "market:NYSE": 1.8 } }),
      node("slow3", { rtt_ms: { "market:NYSE": 1.8 } }),
      node("far", { rtt_ms: { "market:LSE": 0.1 } }),
    );
    const plan = place(nodes, req({ latency: { target: "market:NYSE", max_ms: 1 } }));
    expect(ids(plan)).toEqual(["fast"]);
    expect(texts(plan)).toEqual([
      "3 nodes: latency to market:NYSE 1.8 ms > 1 ms",
      "1 node: no RTT measured to market:NYSE",
    ]);
    const mixed = place(
      fleet(node("a", { rtt_ms: { t: 2.5 } }), node("b", { rtt_ms: { t: 7 } })),
      req({ latency: { target: "t", max_ms: 1 } }),
    );
    expect(mixed.summary).toBe("2 nodes: latency to t 2.5-7 ms > 1 ms");
    const hub = place(
      fleet(node("near", { hub_rtt_ms: 3 }), node("away", { hub_rtt_ms: 40 })),
      req({ latency: { target: "hub", max_ms: 10 } }),
    );
    expect(ids(hub)).toEqual(["near"]);
    // Without max_ms the target is only a preference: unmeasured nodes stay, with latency part 0.
    expect(ids(place(nodes, req({ latency: { target: "market:NYSE" } }))).length).toBe(5);
  });

  test("resources: free is capacity minus the larger of allocated and live usage, per dimension", () => {
    const nodes = fleet(
      node("roomy"),
      node("allocated", { allocated: { cpu_millis: 3800, mem_mb: 0, disk_mb: 0 } }),
      node("busy", { usage: { cpu_millis: 3700 } }),
      node("small-mem", { capacity: { cpu_millis: 4000, mem_mb: 256, disk_mb: 100_000 } }),
      node("no-disk", { allocated: { cpu_millis: 0, mem_mb: 0, disk_mb: 99_990 } }),
    );
    const plan = place(nodes, req({}, { resources: { cpu_millis: 500, mem_mb: 512, disk_mb: 100 } }));
    expect(ids(plan)).toEqual(["roomy"]);
    expect(texts(plan)).toEqual([
      "2 nodes: not enough free cpu (need 500 millicores, at most 300 millicores free)",
      "1 node: not enough free memory (need 512 MB, at most 256 MB free)",
      "1 node: not enough free disk (need 100 MB, at most 10 MB free)",
    ]);
    // Usage below the allocations does not free anything.
    const lowUsage = node("n", {
      allocated: { cpu_millis: 3800, mem_mb: 0, disk_mb: 0 },
      usage: { cpu_millis: 100 },
    });
    expect(place(fleet(lowUsage), req({})).feasible).toBe(0);
  });

  test("each removed node is counted once, under the first filter it fails, and the counts add up", () => {
    const nodes = fleet(
      node("down-and-wrong-level", { status: "down", level: 5 }),
      node("wrong-level-and-arch", { level: 5, arch: "arm64" }),
      node("ok"),
    );
    const plan = place(nodes, req({ levels: [1, 3], arch: ["x64"] }));
    expect(plan.filtered.map((f) => [f.filter, f.count])).toEqual([
      ["health", 1],
      ["level", 1],
    ]);
    expect(plan.feasible + plan.filtered.reduce((n, f) => n + f.count, 0)).toBe(plan.considered);
  });

  test("a filter keeps only the first few example ids, in fleet order", () => {
    const nodes = fleet(...Array.from({ length: 20 }, (_, k) => node(`n${k}`, { level: 5 })));
    const plan = place(nodes, req({ levels: [1, 2] }), { examples: 2 });
    expect(plan.filtered[0]).toMatchObject({ count: 20, examples: ["n0", "n1"] });
  });

  test("a request that no node can take is not placed, and the reason says why", () => {
    const plan = place(
      fleet(node("a", { level: 5 }), node("b", { status: "down" })),
      req({ levels: [1, 2] }),
    );
    expect(plan.complete).toBe(false);
    expect(plan.placements).toEqual([]);
    expect(plan.reason).toBe("no node passes the filters: 1 node: status down; 1 node: level outside 1-2");
    expect(place(fleet(), req({})).reason).toBe("the fleet has no nodes");
  });

  test("affinity: only nodes whose domain runs the other workload", () => {
    const state: FleetState = {
      nodes: [
        node("a1", { labels: { site: "a" } }),
        node("a2", { labels: { site: "a" } }),
        node("b1", { labels: { site: "b" } }),
        node("x", {}),
      ],
      allocations: [{ workload: "db", node: "a1" }],
    };
    expect(ids(place(state, req({ affinity: { workload: "db", by: "site" } }))).sort()).toEqual(["a1", "a2"]);
    expect(ids(place(state, req({ affinity: { workload: "db" } })))).toEqual(["a1"]);
    expect(texts(place(state, req({ affinity: { workload: "db", by: "site" } })))).toEqual([
      "2 nodes: site does not run db",
    ]);
    expect(place(state, req({ affinity: { workload: "nothing" } })).feasible).toBe(0);
  });

  test("pinned nodes: no scoring, but health and free resources apply, and unknown ids are explained", () => {
    const state = fleet(
      node("cam-1"),
      node("cam-2", { status: "down" }),
      node("full", { usage: { mem_mb: 8000 } }),
      node("free"),
    );
    const plan = place(
      state,
      req({ levels: [5, 5] }, { nodes: ["cam-1", "cam-2", "full", "ghost"], replicas: 1 }),
    );
    expect(placed(plan)).toEqual(["cam-1"]);
    expect(plan.placements[0]!.pinned).toBe(true);
    expect(plan.considered).toBe(4);
    expect(texts(plan).sort()).toEqual([
      "1 node: not enough free memory (need 512 MB, at most 192 MB free)",
      "1 node: not in the fleet: ghost",
      "1 node: status down",
    ]);
    const none = place(state, req({}, { nodes: ["cam-2"] }));
    expect(none.complete).toBe(false);
    expect(none.reason).toBe("no pinned node can take it: 1 node: status down");
    // Replicas go round-robin over the pinned nodes that fit, in the order given.
    const rr = place(fleet(node("p"), node("q")), req({}, { nodes: ["q", "p"], replicas: 3 }));
    expect(placed(rr)).toEqual(["q", "p", "q"]);
    // One replica per pinned node when the counts match: a pinned node that fails is not doubled up on.
    const one = place(state, req({}, { nodes: ["cam-1", "cam-2"], replicas: 2 }));
    expect(placed(one)).toEqual(["cam-1"]);
    expect(one.reason).toBe("placed 1 of 2 replicas on pinned nodes: 1 node: status down");
  });
});

describe("placement: score", () => {
  const part = (plan: Plan, id: string, name: (typeof PART_NAMES)[number]) =>
    plan.candidates.find((c) => c.node === id)!.parts[name].value;

  test("resource part: binpack rates the node by its use after placement, spread by what stays free", () => {
    const nodes = fleet(
      node("empty"),
      node("half", { allocated: { cpu_millis: 2000, mem_mb: 4096, disk_mb: 0 } }),
    );
    const r = { cpu_millis: 1000, mem_mb: 2048 };
    const binpack = place(nodes, req({ strategy: "binpack" }, { resources: r }));
    // mean over cpu and memory of (used + need) / capacity
    expect(part(binpack, "empty", "resources")).toBe(0.25);
    expect(part(binpack, "half", "resources")).toBe(0.75);
    expect(binpack.placements[0]!.node).toBe("half");
    const spread = place(nodes, req({ strategy: "spread" }, { resources: r }));
    expect(part(spread, "empty", "resources")).toBe(0.75);
    expect(spread.placements[0]!.node).toBe("empty");
  });

  test("latency part: 1 - rtt/max_ms with a ceiling; best/rtt without; the hub RTT when no target is named", () => {
    const nodes = fleet(
      node("a", { rtt_ms: { t: 0.5 }, hub_rtt_ms: 10 }),
      node("b", { rtt_ms: { t: 2 }, hub_rtt_ms: 40 }),
      node("c", { hub_rtt_ms: 20 }),
    );
    const ceiling = place(nodes, req({ latency: { target: "t", max_ms: 4 } }));
    expect(part(ceiling, "a", "latency")).toBe(0.875);
    expect(part(ceiling, "b", "latency")).toBe(0.5);
    const relative = place(nodes, req({ latency: { target: "t" } }));
    expect(part(relative, "a", "latency")).toBe(1);
    expect(part(relative, "b", "latency")).toBe(0.25);
    expect(part(relative, "c", "latency")).toBe(0);
    const hub = place(nodes, req({}));
    expect([part(hub, "a", "latency"), part(hub, "b", "latency"), part(hub, "c", "latency")]).toEqual([
      1, 0.25, 0.5,
    ]);
  });

  test("capability part: the share of preferred capabilities the node has (1 when none preferred)", () => {
    const nodes = fleet(
      node("both", { capabilities: ["gpu", "ssd"] }),
      node("one", { capabilities: ["ssd"] }),
      node("none"),
    );
    const plan = place(nodes, req({ prefer_capabilities: ["gpu", "ssd"] }));
    expect(["both", "one", "none"].map((n) => part(plan, n, "capabilities"))).toEqual([1, 0.5, 0]);
    expect(ids(plan)[0]).toBe("both");
    expect(part(place(nodes, req({})), "none", "capabilities")).toBe(1);
  });

  test("level part: 1 - |level - prefer_level| / 4 (1 when no level is preferred)", () => {
    const nodes = fleet(...[1, 2, 3, 4, 5].map((level) => node(`l${level}`, { level })));
    const plan = place(nodes, req({ prefer_level: 4 }));
    expect([1, 2, 3, 4, 5].map((l) => part(plan, `l${l}`, "level"))).toEqual([0.25, 0.5, 0.75, 1, 0.75]);
    expect(ids(plan)[0]).toBe("l4");
  });

  test("availability part: the measured share of time connected", () => {
    const plan = place(
      fleet(node("steady", { availability: 0.999 }), node("flaky", { availability: 0.8 })),
      req({}),
    );
    expect(part(plan, "flaky", "availability")).toBe(0.8);
    expect(ids(plan)).toEqual(["steady", "flaky"]);
  });

  test("cost part: cheapest feasible node 1, dearest 0, linear between; no cost label counts as 0", () => {
    const nodes = fleet(
      node("cheap", { labels: { cost: "2" } }),
      node("mid", { labels: { cost: "5" } }),
      node("dear", { labels: { cost: "8" } }),
      node("unpriced"),
    );
    const plan = place(nodes, req({ preset: "cost-first" }));
    expect(["cheap", "mid", "dear", "unpriced"].map((n) => part(plan, n, "cost"))).toEqual([1, 0.5, 0, 0]);
    expect(ids(plan)[0]).toBe("cheap");
    // balanced gives cost no weight
    expect(place(nodes, req({})).candidates[0]!.parts.cost.points).toBe(0);
  });

  test("points are value × normalised weight, and the score is their sum, between 0 and 100", () => {
    const nodes = fleet(
      node("a", { hub_rtt_ms: 5, level: 2 }),
      node("b", { hub_rtt_ms: 9, availability: 0.9 }),
    );
    const plan = place(nodes, req({ prefer_level: 2, prefer_capabilities: ["gpu"] }));
    for (const c of plan.candidates) {
      let sum = 0;
      for (const name of PART_NAMES) {
        const p = c.parts[name];
        expect(p.points).toBeCloseTo(p.value * plan.weights[name], 2);
        sum += p.points;
      }
      expect(c.score).toBeCloseTo(sum, 3);
      expect(c.score).toBeGreaterThanOrEqual(0);
      expect(c.score).toBeLessThanOrEqual(100);
    }
  });

  test("weights: overrides apply on top of the preset and are normalised to sum to 100", () => {
    const plan = place(fleet(node("a")), req({ weights: { latency: 0, cost: 25 } }));
    expect(plan.weights).toEqual({
      resources: 25,
      latency: 0,
      capabilities: 20,
      level: 15,
      availability: 15,
      cost: 25,
    });
    const only = place(
      fleet(node("a", { availability: 0.5 })),
      req({ weights: { resources: 0, latency: 0, capabilities: 0, level: 0, availability: 3, cost: 0 } }),
    );
    expect(only.weights.availability).toBe(100);
    expect(only.candidates[0]!.score).toBe(50);
  });

  test("presets: balanced is DESIGN's 25/25/20/15/15, and each preset picks the node it favours", () => {
    expect(PRESETS.balanced.weights).toEqual({
      resources: 25,
      latency: 25,
      capabilities: 20,
      level: 15,
      availability: 15,
      cost: 0,
    });
    for (const p of Object.values(PRESETS))
      expect(Object.values(p.weights).reduce((a, b) => a + b, 0)).toBe(100);
    const nodes = fleet(
      node("fast", { hub_rtt_ms: 1, availability: 0.95, labels: { cost: "9" } }),
      node("cheap", { hub_rtt_ms: 30, availability: 0.95, labels: { cost: "1" } }),
      node("steady", { hub_rtt_ms: 30, availability: 1, labels: { cost: "9" } }),
    );
    const winner = (preset: NonNullable<PlacementRequest["placement"]>["preset"]) =>
      place(nodes, req({ preset, levels: [1, 5] })).placements[0]!.node;
    expect(winner("latency-first")).toBe("fast");
    expect(winner("cost-first")).toBe("cheap");
    const steadyWins = fleet(
      node("fast", { hub_rtt_ms: 20, availability: 0.6 }),
      node("steady", { hub_rtt_ms: 30, availability: 1 }),
    );
    expect(place(steadyWins, req({ preset: "availability-first" })).placements[0]!.node).toBe("steady");
    expect(place(steadyWins, req({ preset: "latency-first" })).placements[0]!.node).toBe("fast");
    expect(place(nodes, req({ preset: "cost-first" })).strategy).toBe("binpack");
    expect(place(nodes, req({ preset: "availability-first" })).strategy).toBe("spread");
  });

  test("ties break by node id, whatever the order of the fleet, so the same input gives the same plan", () => {
    const nodes = ["n3", "n1", "n2"].map((id) => node(id));
    const a = place(fleet(...nodes), req({}));
    const b = place(fleet(...[...nodes].reverse()), req({}));
    expect(ids(a)).toEqual(["n1", "n2", "n3"]);
    expect(ids(b)).toEqual(ids(a));
    expect(place(fleet(...nodes), req({}))).toEqual(a);
  });

  test("an indexed fleet and the raw state give the same plan", () => {
    const state = fleet(node("a", { hub_rtt_ms: 3 }), node("b", { level: 2 }), node("c", { status: "down" }));
    expect(place(indexFleet(state), req({ prefer_level: 2 }))).toEqual(
      place(state, req({ prefer_level: 2 })),
    );
  });

  test("candidates list at most the number asked for, best first", () => {
    const nodes = fleet(
      ...Array.from({ length: 30 }, (_, k) => node(`n${String(k).padStart(2, "0")}`, { hub_rtt_ms: 30 - k })),
    );
    const plan = place(nodes, req({}), { candidates: 5 });
    expect(ids(plan)).toEqual(["n29", "n28", "n27", "n26", "n25"]);
    expect(plan.feasible).toBe(30);
  });
});

describe("placement: applying a plan", () => {
  test("withPlacements returns a new index whose free resources and allocations include the plan", () => {
    const base = indexFleet(
      fleet(node("a", { labels: { site: "s1" } }), node("b", { labels: { site: "s2" } })),
    );
    const plan = place(base, req({}, { name: "db", resources: { cpu_millis: 3800, mem_mb: 512 } }));
    const next = base.withPlacements(
      plan.placements.map((p) => ({
        node: p.node,
        workload: "db",
        resources: { cpu_millis: 3800, mem_mb: 512, disk_mb: 0 },
      })),
    );
    expect(place(next, req({})).feasible).toBe(1);
    expect(place(base, req({})).feasible).toBe(2);
    expect(ids(place(next, req({ affinity: { workload: "db", by: "site" } })))).toEqual([]);
    expect(
      place(next, req({ affinity: { workload: "db", by: "site" } }, { resources: { cpu_millis: 100 } }))
        .feasible,
    ).toBe(1);
  });
});
