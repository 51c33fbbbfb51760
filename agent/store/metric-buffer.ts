// Stages each tick's samples durably, then packs them into columnar metrics batches in the outbox.
import type { Statement } from "bun:sqlite";
import { decodeCbor, encodeCbor } from "../../shared/protocol/index.ts";
import { encodeMetrics, type MetricsFrame } from "../../shared/protocol/metrics-codec.ts";
import type { AgentStore } from "./agent-store.ts";

type Tick = { ts: number; values: Record<string, number> };

/** A sample at its own millisecond time (pushed by a local application, or a pipeline's result from one). */
export interface TimedPoint {
  series: string;
  t: number;
  value: number;
}

// A run of ticks with a gap wider than this becomes two batches instead of one full of nulls.
const MAX_GAP_TICKS = 10;
// A batch of timed points covers at most an hour (the hub looks a day back for batches that overlap a
// query) and this many points; larger ones are split.
const POINTS_SPAN_MS = 3_600_000;
const MAX_POINTS_PER_BATCH = 50_000;
/** About what a point takes once packed (series name shared, time and value): for room checks. */
const PACKED_POINT_BYTES = 32;
/** About what a staged point takes in its table and index (its series name is in both). */
const STAGED_POINT_BYTES = 64;
/**
 * What staging one point writes to the WAL, at most: the pages of the table and of its index that the
 * insert touches. 1,500 points of distinct series in one transaction wrote about 350 bytes each
 * (a 520 KB WAL on an 8 MiB disk, seen in the disk-full test).
 */
const STAGED_POINT_WAL_BYTES = 512;
/** What staging one tick writes to the WAL: a page of the table, one of its index, and the row. */
const TICK_WAL_BYTES = 2 * 4096;
/**
 * On a full disk staged points are packed this many at a time, each batch its own transaction whose
 * WAL (the staging pages it empties and the batch) is checkpointed before the next: a few hundred KiB.
 */
const FULL_DISK_POINTS_PER_BATCH = 2_000;

/** The metric buffer: one durable row per tick until it is packed into a batch. */
export class MetricBuffer {
  readonly #store: AgentStore;
  readonly #stage: Statement;
  readonly #staged: Statement;
  readonly #deleteUpTo: Statement;
  readonly #stagePoint: Statement;
  readonly #refoldPoint: Statement;
  readonly #stagedPoints: Statement;
  readonly #deletePoints: Statement;
  #interval: number;
  #lastPacked: number;
  /** Points in the staging table (kept in memory: addPoints checks it on every call). */
  #pointsStaged: number;

  constructor(store: AgentStore, intervalMs: number) {
    this.#store = store;
    this.#interval = intervalMs;
    // The durable high-water mark, held in memory: add() checks it every tick.
    this.#lastPacked = store.outbox.counter("last_packed_ts");
    store.db.run(
      "CREATE TABLE IF NOT EXISTS ticks (ts INTEGER PRIMARY KEY, interval INTEGER NOT NULL, data BLOB NOT NULL)",
    );
    // A slot already taken (a restart within the same interval) keeps its first tick.
    this.#stage = store.db.query("INSERT OR IGNORE INTO ticks (ts, interval, data) VALUES (?, ?, ?)");
    this.#staged = store.db.query("SELECT ts, interval, data FROM ticks ORDER BY ts");
    this.#deleteUpTo = store.db.query("DELETE FROM ticks WHERE ts <= ?");
    // Points at their own times, one row each until packed; one per series and millisecond (a fold).
    store.db.run(
      `CREATE TABLE IF NOT EXISTS points (id INTEGER PRIMARY KEY, series TEXT NOT NULL, t INTEGER NOT NULL,
       value REAL NOT NULL, UNIQUE (series, t))`,
    );
    this.#stagePoint = store.db.query("INSERT OR IGNORE INTO points (series, t, value) VALUES (?, ?, ?)");
    this.#refoldPoint = store.db.query("UPDATE points SET value = ? WHERE series = ? AND t = ?");
    this.#stagedPoints = store.db.query("SELECT id, series, t, value FROM points ORDER BY t, series");
    this.#deletePoints = store.db.query("DELETE FROM points WHERE id IN (SELECT value FROM json_each(?))");
    this.#pointsStaged = this.stagedPoints();
  }

  get interval(): number {
    return this.#interval;
  }

  /** Changes the sampling interval; what is staged at the old one is packed first. */
  setInterval(ms: number, now: number): void {
    if (ms === this.#interval) return;
    this.flush(now);
    this.#interval = ms;
  }

  /**
   * Stores one tick's samples and counts them as produced, in one transaction. A tick for a slot
   * that already holds one is not stored and not counted; returns the samples stored. On a full disk
   * the tick is not stored: its samples count as produced and dropped (reason disk).
   */
  add(ts: number, values: Record<string, number>): number {
    const n = Object.keys(values).length;
    if (n === 0) return 0;
    // A slot already packed and sent (a restart within one interval of the last tick) is not reused.
    if (ts <= this.#lastPacked) return 0;
    const store = this.#store;
    const stored = !store.admit(TICK_WAL_BYTES + n * 16)
      ? -1
      : store.guard(() => {
          const tx = store.db.transaction(() => {
            const { changes } = this.#stage.run(ts, this.#interval, encodeCbor(values));
            if (changes === 0) return 0;
            store.outbox.bump("samples_produced", n);
            return n;
          });
          return tx() as number;
        }, -1);
    if (stored >= 0) return stored;
    store.countDropped("disk", n, true);
    return 0;
  }

  /**
   * Stores points at their own millisecond times and counts them as produced, in one transaction: from
   * here a crash cannot lose them, and none shares a slot with another. Two points of one series at the
   * same millisecond, while still staged, fold into one: the later one's value is kept and the earlier
   * one is counted as dropped (`samples_folded`). Returns the points folded. On a full disk the points
   * are not stored: they count as produced and dropped (reason disk), and the answer is null.
   */
  addPoints(points: readonly TimedPoint[], now = Date.now()): number | null {
    if (points.length === 0) return 0;
    const folded = this.#stagePoints(points);
    // A fast producer fills the staging table faster than the batch interval packs it: past a share of
    // the outbox's budget the points are packed at once, where the budget's downsampling and drops apply.
    if (folded >= 0) {
      this.#pointsStaged += points.length - folded;
      if (this.#pointsStaged * STAGED_POINT_BYTES > this.#store.stagingRoomBytes()) this.flush(now);
    }
    return folded < 0 ? null : folded;
  }

  // Stages points in one transaction; -1 when the disk was full (then counted as dropped).
  #stagePoints(points: readonly TimedPoint[]): number {
    const store = this.#store;
    const tx = store.db.transaction(() => {
      let folded = 0;
      for (const p of points) {
        const t = Math.floor(p.t);
        if (this.#stagePoint.run(p.series, t, p.value).changes === 0) {
          this.#refoldPoint.run(p.value, p.series, t);
          folded += 1;
        }
      }
      store.outbox.bump("samples_produced", points.length);
      if (folded > 0) store.outbox.bump(FOLDED, folded);
      return folded;
    });
    const folded = store.admit(points.length * STAGED_POINT_WAL_BYTES)
      ? store.guard(() => tx() as number, -1)
      : -1;
    if (folded < 0) store.countDropped("disk", points.length, true);
    return folded;
  }

  /**
   * Packs every staged tick and point into metrics batches in the outbox. Returns the batches written.
   * On a full disk what could not be packed stays staged for the next flush.
   */
  flush(now: number): number {
    let written = 0;
    // On a full disk the room left is for draining (acks, checkpoints); staged ticks wait. Staged
    // points are packed (in small batches, while the room allows): packed, they take a fraction of
    // their staged size and can drain to the hub; staged, they would hold the disk full.
    if (this.#store.full) {
      written = this.#store.guard(() => this.#packPointsOnFullDisk(now), 0);
      this.#pointsStaged = this.stagedPoints();
      return written;
    }
    this.#store.guard(() => {
      this.#flush(now, () => written++);
      written += this.#flushPoints(now);
    }, undefined);
    this.#pointsStaged = this.stagedPoints();
    if (written > 0) this.#store.afterWrite();
    return written;
  }

  #flush(now: number, onBatch: () => void): void {
    const rows = this.#staged.all() as { ts: number; interval: number; data: Uint8Array }[];
    if (rows.length === 0) return;
    if (!this.#store.beforeWrite(rows.reduce((n, r) => n + r.data.byteLength, 0))) return;
    let run: Tick[] = [];
    let runInterval = rows[0]!.interval;
    const emit = () => {
      if (run.length === 0) return;
      this.#writeBatch(run, runInterval, now);
      onBatch();
      run = [];
    };
    for (const row of rows) {
      const tick = { ts: row.ts, values: decodeCbor(row.data) as Record<string, number> };
      const prev = run[run.length - 1];
      const onGrid = prev && row.interval === runInterval && (row.ts - run[0]!.ts) % runInterval === 0;
      if (prev && (!onGrid || row.ts - prev.ts > MAX_GAP_TICKS * runInterval)) emit();
      if (run.length === 0) runInterval = row.interval;
      run.push(tick);
    }
    emit();
  }

  #writeBatch(run: Tick[], interval: number, now: number): void {
    const start = run[0]!.ts;
    const last = run[run.length - 1]!.ts;
    const ticks = Math.round((last - start) / interval) + 1;
    const columns = new Map<string, (number | null)[]>();
    for (const t of run) {
      const i = Math.round((t.ts - start) / interval);
      for (const [name, value] of Object.entries(t.values)) {
        let col = columns.get(name);
        if (!col) {
          col = new Array<number | null>(ticks).fill(null);
          columns.set(name, col);
        }
        col[i] = value;
      }
    }
    const frame: MetricsFrame = {
      start,
      interval,
      ticks,
      series: [...columns].map(([name, values]) => ({ name, values })),
    };
    const enc = encodeMetrics(frame);
    const body = encodeCbor({ start, interval, ticks, samples: enc.samples, data: enc.data, z: enc.z });
    if (body.byteLength > this.#store.maxBodyBytes && run.length > 1) {
      const half = Math.ceil(run.length / 2);
      this.#writeBatch(run.slice(0, half), interval, now);
      this.#writeBatch(run.slice(half), interval, now);
      return;
    }
    this.#store.outbox.append("metrics_batch", body, enc.samples, now, () => {
      this.#deleteUpTo.run(last);
      this.#store.outbox.raise("last_packed_ts", last);
    });
    // Only after the commit: a rolled-back append must not move the mark.
    this.#lastPacked = Math.max(this.#lastPacked, last);
  }

  // Staged points, oldest first, in batches of at most an hour and as many points as one transaction
  // may write (the store's transactionBytes()). Each batch deletes exactly its own rows in the
  // transaction that appends it.
  #flushPoints(now: number): number {
    const rows = this.#stagedPoints.all() as StagedPoint[];
    if (rows.length === 0) return 0;
    const perBatch = this.#pointsPerTransaction();
    let written = 0;
    for (let i = 0; i < rows.length; ) {
      let j = i + 1;
      while (j < rows.length && j - i < perBatch && rows[j]!.t - rows[i]!.t <= POINTS_SPAN_MS) j++;
      // The write waits when the disk has not that much above its reserve: its staged rows and the batch.
      if (!this.#store.beforeWrite((j - i) * (STAGED_POINT_BYTES + PACKED_POINT_BYTES))) break;
      written += this.#writePoints(rows.slice(i, j), now);
      i = j;
    }
    return written;
  }

  // Points one transaction packs: what it writes to the WAL (the staged pages it empties, about what
  // staging them wrote, and the batch) stays within what a checkpoint on a full disk can count on. At
  // least 500: on the smallest disks (a 64 KiB ballast) that owes more than half the ballast, a
  // trade for batches that are not too small to be worth their row.
  #pointsPerTransaction(): number {
    const n = Math.floor(this.#store.transactionBytes() / (STAGED_POINT_WAL_BYTES + PACKED_POINT_BYTES));
    return Math.min(MAX_POINTS_PER_BATCH, Math.max(500, n));
  }

  // Packs the oldest staged points in batches of FULL_DISK_POINTS_PER_BATCH while the free space
  // above the reserve and the ballast holds about twice a batch's staged bytes (its WAL, checkpointed
  // after each commit). The released ballast's room is not for packing: it is what numbering the
  // backlog and deleting what the hub acked write into, and packing into it left them none.
  #packPointsOnFullDisk(now: number): number {
    const rows = this.#stagedPoints.all() as StagedPoint[];
    const disk = this.#store.disk;
    const floor = disk.reserveBytes() + disk.ballastBytes;
    const perBatch = this.#pointsPerTransaction();
    let written = 0;
    for (let i = 0; i < rows.length; ) {
      let j = i + 1;
      while (
        j < rows.length &&
        j - i < Math.min(FULL_DISK_POINTS_PER_BATCH, perBatch) &&
        rows[j]!.t - rows[i]!.t <= POINTS_SPAN_MS
      )
        j++;
      const free = disk.freeBytes();
      if (free === undefined || free - 2 * (j - i) * STAGED_POINT_BYTES < floor) break;
      written += this.#writePoints(rows.slice(i, j), now);
      i = j;
    }
    return written;
  }

  #writePoints(rows: StagedPoint[], now: number): number {
    const start = rows[0]!.t;
    const columns = new Map<string, { times: number[]; values: number[] }>();
    // Rows come ordered by time, so each series' times rise (one row per series and millisecond).
    for (const r of rows) {
      let col = columns.get(r.series);
      if (!col) {
        col = { times: [], values: [] };
        columns.set(r.series, col);
      }
      col.times.push(r.t);
      col.values.push(r.value);
    }
    // A timed batch has one (empty) tick: its grid says nothing, each series carries its own times.
    const frame: MetricsFrame = {
      start,
      interval: this.#interval,
      ticks: 1,
      series: [...columns].map(([name, c]) => ({ name, values: c.values, times: c.times })),
    };
    const enc = encodeMetrics(frame);
    const body = encodeCbor({
      start,
      interval: this.#interval,
      ticks: 1,
      samples: enc.samples,
      data: enc.data,
      z: enc.z,
    });
    if (body.byteLength > this.#store.maxBodyBytes && rows.length > 1) {
      const half = Math.ceil(rows.length / 2);
      return this.#writePoints(rows.slice(0, half), now) + this.#writePoints(rows.slice(half), now);
    }
    const ids = JSON.stringify(rows.map((r) => r.id));
    this.#store.outbox.append("metrics_batch", body, enc.samples, now, () => this.#deletePoints.run(ids));
    return 1;
  }

  /** Samples produced since the store was created (durable; with those counted while the disk was full). */
  produced(): number {
    return this.#store.produced();
  }

  /** Points folded into a later one of the same series and millisecond (counted as dropped). */
  folded(): number {
    return this.#store.outbox.counter(FOLDED);
  }

  /** Samples staged but not yet packed. */
  stagedTicks(): number {
    return (this.#store.db.query("SELECT count(*) AS n FROM ticks").get() as { n: number }).n;
  }

  /** Points at their own times staged but not yet packed. */
  stagedPoints(): number {
    return (this.#store.db.query("SELECT count(*) AS n FROM points").get() as { n: number }).n;
  }
}

type StagedPoint = { id: number; series: string; t: number; value: number };

/** The durable counter of folded points: a drop reason (`folded`) beside the buffer's own drops. */
export const FOLDED = "samples_folded";
