// Specification of pipeline config validation: the documented shape compiles; every error names the pipeline and field.
import { describe, expect, test } from "bun:test";
import { compilePipelines, parsePipelinesConfig } from "../../agent/stream/index.ts";
import { ConfigError } from "../../shared/errors.ts";

const EXAMPLE = `
pipelines:
  - name: vibration
    source: "sensor.vibration"
    steps:
      - filter: "value > 0"
      - derive: { series: "sensor.vibration_g", expr: "value / 9.81" }
      - window: { kind: tumbling, size: 10s, fn: [avg, max, p95], emit_as: "sensor.vibration_10s" }
      - window: { kind: sliding, size: 1m, every: 5s, fn: [count] }
      - anomaly: { method: ewma, alpha: 0.1, z: 4, min_points: 20, severity: warning }
      - threshold: { above: 50, severity: critical, message: "vibration over 50" }
    route: [hub]
`;

function configError(config: unknown): ConfigError {
  try {
    parsePipelinesConfig(config);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(config)}`);
}

/** One pipeline named "p" over "x" with the given steps (and extra pipeline keys). */
const one = (steps: unknown[], extra: Record<string, unknown> = {}) => ({
  pipelines: [{ name: "p", source: "x", steps, ...extra }],
});

describe("stream config", () => {
  test("the documented example compiles, with its defaults filled in", () => {
    const [spec] = parsePipelinesConfig(Bun.YAML.parse(EXAMPLE));
    expect(spec!.name).toBe("vibration");
    expect(spec!.route).toEqual({ hub: true, alert: false });
    expect(spec!.steps.map((s) => s.kind)).toEqual([
      "filter",
      "derive",
      "window",
      "window",
      "anomaly",
      "threshold",
    ]);
    const sliding = spec!.steps[3]!;
    expect(sliding).toMatchObject({
      kind: "window",
      window: "sliding",
      size: 60_000,
      every: 5000,
      fns: ["count"],
    });
    expect(sliding.kind === "window" && sliding.emitAs.text).toBe("{series}.1m");
    expect(spec!.steps[4]).toMatchObject({
      kind: "anomaly",
      alpha: 0.1,
      spreadAlpha: 0.02,
      z: 4,
      minPoints: 20,
      direction: "both",
    });
    expect(compilePipelines(Bun.YAML.parse(EXAMPLE)).names).toEqual(["vibration"]);
  });

  test("no pipelines section means no pipelines; other top-level keys are ignored", () => {
    expect(parsePipelinesConfig(undefined)).toEqual([]);
    expect(parsePipelinesConfig({ hub: "ws://x", pipelines: null })).toEqual([]);
    expect(compilePipelines({}).names).toEqual([]);
  });

  test("errors name the field path and the pipeline", () => {
    const cases: [unknown, string, RegExp][] = [
      [{ pipelines: "x" }, "pipelines", /must be a list/],
      [{ pipelines: [{ source: "x" }] }, "pipelines.0.name", /./],
      [{ pipelines: [{ name: "bad name!", source: "x" }] }, "pipelines.0.name", /letters, digits/],
      [{ pipelines: [{ name: "p", source: "x", colour: 1 }] }, "pipelines.0.colour", /pipeline "p"/],
      [{ pipelines: [{ name: "p", source: "a.*.b" }] }, "pipelines.0.source", /prefix glob/],
      [{ pipelines: [{ name: "p", source: "x{a=b}" }] }, "pipelines.0.source", /prefix glob/],
      [one([], { route: ["hub", "fax"] }), "pipelines.0.route", /hub/],
      [one([], { route: ["hub", "drop"] }), "pipelines.0.route", /drop cannot be combined/],
      [one([{ filter: "value >" }]), "pipelines.0.steps.0.filter", /pipeline "p": expected .* column 8/],
      [one([{ fliter: "value > 1" }]), "pipelines.0.steps.0.fliter", /unknown step/],
      [one([{ filter: "1", derive: {} }]), "pipelines.0.steps.0", /exactly one of/],
      [one(["filter"]), "pipelines.0.steps.0", /exactly one of/],
      [one([{ derive: { series: "y", expr: "value *" } }]), "pipelines.0.steps.0.derive.expr", /column/],
      [one([{ derive: { series: "Y Z", expr: "1" } }]), "pipelines.0.steps.0.derive.series", /series name/],
      [one([{ derive: { expr: "1" } }]), "pipelines.0.steps.0.derive.series", /./],
      [
        one([{ window: { kind: "tumbling", size: "10 parsecs", fn: "avg" } }]),
        "pipelines.0.steps.0.window.size",
        /duration/,
      ],
      [
        one([{ window: { kind: "tumbling", size: "10s", fn: "median" } }]),
        "pipelines.0.steps.0.window.fn",
        /p95/,
      ],
      [
        one([{ window: { kind: "hopping", size: "10s", fn: "avg" } }]),
        "pipelines.0.steps.0.window.kind",
        /sliding/,
      ],
      [
        one([{ window: { kind: "sliding", size: "1m", fn: "avg" } }]),
        "pipelines.0.steps.0.window.every",
        /needs every/,
      ],
      [
        one([{ window: { kind: "sliding", size: "1m", every: "7s", fn: "avg" } }]),
        "pipelines.0.steps.0.window.every",
        /divide size/,
      ],
      [
        one([{ window: { kind: "sliding", size: "1h", every: "1s", fn: "avg" } }]),
        "pipelines.0.steps.0.window.every",
        /at most 1000/,
      ],
      [
        one([{ window: { kind: "tumbling", size: "25h", fn: "avg" } }]),
        "pipelines.0.steps.0.window.size",
        /between/,
      ],
      [
        one([
          { window: { kind: "tumbling", size: "10s", fn: "avg", emit_as: "w" } },
          { window: { kind: "sliding", size: "10s", every: "5s", fn: "max", emit_as: "w" } },
        ]),
        "pipelines.0.steps.1.window.emit_as",
        /like steps.0/,
      ],
      [one([{ anomaly: { alpha: 1.5 } }]), "pipelines.0.steps.0.anomaly.alpha", /at most 1/],
      [one([{ anomaly: { method: "arima" } }]), "pipelines.0.steps.0.anomaly.method", /ewma/],
      [one([{ anomaly: { min_points: 1 } }]), "pipelines.0.steps.0.anomaly.min_points", /./],
      [
        one([{ threshold: { severity: "critical" } }]),
        "pipelines.0.steps.0.threshold",
        /above, below or both/,
      ],
      [one([{ threshold: { above: "50" } }]), "pipelines.0.steps.0.threshold.above", /number/],
      [
        one([{ threshold: { above: 1, severity: "panic" } }]),
        "pipelines.0.steps.0.threshold.severity",
        /critical/,
      ],
      [
        {
          pipelines: [
            { name: "a", source: "x" },
            { name: "a", source: "y" },
          ],
        },
        "pipelines.1.name",
        /duplicate name \(also pipelines.0\)/,
      ],
    ];
    for (const [config, field, message] of cases) {
      const err = configError(config);
      expect(err.field, JSON.stringify(config)).toBe(field);
      expect(err.message, JSON.stringify(config)).toMatch(message);
      expect(err.code).toBe("bad_config");
    }
  });

  test("a named pipeline's error message says which pipeline", () => {
    const err = configError({
      pipelines: [
        { name: "ok", source: "x" },
        { name: "vibration", source: "y", steps: [{ threshold: { above: "high" } }] },
      ],
    });
    expect(err.field).toBe("pipelines.1.steps.0.threshold.above");
    expect(err.message).toContain('pipeline "vibration"');
  });

  test("refuses a pipeline whose output matches its own source", () => {
    const err = configError({
      pipelines: [
        {
          name: "self",
          source: "sensor.*",
          steps: [{ window: { kind: "tumbling", size: "10s", fn: "avg", emit_as: "sensor.avg_10s" } }],
        },
      ],
    });
    expect(err.field).toBe("pipelines.0.steps.0.window.emit_as");
    expect(err.message).toMatch(
      /output "sensor.avg_10s.avg" matches this pipeline's own source "sensor\.\*"; a pipeline may not feed itself/,
    );
  });

  test("refuses pipelines that feed each other in a loop, and accepts a chain", () => {
    const a = { name: "a", source: "x", steps: [{ derive: { series: "y", expr: "value" } }] };
    const b = { name: "b", source: "y", steps: [{ derive: { series: "z", expr: "value" } }] };
    const c = { name: "c", source: "z", steps: [{ derive: { series: "x", expr: "value" } }] };
    expect(parsePipelinesConfig({ pipelines: [a, b] })).toHaveLength(2);
    const err = configError({ pipelines: [a, b, c] });
    expect(err.message).toMatch(/"a" → "b" → "c" → "a"/);
    // A loop through a pipeline that routes nothing to the hub emits no points, so it is no loop.
    expect(parsePipelinesConfig({ pipelines: [a, b, { ...c, route: "drop" }] })).toHaveLength(3);
  });

  test("per-series output names under a glob source are checked conservatively", () => {
    // sensor.* → "{series}.10s" → "sensor.<x>.10s.avg", which sensor.* matches again.
    const err = configError({
      pipelines: [
        { name: "g", source: "sensor.*", steps: [{ window: { kind: "tumbling", size: "10s", fn: "avg" } }] },
      ],
    });
    expect(err.field).toBe("pipelines.0.steps.0.window.emit_as");
    // Written under another prefix it is fine.
    expect(
      parsePipelinesConfig({
        pipelines: [
          {
            name: "g",
            source: "sensor.*",
            steps: [{ window: { kind: "tumbling", size: "10s", fn: "avg", emit_as: "agg.{series}.10s" } }],
          },
        ],
      }),
    ).toHaveLength(1);
  });
});
