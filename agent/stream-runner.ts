// Feeds every sample and every pushed point through the stream pipelines; their outputs become series and alerts.
import type { Logger } from "../shared/log.ts";
import {
  type AlertOutput,
  compilePipelines,
  type IngestPoint,
  type Pipelines,
  type StreamOutput,
} from "./stream/index.ts";

/** The pipelines of the running config, plus points pushed by local applications waiting for the next tick. */
export class StreamRunner {
  #pipelines: Pipelines;
  readonly #log: Logger;
  // Pushed points and pipeline outputs, stored at the next tick (the buffer keeps one grid of ticks).
  #pending: Record<string, number> = {};
  readonly #onAlert: (a: AlertOutput) => void;

  constructor(pipelines: unknown, opts: { log: Logger; onAlert: (a: AlertOutput) => void }) {
    this.#pipelines = compilePipelines({ pipelines });
    this.#log = opts.log;
    this.#onAlert = opts.onAlert;
  }

  /** Hot reload; an invalid config throws and the running pipelines stay. */
  replace(pipelines: unknown): void {
    const r = this.#pipelines.replace({ pipelines });
    this.#log.info("pipelines reloaded", {
      kept: r.kept.length,
      started: r.started.length,
      removed: r.removed.length,
    });
  }

  /** Points a local application pushed (`POST /v1/ingest`): alerts go out at once, points at the next tick. */
  ingest(points: readonly IngestPoint[]): void {
    for (const p of points) {
      this.#pending[p.series] = p.value;
      this.#route(this.#pipelines.push(p.series, p.t, p.value));
    }
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
      if (o.kind === "point") this.#pending[o.series] = o.value;
      else this.#onAlert(o);
    }
  }
}
