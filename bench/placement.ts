// Placement benchmark: one request against 1k/10k/50k nodes with the full explanation, and a batch vs greedy.
//
//   bun bench/placement.ts [--sizes 1000,10000,50000] [--iterations 2000] [--batch 1000] [--batch-nodes 10000]
//                          [--load 0.5] [--tightness 0.9] [--seed 1]
//
// 1. Generates a five-tier fleet per size (bench/placement-fleet.ts: six regions, 5% of nodes not
//    ready, capacity and RTTs by level) and indexes it once (the hub keeps the index between requests).
// 2. Places a rotating mix of generated requests (level bands, selectors, residency, latency
//    ceilings, 1-3 replicas, every preset) with 10 explained candidates and 3 example ids per
//    filter; reports p50/p99 per placement and placements per second on one core.
// 3. Batch: a tight failover (bench/placement-fleet.ts failoverBatch): --batch requests confined to
//    one region and levels 3-4 of a --batch-nodes fleet, demand = --tightness × the free capacity
//    there; placeBatch against the greedy baseline (each request in turn takes the best nodes
//    left), same scores, same run.
import { parseArgs } from "node:util";
import { indexFleet, place, placeBatch, placeGreedy } from "../hub/placement/index.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";
import { failoverBatch, generateFleet, generateRequest, rng } from "./placement-fleet.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    sizes: { type: "string", default: "1000,10000,50000" },
    iterations: { type: "string", default: "2000" },
    batch: { type: "string", default: "1000" },
    "batch-nodes": { type: "string", default: "10000" },
    load: { type: "string", default: "0.5" },
    tightness: { type: "string", default: "0.9" },
    seed: { type: "string", default: "1" },
  },
});
const sizes = opts.sizes.split(",").map(Number);
const iterations = Number(opts.iterations);
const seed = Number(opts.seed);

const quantile = (sorted: number[], q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const ms = (x: number) => x.toFixed(3);

printMachine(machineInfo());
console.log();

const r = rng(seed);
const requests = Array.from({ length: 500 }, (_, k) => generateRequest(r, `w${k}`));
const rows: (string | number)[][] = [
  ["nodes", "index ms", "p50 ms", "p99 ms", "max ms", "placements/s", "feasible", "placed", "cold ms"],
];
for (const n of sizes) {
  const state = generateFleet({ nodes: n, seed });
  let t = performance.now();
  const fleet = indexFleet(state);
  const indexMs = performance.now() - t;
  for (let k = 0; k < 200; k++) place(fleet, requests[k % requests.length]!);
  const times: number[] = [];
  let feasible = 0;
  let complete = 0;
  const start = performance.now();
  for (let k = 0; k < iterations; k++) {
    t = performance.now();
    const plan = place(fleet, requests[k % requests.length]!, { candidates: 10, examples: 3 });
    times.push(performance.now() - t);
    feasible += plan.feasible;
    if (plan.complete) complete++;
  }
  const wall = performance.now() - start;
  t = performance.now();
  const coldRuns = 5;
  for (let k = 0; k < coldRuns; k++) place(state, requests[k]!);
  const cold = (performance.now() - t) / coldRuns;
  times.sort((a, b) => a - b);
  rows.push([
    n,
    ms(indexMs),
    ms(quantile(times, 0.5)),
    ms(quantile(times, 0.99)),
    ms(times[times.length - 1]!),
    Math.round((iterations / wall) * 1000),
    `${Math.round((100 * feasible) / iterations / n)}%`,
    `${Math.round((100 * complete) / iterations)}%`,
    ms(cold),
  ]);
}
console.log(
  `one request, ${iterations} placements per size, 10 candidates with score parts, 3 examples per filter`,
);
console.log(table(rows));
console.log("(feasible: average share of nodes passing every filter; placed: requests fully placed;");
console.log(" cold: place() on the raw FleetState, indexing included)");
console.log();

const batchNodes = Number(opts["batch-nodes"]);
const batchSize = Number(opts.batch);
const state = generateFleet({ nodes: batchNodes, seed: seed + 1, load: Number(opts.load) });
const fleet = indexFleet(state);
const batch = failoverBatch(state, batchSize, seed + 2, Number(opts.tightness));
let t = performance.now();
const greedy = placeGreedy(fleet, batch);
const greedyMs = performance.now() - t;
t = performance.now();
const best = placeBatch(fleet, batch);
const batchMs = performance.now() - t;
console.log(
  `batch: failover of ${batchSize} requests (${best.requested} replicas) into one region, levels 3-4, of a ${batchNodes}-node fleet;`,
);
console.log(`demand = ${opts.tightness} × the free cpu and memory there`);
console.log(
  table([
    ["method", "ms", "replicas placed", "requests complete", "total score", "mean score"],
    ...[
      ["greedy (one by one)", greedyMs, greedy],
      ["placeBatch", batchMs, best],
    ].map(([name, time, plan]) => {
      const p = plan as typeof best;
      return [
        name as string,
        (time as number).toFixed(0),
        `${p.placed}/${p.requested}`,
        p.plans.filter((x) => x.complete).length,
        p.total_score.toFixed(1),
        (p.total_score / Math.max(1, p.placed)).toFixed(2),
      ];
    }),
  ]),
);
console.log(
  `batch vs greedy: +${best.placed - greedy.placed} replicas placed, total score x${(best.total_score / greedy.total_score).toFixed(4)}`,
);
