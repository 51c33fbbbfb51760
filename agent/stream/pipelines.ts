// The set of configured pipelines: matches each point to its pipelines, routes results, reloads without losing state.
//
// Semantics (see also agent/stream/index.ts):
// - A point enters every pipeline whose `source` matches its name (labels ignored for matching).
// - `filter` stops a point, `derive` turns it into a new series, `window` / `anomaly` /
//   `threshold` look at the point and let it go on unchanged.
// - A pipeline's results are the points its windows emit and the point that reaches the end of the
//   steps. `route: hub` emits results as `{kind: "point"}` outputs, except a point no `derive`
//   changed (the input itself, which the caller already stores). `route: alert` raises an alert per
//   result. `route: drop` emits no result; anomaly and threshold alerts come out whatever the route.
// - Emitted points are series like any other: they enter the pipelines whose source they match, in
//   the same call. Config validation refuses pipelines that would feed themselves, so this ends.
import { type PipelineSpec, parsePipelinesConfig } from "./config.ts";
import { type PipelineSink, PipelineRuntime } from "./pipeline-runtime.ts";
import { sourceMatches, splitLabels } from "./series-name.ts";
import type { PipelineStats, ReloadSummary, StreamOutput } from "./types.ts";

/** Distinct series names whose matching pipelines are remembered; cleared when full. */
const MATCH_CACHE_MAX = 10_000;
/** Belt and braces on top of the cycle check: how deep emitted points may cascade. */
const MAX_CASCADE = 16;

/** Compiled pipelines with their state. Pure: time comes in with each point and each tick. */
export class Pipelines {
  #runtimes: PipelineRuntime[] = [];
  readonly #matches = new Map<string, PipelineRuntime[]>();
  #out: StreamOutput[] = [];
  #depth = 0;
  #rejected = 0;
  /** What the runtimes report to: points flow on through matching pipelines, alerts are collected. */
  readonly #sink: PipelineSink = {
    point: (pipeline, series, t, value) => this.#point(pipeline, series, t, value),
    alert: (alert) => {
      this.#out.push(alert);
    },
  };

  constructor(specs: PipelineSpec[]) {
    this.#runtimes = specs.map((s) => new PipelineRuntime(s, this.#sink));
  }

  /** Retired expression spellings in the pipelines in force, one line each (see shared/expr). */
  get warnings(): string[] {
    return this.#runtimes.flatMap((r) => r.spec.warnings);
  }

  /** Names of the pipelines in force, in config order. */
  get names(): string[] {
    return this.#runtimes.map((r) => r.spec.name);
  }

  /** Runs one point through every matching pipeline; returns the points and alerts it produced. */
  push(series: string, t: number, value: number): StreamOutput[] {
    const out: StreamOutput[] = [];
    if (!Number.isFinite(value) || !Number.isFinite(t)) {
      this.#rejected++;
      return out;
    }
    this.#out = out;
    this.#feed(series, t, value);
    return out;
  }

  /** Closes every window that ends at or before `now`, returning what they emit (and what that triggers). */
  tick(now: number): StreamOutput[] {
    const out: StreamOutput[] = [];
    this.#out = out;
    for (const r of this.#runtimes) r.tick(now);
    return out;
  }

  /**
   * Swaps in a new config. Pipelines whose definition is unchanged keep their windows, baselines and
   * counters; new or changed ones start empty. An invalid config throws ConfigError and changes nothing.
   */
  replace(config: unknown): ReloadSummary {
    const specs = parsePipelinesConfig(config);
    const old = new Map(this.#runtimes.map((r) => [r.spec.name, r]));
    const summary: ReloadSummary = { kept: [], started: [], removed: [] };
    this.#runtimes = specs.map((spec) => {
      const prev = old.get(spec.name);
      old.delete(spec.name);
      if (prev && prev.spec.fingerprint === spec.fingerprint) {
        summary.kept.push(spec.name);
        return prev;
      }
      summary.started.push(spec.name);
      return new PipelineRuntime(spec, this.#sink);
    });
    summary.removed = [...old.keys()];
    this.#matches.clear();
    return summary;
  }

  /** Counters per pipeline, plus points refused for a non-finite value or time. */
  stats(): { pipelines: Record<string, PipelineStats>; rejected: number } {
    const pipelines: Record<string, PipelineStats> = {};
    for (const r of this.#runtimes) pipelines[r.spec.name] = { ...r.stats };
    return { pipelines, rejected: this.#rejected };
  }

  /** A result routed to the hub: emitted, and, being a series like any other, fed on. */
  #point(pipeline: string, series: string, t: number, value: number): void {
    this.#out.push({ kind: "point", series, t, value, pipeline });
    if (this.#depth >= MAX_CASCADE) return;
    this.#depth++;
    try {
      this.#feed(series, t, value);
    } finally {
      this.#depth--;
    }
  }

  #feed(series: string, t: number, value: number): void {
    const runtimes = this.#matching(series);
    for (let i = 0; i < runtimes.length; i++) runtimes[i]!.run(series, t, value);
  }

  #matching(series: string): PipelineRuntime[] {
    let list = this.#matches.get(series);
    if (list === undefined) {
      const [base] = splitLabels(series);
      list = this.#runtimes.filter((r) => sourceMatches(r.spec.source, base));
      if (this.#matches.size >= MATCH_CACHE_MAX) this.#matches.clear();
      this.#matches.set(series, list);
    }
    return list;
  }
}

/** Validates and compiles `{pipelines: [...]}`; throws ConfigError naming the pipeline and the field. */
export function compilePipelines(config: unknown): Pipelines {
  return new Pipelines(parsePipelinesConfig(config));
}
