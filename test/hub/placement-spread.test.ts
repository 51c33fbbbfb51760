// Specification of replica placement: spread, anti-affinity (max_per) and affinity, alone and in batches.
import { describe, expect, test } from "bun:test";
import { fleetNode } from "../../bench/placement-fleet.ts";
import {
  type FleetNode,
  type FleetState,
  type PlacementRequest,
  type Plan,
  place,
  placeBatch,
  placeGreedy,
} from "../../hub/placement/index.ts";

const small = { cpu_millis: 500, mem_mb: 512 };
/** A node in zone/site/region, with hub RTT `rtt` so that lower RTT ranks higher. */
const node = (id: string, zone: string, rtt: number, over: Partial<FleetNode> = {}): FleetNode =>
  fleetNode(id, {
    labels: { zone, site: `site-${zone}`, region: zone < "m" ? "r1" : "r2" },
    hub_rtt_ms: rtt,
    ...over,
  });
const placed = (plan: Plan) => plan.placements.map((p) => p.node);
const req = (
  replicas: number,
  placement: PlacementRequest["placement"] = {},
  more: Partial<PlacementRequest> = {},
) => ({
  resources: small,
  replicas,
  placement,
  ...more,
});

/** Zone a has the three best nodes, zone b the next two, zone c one. */
const zoned: FleetState = {
  nodes: [
    node("a1", "a", 1),
    node("a2", "a", 2),
    node("a3", "a", 3),
    node("b1", "b", 4),
    node("b2", "b", 5),
    node("c1", "c", 6),
  ],
};

describe("placement: spread and anti-affinity", () => {
  test("replicas go to different nodes by default, best first", () => {
    expect(placed(place(zoned, req(3)))).toEqual(["a1", "a2", "a3"]);
  });

  test("default spread doubles up only as much as it must: ceil(replicas / nodes) per node", () => {
    const two: FleetState = { nodes: [node("x", "a", 1), node("y", "a", 2)] };
    expect(placed(place(two, req(3)))).toEqual(["x", "x", "y"]);
  });

  test("default spread never leaves a replica out for evenness alone", () => {
    const state: FleetState = {
      nodes: [
        node("big", "a", 1),
        node("tiny", "a", 2, { capacity: { cpu_millis: 500, mem_mb: 512, disk_mb: 1000 } }),
      ],
    };
    const plan = place(state, req(4));
    expect(plan.complete).toBe(true);
    expect(placed(plan).sort()).toEqual(["big", "big", "big", "tiny"]);
  });

  test("spread by zone without max_per: no zone holds more than ceil(replicas / zones), on different nodes", () => {
    const plan = place(zoned, req(4, { spread: { by: "zone" } }));
    expect(placed(plan)).toEqual(["a1", "a2", "b1", "b2"]);
    const three = place(zoned, req(3, { spread: { by: "zone" } }));
    expect(placed(three)).toEqual(["a1", "b1", "c1"]);
  });

  test("max_per 1 by zone is anti-affinity: one replica per zone, and the rest are refused with the reason", () => {
    expect(placed(place(zoned, req(3, { spread: { by: "zone", max_per: 1 } })))).toEqual(["a1", "b1", "c1"]);
    const plan = place(zoned, req(4, { spread: { by: "zone", max_per: 1 } }));
    expect(placed(plan)).toEqual(["a1", "b1", "c1"]);
    expect(plan.complete).toBe(false);
    expect(plan.reason).toBe("placed 3 of 4 replicas: 6 feasible nodes, 6 at the spread limit of 1 per zone");
  });

  test("max_per by site, by region and by node", () => {
    expect(placed(place(zoned, req(2, { spread: { by: "site", max_per: 1 } })))).toEqual(["a1", "b1"]);
    expect(placed(place(zoned, req(2, { spread: { by: "region", max_per: 1 } })))).toEqual(["a1"]);
    expect(placed(place(zoned, req(4, { spread: { by: "zone", max_per: 2 } })))).toEqual([
      "a1",
      "a2",
      "b1",
      "b2",
    ]);
    // Within a zone, replicas still share a node only when they must.
    const oneNodeZones: FleetState = { nodes: [node("a1", "a", 1), node("b1", "b", 2)] };
    expect(placed(place(oneNodeZones, req(4, { spread: { by: "zone", max_per: 2 } })))).toEqual([
      "a1",
      "a1",
      "b1",
      "b1",
    ]);
    const stacked = place({ nodes: [node("only", "a", 1)] }, req(3, { spread: { by: "node", max_per: 2 } }));
    expect(placed(stacked)).toEqual(["only", "only"]);
  });

  test("nodes without the spread label share one domain", () => {
    const state: FleetState = {
      nodes: [fleetNode("u1", { hub_rtt_ms: 1 }), fleetNode("u2", { hub_rtt_ms: 2 }), node("z", "a", 3)],
    };
    expect(placed(place(state, req(3, { spread: { by: "zone", max_per: 1 } })))).toEqual(["u1", "z"]);
  });

  test("existing replicas of the workload count: a failover replacement avoids the zones that still run it", () => {
    const state: FleetState = {
      ...zoned,
      allocations: [
        { workload: "web", node: "a2" },
        { workload: "web", node: "b2" },
      ],
    };
    const plan = place(state, req(1, { spread: { by: "zone", max_per: 1 } }, { name: "web" }));
    expect(placed(plan)).toEqual(["c1"]);
    // Another workload's replicas do not count.
    expect(placed(place(state, req(1, { spread: { by: "zone", max_per: 1 } }, { name: "api" })))).toEqual([
      "a1",
    ]);
  });

  test("replicas of one plan use up capacity: a node never takes more than it has room for", () => {
    const state: FleetState = {
      nodes: [node("roomy", "a", 1, { capacity: { cpu_millis: 1000, mem_mb: 8192, disk_mb: 1000 } })],
    };
    const plan = place(state, req(3, { spread: { by: "node", max_per: 3 } }));
    expect(placed(plan)).toEqual(["roomy", "roomy"]);
    expect(plan.reason).toBe("placed 2 of 3 replicas: 1 feasible node, 1 without room for another replica");
  });
});

describe("placement: affinity in batches", () => {
  const sites: FleetState = {
    nodes: [node("a1", "a", 1), node("a2", "a", 2), node("b1", "b", 3), node("b2", "b", 4)],
  };

  test("a follower goes where its anchor of the same batch went, whatever the order of the requests", () => {
    const db: PlacementRequest = { name: "db", resources: small, placement: { labels: { zone: "b" } } };
    const app: PlacementRequest = {
      name: "app",
      resources: small,
      replicas: 2,
      placement: { affinity: { workload: "db", by: "zone" } },
    };
    const plan = placeBatch(sites, [app, db]);
    expect(plan.complete).toBe(true);
    expect(placed(plan.plans[1]!)).toEqual(["b1"]);
    expect(placed(plan.plans[0]!).every((n) => n.startsWith("b"))).toBe(true);
    // One by one in the order given, the follower finds nothing to follow yet.
    const greedy = placeGreedy(sites, [app, db]);
    expect(greedy.plans[0]!.placements).toEqual([]);
    expect(greedy.plans[0]!.reason).toBe(
      "placed 0 of 2 replicas: 2 feasible before the batch, none free when its turn came",
    );
  });

  test("batch placement keeps every spread cap", () => {
    const reqs: PlacementRequest[] = Array.from({ length: 6 }, (_, k) => ({
      name: `w${k}`,
      resources: { cpu_millis: 1000, mem_mb: 1024 },
      replicas: 2,
      placement: { spread: { by: "zone", max_per: 1 } },
    }));
    const plan = placeBatch(sites, reqs);
    for (const p of plan.plans) {
      const zones = p.placements.map((x) => x.node[0]);
      expect(new Set(zones).size).toBe(zones.length);
    }
    expect(plan.placed).toBe(12);
  });

  test("pinned requests in a batch are placed first and keep their nodes", () => {
    const pinned: PlacementRequest = {
      name: "cam",
      resources: { cpu_millis: 3500, mem_mb: 512 },
      nodes: ["a1"],
    };
    const other: PlacementRequest = { name: "x", resources: { cpu_millis: 1000, mem_mb: 512 } };
    const plan = placeBatch(sites, [other, pinned]);
    expect(placed(plan.plans[1]!)).toEqual(["a1"]);
    expect(placed(plan.plans[0]!)).toEqual(["a2"]);
  });
});
