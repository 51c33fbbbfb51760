// Samples stored once per (node, series, timestamp): what an arriving batch holds that the hub already has.
import { decodeMetrics, type MetricsFrame, sampleTime } from "../../shared/protocol/metrics-codec.ts";
import { rolledUpSamples } from "../../shared/protocol/rollup.ts";
import type { HubSql } from "../store/sql/index.ts";

/** A batch, decoded: one the hub holds, or one arriving. */
export interface StoredFrame {
  frame: MetricsFrame;
  rollup: boolean;
  /** A rollup's id on the agent that folded it, when it sent one. */
  fold?: number | undefined;
}

/**
 * The hub's stored batches as far as duplicates go: the latest sample time per node (in memory, so
 * that a batch after it, the common case, costs nothing) and the stored batches a batch overlaps, read
 * through the handle of the transaction that stores the batch.
 */
export class StoredSamples {
  /** Latest sample time stored per node: a batch starting after it cannot hold a sample stored before. */
  readonly #end = new Map<string, number>();

  /**
   * The part of `incoming` (a batch of `node` from `start` to `end`) the hub does not hold yet, and how
   * many samples it held already. Call inside the transaction that stores it, then `stored`.
   */
  async withoutStored(
    tx: HubSql,
    node: string,
    incoming: StoredFrame,
    start: number,
    end: number,
  ): Promise<{ frame: MetricsFrame; duplicates: number }> {
    if (start > (await this.#latest(tx, node))) return { frame: incoming.frame, duplicates: 0 };
    return withoutStored(incoming, await this.#stored(tx, node, start, end));
  }

  /** Whether a batch of `node` starting at `start` may hold a sample stored before (the slow path). */
  async mayHold(tx: HubSql, node: string, start: number): Promise<boolean> {
    return start <= (await this.#latest(tx, node));
  }

  /** A batch of `node` reaching to `end` was stored (or found held). */
  stored(node: string, end: number): void {
    this.#end.set(node, Math.max(this.#end.get(node) ?? 0, end));
  }

  /** Forgets what is kept in memory of `node` (its transaction rolled back): read again from the store. */
  forget(node: string): void {
    this.#end.delete(node);
  }

  // The latest sample time stored for a node (read once from the store, then kept in memory).
  async #latest(tx: HubSql, node: string): Promise<number> {
    let end = this.#end.get(node);
    if (end === undefined) {
      const row = await tx.get<{ sample_end: number }>("SELECT sample_end FROM nodes WHERE id = ?", [node]);
      end = row?.sample_end ?? 0;
      // A hub database from before the column: the batches themselves say.
      if (end === 0) {
        const held = await tx.get<{ e: number }>(
          'SELECT coalesce(max("end"), 0) AS e FROM batches WHERE node = ?',
          [node],
        );
        end = held?.e ?? 0;
      }
      this.#end.set(node, end);
    }
    return end;
  }

  // Stored batches of a node that overlap [from, to], decoded (batches span at most a day).
  async #stored(tx: HubSql, node: string, from: number, to: number): Promise<StoredFrame[]> {
    const rows = await tx.all<{
      start: number;
      interval: number;
      ticks: number;
      z: 0 | 1;
      data: Uint8Array;
      rollup: number;
      fold: number | null;
    }>(
      `SELECT start, "interval", ticks, z, data, rollup, fold FROM batches
       WHERE node = ? AND start <= ? AND start >= ? AND "end" >= ?`,
      [node, to, from - 86_400_000, from],
    );
    return rows.map((r) => ({ frame: decodeMetrics(r), rollup: r.rollup === 1, fold: r.fold ?? undefined }));
  }
}

/**
 * The part of `incoming` the hub does not hold yet, and how many samples it already held (pure).
 * A fine sample is held when a stored fine batch has a value for the same series at the same time.
 * A rollup is held when the hub stores the very same fold (a restored store sending again what it
 * folded before the copy). A minute the original sent fine and a copy sends folded, or folded
 * differently, cannot be told apart from one split by a fold boundary, so it is stored.
 */
export function withoutStored(
  incoming: StoredFrame,
  stored: readonly StoredFrame[],
): { frame: MetricsFrame; duplicates: number } {
  return incoming.rollup ? rollupsWithoutStored(incoming, stored) : fineWithoutStored(incoming.frame, stored);
}

function fineWithoutStored(
  incoming: MetricsFrame,
  stored: readonly StoredFrame[],
): { frame: MetricsFrame; duplicates: number } {
  const names = new Set(incoming.series.map((c) => c.name));
  const held = new Map<string, Set<number>>();
  for (const s of stored) {
    if (s.rollup) continue;
    const f = s.frame;
    for (const col of f.series) {
      if (!names.has(col.name)) continue;
      let times = held.get(col.name);
      if (!times) {
        times = new Set();
        held.set(col.name, times);
      }
      col.values.forEach((v, i) => {
        if (v !== null) times.add(sampleTime(f, col, i));
      });
    }
  }
  let duplicates = 0;
  const series: MetricsFrame["series"] = [];
  for (const col of incoming.series) {
    const times = held.get(col.name);
    if (!times) {
      series.push(col);
      continue;
    }
    if (col.times) {
      // Points at their own times: a held one leaves both its time and its value.
      const keep = col.times.map((t) => !times.has(t));
      const values = col.values.filter((_, i) => keep[i]);
      duplicates += col.values.length - values.length;
      if (values.length > 0)
        series.push({ name: col.name, values, times: col.times.filter((_, i) => keep[i]) });
      continue;
    }
    const values = col.values.map((v, i) => {
      if (v === null || !times.has(sampleTime(incoming, col, i))) return v;
      duplicates += 1;
      return null;
    });
    if (values.some((v) => v !== null)) series.push({ name: col.name, values });
  }
  return { frame: { ...incoming, series }, duplicates };
}

// A rollup is taken as held only when the hub holds the very same fold: the same id from the agent,
// the same start, ticks and columns. Two parts of one minute split by a fold boundary can match minute
// by minute, even as whole batches (a constant series, the same count), so content is no evidence alone.
function rollupsWithoutStored(
  incoming: StoredFrame,
  stored: readonly StoredFrame[],
): { frame: MetricsFrame; duplicates: number } {
  const f = incoming.frame;
  const same =
    incoming.fold !== undefined &&
    stored.some((s) => s.rollup && s.fold === incoming.fold && sameFrame(s.frame, f));
  if (!same) return { frame: f, duplicates: 0 };
  return { frame: { ...f, series: [] }, duplicates: rolledUpSamples(f) };
}

function sameFrame(a: MetricsFrame, b: MetricsFrame): boolean {
  if (a.start !== b.start || a.interval !== b.interval || a.ticks !== b.ticks) return false;
  if (a.series.length !== b.series.length) return false;
  const byName = new Map(a.series.map((c) => [c.name, c.values]));
  return b.series.every((c) => {
    const values = byName.get(c.name);
    return values?.every((v, i) => v === c.values[i]) === true;
  });
}
