// Specification of stream alerts: EWMA z-score anomalies after warm-up, static thresholds, cooldowns.
import { describe, expect, test } from "bun:test";
import { type AlertOutput, compilePipelines, type StreamOutput } from "../../agent/stream/index.ts";
import { mulberry32 as prng } from "../support/prng.ts";

const T0 = 1_717_999_200_000;
const SEC = 1000;

/** Standard normal noise from the seeded PRNG (Box-Muller). */
function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

const alerts = (outs: StreamOutput[]) => outs.filter((o): o is AlertOutput => o.kind === "alert");

function anomalyPipeline(anomaly: Record<string, unknown>) {
  return compilePipelines({
    pipelines: [{ name: "vib", source: "sensor.vibration", steps: [{ anomaly }], route: "drop" }],
  });
}

describe("stream anomaly detection", () => {
  test("EWMA z-score stays quiet on steady noise (seeded, 20,000 points)", () => {
    const noise = gaussian(prng(11));
    const p = anomalyPipeline({ method: "ewma", alpha: 0.1, z: 5, min_points: 20 });
    const out: StreamOutput[] = [];
    for (let i = 0; i < 20_000; i++) out.push(...p.push("sensor.vibration", T0 + i * SEC, 20 + noise()));
    expect(alerts(out)).toEqual([]);
  });

  test("at z = 4 the false-alarm rate on steady noise stays near the Gaussian tail (seeded, 100,000 points)", () => {
    const noise = gaussian(prng(21));
    const p = anomalyPipeline({ method: "ewma", alpha: 0.1, z: 4, min_points: 20 });
    let fired = 0;
    for (let i = 0; i < 100_000; i++)
      fired += alerts(p.push("sensor.vibration", T0 + i * SEC, 20 + noise())).length;
    // |z| ≥ 4 for the true σ: 0.63 per 10,000; ewma.ts documents about 1.2 with an estimated spread.
    expect(fired).toBeLessThan(30);
  });

  test("EWMA z-score fires on a spike after warm-up, naming the series, value and z", () => {
    const noise = gaussian(prng(12));
    const p = anomalyPipeline({ alpha: 0.1, z: 4, min_points: 20, severity: "critical" });
    for (let i = 0; i < 200; i++)
      expect(alerts(p.push("sensor.vibration", T0 + i * SEC, 20 + noise()))).toEqual([]);
    const [alert, ...rest] = alerts(p.push("sensor.vibration", T0 + 200 * SEC, 40));
    expect(rest).toEqual([]);
    expect(alert).toMatchObject({
      kind: "alert",
      pipeline: "vib",
      severity: "critical",
      series: "sensor.vibration",
      t: T0 + 200 * SEC,
      value: 40,
    });
    expect(alert!.z!).toBeGreaterThan(10);
    expect(alert!.message).toMatch(/sensor.vibration = 40 is unusual: z = \d+/);
  });

  test("no alert during warm-up, however wild the first points are", () => {
    const p = anomalyPipeline({ alpha: 0.1, z: 3, min_points: 20 });
    const wild = [1, 1000, -500, 3, 9999, 0, 42, 7, -1, 1e6, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5];
    const out = wild.flatMap((v, i) => p.push("sensor.vibration", T0 + i * SEC, v));
    expect(alerts(out)).toEqual([]);
  });

  test("direction: up ignores drops, down ignores spikes", () => {
    for (const [direction, spike, fires] of [
      ["up", 40, true],
      ["up", 0, false],
      ["down", 0, true],
      ["down", 40, false],
    ] as const) {
      const noise = gaussian(prng(13));
      const p = anomalyPipeline({ alpha: 0.1, z: 4, min_points: 20, direction });
      for (let i = 0; i < 100; i++) p.push("sensor.vibration", T0 + i * SEC, 20 + noise());
      expect(alerts(p.push("sensor.vibration", T0 + 100 * SEC, spike)).length, `${direction} ${spike}`).toBe(
        fires ? 1 : 0,
      );
    }
  });

  test("baselines are per series under a glob source", () => {
    const p = compilePipelines({
      pipelines: [
        { name: "a", source: "m.*", steps: [{ anomaly: { z: 4, min_points: 10 } }], route: "drop" },
      ],
    });
    const noise = gaussian(prng(14));
    for (let i = 0; i < 100; i++) {
      p.push("m.low", T0 + i * SEC, 10 + noise());
      p.push("m.high", T0 + i * SEC, 1000 + noise());
    }
    // 1000 is normal for m.high and a wild outlier for m.low.
    expect(alerts(p.push("m.high", T0 + 100 * SEC, 1000))).toEqual([]);
    expect(alerts(p.push("m.low", T0 + 100 * SEC, 1000)).map((a) => a.series)).toEqual(["m.low"]);
  });
});

describe("stream thresholds", () => {
  const threshold = (th: Record<string, unknown>) =>
    compilePipelines({
      pipelines: [{ name: "th", source: "temp", steps: [{ threshold: th }], route: "drop" }],
    });

  test("above and below are strict; the message is the configured one or says which bound", () => {
    const p = threshold({ above: 50, below: 10, severity: "critical" });
    expect(alerts(p.push("temp", T0, 50))).toEqual([]);
    expect(alerts(p.push("temp", T0, 10))).toEqual([]);
    expect(alerts(p.push("temp", T0, 50.5))).toEqual([
      {
        kind: "alert",
        pipeline: "th",
        severity: "critical",
        message: "temp = 50.5 above 50",
        series: "temp",
        t: T0,
        value: 50.5,
      },
    ]);
    expect(alerts(p.push("temp", T0, 9))[0]!.message).toBe("temp = 9 below 10");
    const q = threshold({ above: 1, message: "{series} hot: {value}" });
    expect(alerts(q.push("temp", T0, 2))[0]).toMatchObject({ message: "temp hot: 2", severity: "warning" });
  });

  test("cooldown holds repeats back per series, then lets the next one through", () => {
    const p = threshold({ above: 50, cooldown: "1m" });
    const fired = [0, 10, 59.999, 60, 61, 130].filter(
      (s) => alerts(p.push("temp", T0 + s * SEC, 99)).length > 0,
    );
    expect(fired).toEqual([0, 60, 130]);
  });
});
