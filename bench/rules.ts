// Rule evaluation: 100 rules (simple and compound) against one sample; p50/p99 of one `evaluate` call (target p99 < 100 µs).
//
//   bun bench/rules.ts [--rules 100] [--iterations 100000] [--seed 1]
//
// Two runs over the same compiled set: "one sample" evaluates the same host sample every time (the rules
// settle, as on a quiet host); "moving" cycles through 1,000 pre-built samples whose values wander across the
// thresholds, so that rules keep going pending, firing and clearing and decisions are built with their inputs.
import { parseArgs } from "node:util";
import { systemClock } from "../shared/clock.ts";
import { type AgentState, compileRules, RuleEngine, type Snapshot } from "../shared/rules/index.ts";
import { mulberry32 as rng } from "../test/support/prng.ts";
import { machineInfo, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rules: { type: "string", default: "100" },
    iterations: { type: "string", default: "100000" },
    seed: { type: "string", default: "1" },
  },
});
const ruleCount = Number(opts.rules);
const iterations = Number(opts.iterations);

const r = rng(Number(opts.seed));
const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

/** What a host sample holds: the collector's series, two mounts, and a few pushed application series. */
const SERIES = [
  "cpu.util",
  "cpu.load1",
  "mem.used_pct",
  "net.rx_bps",
  "net.tx_bps",
  "temp.cpu_c",
  'disk.used_pct{mount="/"}',
  'disk.used_pct{mount="/data"}',
  "app.queue_depth",
  "app.latency_ms",
];

/** Half simple comparisons, half compound conditions (2-4 comparisons, and/or/not, state variables). */
function ruleAt(i: number): Record<string, unknown> {
  const cmp = () =>
    `${SERIES[int(0, SERIES.length - 1)]} ${[">", ">=", "<", "<="][int(0, 3)]} ${int(10, 90)}`;
  let when: string;
  switch (i % 4) {
    case 0:
    case 1:
      when = cmp();
      break;
    case 2:
      when = `${cmp()} and (${cmp()} or not ${cmp()})`;
      break;
    default:
      when = `(state.connected == 0 and state.offline_s > ${int(60, 3600)}) or (${cmp()} and mem.avail_bytes < ${int(1, 4)}e9) or state.buffer_fill > 0.${int(5, 9)}`;
  }
  return {
    name: `rule-${i}`,
    when,
    for: ["0s", "5s", "30s"][i % 3],
    ...(i % 5 === 0 ? { clear_when: `not (${when})`, clear_for: "10s" } : {}),
    cooldown: i % 2 === 0 ? "1m" : "0s",
    severity: ["info", "warning", "critical"][i % 3],
    actions: [{ alert: `rule ${i}` }, i % 2 === 0 ? { pause_tasks_below: 5 } : { downsample_buffer: true }],
  };
}

function sample(level: number): Snapshot {
  const values = new Map<string, number>();
  for (const s of SERIES) values.set(s, Math.max(0, Math.min(100, level + (r() - 0.5) * 40)));
  values.set("mem.avail_bytes", 1e9 + r() * 4e9);
  const state: AgentState = {
    connected: r() < 0.7,
    offline_s: r() * 7200,
    buffer_fill: r(),
    tasks_running: int(0, 20),
    tasks_paused: int(0, 3),
  };
  return { values, state };
}

const quantile = (sorted: Float64Array, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const us = (ns: number) => (ns / 1000).toFixed(2);

printMachine(machineInfo());
console.log();

const t = performance.now();
const set = compileRules(Array.from({ length: ruleCount }, (_, i) => ruleAt(i)));
const compileMs = performance.now() - t;
console.log(`compiled ${set.rules.length} rules in ${compileMs.toFixed(2)} ms`);

const one = sample(50);
const moving = Array.from({ length: 1000 }, (_, k) => sample(50 + 45 * Math.sin(k / 40)));

const rows: (string | number)[][] = [
  ["run", "iterations", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "mean µs", "decisions"],
];
for (const [name, pick] of [
  ["one sample", () => one],
  ["moving", (k: number) => moving[k % moving.length]!],
] as const) {
  const engine = new RuleEngine(set, systemClock);
  let now = 1_718_000_000_000;
  for (let k = 0; k < 20_000; k++) {
    now += 1000;
    engine.evaluate(pick(k), now);
  }
  const times = new Float64Array(iterations);
  let decisions = 0;
  for (let k = 0; k < iterations; k++) {
    const s = pick(k);
    now += 1000;
    const start = Bun.nanoseconds();
    decisions += engine.evaluate(s, now).length;
    times[k] = Bun.nanoseconds() - start;
  }
  const total = times.reduce((a, b) => a + b, 0);
  times.sort();
  rows.push([
    name,
    iterations,
    us(quantile(times, 0.5)),
    us(quantile(times, 0.99)),
    us(quantile(times, 0.999)),
    us(times[times.length - 1]!),
    us(total / iterations),
    decisions,
  ]);
}
console.log(table(rows));
console.log("\ntarget (docs/targets.md): p99 < 100 µs for 100 rules, one sample");
