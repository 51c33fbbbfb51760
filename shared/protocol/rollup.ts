// 1-minute rollups: what an agent sends in place of fine samples it had no room to keep (DESIGN §5.2).
//
// A rollup is a metrics_batch with `rollup: 1` and a 60 s interval. Each series X of the fine data
// becomes four columns: `X` (the average, so a chart of X simply continues at minute resolution),
// `X:min`, `X:max` and `X:count` (how many fine samples the minute held). The batch stands for the
// sum of its counts: that is the number of samples it accounts for, on the agent and on the hub.
import { type MetricsFrame, sampleTime } from "./metrics-codec.ts";

export const ROLLUP_INTERVAL_MS = 60_000;
const PARTS = [":min", ":max", ":count"] as const;

/** Series names never contain ":"; in a rollup, a column named `X:part` is one part of series X. */
export function rollupBase(column: string): string {
  const colon = column.lastIndexOf(":");
  return colon < 0 || column.indexOf("}", colon) >= 0 ? column : column.slice(0, colon);
}

interface Acc {
  min: number;
  max: number;
  sum: number;
  count: number;
}

/**
 * Folds fine frames (any intervals below a minute, in any order, grid or timed series) into one frame
 * of 1-minute buckets aligned to the minute.
 */
export function rollUp(frames: readonly MetricsFrame[]): MetricsFrame {
  const bySeries = new Map<string, Map<number, Acc>>();
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const f of frames) {
    for (const col of f.series) {
      let buckets = bySeries.get(col.name);
      if (!buckets) {
        buckets = new Map();
        bySeries.set(col.name, buckets);
      }
      for (let i = 0; i < col.values.length; i++) {
        const v = col.values[i];
        if (v === null || v === undefined) continue;
        const minute = Math.floor(sampleTime(f, col, i) / ROLLUP_INTERVAL_MS) * ROLLUP_INTERVAL_MS;
        if (minute < first) first = minute;
        if (minute > last) last = minute;
        const acc = buckets.get(minute);
        if (!acc) buckets.set(minute, { min: v, max: v, sum: v, count: 1 });
        else {
          if (v < acc.min) acc.min = v;
          if (v > acc.max) acc.max = v;
          acc.sum += v;
          acc.count += 1;
        }
      }
    }
  }
  if (first > last) return { start: 0, interval: ROLLUP_INTERVAL_MS, ticks: 0, series: [] };
  const ticks = (last - first) / ROLLUP_INTERVAL_MS + 1;
  const series: MetricsFrame["series"] = [];
  for (const [name, buckets] of bySeries) {
    const avg = new Array<number | null>(ticks).fill(null);
    const min = new Array<number | null>(ticks).fill(null);
    const max = new Array<number | null>(ticks).fill(null);
    const count = new Array<number | null>(ticks).fill(null);
    for (const [minute, acc] of buckets) {
      const i = (minute - first) / ROLLUP_INTERVAL_MS;
      avg[i] = roundAvg(acc.sum / acc.count);
      min[i] = acc.min;
      max[i] = acc.max;
      count[i] = acc.count;
    }
    series.push(
      { name, values: avg },
      { name: `${name}${PARTS[0]}`, values: min },
      { name: `${name}${PARTS[1]}`, values: max },
      { name: `${name}${PARTS[2]}`, values: count },
    );
  }
  return { start: first, interval: ROLLUP_INTERVAL_MS, ticks, series };
}

// Averages keep 4 decimals, so the codec stores them as scaled integers.
const roundAvg = (v: number) => (Number.isFinite(v) ? Math.round(v * 1e4) / 1e4 : v);

/** The fine samples a rollup frame stands for: the sum of its `:count` columns. */
export function rolledUpSamples(frame: MetricsFrame): number {
  let n = 0;
  for (const col of frame.series) {
    if (!col.name.endsWith(PARTS[2])) continue;
    for (const v of col.values) if (v !== null && v !== undefined && v > 0) n += v;
  }
  return n;
}

/** One minute of one series: [time, min, max, avg, count]. */
export type RollupPoint = [t: number, min: number, max: number, avg: number, count: number];

/** One minute from two rollups of it (a fold boundary fell inside the minute). */
export function mergeRollupPoints(a: RollupPoint, b: RollupPoint): RollupPoint {
  const count = a[4] + b[4];
  return [
    a[0],
    Math.min(a[1], b[1]),
    Math.max(a[2], b[2]),
    roundAvg((a[3] * a[4] + b[3] * b[4]) / count),
    count,
  ];
}

/** The minutes of `series` in a rollup frame, oldest first. */
export function rollupPoints(frame: MetricsFrame, series: string): RollupPoint[] {
  const col = (suffix: string) => frame.series.find((c) => c.name === `${series}${suffix}`)?.values;
  const avg = col("");
  const min = col(PARTS[0]);
  const max = col(PARTS[1]);
  const count = col(PARTS[2]);
  if (!avg || !min || !max || !count) return [];
  const out: RollupPoint[] = [];
  for (let i = 0; i < frame.ticks; i++) {
    const a = avg[i];
    const c = count[i];
    if (a === null || a === undefined || c === null || c === undefined) continue;
    out.push([frame.start + i * frame.interval, min[i] ?? a, max[i] ?? a, a, c]);
  }
  return out;
}
