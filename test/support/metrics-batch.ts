// A metrics_batch as it arrives off the wire, for feeding a hub's ingest directly.
import { decodeFrame, encodeFrame, envelope, type Message } from "../../shared/protocol/index.ts";
import { encodeMetrics } from "../../shared/protocol/metrics-codec.ts";

/**
 * Batch `q` of `node`: one column per series at 1 s ticks, `null` where a tick has no value; it starts
 * at `t0 + (q - 1) * 10 s` unless `start` says otherwise.
 */
export function metricsBatch(
  node: string,
  t0: number,
  q: number,
  series: Record<string, (number | null)[]> = { "cpu.util": [1, 2, 3] },
  opts: { start?: number; base?: number; data?: Uint8Array<ArrayBuffer>; samples?: number } = {},
): Message {
  const start = opts.start ?? t0 + (q - 1) * 10_000;
  const cols = Object.entries(series).map(([name, values]) => ({ name, values }));
  const ticks = cols[0]!.values.length;
  const enc = encodeMetrics({ start, interval: 1000, ticks, series: cols });
  const body = {
    start,
    interval: 1000,
    ticks,
    samples: opts.samples ?? enc.samples,
    data: opts.data ?? new Uint8Array(enc.data),
    z: opts.data ? (0 as const) : enc.z,
  };
  const extra: { q: number; base?: number; ts: number } = { q, ts: start };
  if (opts.base !== undefined) extra.base = opts.base;
  return decodeFrame(encodeFrame(envelope("metrics_batch", node, body, extra)));
}
