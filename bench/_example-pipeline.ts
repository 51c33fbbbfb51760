// The documented "vibration" pipeline, measured in process by bench/stream.ts and over HTTP by bench/stream-http.ts.

/** Filter, derive, tumbling and sliding windows, EWMA anomaly and a threshold on one series. */
export const EXAMPLE = {
  pipelines: [
    {
      name: "vibration",
      source: "sensor.vibration",
      steps: [
        { filter: "value > 0" },
        { derive: { series: "sensor.vibration_g", expr: "value / 9.81" } },
        {
          window: {
            kind: "tumbling",
            size: "10s",
            fn: ["avg", "max", "p95"],
            emit_as: "sensor.vibration_10s",
          },
        },
        { window: { kind: "sliding", size: "1m", every: "5s", fn: ["count"] } },
        { anomaly: { method: "ewma", alpha: 0.1, z: 4, min_points: 20, severity: "warning" } },
        { threshold: { above: 50, severity: "critical", message: "vibration over 50" } },
      ],
      route: ["hub"],
    },
  ],
};
