// Two-level placement against flat placement over the same nodes: latency, how often it places, score ratio.
//
//   bun bench/federation-placement.ts [--nodes 10000] [--requests 2000] [--seed 1]
//
// The five-tier fleet of bench/placement-fleet.ts, split into metro hubs by zone (one hub per
// region-zone, 18 in all). Flat: the placement engine over every node. Two-level: the parent's half
// (hub/federation/subtree-placement.ts) over each hub's summary (groups folded as a child hub folds
// them), then the chosen hub's own engine over its nodes only. Requests: a level band, in 30% of them a
// region, 1-3 replicas, resources as bench/placement.ts generates them, the balanced preset. Printed:
// latency per request (both), share of requests fully placed (both), and the mean score of the nodes
// chosen (each engine's own 0-100 score of its nodes) two-level / flat.
import { parseArgs } from "node:util";
import { groupNodes, placeSubtree, type SubtreeHub } from "../hub/federation/index.ts";
import { type FleetState, indexFleet, type PlacementRequest, place } from "../hub/placement/index.ts";
import { machineInfo, pct, printMachine, table } from "./_machine.ts";
import { generateFleet, generateRequest, rng } from "./placement-fleet.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    nodes: { type: "string", default: "10000" },
    requests: { type: "string", default: "2000" },
    seed: { type: "string", default: "1" },
  },
});
const N = Number(opts.nodes);
const R = Number(opts.requests);

printMachine(machineInfo());
const state = generateFleet({ nodes: N, seed: Number(opts.seed) });
const flat = indexFleet(state);
const byHub = new Map<string, FleetState["nodes"][number][]>();
for (const n of state.nodes) {
  const hub = `metro-${n.labels.zone}`;
  byHub.set(hub, [...(byHub.get(hub) ?? []), n]);
}
const hubIndex = new Map([...byHub].map(([h, nodes]) => [h, indexFleet({ nodes })]));
const hubs: SubtreeHub[] = [...byHub].map(([id, nodes]) => ({
  id,
  route: [id],
  connected: true,
  groups: groupNodes(
    id,
    nodes.map((n) => ({
      id: n.id,
      level: n.level,
      region: n.labels.region ?? "",
      site: n.labels.site ?? "",
      status: n.status,
      cpuFree: n.capacity.cpu_millis - n.allocated.cpu_millis,
      memFree: n.capacity.mem_mb - n.allocated.mem_mb,
    })),
  ),
}));

const r = rng(Number(opts.seed) + 1);
const regions = [...new Set(state.nodes.map((n) => n.labels.region!))];
const requests: PlacementRequest[] = Array.from({ length: R }, (_, k) => {
  const g = generateRequest(r, `w${k}`);
  const placement: NonNullable<PlacementRequest["placement"]> = {
    levels: g.placement!.levels!,
    preset: "balanced",
  };
  if (r() < 0.3) placement.regions = [regions[Math.floor(r() * regions.length)]!];
  return { name: g.name, replicas: g.replicas, resources: g.resources, placement };
});

const flatMs: number[] = [];
const twoMs: number[] = [];
let flatPlaced = 0;
let twoPlaced = 0;
let both = 0;
let flatScore = 0;
let twoScore = 0;
const mean = (p: { placements: { score: number }[] }) =>
  p.placements.reduce((s, x) => s + x.score, 0) / Math.max(1, p.placements.length);
for (const req of requests) {
  let t = performance.now();
  const f = place(flat, req);
  flatMs.push(performance.now() - t);
  t = performance.now();
  const sub = placeSubtree(hubs, {
    replicas: req.replicas ?? 1,
    resources: { cpu_millis: req.resources?.cpu_millis ?? 0, mem_mb: req.resources?.mem_mb ?? 0 },
    placement: req.placement as Record<string, unknown>,
  });
  const local = sub.chosen ? place(hubIndex.get(sub.chosen.hub)!, req) : undefined;
  twoMs.push(performance.now() - t);
  if (f.complete) flatPlaced += 1;
  if (local?.complete) twoPlaced += 1;
  if (f.complete && local?.complete) {
    both += 1;
    flatScore += mean(f);
    twoScore += mean(local);
  }
}
const row = (name: string, xs: number[], placed: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return [name, pct(s, 0.5).toFixed(3), pct(s, 0.99).toFixed(3), `${((100 * placed) / R).toFixed(1)}%`];
};
console.log(`fleet: ${N} nodes in ${byHub.size} metro hubs; ${R} requests`);
console.log(
  table([
    ["placement", "p50 ms", "p99 ms", "fully placed"],
    row("flat (one engine, every node)", flatMs, flatPlaced),
    row("two-level (summaries, then the hub's engine)", twoMs, twoPlaced),
  ]),
);
console.log(
  `mean score of the chosen nodes where both placed (${both} requests): flat ${(flatScore / both).toFixed(2)}, two-level ${(twoScore / both).toFixed(2)}, ratio ${(twoScore / flatScore).toFixed(3)}`,
);
