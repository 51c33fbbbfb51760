// Specification of the agent's metric buffer: durable ticks packed into exact, columnar metrics batches.
import { describe, expect, test } from "bun:test";
import { AgentStore, MetricBuffer } from "../../agent/store/index.ts";
import { decodeCbor, type MetricsBatchBody } from "../../shared/protocol/index.ts";
import { decodeMetrics, type MetricsFrame, sampleTime } from "../../shared/protocol/metrics-codec.ts";
import { tempDir } from "../support/processes.ts";

const T0 = 1_718_000_000_000;
const SEC = 1000;

function open(dir: string, intervalMs = SEC): { store: AgentStore; buffer: MetricBuffer } & Disposable {
  const store = new AgentStore(dir, { bufferBytes: 64 << 20 });
  return { store, buffer: new MetricBuffer(store, intervalMs), [Symbol.dispose]: () => store.close() };
}

interface Batch {
  body: MetricsBatchBody;
  frame: MetricsFrame;
  seq: number;
  samples: number;
}

/** Every metrics batch in the outbox, decoded the way the hub decodes it. */
function batches(store: AgentStore): Batch[] {
  return store.outbox.readFrom(0, 10_000).map((e) => {
    expect(e.type).toBe("metrics_batch");
    const body = decodeCbor(e.body) as MetricsBatchBody;
    return { body, frame: decodeMetrics(body), seq: e.id, samples: e.samples };
  });
}

/** The (time, series, value) samples a frame holds. */
function samplesOf(frame: MetricsFrame): [number, string, number][] {
  const out: [number, string, number][] = [];
  for (const s of frame.series)
    s.values.forEach((v, i) => {
      if (v !== null) out.push([sampleTime(frame, s, i), s.name, v]);
    });
  return out.sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1]));
}

function staged(ticks: [number, Record<string, number>][]): [number, string, number][] {
  const out: [number, string, number][] = [];
  for (const [ts, values] of ticks) for (const [k, v] of Object.entries(values)) out.push([ts, k, v]);
  return out.sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1]));
}

describe("metric buffer", () => {
  test("packs staged ticks into one batch that decodes back to exactly the staged values", () => {
    using dir = tempDir();
    using b = open(dir.path);
    const ticks: [number, Record<string, number>][] = [
      [T0, { "cpu.util": 12.5, "mem.used_pct": 40.25, "mem.avail_bytes": 8_123_456_512 }],
      [T0 + SEC, { "cpu.util": 99.99, "mem.used_pct": 40.5 }],
      [T0 + 2 * SEC, { "cpu.util": 0, "mem.used_pct": 41, 'disk.used_pct{mount="/"}': 73.1 }],
      [T0 + 4 * SEC, { "cpu.util": -1.5e-3, "net.rx_bps": 1e12 + 0.5 }],
    ];
    for (const [ts, v] of ticks) b.buffer.add(ts, v);
    expect(b.buffer.stagedTicks()).toBe(4);
    expect(b.buffer.flush(T0 + 5 * SEC)).toBe(1);
    expect(b.buffer.stagedTicks()).toBe(0);

    const [batch] = batches(b.store);
    expect(batch!.body).toMatchObject({ start: T0, interval: SEC, ticks: 5, samples: 10 });
    expect(batch!.samples).toBe(10);
    expect(samplesOf(batch!.frame)).toEqual(staged(ticks));
    // The tick nobody sampled is a hole in every series, not a zero.
    for (const s of batch!.frame.series) expect(s.values[3]).toBeNull();
  });

  test("produced() counts samples, durably, and a tick without values counts nothing", () => {
    using dir = tempDir();
    using b = open(dir.path);
    expect(b.buffer.add(T0, { a: 1, b: 2 })).toBe(2);
    expect(b.buffer.add(T0 + SEC, { a: 1, b: 2, c: 3 })).toBe(3);
    expect(b.buffer.add(T0 + 2 * SEC, {})).toBe(0);
    expect(b.buffer.produced()).toBe(5);
    b.buffer.flush(T0 + 3 * SEC);
    expect(b.buffer.produced()).toBe(5);
    expect(b.buffer.stagedTicks()).toBe(0);
  });

  test("a second tick in a slot already taken is neither stored nor counted", () => {
    using dir = tempDir();
    using b = open(dir.path);
    b.buffer.add(T0, { "cpu.util": 10 });
    expect(b.buffer.add(T0, { "cpu.util": 20, "mem.used_pct": 50 })).toBe(0);
    expect(b.buffer.produced()).toBe(1);
    expect(b.buffer.stagedTicks()).toBe(1);
    b.buffer.flush(T0 + SEC);
    expect(samplesOf(batches(b.store)[0]!.frame)).toEqual([[T0, "cpu.util", 10]]);
  });

  test("a short gap stays inside one batch as holes", () => {
    using dir = tempDir();
    using b = open(dir.path);
    b.buffer.add(T0, { x: 1 });
    b.buffer.add(T0 + 5 * SEC, { x: 2 });
    expect(b.buffer.flush(T0 + 6 * SEC)).toBe(1);
    expect(batches(b.store)[0]!.frame.series[0]!.values).toEqual([1, null, null, null, null, 2]);
  });

  test("a gap of more than 10 ticks splits the batch in two", () => {
    using dir = tempDir();
    using b = open(dir.path);
    const ticks: [number, Record<string, number>][] = [
      [T0, { x: 1 }],
      [T0 + SEC, { x: 2 }],
      [T0 + 13 * SEC, { x: 3 }],
      [T0 + 14 * SEC, { x: 4 }],
    ];
    for (const [ts, v] of ticks) b.buffer.add(ts, v);
    expect(b.buffer.flush(T0 + 15 * SEC)).toBe(2);
    const [first, second] = batches(b.store);
    expect(first!.body).toMatchObject({ start: T0, ticks: 2, samples: 2 });
    expect(second!.body).toMatchObject({ start: T0 + 13 * SEC, ticks: 2, samples: 2 });
    expect([...samplesOf(first!.frame), ...samplesOf(second!.frame)]).toEqual(staged(ticks));
  });

  test("changing the interval packs what was staged at the old one first", () => {
    using dir = tempDir();
    using b = open(dir.path);
    b.buffer.add(T0, { x: 1 });
    b.buffer.add(T0 + SEC, { x: 2 });
    b.buffer.setInterval(5 * SEC, T0 + 2 * SEC);
    expect(b.buffer.interval).toBe(5 * SEC);
    expect(b.buffer.stagedTicks()).toBe(0);
    b.buffer.add(T0 + 5 * SEC, { x: 3 });
    b.buffer.add(T0 + 10 * SEC, { x: 4 });
    b.buffer.flush(T0 + 11 * SEC);
    const [old, fresh] = batches(b.store);
    expect(old!.body).toMatchObject({ start: T0, interval: SEC, ticks: 2 });
    expect(fresh!.body).toMatchObject({ start: T0 + 5 * SEC, interval: 5 * SEC, ticks: 2 });
    expect(fresh!.frame.series[0]!.values).toEqual([3, 4]);
  });

  test("a store reopened after kill -9 keeps staged ticks and counters", () => {
    using dir = tempDir();
    // The first store is never closed: its process "died" with the database open.
    const dead = new AgentStore(dir.path, { bufferBytes: 64 << 20 });
    const before = new MetricBuffer(dead, SEC);
    before.add(T0, { x: 1, y: 2 });
    before.add(T0 + SEC, { x: 3 });
    before.flush(T0 + 2 * SEC);
    before.add(T0 + 2 * SEC, { x: 5 });
    before.add(T0 + 3 * SEC, { y: 6 });

    using after = open(dir.path);
    expect(after.buffer.produced()).toBe(5);
    expect(after.buffer.stagedTicks()).toBe(2);
    // A tick for a slot the dead process already filled is still refused.
    expect(after.buffer.add(T0 + 3 * SEC, { y: 7 })).toBe(0);
    expect(after.buffer.flush(T0 + 4 * SEC)).toBe(1);
    const all = batches(after.store);
    expect(all.map((x) => x.seq)).toEqual([1, 2]);
    expect(samplesOf(all[1]!.frame)).toEqual([
      [T0 + 2 * SEC, "x", 5],
      [T0 + 3 * SEC, "y", 6],
    ]);
    dead.db.close();
  });
});

describe("metric buffer: slots and frame size", () => {
  test("a slot already packed is not taken again after a fast restart (no sample twice at one time)", () => {
    using dir = tempDir();
    {
      using b = open(dir.path);
      b.buffer.add(T0, { "cpu.util": 1 });
      b.buffer.flush(T0);
    }
    using b = open(dir.path);
    expect(b.buffer.add(T0, { "cpu.util": 2 })).toBe(0);
    expect(b.buffer.add(T0 + SEC, { "cpu.util": 3 })).toBe(1);
    b.buffer.flush(T0 + SEC);
    expect(batches(b.store).flatMap((x) => samplesOf(x.frame))).toEqual([
      [T0, "cpu.util", 1],
      [T0 + SEC, "cpu.util", 3],
    ]);
    expect(b.buffer.produced()).toBe(2);
  });

  test("a run whose batch would exceed the frame limit is split into batches under it, losing nothing", () => {
    using dir = tempDir();
    const store = new AgentStore(dir.path, { bufferBytes: 64 << 20, maxBodyBytes: 2048 });
    const buffer = new MetricBuffer(store, SEC);
    let seed = 1;
    const noise = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    for (let i = 0; i < 600; i++) {
      const values: Record<string, number> = {};
      for (let s = 0; s < 8; s++) values[`noisy.s${s}`] = Math.round(noise() * 1e9) / 1000;
      buffer.add(T0 + i * SEC, values);
    }
    buffer.flush(T0 + 600 * SEC);
    const all = batches(store);
    expect(all.length).toBeGreaterThan(1);
    for (const e of store.outbox.readFrom(0, 10_000)) expect(e.body.byteLength).toBeLessThanOrEqual(2048);
    expect(all.reduce((n, x) => n + x.samples, 0)).toBe(600 * 8);
    store.close();
  });
});

describe("metric buffer: points at their own times", () => {
  test("ten points a second of one series are all kept, at their millisecond times, beside the ticks", () => {
    using dir = tempDir();
    using b = open(dir.path);
    const points = Array.from({ length: 600 }, (_, i) => ({
      series: "app.rate",
      t: T0 + i * 100 + 3,
      value: i,
    }));
    // In pushes of 10, as an application pushing every second would.
    for (let i = 0; i < 600; i += 10) expect(b.buffer.addPoints(points.slice(i, i + 10))).toBe(0);
    for (let i = 0; i < 60; i++) b.buffer.add(T0 + i * SEC, { "cpu.util": i });
    expect(b.buffer.produced()).toBe(660);
    expect(b.buffer.stagedPoints()).toBe(600);
    expect(b.buffer.flush(T0 + 60 * SEC)).toBe(2);
    expect(b.buffer.stagedPoints()).toBe(0);
    const all = batches(b.store).flatMap((x) => samplesOf(x.frame));
    expect(all.filter((s) => s[1] === "app.rate")).toEqual(points.map((p) => [p.t, p.series, p.value]));
    expect(all.filter((s) => s[1] === "cpu.util")).toHaveLength(60);
    expect(batches(b.store).reduce((n, x) => n + x.samples, 0)).toBe(660);
    expect(b.buffer.folded()).toBe(0);
  });

  test("two points of one series at the same millisecond fold into the later one, counted as folded", () => {
    using dir = tempDir();
    using b = open(dir.path);
    expect(
      b.buffer.addPoints([
        { series: "a", t: T0 + 1, value: 1 },
        { series: "a", t: T0 + 1, value: 2 },
        { series: "b", t: T0 + 1, value: 3 },
      ]),
    ).toBe(1);
    expect(b.buffer.addPoints([{ series: "a", t: T0 + 1, value: 4 }])).toBe(1);
    expect(b.buffer.produced()).toBe(4);
    expect(b.buffer.folded()).toBe(2);
    b.buffer.flush(T0 + SEC);
    expect(batches(b.store).flatMap((x) => samplesOf(x.frame))).toEqual([
      [T0 + 1, "a", 4],
      [T0 + 1, "b", 3],
    ]);
    // produced - folded = what leaves the agent.
    expect(batches(b.store)[0]!.samples).toBe(2);
  });

  test("staged points survive kill -9 and are packed once; a batch spans at most an hour; large ones split under the frame limit", () => {
    using dir = tempDir();
    const dead = new AgentStore(dir.path, { bufferBytes: 64 << 20, maxBodyBytes: 4096 });
    const before = new MetricBuffer(dead, SEC);
    const points: { series: string; t: number; value: number }[] = [];
    let seed = 7;
    const noise = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    for (let i = 0; i < 3000; i++)
      points.push({
        series: `s${i % 3}`,
        t: T0 + Math.floor(i / 3) * 7,
        value: Math.round(noise() * 1e9) / 1000,
      });
    points.push({ series: "late", t: T0 + 2 * 3_600_000, value: 1 });
    before.addPoints(points);
    const store = new AgentStore(dir.path, { bufferBytes: 64 << 20, maxBodyBytes: 4096 });
    const after = new MetricBuffer(store, SEC);
    expect(after.stagedPoints()).toBe(3001);
    expect(after.flush(T0)).toBeGreaterThan(2);
    const all = batches(store);
    for (const e of store.outbox.readFrom(0, 10_000)) expect(e.body.byteLength).toBeLessThanOrEqual(4096);
    for (const x of all) {
      const times = samplesOf(x.frame).map((p) => p[0]);
      expect(Math.max(...times) - Math.min(...times)).toBeLessThanOrEqual(3_600_000);
    }
    const got = all.flatMap((x) => samplesOf(x.frame));
    expect(got).toHaveLength(3001);
    expect(new Set(got.map((p) => `${p[1]}@${p[0]}`)).size).toBe(3001);
    expect(after.flush(T0)).toBe(0);
    dead.db.close();
    store.close();
  });
});
