// One compiled pipeline and its state: runs a point through the steps and hands results and alerts to a sink.
import type { PipelineSpec, StepSpec } from "./config.ts";
import { Ewma } from "./ewma.ts";
import { passes } from "./expr.ts";
import { applyTemplate, MAX_SERIES_CHARS, splitLabels } from "./series-name.ts";
import type { AlertOutput, PipelineStats, Severity } from "./types.ts";
import { type WindowFn, WindowState } from "./window.ts";

/** Where a pipeline's results go: the pipeline set routes points and collects alerts. */
export interface PipelineSink {
  point(pipeline: string, series: string, t: number, value: number): void;
  alert(alert: AlertOutput): void;
}

interface WindowInstance {
  state: WindowState;
  emit: (fn: WindowFn, t: number, value: number) => void;
}

type StepState =
  | { kind: "window"; windows: Map<string, WindowInstance> }
  | { kind: "anomaly"; baselines: Map<string, Ewma>; lastAlert: Map<string, number> }
  | { kind: "threshold"; lastAlert: Map<string, number> }
  | undefined;

/** A running pipeline. State is bounded: at most `max_series` input series, fixed-size state per series. */
export class PipelineRuntime {
  readonly spec: PipelineSpec;
  readonly stats: PipelineStats = {
    points_in: 0,
    points_out: 0,
    alerts: 0,
    filtered: 0,
    late: 0,
    bad_values: 0,
    series_dropped: 0,
    series: 0,
  };
  readonly #sink: PipelineSink;
  readonly #series = new Set<string>();
  readonly #state: StepState[];

  constructor(spec: PipelineSpec, sink: PipelineSink) {
    this.spec = spec;
    this.#sink = sink;
    this.#state = spec.steps.map((s): StepState => {
      switch (s.kind) {
        case "window":
          return { kind: "window", windows: new Map() };
        case "anomaly":
          return { kind: "anomaly", baselines: new Map(), lastAlert: new Map() };
        case "threshold":
          return { kind: "threshold", lastAlert: new Map() };
        default:
          return undefined;
      }
    });
  }

  /** Runs one point of a matching series through the steps. */
  run(series: string, t: number, value: number): void {
    const stats = this.stats;
    stats.points_in++;
    if (!this.#series.has(series)) {
      if (this.#series.size >= this.spec.maxSeries) {
        stats.series_dropped++;
        return;
      }
      this.#series.add(series);
      stats.series = this.#series.size;
    }
    let s = series;
    let v = value;
    let derived = false;
    const steps = this.spec.steps;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      switch (step.kind) {
        case "filter":
          if (!passes(step.expr(v, t))) {
            stats.filtered++;
            return;
          }
          break;
        case "derive": {
          const nv = step.expr(v, t);
          const name = applyTemplate(step.series, s);
          if (!Number.isFinite(nv) || name.length > MAX_SERIES_CHARS) {
            stats.bad_values++;
            return;
          }
          v = nv;
          s = name;
          derived = true;
          break;
        }
        case "window": {
          const state = this.#state[i] as Extract<StepState, { kind: "window" }>;
          const key = applyTemplate(step.emitAs, s);
          let w = state.windows.get(key);
          if (!w) {
            w = this.#newWindow(step, key);
            if (!w) {
              stats.bad_values++;
              break;
            }
            state.windows.set(key, w);
          }
          if (!w.state.add(t, v, w.emit)) stats.late++;
          break;
        }
        case "anomaly": {
          const state = this.#state[i] as Extract<StepState, { kind: "anomaly" }>;
          let e = state.baselines.get(s);
          if (!e) {
            e = new Ewma(step.alpha, step.spreadAlpha);
            state.baselines.set(s, e);
          }
          const warm = e.n >= step.minPoints;
          const z = e.observe(v);
          if (!warm) break;
          const hit =
            step.direction === "up"
              ? z >= step.z
              : step.direction === "down"
                ? z <= -step.z
                : Math.abs(z) >= step.z;
          if (hit && cooledDown(state.lastAlert, step.cooldown, s, t)) {
            const text =
              step.message ??
              `${s} = ${fmt(v)} is unusual: z = ${fmt(z)} against the recent mean ${fmt(e.mean)}`;
            this.#alert(step.severity, text, s, t, v, z);
          }
          break;
        }
        case "threshold": {
          const above = step.above !== undefined && v > step.above;
          const below = step.below !== undefined && v < step.below;
          if ((above || below) && cooledDown(this.#thresholdState(i), step.cooldown, s, t)) {
            const text =
              step.message ?? `${s} = ${fmt(v)} ${above ? `above ${step.above}` : `below ${step.below}`}`;
            this.#alert(step.severity, text, s, t, v, undefined);
          }
          break;
        }
      }
    }
    this.#result(s, t, v, derived);
  }

  /** Closes every window that ends at or before `now`. */
  tick(now: number): void {
    for (const st of this.#state) {
      if (st?.kind !== "window") continue;
      for (const w of st.windows.values()) w.state.advance(now, w.emit);
    }
  }

  #thresholdState(i: number): Map<string, number> {
    return (this.#state[i] as Extract<StepState, { kind: "threshold" }>).lastAlert;
  }

  /** A window writing `<key>.<fn>` series; undefined when a name would exceed MAX_SERIES_CHARS. */
  #newWindow(step: Extract<StepSpec, { kind: "window" }>, key: string): WindowInstance | undefined {
    const [base, labels] = splitLabels(key);
    const names = new Map(step.fns.map((fn) => [fn, `${base}.${fn}${labels}`]));
    for (const name of names.values()) if (name.length > MAX_SERIES_CHARS) return undefined;
    return {
      state: new WindowState({ size: step.size, every: step.every, fns: step.fns }),
      emit: (fn, t, value) => this.#result(names.get(fn)!, t, value, true),
    };
  }

  /** Routes one result: a new series goes to the hub as a point; `route: [alert]` alerts on every result. */
  #result(series: string, t: number, value: number, isNew: boolean): void {
    const route = this.spec.route;
    if (route.hub && isNew) {
      this.stats.points_out++;
      this.#sink.point(this.spec.name, series, t, value);
    }
    if (route.alert) {
      this.#alert(
        this.spec.severity,
        this.spec.message ?? `${series} = ${fmt(value)}`,
        series,
        t,
        value,
        undefined,
      );
    }
  }

  #alert(
    severity: Severity,
    text: string,
    series: string,
    t: number,
    value: number,
    z: number | undefined,
  ): void {
    this.stats.alerts++;
    const message = text.includes("{")
      ? text
          .replaceAll("{series}", series)
          .replaceAll("{value}", fmt(value))
          .replaceAll("{z}", z === undefined ? "" : fmt(z))
      : text;
    const a: AlertOutput = { kind: "alert", pipeline: this.spec.name, severity, message, series, t, value };
    if (z !== undefined) a.z = z;
    this.#sink.alert(a);
  }
}

/** Whether a step may alert again for `series` at t (and records that it does). */
function cooledDown(last: Map<string, number>, cooldown: number, series: string, t: number): boolean {
  if (cooldown <= 0) return true;
  const prev = last.get(series);
  if (prev !== undefined && t - prev < cooldown) return false;
  last.set(series, t);
  return true;
}

function fmt(x: number): string {
  if (Number.isInteger(x)) return String(x);
  const s = x.toPrecision(4);
  return s.includes(".") && !s.includes("e") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}
