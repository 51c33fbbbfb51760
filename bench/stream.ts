// Stream processing latency: point in → alert out, in process, against the target p99 < 1 ms (docs/targets.md).
//
//   bun bench/stream.ts [--points 100000] [--spike-every 100] [--seed 1]
//
// Scenarios, each measured over --points points after a warm-up of 20,000:
//   example    the documented "vibration" pipeline (filter, derive, tumbling and sliding windows with
//              avg/max/p95/count, EWMA anomaly, threshold) on one series;
//   fleet      100 pipelines (glob and exact sources; thresholds, anomaly, windows, derives) over
//              1,000 series, each point matching several pipelines;
//   ingest     the example pipeline behind parseIngestBody: a one-point JSON body (bytes) is parsed
//              and pushed, as the agent's /v1/ingest handler does.
// Every --spike-every-th point is a spike that the threshold and the anomaly step alert on. Each
// push is timed alone (Bun.nanoseconds); "alert" rows are the pushes that returned an alert. Window
// flushes run from tick() every simulated second and are timed too.
// The same example pipeline behind a real agent's POST /v1/ingest (HTTP round trip): bench/stream-http.ts.
import { parseArgs } from "node:util";
import { compilePipelines, parseIngestBody, type StreamOutput } from "../agent/stream/index.ts";
import { mulberry32 } from "../test/support/prng.ts";
import { EXAMPLE } from "./_example-pipeline.ts";
import { latencyCells, machineInfo, pct, printMachine, table } from "./_machine.ts";

const { values: opts } = parseArgs({
  args: process.argv.slice(2),
  options: {
    points: { type: "string", default: "100000" },
    "spike-every": { type: "string", default: "100" },
    seed: { type: "string", default: "1" },
  },
});
const N = Number(opts.points);
const SPIKE_EVERY = Number(opts["spike-every"]);
const WARMUP = 20_000;
const T0 = 1_717_999_200_000;

const rand = mulberry32(Number(opts.seed));
const noise = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

function fleetConfig() {
  const pipelines: Record<string, unknown>[] = [];
  for (let i = 0; i < 100; i++) {
    const group = `g${i % 10}`;
    const steps: unknown[] = [];
    switch (i % 5) {
      case 0:
        steps.push({ threshold: { above: 500 + i, severity: "critical" } });
        break;
      case 1:
        steps.push({ anomaly: { alpha: 0.1, z: 6, min_points: 20 } }, { threshold: { above: 900 } });
        break;
      case 2:
        steps.push(
          { window: { kind: "tumbling", size: "10s", fn: ["avg", "p95"], emit_as: `agg${i}.{series}` } },
          { threshold: { above: 800 } },
        );
        break;
      case 3:
        steps.push(
          { filter: "value > 0" },
          { derive: { series: `d${i}.{series}`, expr: "value * 1.5 + 2" } },
          { threshold: { above: 1000 } },
        );
        break;
      default:
        steps.push(
          {
            window: {
              kind: "sliding",
              size: "1m",
              every: "10s",
              fn: ["count", "max"],
              emit_as: `sl${i}.{series}`,
            },
          },
          { threshold: { above: 700 } },
        );
    }
    // Half glob over a group, half one exact series.
    const source = i % 2 === 0 ? `app.${group}.*` : `app.${group}.s${i}`;
    pipelines.push({ name: `p${i}`, source, steps });
  }
  return { pipelines };
}

interface Row {
  scenario: string;
  all: Float64Array;
  alert: number[];
  tick: number[];
  alerts: number;
}

const us = (ns: number) => (ns / 1000).toFixed(1);

function measure(
  scenario: string,
  config: unknown,
  nextPoint: (i: number) => [string, number, number],
  push?: (p: ReturnType<typeof compilePipelines>, s: string, t: number, v: number) => StreamOutput[],
): Row {
  const p = compilePipelines(config);
  const doPush = push ?? ((pl, s, t, v) => pl.push(s, t, v));
  const all = new Float64Array(N);
  const alert: number[] = [];
  const tick: number[] = [];
  let alerts = 0;
  let lastTick = T0;
  for (let i = -WARMUP; i < N; i++) {
    const [series, t, value] = nextPoint(i);
    if (t - lastTick >= 1000) {
      lastTick = t;
      const a = Bun.nanoseconds();
      p.tick(t);
      if (i >= 0) tick.push(Bun.nanoseconds() - a);
    }
    const a = Bun.nanoseconds();
    const out = doPush(p, series, t, value);
    const dt = Bun.nanoseconds() - a;
    if (i < 0) continue;
    all[i] = dt;
    if (out.some((o) => o.kind === "alert")) {
      alert.push(dt);
      alerts++;
    }
  }
  all.sort();
  alert.sort((x, y) => x - y);
  tick.sort((x, y) => x - y);
  return { scenario, all, alert, tick, alerts };
}

printMachine(machineInfo());
console.log(`points: ${N} per scenario after ${WARMUP} warm-up; one spike every ${SPIKE_EVERY}\n`);

// 100 points a second of one sensor: the windows close every 10 s and 5 s of simulated time.
const vibration = (i: number): [string, number, number] => [
  "sensor.vibration",
  T0 + (i + WARMUP) * 10,
  9.81 * (20 + noise()) + ((i + WARMUP) % SPIKE_EVERY === 0 ? 9.81 * 60 : 0),
];

const fleetSeries = Array.from({ length: 1000 }, (_, k) => `app.g${k % 10}.s${Math.floor(k / 10)}`);
const fleet = (i: number): [string, number, number] => {
  const k = (i + WARMUP) % fleetSeries.length;
  return [
    fleetSeries[k]!,
    T0 + (i + WARMUP) * 2, // 500 points/s over 1,000 series
    100 + 10 * noise() + ((i + WARMUP) % SPIKE_EVERY === 0 ? 5000 : 0),
  ];
};

const encoder = new TextEncoder();
const rows = [
  measure("example", EXAMPLE, vibration),
  measure("fleet (100 pipelines, 1,000 series)", fleetConfig(), fleet),
  measure("ingest JSON + example", EXAMPLE, vibration, (p, s, t, v) => {
    const body = encoder.encode(JSON.stringify({ points: [{ series: s, t, value: v }] }));
    const out: StreamOutput[] = [];
    for (const pt of parseIngestBody(body, "application/json", t))
      out.push(...p.push(pt.series, pt.t, pt.value));
    return out;
  }),
];

const header = ["scenario", "what", "n", "p50 µs", "p99 µs", "p99.9 µs", "max µs"];
const body: (string | number)[][] = [header];
for (const r of rows) {
  const line = (what: string, xs: ArrayLike<number>) => body.push([r.scenario, what, ...latencyCells(xs)]);
  line("every push", r.all);
  line("push → alert", r.alert);
  line("tick (window flush)", r.tick);
}
console.log(table(body));
const worst = Math.max(...rows.map((r) => pct(r.alert, 0.99)));
console.log(
  `\npoint → alert p99, worst scenario: ${us(worst)} µs (target < 1000 µs): ${worst < 1e6 ? "met" : "MISSED"}`,
);
