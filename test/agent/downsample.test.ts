// Specification of the buffer's overflow policy: fine metrics become 1-minute rollups before anything is dropped.
import { describe, expect, test } from "bun:test";
import { AgentStore, MetricBuffer } from "../../agent/store/index.ts";
import { decodeCbor, encodeCbor, type MetricsBatchBody } from "../../shared/protocol/index.ts";
import { decodeMetrics, type MetricsFrame } from "../../shared/protocol/metrics-codec.ts";
import { rolledUpSamples, rollupPoints, rollUp } from "../../shared/protocol/rollup.ts";
import { mulberry32 } from "../support/prng.ts";
import { tempDir } from "../support/processes.ts";

const T0 = 1_718_000_020_000; // 40 s into a minute: folds must not assume batches align to minutes
const SEC = 1000;
const MIN = 60 * SEC;

function open(dir: string, budget: number) {
  const store = new AgentStore(dir, { bufferBytes: budget });
  return { store, buffer: new MetricBuffer(store, SEC), [Symbol.dispose]: () => store.close() };
}

interface Held {
  id: number;
  seq: number | null;
  type: string;
  samples: number;
  body: MetricsBatchBody | undefined;
  frame: MetricsFrame | undefined;
}

function held(store: AgentStore): Held[] {
  return store.outbox.readFrom(0, 1_000_000).map((e) => {
    if (e.type !== "metrics_batch")
      return { id: e.id, seq: e.seq, type: e.type, samples: e.samples, body: undefined, frame: undefined };
    const body = decodeCbor(e.body) as MetricsBatchBody;
    return { id: e.id, seq: e.seq, type: e.type, samples: e.samples, body, frame: decodeMetrics(body) };
  });
}

/** Rows in send order keep rising ids within each kind: a rollup took the place of what it folded. */
function expectInPlace(entries: { id: number; type: string }[]): void {
  const batches = entries.filter((e) => e.type === "metrics_batch").map((e) => e.id);
  expect(batches).toEqual([...batches].sort((a, b) => a - b));
}

/** Ticks `from`..`from + n - 1` seconds of three series with seeded values, flushed every 20 ticks. */
function fill(buffer: MetricBuffer, from: number, n: number, values: Map<number, Record<string, number>>) {
  const rand = mulberry32(from);
  for (let i = 0; i < n; i++) {
    const ts = from + i * SEC;
    const v = {
      "cpu.util": Math.round(rand() * 10_000) / 100,
      "mem.used_pct": 40 + Math.round(rand() * 100) / 10,
      "sensor.t": Math.round(rand() * 50),
    };
    values.set(ts, v);
    buffer.add(ts, v);
    if (i % 20 === 19) buffer.flush(ts);
  }
  buffer.flush(from + n * SEC);
}

describe("rollUp", () => {
  test("buckets by wall-clock minute with min, max, avg and count; counts stand for the samples", () => {
    const frames: MetricsFrame[] = [
      { start: T0, interval: SEC, ticks: 3, series: [{ name: "x", values: [1, null, 5] }] },
      { start: T0 + 19 * SEC, interval: SEC, ticks: 3, series: [{ name: "x", values: [2, 4, 9] }] },
    ];
    const r = rollUp(frames);
    // T0 is 40 s into its minute: T0, T0+2s, T0+19s land in the first minute, T0+20s and T0+21s in the next.
    const m0 = Math.floor(T0 / MIN) * MIN;
    expect(r.start).toBe(m0);
    expect(r.interval).toBe(MIN);
    expect(rollupPoints(r, "x")).toEqual([
      [m0, 1, 5, 2.6667, 3],
      [m0 + MIN, 4, 9, 6.5, 2],
    ]);
    expect(rolledUpSamples(r)).toBe(5);
  });

  test("buckets points at their own times (timed series) by the minute they were taken in", () => {
    const m0 = Math.floor(T0 / MIN) * MIN;
    const times = [m0 + 59_900, m0 + 59_999, m0 + MIN, m0 + MIN + 100];
    const r = rollUp([
      { start: times[0]!, interval: SEC, ticks: 1, series: [{ name: "x", values: [1, 3, 10, 20], times }] },
    ]);
    expect(rollupPoints(r, "x")).toEqual([
      [m0, 1, 3, 2, 2],
      [m0 + MIN, 10, 20, 15, 2],
    ]);
    expect(rolledUpSamples(r)).toBe(4);
  });
});

describe("buffer overflow: downsample, then drop", () => {
  test("over budget, the oldest fine batches become rollups and every sample is still accounted for", () => {
    using dir = tempDir();
    using b = open(dir.path, 40_000);
    const values = new Map<number, Record<string, number>>();
    fill(b.buffer, T0, 2 * 3600, values);
    const ob = b.store.outbox.stats();
    expect(ob.bytes).toBeLessThanOrEqual(40_000);
    expect(ob.downsampledSamples).toBeGreaterThan(0);
    expect(ob.droppedSamples).toBe(0);

    const h = held(b.store);
    expectInPlace(h);
    let fine = 0;
    let represented = 0;
    const rollups = h.filter((e) => e.body?.rollup === 1);
    expect(rollups.length).toBeGreaterThan(0);
    // Each rollup names its fold (its row id), so that a copy of this store sending it again is known.
    expect(rollups.every((e) => e.body?.fold === e.id)).toBe(true);
    // Rollups come first (oldest data), fine batches after.
    const firstFine = h.findIndex((e) => e.body?.rollup !== 1);
    expect(h.slice(firstFine).every((e) => e.body?.rollup !== 1)).toBe(true);
    for (const e of h) {
      if (e.body?.rollup === 1) {
        expect(e.samples).toBe(rolledUpSamples(e.frame!));
        represented += e.samples;
      } else fine += e.samples;
    }
    expect(represented).toBe(ob.downsampledSamples);
    expect(fine + represented).toBe(b.buffer.produced());

    // A minute inside the rolled-up range, recomputed from the raw values.
    const r = rollups[0]!.frame!;
    const minute = r.start + 5 * MIN;
    const raw = [...values]
      .filter(([ts]) => ts >= minute && ts < minute + MIN)
      .map(([, v]) => v["cpu.util"]!);
    const got = rollups.flatMap((e) => rollupPoints(e.frame!, "cpu.util")).filter((p) => p[0] === minute);
    expect(got).toEqual([
      [
        minute,
        Math.min(...raw),
        Math.max(...raw),
        Math.round((raw.reduce((a, x) => a + x, 0) / raw.length) * 1e4) / 1e4,
        raw.length,
      ],
    ]);
  });

  test("entries that may have reached a hub are never replaced, renumbered or dropped", () => {
    using dir = tempDir();
    using b = open(dir.path, 1 << 30);
    fill(b.buffer, T0, 600, new Map());
    // The first ten went out (numbered); the hub has not acked them yet.
    b.store.outbox.take(1, 10);
    const before = held(b.store);
    b.store.outbox.setBudget(Math.floor(b.store.outbox.bytes / 2));
    const after = held(b.store);
    const ob = b.store.outbox.stats();
    expect(ob.downsampledSamples).toBeGreaterThan(0);
    // The numbered ones are all there, untouched, under the same numbers.
    expect(after.filter((e) => e.seq !== null)).toEqual(before.slice(0, 10));
    expect(after.filter((e) => e.seq === null && e.body?.rollup === 1).length).toBeGreaterThan(0);
    expect(ob.droppedSamples).toBe(0);
  });

  test("other messages keep their order, ahead of unsent batches, and the sequence stays unbroken", () => {
    using dir = tempDir();
    using b = open(dir.path, 1 << 30);
    const events: string[] = [];
    for (let k = 0; k < 30; k++) {
      fill(b.buffer, T0 + k * 60 * SEC, 60, new Map());
      const msg = `alert ${k}`;
      events.push(msg);
      b.store.outbox.append("event", encodeCbor({ kind: "alert", at: T0, message: msg }), 0, T0);
    }
    b.store.outbox.setBudget(Math.floor(b.store.outbox.bytes / 3));
    const after = b.store.outbox.readFrom(0, 1_000_000);
    expectInPlace(after);
    const kept = after
      .filter((e) => e.type === "event")
      .map((e) => (decodeCbor(e.body) as { message: string }).message);
    expect(kept).toEqual(events);
    // The events overtook the batches that had not left; the next number follows the last one held.
    expect(after.slice(0, 30).every((e) => e.type === "event")).toBe(true);
    b.buffer.add(T0 + 40 * 60 * SEC, { x: 1 });
    expect(b.buffer.flush(T0 + 41 * 60 * SEC)).toBe(1);
    // The new batch goes last; sent, everything is numbered in that order with no gap.
    const sent = b.store.outbox.take(1, 1_000_000);
    expect(sent[sent.length - 1]!.id).toBe(Math.max(...after.map((e) => e.id)) + 1);
    expect(sent.map((e) => e.seq)).toEqual(sent.map((_, i) => i + 1));
  });

  test("when rollups alone exceed the budget the oldest go, counted as the samples they stood for", () => {
    using dir = tempDir();
    using b = open(dir.path, 6_000);
    fill(b.buffer, T0, 6 * 3600, new Map());
    const ob = b.store.outbox.stats();
    expect(ob.bytes).toBeLessThanOrEqual(6_000);
    expect(ob.droppedSamples).toBeGreaterThan(0);
    const stillHeld = held(b.store).reduce((a, e) => a + e.samples, 0);
    expect(stillHeld + ob.droppedSamples).toBe(b.buffer.produced());
  });

  test("rollups survive a restart and downsampling resumes where it left off", () => {
    using dir = tempDir();
    const values = new Map<number, Record<string, number>>();
    {
      using b = open(dir.path, 20_000);
      fill(b.buffer, T0, 3600, values);
      expect(b.store.outbox.stats().downsampledSamples).toBeGreaterThan(0);
    }
    using b = open(dir.path, 20_000);
    fill(b.buffer, T0 + 3600 * SEC, 3600, values);
    const ob = b.store.outbox.stats();
    expect(ob.bytes).toBeLessThanOrEqual(20_000);
    const h = held(b.store);
    expectInPlace(h);
    expect(h.reduce((a, e) => a + e.samples, 0) + ob.droppedSamples).toBe(b.buffer.produced());
    expect(b.buffer.produced()).toBe(values.size * 3);
  });
});
