// Public surface of stream processing: pipelines over any series (compile, push, tick, reload) and the ingest parser.
//
// Config (`pipelines:` in the agent YAML), validated by compilePipelines:
//   - name: vibration
//     source: "sensor.vibration"        # exact name, or prefix glob "sensor.*" ("*": every series)
//     steps:
//       - filter: "value > 0"            # expr over value and t (+ - * / %, comparisons, and/or/not, abs() ...)
//       - derive: { series: "sensor.vibration_g", expr: "value / 9.81" }   # "{series}" = the input's name
//       - window: { kind: tumbling, size: 10s, fn: [avg, max, p95], emit_as: "sensor.vibration_10s" }
//       - window: { kind: sliding, size: 1m, every: 5s, fn: [count] }    # default emit_as "{series}.1m"
//       - anomaly: { method: ewma, alpha: 0.1, z: 4, min_points: 20, severity: warning }
//       - threshold: { above: 50, severity: critical, message: "vibration over 50" }
//     route: [hub]                        # hub | alert | drop, default hub
//
// Windows emit `<emit_as>.<fn>` at each window end (t = end of [end - size, end)), from push when a
// later point arrives or from tick(now). p50/p90/p95/p99 come from a mergeable sketch within 1%
// relative error (quantile-sketch.ts); a window holds no points, only fixed-size aggregates.
//
// Points also arrive from a local broker (`ingest_mqtt: {url: "mqtt://127.0.0.1:1883", topics: ["sensors/#"]}`):
// each message is a /v1/ingest body (JSON or CBOR), or a bare number for the series named by the topic's
// last level (`sensors/room1.temp` ← `21.5`). See mqtt-ingest.ts.
export type { PipelineSpec, Route, StepSpec } from "./config.ts";
export { MAX_PIPELINES, MAX_STEPS, parsePipelinesConfig } from "./config.ts";
export { compileExpr, type Expr, ExprError, passes, STREAM_SCOPE } from "./expr.ts";
export {
  type IngestPoint,
  MAX_CLOCK_SKEW_MS,
  MAX_INGEST_BYTES,
  MAX_INGEST_POINTS,
  parseIngestBody,
} from "./ingest-body.ts";
export {
  MqttIngest,
  type MqttIngestOptions,
  type MqttIngestStats,
  parseMqttPayload,
} from "./mqtt-ingest.ts";
export { MQTT_INGEST_OFF, type MqttIngestConfig, parseMqttIngestConfig } from "./mqtt-ingest-config.ts";
export { compilePipelines, Pipelines } from "./pipelines.ts";
export { StreamRunner } from "./stream-runner.ts";
export { StreamModule, type StreamModuleDeps } from "./stream-module.ts";
export { QuantileSketch, RELATIVE_ACCURACY } from "./quantile-sketch.ts";
export { MAX_SERIES_CHARS, SERIES_PATTERN } from "./series-name.ts";
export type {
  AlertOutput,
  PipelineStats,
  PointOutput,
  ReloadSummary,
  Severity,
  StreamOutput,
} from "./types.ts";
export { WINDOW_FNS, type WindowFn } from "./window.ts";
