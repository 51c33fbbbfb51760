// Stages each tick's samples durably, then packs them into columnar metrics batches in the outbox.
import type { Statement } from "bun:sqlite";
import { decodeCbor, encodeCbor } from "../../shared/protocol/index.ts";
import { encodeMetrics, type MetricsFrame } from "../../shared/protocol/metrics-codec.ts";
import type { AgentStore } from "./agent-store.ts";

type Tick = { ts: number; values: Record<string, number> };

// A run of ticks with a gap wider than this becomes two batches instead of one full of nulls.
const MAX_GAP_TICKS = 10;

/** The metric buffer: one durable row per tick until it is packed into a batch. */
export class MetricBuffer {
  readonly #store: AgentStore;
  readonly #stage: Statement;
  readonly #staged: Statement;
  readonly #deleteUpTo: Statement;
  #interval: number;
  #lastPacked: number;

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
   * that already holds one is not stored and not counted; returns the samples stored.
   */
  add(ts: number, values: Record<string, number>): number {
    const n = Object.keys(values).length;
    if (n === 0) return 0;
    const tx = this.#store.db.transaction(() => {
      // A slot already packed and sent (a restart within one interval of the last tick) is not reused.
      if (ts <= this.#lastPacked) return 0;
      const { changes } = this.#stage.run(ts, this.#interval, encodeCbor(values));
      if (changes === 0) return 0;
      this.#store.outbox.bump("samples_produced", n);
      return n;
    });
    return tx() as number;
  }

  /** Packs every staged tick into metrics batches in the outbox. Returns the batches written. */
  flush(now: number): number {
    const rows = this.#staged.all() as { ts: number; interval: number; data: Uint8Array }[];
    if (rows.length === 0) return 0;
    let written = 0;
    let run: Tick[] = [];
    let runInterval = rows[0]!.interval;
    const emit = () => {
      if (run.length === 0) return;
      this.#writeBatch(run, runInterval, now);
      written += 1;
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
    return written;
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

  /** Samples produced since the store was created (durable). */
  produced(): number {
    return this.#store.outbox.counter("samples_produced");
  }

  /** Samples staged but not yet packed. */
  stagedTicks(): number {
    return (this.#store.db.query("SELECT count(*) AS n FROM ticks").get() as { n: number }).n;
  }
}
