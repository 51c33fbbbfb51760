// The values that flow out of stream pipelines: derived points and local alerts.

/** How urgent a local alert is. */
export type Severity = "info" | "warning" | "critical";

/** A point a pipeline produced (a derived series or a window aggregate), to be stored and forwarded. */
export interface PointOutput {
  kind: "point";
  series: string;
  /** Milliseconds since the epoch; a window aggregate carries the end of its window. */
  t: number;
  value: number;
  /** The pipeline that produced it. */
  pipeline: string;
}

/** A local alert raised by an `anomaly` or `threshold` step, or by `route: [alert]`. */
export interface AlertOutput {
  kind: "alert";
  pipeline: string;
  severity: Severity;
  message: string;
  /** The series and point that raised it. */
  series: string;
  t: number;
  value: number;
  /** EWMA z-score of the point (anomaly steps only). */
  z?: number;
}

export type StreamOutput = PointOutput | AlertOutput;

/** Counters of one pipeline, cumulative since it was compiled (or kept across a reload). */
export interface PipelineStats {
  /** Points that matched the source. */
  points_in: number;
  /** Point outputs emitted (routed to the hub). */
  points_out: number;
  alerts: number;
  /** Points refused by a `filter` step. */
  filtered: number;
  /** Points older than a window's open pane, left out of that window. */
  late: number;
  /** Points whose `derive` expression gave NaN or ±Infinity, dropped. */
  bad_values: number;
  /** Points of series beyond `max_series`, ignored to keep state bounded. */
  series_dropped: number;
  /** Distinct input series holding state. */
  series: number;
}

/** What `replace` kept and what it started afresh. */
export interface ReloadSummary {
  /** Unchanged pipelines whose windows and baselines carry on. */
  kept: string[];
  /** New or changed pipelines, starting with empty state. */
  started: string[];
  /** Pipelines no longer configured. */
  removed: string[];
}
