// Specification of the pipeline set: filter, derive, routing, pipelines feeding pipelines, bounded state, hot reload.
import { describe, expect, test } from "bun:test";
import { compilePipelines, type StreamOutput } from "../../agent/stream/index.ts";
import { ConfigError } from "../../shared/errors.ts";

const T0 = 1_717_999_200_000;
const SEC = 1000;

/** Compact views of outputs: `series=value` for points, `!severity series: message` for alerts. */
function show(outs: StreamOutput[]): string[] {
  return outs.map((o) =>
    o.kind === "point" ? `${o.series}=${o.value}` : `!${o.severity} ${o.series}: ${o.message}`,
  );
}

describe("stream pipelines", () => {
  test("filter: only points for which the expression holds go on", () => {
    const p = compilePipelines({
      pipelines: [
        {
          name: "f",
          source: "x",
          steps: [{ filter: "value > 0 and t % 2000 == 0" }, { derive: { series: "y", expr: "value" } }],
        },
      ],
    });
    expect(show(p.push("x", T0, 5))).toEqual(["y=5"]);
    expect(show(p.push("x", T0 + SEC, 5))).toEqual([]);
    expect(show(p.push("x", T0 + 2 * SEC, -5))).toEqual([]);
    expect(p.stats().pipelines.f!.filtered).toBe(2);
  });

  test("derive: a new series from an expression; later steps see the derived point", () => {
    const p = compilePipelines({
      pipelines: [
        {
          name: "g",
          source: "sensor.vibration",
          steps: [
            { derive: { series: "sensor.vibration_g", expr: "value / 9.81" } },
            { threshold: { above: 2 } },
          ],
        },
      ],
    });
    expect(show(p.push("sensor.vibration", T0, 19.62))).toEqual(["sensor.vibration_g=2"]);
    expect(show(p.push("sensor.vibration", T0, 29.43))).toEqual([
      "!warning sensor.vibration_g: sensor.vibration_g = 3 above 2",
      "sensor.vibration_g=3",
    ]);
  });

  test("derive: a non-finite result drops the point and counts it; {series} keeps the labels", () => {
    const p = compilePipelines({
      pipelines: [
        { name: "d", source: "disk.*", steps: [{ derive: { series: "log.{series}", expr: "log(value)" } }] },
      ],
    });
    expect(show(p.push("disk.used{mount=/}", T0, Math.E))).toEqual(["log.disk.used{mount=/}=1"]);
    expect(show(p.push("disk.used{mount=/}", T0, -1))).toEqual([]);
    expect(p.stats().pipelines.d!.bad_values).toBe(1);
  });

  test("route hub: the input point itself is never re-emitted, only new series", () => {
    const p = compilePipelines({
      pipelines: [
        { name: "h", source: "cpu.util", steps: [{ filter: "value > 0" }, { threshold: { above: 90 } }] },
      ],
    });
    expect(p.push("cpu.util", T0, 50)).toEqual([]);
    expect(show(p.push("cpu.util", T0, 95))).toEqual(["!warning cpu.util: cpu.util = 95 above 90"]);
  });

  test("route alert: every result becomes an alert with the pipeline's severity and message", () => {
    const p = compilePipelines({
      pipelines: [
        {
          name: "hot",
          source: "cpu.util",
          steps: [{ filter: "value > 90" }],
          route: ["alert"],
          severity: "critical",
          message: "CPU at {value}%",
        },
      ],
    });
    expect(p.push("cpu.util", T0, 50)).toEqual([]);
    expect(p.push("cpu.util", T0, 95)).toEqual([
      {
        kind: "alert",
        pipeline: "hot",
        severity: "critical",
        message: "CPU at 95%",
        series: "cpu.util",
        t: T0,
        value: 95,
      },
    ]);
  });

  test("route hub and alert together: the derived point is both forwarded and alerted", () => {
    const p = compilePipelines({
      pipelines: [
        {
          name: "b",
          source: "x",
          steps: [{ derive: { series: "y", expr: "value * 2" } }],
          route: ["hub", "alert"],
        },
      ],
    });
    expect(show(p.push("x", T0, 2))).toEqual(["y=4", "!warning y: y = 4"]);
  });

  test("route drop: no points come out, but anomaly and threshold alerts still do", () => {
    const p = compilePipelines({
      pipelines: [
        {
          name: "quiet",
          source: "x",
          steps: [
            { derive: { series: "y", expr: "value" } },
            { window: { kind: "tumbling", size: "1s", fn: "avg", emit_as: "y1" } },
            { threshold: { above: 10 } },
          ],
          route: "drop",
        },
      ],
    });
    expect(show(p.push("x", T0, 11))).toEqual(["!warning y: y = 11 above 10"]);
    expect(p.tick(T0 + 10 * SEC)).toEqual([]);
    expect(p.stats().pipelines.quiet!.points_out).toBe(0);
  });

  test("pipeline outputs are series: a window's output feeds another pipeline in the same call", () => {
    const p = compilePipelines({
      pipelines: [
        {
          name: "rollup",
          source: "sensor.temp",
          steps: [{ window: { kind: "tumbling", size: "10s", fn: ["avg"], emit_as: "sensor_10s.temp" } }],
        },
        {
          name: "alarm",
          source: "sensor_10s.*",
          steps: [{ threshold: { above: 30, severity: "critical" } }],
        },
      ],
    });
    for (let s = 0; s < 10; s++) p.push("sensor.temp", T0 + s * SEC, 25 + s);
    // avg of 25..34 = 29.5: forwarded, no alarm.
    expect(show(p.push("sensor.temp", T0 + 10 * SEC, 40))).toEqual(["sensor_10s.temp.avg=29.5"]);
    for (let s = 11; s < 20; s++) p.push("sensor.temp", T0 + s * SEC, 40);
    expect(show(p.tick(T0 + 20 * SEC))).toEqual([
      "sensor_10s.temp.avg=40",
      "!critical sensor_10s.temp.avg: sensor_10s.temp.avg = 40 above 30",
    ]);
  });

  test("a point enters every pipeline whose source matches (exact and glob), in config order", () => {
    const p = compilePipelines({
      pipelines: [
        { name: "a", source: "net.*", steps: [{ derive: { series: "a.{series}", expr: "value + 1" } }] },
        { name: "b", source: "net.rx", steps: [{ derive: { series: "b.rx", expr: "value + 2" } }] },
        { name: "c", source: "*", steps: [{ threshold: { above: 100 } }] },
        { name: "d", source: "disk.*", steps: [{ derive: { series: "d.x", expr: "value" } }] },
      ],
    });
    // c sees the input and also the points a and b emit (they are series too).
    expect(show(p.push("net.rx{if=eth0}", T0, 100))).toEqual([
      "a.net.rx{if=eth0}=101",
      "!warning a.net.rx{if=eth0}: a.net.rx{if=eth0} = 101 above 100",
      "b.rx=102",
      "!warning b.rx: b.rx = 102 above 100",
    ]);
    expect(p.push("cpu.util", T0, 5)).toEqual([]);
  });

  test("state stays bounded: series beyond max_series are ignored and counted", () => {
    const p = compilePipelines({
      pipelines: [
        {
          name: "m",
          source: "app.*",
          max_series: 3,
          steps: [{ derive: { series: "x.{series}", expr: "value" } }],
        },
      ],
    });
    for (let i = 0; i < 10; i++) p.push(`app.s${i}`, T0, i);
    expect(show(p.push("app.s1", T0, 1))).toEqual(["x.app.s1=1"]);
    expect(p.push("app.s9", T0, 1)).toEqual([]);
    expect(p.stats().pipelines.m).toMatchObject({ series: 3, series_dropped: 8, points_in: 12 });
  });

  test("non-finite values and times are refused before any pipeline sees them", () => {
    const p = compilePipelines({
      pipelines: [{ name: "n", source: "x", steps: [{ threshold: { above: 0 } }] }],
    });
    expect(p.push("x", T0, Number.NaN)).toEqual([]);
    expect(p.push("x", T0, Number.POSITIVE_INFINITY)).toEqual([]);
    expect(p.push("x", Number.NaN, 1)).toEqual([]);
    expect(p.stats().rejected).toBe(3);
    expect(p.stats().pipelines.n!.points_in).toBe(0);
  });
});

describe("stream hot reload", () => {
  const windowed = (size: string) => ({
    name: "w",
    source: "x",
    steps: [{ window: { kind: "tumbling", size, fn: "count", emit_as: "xc" } }],
  });
  const thresholded = (above: number) => ({ name: "t", source: "x", steps: [{ threshold: { above } }] });

  test("unchanged pipelines keep their windows; changed ones start empty; removed ones stop", () => {
    const p = compilePipelines({ pipelines: [windowed("10s"), thresholded(5)] });
    for (let s = 0; s < 5; s++) p.push("x", T0 + s * SEC, 1);
    expect(p.replace({ pipelines: [windowed("10s"), thresholded(3)] })).toEqual({
      kept: ["w"],
      started: ["t"],
      removed: [],
    });
    expect(show(p.push("x", T0 + 6 * SEC, 4))).toEqual(["!warning x: x = 4 above 3"]);
    // The window kept its five points from before the reload.
    expect(show(p.tick(T0 + 10 * SEC))).toEqual(["xc.count=6"]);

    for (let s = 10; s < 15; s++) p.push("x", T0 + s * SEC, 1);
    expect(p.replace({ pipelines: [windowed("5s")] })).toEqual({ kept: [], started: ["w"], removed: ["t"] });
    expect(p.names).toEqual(["w"]);
    p.push("x", T0 + 16 * SEC, 9);
    expect(show(p.tick(T0 + 20 * SEC))).toEqual(["xc.count=1"]);
  });

  test("an invalid config is refused with ConfigError and the old pipelines stay in force", () => {
    const p = compilePipelines({ pipelines: [thresholded(5)] });
    expect(() =>
      p.replace({ pipelines: [thresholded(5), { name: "bad", source: "x", steps: [{ filter: "((" }] }] }),
    ).toThrow(ConfigError);
    expect(p.names).toEqual(["t"]);
    expect(show(p.push("x", T0, 6))).toEqual(["!warning x: x = 6 above 5"]);
  });

  test("a reload re-matches sources: a new pipeline sees series already flowing", () => {
    const p = compilePipelines({ pipelines: [] });
    expect(p.push("x", T0, 6)).toEqual([]);
    p.replace({ pipelines: [thresholded(5)] });
    expect(show(p.push("x", T0, 6))).toEqual(["!warning x: x = 6 above 5"]);
  });
});
