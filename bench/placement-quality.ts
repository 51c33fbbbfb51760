// Batch placement quality against the exact optimum (brute force) on small tight instances, and greedy's.
//
//   bun bench/placement-quality.ts [--instances 400] [--seed 1]
//
// Each instance (bench/placement-fleet.ts smallInstance): 3-6 nodes over two zones, 3-6 requests of
// 1-2 replicas (at most 8), demand close to free capacity, mixed presets, spread caps, affinity to
// an existing workload. The optimum maximises replicas placed, then total score (bench/placement-exact.ts).
import { parseArgs } from "node:util";
import { type BatchPlan, placeBatch, placeGreedy } from "../hub/placement/index.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";
import { solveExact } from "./placement-exact.ts";
import { smallInstance } from "./placement-fleet.ts";

export interface QualityRow {
  instances: number;
  /** Instances where the method placed as many replicas as the optimum. */
  sameCount: number;
  /** Instances where the optimum placed every replica and so did the method. */
  allPlacedWhenOptimumDoes: number;
  optimumPlacesAll: number;
  /** total score / optimum's, over the instances with the same count and a positive optimum. */
  meanRatio: number;
  minRatio: number;
  /** Instances below 97% of the optimum's score. */
  below97: number;
  /** Instances where the method beat the optimum (would mean a bug in one of them). */
  aboveOptimum: number;
}

/** Runs placeBatch and placeGreedy on `instances` seeded instances and compares both with the optimum. */
export function measureQuality(instances: number, seed: number): { batch: QualityRow; greedy: QualityRow } {
  const rows = {
    batch: { ratios: [] as number[], same: 0, all: 0, above: 0 },
    greedy: { ratios: [] as number[], same: 0, all: 0, above: 0 },
  };
  let optimumAll = 0;
  for (let k = 0; k < instances; k++) {
    const inst = smallInstance(seed + k);
    const opt = solveExact(inst.state, inst.requests);
    const requested = inst.requests.reduce((n, r) => n + (r.replicas ?? 1), 0);
    if (opt.placed === requested) optimumAll++;
    const plans: [keyof typeof rows, BatchPlan][] = [
      ["batch", placeBatch(inst.state, inst.requests)],
      ["greedy", placeGreedy(inst.state, inst.requests)],
    ];
    for (const [name, plan] of plans) {
      const row = rows[name];
      if (plan.placed > opt.placed || (plan.placed === opt.placed && plan.total_score > opt.total + 1e-3))
        row.above++;
      if (plan.placed !== opt.placed) continue;
      row.same++;
      if (opt.placed === requested) row.all++;
      if (opt.total > 0) row.ratios.push(plan.total_score / opt.total);
    }
  }
  const summary = (r: (typeof rows)["batch"]): QualityRow => ({
    instances,
    sameCount: r.same,
    allPlacedWhenOptimumDoes: r.all,
    optimumPlacesAll: optimumAll,
    meanRatio: r.ratios.reduce((a, b) => a + b, 0) / Math.max(1, r.ratios.length),
    minRatio: Math.min(...r.ratios),
    below97: r.ratios.filter((x) => x < 0.97).length,
    aboveOptimum: r.above,
  });
  return { batch: summary(rows.batch), greedy: summary(rows.greedy) };
}

if (import.meta.main) {
  const { values: opts } = parseArgs({
    args: process.argv.slice(2),
    options: { instances: { type: "string", default: "400" }, seed: { type: "string", default: "1" } },
  });
  printMachine(machineInfo());
  const t = performance.now();
  const q = measureQuality(Number(opts.instances), Number(opts.seed));
  console.log(
    `\n${opts.instances} instances from seed ${opts.seed}, ${(performance.now() - t).toFixed(0)} ms in all`,
  );
  const line = (name: string, r: QualityRow) => [
    name,
    `${r.sameCount}/${r.instances}`,
    `${r.allPlacedWhenOptimumDoes}/${r.optimumPlacesAll}`,
    r.meanRatio.toFixed(5),
    r.minRatio.toFixed(4),
    r.below97,
    r.aboveOptimum,
  ];
  console.log(
    table([
      [
        "method",
        "same count as optimum",
        "all placed when optimum does",
        "mean score/opt",
        "min",
        "<97%",
        ">opt",
      ],
      line("placeBatch", q.batch),
      line("greedy", q.greedy),
    ]),
  );
}
