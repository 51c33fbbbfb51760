// Feeds every sample and every pushed point through the stream pipelines; their outputs become series and alerts.
import type { Logger } from "../../shared/log.ts";
import type { IngestPoint } from "./ingest-body.ts";
import { compilePipelines, type Pipelines } from "./pipelines.ts";
import type { AlertOutput, StreamOutput } from "./types.ts";

/** The pipelines of the running config; pushed points keep their own times, tick results go on the grid. */
export class StreamRunner {
  #pipelines: Pipelines;
  readonly #log: Logger;
  // Pipeline results of a tick's samples, stored with that tick (on the sampling grid).
  #pending: Record<string, number> = {};
  // The newest pushed value of each series since the last tick, for the rules (which read ticks).
  #pushed: Record<string, number> = {};
  // Results of pushed points, at their own times, collected while one ingest call runs.
  #timed: IngestPoint[] | undefined;
  readonly #onAlert: (a: AlertOutput) => void;

  readonly #source: string | undefined;

  /** `source`: the config file, named in warnings about retired expression spellings. */
  constructor(pipelines: unknown, opts: { log: Logger; onAlert: (a: AlertOutput) => void; source?: string }) {
    this.#pipelines = compilePipelines({ pipelines });
    this.#log = opts.log;
    this.#onAlert = opts.onAlert;
    this.#source = opts.source;
    this.#warnRetired();
  }

  // Once per config load: each retired spelling, where it is and what to write instead.
  #warnRetired(): void {
    for (const w of this.#pipelines.warnings)
      this.#log.warn(`retired expression spelling: ${w}`, this.#source ? { file: this.#source } : {});
  }

  /** Hot reload; an invalid config throws and the running pipelines stay. */
  replace(pipelines: unknown): void {
    const r = this.#pipelines.replace({ pipelines });
    this.#log.info("pipelines reloaded", {
      kept: r.kept.length,
      started: r.started.length,
      removed: r.removed.length,
    });
    this.#warnRetired();
  }

  /**
   * Points a local application pushed (`POST /v1/ingest`, MQTT): alerts go out at once. Returns what to
   * store, each at its own time: the points themselves and the pipelines' results from them.
   */
  ingest(points: readonly IngestPoint[]): IngestPoint[] {
    const out: IngestPoint[] = [...points];
    this.#timed = out;
    try {
      for (const p of points) {
        this.#pushed[p.series] = p.value;
        this.#route(this.#pipelines.push(p.series, p.t, p.value));
      }
    } finally {
      this.#timed = undefined;
    }
    return out;
  }

  /** The newest pushed value of each series since the last call (the rules see them with the next tick). */
  takePushed(): Record<string, number> {
    const out = this.#pushed;
    this.#pushed = {};
    return out;
  }

  /** One tick: the host samples go through the pipelines; returns the series to store with this tick. */
  tick(values: Record<string, number>, now: number): Record<string, number> {
    for (const [series, value] of Object.entries(values))
      this.#route(this.#pipelines.push(series, now, value));
    this.#route(this.#pipelines.tick(now));
    const out = this.#pending;
    this.#pending = {};
    return out;
  }

  stats(): ReturnType<Pipelines["stats"]> {
    return this.#pipelines.stats();
  }

  #route(outputs: readonly StreamOutput[]): void {
    for (const o of outputs) {
      if (o.kind !== "point") this.#onAlert(o);
      else if (this.#timed) this.#timed.push({ series: o.series, t: o.t, value: o.value });
      else this.#pending[o.series] = o.value;
    }
  }
}
