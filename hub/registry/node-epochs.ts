// Each node's store epochs: which stores it spoke from, how far the hub stored from each, and its counters.
import type { HeartbeatBody } from "../../shared/protocol/index.ts";
import { textOrder } from "../store/sql/dialect.ts";
import type { HubSql } from "../store/sql/index.ts";

/** One store (epoch) of a node, as the hub knows it. */
export interface EpochRecord {
  epoch: string;
  first_seen: number;
  last_seen: number;
  /** Highest sequence number stored while this epoch was speaking. */
  seq_high: number;
  produced: number;
  dropped: number;
  dropped_by: Record<string, number>;
  /** Samples the store held, unacknowledged, at its last report. */
  held: number;
  /** Times a copy of this store came back behind the hub (a restored snapshot, or a copy elsewhere). */
  restored: number;
}

/** The counters a node reported last (from its newest epoch). */
export interface NodeCounters {
  epoch: string;
  produced: number;
  dropped: number;
  dropped_by: Record<string, number>;
  held: number;
}

interface Row extends Omit<EpochRecord, "dropped_by"> {
  dropped_by: string;
}

/** Reports `flush` wrote (each node's, as kept in memory). */
export type EpochReports = [string, NodeCounters & { at: number }][];

/** What the hub answers a hello that names an epoch. */
export interface EpochVerdict {
  /** The store is a copy of one the hub stored more from than it has numbered: it must start a new epoch. */
  restored: boolean;
  /**
   * The node's counters as last seen, for a store that is behind to resume from. `produced` is at least
   * what the hub stored and the node dropped: a report lags, and the original may have sent more after it.
   */
  counters?: { produced: number; dropped: number };
}

// The later of a stored time and `?` (no scalar max() on PostgreSQL).
const LATER = "CASE WHEN ? > node_epochs.last_seen THEN ? ELSE node_epochs.last_seen END";
const MORE = (col: string) => `CASE WHEN ? > node_epochs.${col} THEN ? ELSE node_epochs.${col} END`;

/**
 * Epoch history per node, in the hub database; reports are kept in memory and written with `flush`.
 * Reads and writes go through `via`: a transaction's handle, or the store's own.
 */
export class NodeEpochs {
  readonly #sql: HubSql;
  readonly #now: () => number;
  readonly #current = new Map<string, string>();
  readonly #pending = new Map<string, NodeCounters & { at: number }>();

  constructor(sql: HubSql, now: () => number) {
    this.#sql = sql;
    this.#now = now;
  }

  /**
   * A hello naming `epoch`, whose store has handed out wire numbers up to `seqHigh`, while the hub
   * has stored the node's numbers up to `storedSeq` and `storedSamples` of its samples. A store the
   * hub knows that is behind it is a copy.
   */
  async hello(
    tx: HubSql,
    node: string,
    epoch: string,
    seqHigh: number,
    storedSeq: number,
    storedSamples: number,
  ): Promise<EpochVerdict> {
    const known =
      (await tx.get("SELECT epoch FROM node_epochs WHERE node = ? AND epoch = ?", [node, epoch])) !==
      undefined;
    const restored = known && storedSeq > seqHigh;
    const now = this.#now();
    await tx.run(
      `INSERT INTO node_epochs (node, epoch, first_seen, last_seen) VALUES (?, ?, ?, ?)
       ON CONFLICT (node, epoch) DO UPDATE SET last_seen = ${LATER}`,
      [node, epoch, now, now, now, now],
    );
    if (restored)
      await tx.run("UPDATE node_epochs SET restored = restored + 1 WHERE node = ? AND epoch = ?", [
        node,
        epoch,
      ]);
    this.#current.set(node, epoch);
    const c = await this.counters(node, tx);
    const verdict: EpochVerdict = { restored };
    if (c || storedSamples > 0) {
      const dropped = c?.dropped ?? 0;
      verdict.counters = { produced: Math.max(c?.produced ?? 0, dropped + storedSamples), dropped };
    }
    return verdict;
  }

  /** A heartbeat that carries counters: kept in memory until the next flush. */
  report(node: string, hb: HeartbeatBody): void {
    if (hb.epoch === undefined || hb.produced === undefined) return;
    this.#current.set(node, hb.epoch);
    this.#pending.set(node, {
      epoch: hb.epoch,
      produced: hb.produced,
      dropped: hb.dropped ?? 0,
      dropped_by: hb.dropped_by ?? {},
      held: hb.held ?? 0,
      at: this.#now(),
    });
  }

  /** The epoch the node speaks from now (undefined for an agent that sends none). */
  current(node: string): string | undefined {
    return this.#current.get(node);
  }

  /**
   * Writes the reports kept in memory through `tx` (the registry flushes with its own transaction).
   * The counters only rise in the store, so a report written twice, or late, changes nothing.
   */
  async flush(tx: HubSql): Promise<EpochReports> {
    if (this.#pending.size === 0) return [];
    const written = [...this.#pending];
    for (const [node, r] of written) {
      await tx.run(
        `INSERT INTO node_epochs (node, epoch, first_seen, last_seen, produced, dropped, dropped_by, held)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (node, epoch) DO UPDATE SET last_seen = ${LATER}, produced = ${MORE("produced")},
           dropped = ${MORE("dropped")}, dropped_by = excluded.dropped_by, held = excluded.held`,
        [
          node,
          r.epoch,
          r.at,
          r.at,
          r.produced,
          r.dropped,
          JSON.stringify(r.dropped_by),
          r.held,
          r.at,
          r.at,
          r.produced,
          r.produced,
          r.dropped,
          r.dropped,
        ],
      );
    }
    return written;
  }

  /** The reports `flush` wrote were committed: forgotten, unless a newer one came in meanwhile. */
  flushed(written: EpochReports): void {
    for (const [node, r] of written) if (this.#pending.get(node) === r) this.#pending.delete(node);
  }

  /** A node's epochs, oldest first, with its latest report (kept in memory until the next flush). */
  async list(node: string, via: HubSql = this.#sql): Promise<EpochRecord[]> {
    const stored = await via.all<Row>(
      `SELECT * FROM node_epochs WHERE node = ? ORDER BY first_seen, ${textOrder(via.dialect, "epoch")}`,
      [node],
    );
    const rows = stored.map((r) => ({
      epoch: r.epoch,
      first_seen: r.first_seen,
      last_seen: r.last_seen,
      seq_high: r.seq_high,
      produced: r.produced,
      dropped: r.dropped,
      dropped_by: JSON.parse(r.dropped_by) as Record<string, number>,
      held: r.held,
      restored: r.restored,
    }));
    const p = this.#pending.get(node);
    if (!p) return rows;
    const row = rows.find((r) => r.epoch === p.epoch);
    const merged = {
      produced: Math.max(row?.produced ?? 0, p.produced),
      dropped: Math.max(row?.dropped ?? 0, p.dropped),
      dropped_by: p.dropped_by,
      held: p.held,
      last_seen: Math.max(row?.last_seen ?? 0, p.at),
    };
    if (row) Object.assign(row, merged);
    else rows.push({ epoch: p.epoch, first_seen: p.at, seq_high: 0, restored: 0, ...merged });
    return rows;
  }

  /** Every node's dropped count (the highest any of its epochs reported), in one read. */
  async droppedAll(via: HubSql = this.#sql): Promise<Map<string, number>> {
    const rows = await via.all<{ node: string; dropped: number }>(
      "SELECT node, max(dropped) AS dropped FROM node_epochs WHERE produced > 0 OR dropped > 0 GROUP BY node",
    );
    const out = new Map(rows.map((r) => [r.node, r.dropped]));
    for (const [node, p] of this.#pending)
      if (p.produced > 0 || p.dropped > 0) out.set(node, Math.max(out.get(node) ?? 0, p.dropped));
    return out;
  }

  /**
   * The node's counters: those of its latest report. Counters carry on across epochs (a copy resumes
   * from them), so produced and dropped are the highest any epoch reported.
   */
  async counters(node: string, via: HubSql = this.#sql): Promise<NodeCounters | undefined> {
    const epochs = await this.list(node, via);
    const reported = epochs.filter((e) => e.produced > 0 || e.dropped > 0);
    if (reported.length === 0) return undefined;
    const last = reported.reduce((a, e) => (e.last_seen >= a.last_seen ? e : a));
    return {
      epoch: last.epoch,
      produced: Math.max(...reported.map((e) => e.produced)),
      dropped: Math.max(...reported.map((e) => e.dropped)),
      dropped_by: last.dropped_by,
      held: last.held,
    };
  }
}
