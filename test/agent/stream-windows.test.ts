// Specification of stream windows: tumbling and sliding boundaries in event time, tick flushing, p95 accuracy.
import { describe, expect, test } from "bun:test";
import {
  compilePipelines,
  type PointOutput,
  QuantileSketch,
  RELATIVE_ACCURACY,
  type StreamOutput,
} from "../../agent/stream/index.ts";
import { FakeClock } from "../support/fake-clock.ts";
import { mulberry32 as prng } from "../support/prng.ts";

const T0 = 1_717_999_200_000; // a whole hour, so windows of any size up to 1 h start on T0
const SEC = 1000;

function windowPipeline(window: Record<string, unknown>, source = "temp") {
  return compilePipelines({ pipelines: [{ name: "w", source, steps: [{ window }] }] });
}

const points = (outs: StreamOutput[]) => outs.filter((o): o is PointOutput => o.kind === "point");
/** `series@t=value` strings, easy to compare in order. */
const show = (outs: StreamOutput[]) => points(outs).map((p) => `${p.series}@${(p.t - T0) / SEC}s=${p.value}`);

/** Exact nearest-rank quantile. */
function exactQuantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(1, Math.ceil(q * s.length)) - 1]!;
}

describe("stream windows", () => {
  test("tumbling: a window closes when a point of the next window arrives, with count, sum, min, max, avg", () => {
    const p = windowPipeline({
      kind: "tumbling",
      size: "10s",
      fn: ["count", "sum", "min", "max", "avg"],
      emit_as: "t10",
    });
    for (const [s, v] of [
      [0, 4],
      [3, 1],
      [9.999, 7],
    ] as const) {
      expect(p.push("temp", T0 + s * SEC, v)).toEqual([]);
    }
    // A point exactly on the boundary belongs to the next window, and closes this one.
    expect(show(p.push("temp", T0 + 10 * SEC, 100))).toEqual([
      "t10.count@10s=3",
      "t10.sum@10s=12",
      "t10.min@10s=1",
      "t10.max@10s=7",
      "t10.avg@10s=4",
    ]);
  });

  test("tumbling with a fake clock: tick flushes a window exactly when its end passes, not before", async () => {
    const clock = new FakeClock(T0);
    const p = windowPipeline({ kind: "tumbling", size: "10s", fn: "avg", emit_as: "t10" });
    const out: StreamOutput[] = [];
    clock.setInterval(() => out.push(...p.tick(clock.now())), 250);
    clock.setInterval(() => out.push(...p.push("temp", clock.now(), (clock.now() - T0) / SEC)), SEC);
    // Points at 1..9 s (the one at 10 s belongs to the next window and is pushed after tick at 10 s).
    await clock.advance(9_999);
    expect(show(out)).toEqual([]);
    await clock.advance(1);
    expect(show(out)).toEqual(["t10.avg@10s=5"]);
    await clock.advance(10_000);
    expect(show(out)).toEqual(["t10.avg@10s=5", "t10.avg@20s=14.5"]);
  });

  test("tumbling: an empty window emits nothing, and a long gap emits only the windows that had points", () => {
    const p = windowPipeline({ kind: "tumbling", size: "10s", fn: "count", emit_as: "c" });
    p.push("temp", T0 + 1 * SEC, 1);
    expect(show(p.tick(T0 + 3600 * SEC))).toEqual(["c.count@10s=1"]);
    expect(p.tick(T0 + 7200 * SEC)).toEqual([]);
    p.push("temp", T0 + 7205 * SEC, 1);
    expect(show(p.push("temp", T0 + 7215 * SEC, 1))).toEqual(["c.count@7210s=1"]);
  });

  test("sliding: each emission covers the last `size`, every `every`, until the window runs empty", () => {
    const p = windowPipeline({
      kind: "sliding",
      size: "30s",
      every: "10s",
      fn: ["count", "max"],
      emit_as: "s",
    });
    const out = [
      ...p.push("temp", T0 + 1 * SEC, 5), // pane [0,10)
      ...p.push("temp", T0 + 12 * SEC, 9), // pane [10,20): closes the window ending at 10 s
      ...p.push("temp", T0 + 25 * SEC, 2), // pane [20,30)
      ...p.tick(T0 + 60 * SEC),
    ];
    expect(show(out)).toEqual([
      "s.count@10s=1",
      "s.max@10s=5",
      "s.count@20s=2",
      "s.max@20s=9",
      "s.count@30s=3",
      "s.max@30s=9",
      "s.count@40s=2", // [10,40)
      "s.max@40s=9",
      "s.count@50s=1", // [20,50)
      "s.max@50s=2",
    ]);
    expect(p.tick(T0 + 600 * SEC)).toEqual([]);
  });

  test("late points (before the open pane) are left out and counted", () => {
    const p = windowPipeline({ kind: "tumbling", size: "10s", fn: "count", emit_as: "c" });
    p.push("temp", T0 + 15 * SEC, 1);
    p.push("temp", T0 + 5 * SEC, 1); // its window [0,10) is already past
    p.push("temp", T0 + 12 * SEC, 1); // same open window, out of order: fine
    expect(show(p.tick(T0 + 20 * SEC))).toEqual(["c.count@20s=2"]);
    expect(p.stats().pipelines.w!.late).toBe(1);
  });

  test("windows are per series under a {series} template, labels carried to the output", () => {
    const p = windowPipeline(
      { kind: "tumbling", size: "10s", fn: "avg", emit_as: "agg.{series}.10s" },
      "sensor.*",
    );
    p.push("sensor.a{dev=1}", T0, 1);
    p.push("sensor.a{dev=2}", T0, 10);
    p.push("sensor.b", T0 + SEC, 3);
    p.push("sensor.b", T0 + 2 * SEC, 5);
    expect(show(p.tick(T0 + 10 * SEC))).toEqual([
      "agg.sensor.a.10s.avg{dev=1}@10s=1",
      "agg.sensor.a.10s.avg{dev=2}@10s=10",
      "agg.sensor.b.10s.avg@10s=4",
    ]);
  });

  test("windows without {series} merge every matching series into one", () => {
    const p = windowPipeline(
      { kind: "tumbling", size: "10s", fn: ["count", "avg"], emit_as: "all.10s" },
      "sensor.*",
    );
    p.push("sensor.a", T0, 1);
    p.push("sensor.b{x=y}", T0, 5);
    expect(show(p.tick(T0 + 10 * SEC))).toEqual(["all.10s.count@10s=2", "all.10s.avg@10s=3"]);
  });

  test("p95 from the sketch is within 1% of the exact nearest-rank p95 (seeded, varied distributions)", () => {
    const rand = prng(42);
    const gens: [string, () => number][] = [
      ["uniform 0..100", () => rand() * 100],
      ["log-normal", () => Math.exp(3 * (rand() + rand() + rand() - 1.5))],
      ["latency-like", () => (rand() < 0.97 ? 1 + rand() * 4 : 50 + rand() * 500)],
      ["around zero", () => rand() * 20 - 15],
      ["integers", () => Math.floor(rand() * 10)],
    ];
    for (const [name, gen] of gens) {
      for (const n of [1, 7, 20, 100, 5000]) {
        const p = windowPipeline({ kind: "tumbling", size: "1m", fn: ["p95"], emit_as: "q" });
        const values = Array.from({ length: n }, gen);
        values.forEach((v, i) => {
          p.push("temp", T0 + Math.floor((i * 60_000) / n), v);
        });
        const [got] = points(p.tick(T0 + 60 * SEC));
        const exact = exactQuantile(values, 0.95);
        const err = Math.abs(got!.value - exact);
        expect(err, `${name}, n=${n}: got ${got!.value}, exact ${exact}`).toBeLessThanOrEqual(
          RELATIVE_ACCURACY * Math.abs(exact) + 1e-9,
        );
      }
    }
  });

  test("sliding p95 merges panes within the same bound", () => {
    const rand = prng(7);
    const p = windowPipeline({ kind: "sliding", size: "1m", every: "10s", fn: ["p95", "p50"], emit_as: "q" });
    const all: [number, number][] = [];
    const outs: PointOutput[] = [];
    for (let i = 0; i < 6000; i++) {
      const t = T0 + i * 20;
      const v = Math.exp(rand() * 8);
      all.push([t, v]);
      outs.push(...points(p.push("temp", t, v)));
    }
    outs.push(...points(p.tick(T0 + 120 * SEC)));
    for (const o of outs) {
      const inWindow = all.filter(([t]) => t >= o.t - 60_000 && t < o.t).map(([, v]) => v);
      const exact = exactQuantile(inWindow, o.series.endsWith("p95") ? 0.95 : 0.5);
      expect(Math.abs(o.value - exact) / exact, `${o.series}@${o.t - T0}`).toBeLessThanOrEqual(
        RELATIVE_ACCURACY,
      );
    }
    // Windows end every 10 s, from 10 s up to the tick at 120 s.
    expect(outs.length).toBe(2 * 12);
  });

  test("the sketch stays bounded whatever the spread of values", () => {
    const s = new QuantileSketch();
    const rand = prng(3);
    for (let i = 0; i < 200_000; i++) s.add((rand() < 0.5 ? -1 : 1) * 10 ** (rand() * 600 - 300));
    const other = new QuantileSketch();
    other.add(1);
    s.merge(other);
    expect(s.count).toBe(200_001);
    expect(Number.isFinite(s.quantile(0.95))).toBe(true);
    expect(new QuantileSketch().quantile(0.5)).toBeNaN();
  });

  test("property: a tumbling avg equals the exact average of the points in each window (seeded, 300 cases)", () => {
    const rand = prng(2024);
    for (let c = 0; c < 300; c++) {
      const sizeMs = [100, 1000, 7000, 10_000, 60_000][Math.floor(rand() * 5)]!;
      const p = windowPipeline({ kind: "tumbling", size: sizeMs, fn: ["avg", "count"], emit_as: "a" });
      const n = 1 + Math.floor(rand() * 200);
      const byWindow = new Map<number, number[]>();
      let t = T0 + Math.floor(rand() * 100_000);
      const outs: StreamOutput[] = [];
      for (let i = 0; i < n; i++) {
        t += Math.floor(rand() * rand() * 3 * sizeMs); // bursts and gaps, never backwards
        const v = (rand() - 0.3) * 10 ** Math.floor(rand() * 6);
        const end = Math.floor(t / sizeMs) * sizeMs + sizeMs;
        byWindow.set(end, [...(byWindow.get(end) ?? []), v]);
        outs.push(...p.push("temp", t, v));
      }
      outs.push(...p.tick(t + sizeMs));
      const avgs = points(outs).filter((o) => o.series === "a.avg");
      expect(
        avgs.map((o) => o.t),
        `case ${c}`,
      ).toEqual([...byWindow.keys()]);
      for (const o of avgs) {
        const vs = byWindow.get(o.t)!;
        const exact = vs.reduce((a, b) => a + b, 0) / vs.length;
        expect(o.value, `case ${c} window ${o.t}`).toBeCloseTo(exact, 6);
      }
    }
  });
});
