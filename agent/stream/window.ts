// Tumbling and sliding windows over event time, kept as a ring of panes so state stays small and bounded.
//
// A window of `size` that emits `every` (tumbling: every = size) keeps size/every panes. Panes are
// aligned to the epoch, so windows line up across series and restarts. At each pane boundary b the
// window [b - size, b) closes and emits one point per function, stamped b. Memory per window is
// fixed: per pane a count, sum, min, max and (only when a quantile is asked for) a QuantileSketch
// of at most MAX_BUCKETS buckets; no point is held.
import { QuantileSketch } from "./quantile-sketch.ts";

export const WINDOW_FNS = ["count", "sum", "min", "max", "avg", "p50", "p90", "p95", "p99"] as const;
export type WindowFn = (typeof WINDOW_FNS)[number];

const QUANTILES: Readonly<Partial<Record<WindowFn, number>>> = { p50: 0.5, p90: 0.9, p95: 0.95, p99: 0.99 };

export interface WindowShape {
  size: number;
  every: number;
  fns: readonly WindowFn[];
}

interface Pane {
  count: number;
  sum: number;
  min: number;
  max: number;
  sketch: QuantileSketch | undefined;
}

/** Receives each aggregate a closing window emits. */
export type WindowEmit = (fn: WindowFn, t: number, value: number) => void;

/** One window instance (one output series). */
export class WindowState {
  readonly #shape: WindowShape;
  readonly #panes: Pane[];
  readonly #quantiles: boolean;
  #head = 0;
  /** Start of the open pane; undefined while every pane is empty. */
  #openStart: number | undefined;
  /** Points in the whole ring. */
  #ringCount = 0;
  #scratch: QuantileSketch | undefined;

  constructor(shape: WindowShape) {
    this.#shape = shape;
    this.#quantiles = shape.fns.some((f) => QUANTILES[f] !== undefined);
    const n = Math.max(1, Math.round(shape.size / shape.every));
    this.#panes = Array.from({ length: n }, () => ({
      count: 0,
      sum: 0,
      min: Number.POSITIVE_INFINITY,
      max: Number.NEGATIVE_INFINITY,
      sketch: this.#quantiles ? new QuantileSketch() : undefined,
    }));
  }

  /** True while the window holds no point (its state may be dropped). */
  get idle(): boolean {
    return this.#openStart === undefined;
  }

  /**
   * Adds a point at event time t, first closing every window that ends at or before t.
   * Returns false for a late point (before the open pane), which is left out.
   */
  add(t: number, value: number, emit: WindowEmit): boolean {
    if (this.#openStart !== undefined && t >= this.#openStart + this.#shape.every) this.advance(t, emit);
    if (this.#openStart === undefined) this.#openStart = t - mod(t, this.#shape.every);
    else if (t < this.#openStart) return false;
    const p = this.#panes[this.#head]!;
    p.count++;
    p.sum += value;
    if (value < p.min) p.min = value;
    if (value > p.max) p.max = value;
    p.sketch?.add(value);
    this.#ringCount++;
    return true;
  }

  /** Closes (and emits) every window that ends at or before `now`. */
  advance(now: number, emit: WindowEmit): void {
    const every = this.#shape.every;
    while (this.#openStart !== undefined && this.#openStart + every <= now) {
      const end = this.#openStart + every;
      if (this.#ringCount > 0) this.#emit(end, emit);
      this.#head = (this.#head + 1) % this.#panes.length;
      const p = this.#panes[this.#head]!;
      this.#ringCount -= p.count;
      p.count = 0;
      p.sum = 0;
      p.min = Number.POSITIVE_INFINITY;
      p.max = Number.NEGATIVE_INFINITY;
      p.sketch?.clear();
      this.#openStart = this.#ringCount > 0 ? end : undefined;
    }
  }

  #emit(end: number, emit: WindowEmit): void {
    let count = 0;
    let sum = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    let sketch: QuantileSketch | undefined;
    if (this.#panes.length === 1) {
      const p = this.#panes[0]!;
      ({ count, sum, min, max } = p);
      sketch = p.sketch;
    } else {
      if (this.#quantiles) {
        this.#scratch ??= new QuantileSketch();
        this.#scratch.clear();
        sketch = this.#scratch;
      }
      for (const p of this.#panes) {
        if (p.count === 0) continue;
        count += p.count;
        sum += p.sum;
        if (p.min < min) min = p.min;
        if (p.max > max) max = p.max;
        if (sketch && p.sketch) sketch.merge(p.sketch);
      }
    }
    for (const fn of this.#shape.fns) {
      switch (fn) {
        case "count":
          emit(fn, end, count);
          break;
        case "sum":
          emit(fn, end, sum);
          break;
        case "min":
          emit(fn, end, min);
          break;
        case "max":
          emit(fn, end, max);
          break;
        case "avg":
          emit(fn, end, sum / count);
          break;
        default: {
          // The sketch's bucket value, clamped into the exact range seen: exact at the extremes.
          const q = sketch!.quantile(QUANTILES[fn]!);
          emit(fn, end, Math.min(max, Math.max(min, q)));
        }
      }
    }
  }
}

/** Non-negative remainder, so negative times align like positive ones. */
function mod(a: number, b: number): number {
  const r = a % b;
  return r < 0 ? r + b : r;
}
